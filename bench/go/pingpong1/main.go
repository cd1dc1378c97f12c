// pingpong1: Go peer of bench/pingpong1.c (workload in bench/pingpong.h).
//
// With GOMAXPROCS(1), two goroutines bounce an int over two unbuffered
// channels: ping sends i on c1 and waits for i+1 on c2; pong receives from c1
// and sends the value + 1 on c2. n round trips; main waits on a WaitGroup.
// The value is the elapsed time / n: ns per round trip. Median of reps rounds
// in one process.
package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/trace"
	"sort"
	"sync"
	"time"
)

const (
	n        = 1000000
	reps     = 5
	maxprocs = 1
)

func main() {
	// BENCH_TRACE=path: run with Go's execution tracer on, as the gort
	// program runs with GORT_TRACE (bench/traceoverhead.sh).
	if path := os.Getenv("BENCH_TRACE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := trace.Start(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer func() { trace.Stop(); f.Close() }()
	}
	runtime.GOMAXPROCS(maxprocs)
	c1 := make(chan int)
	c2 := make(chan int)
	var wg sync.WaitGroup
	failed := false
	nsPerOp := make([]float64, reps)
	for r := 0; r < reps; r++ {
		wg.Add(2)
		start := time.Now()
		go func() { // ping
			for i := 0; i < n; i++ {
				c1 <- i
				if got := <-c2; got != i+1 {
					failed = true
				}
			}
			wg.Done()
		}()
		go func() { // pong
			for i := 0; i < n; i++ {
				v := <-c1
				c2 <- v + 1
			}
			wg.Done()
		}()
		wg.Wait()
		nsPerOp[r] = float64(time.Since(start).Nanoseconds()) / n
		fmt.Fprintf(os.Stderr, "pingpong1 (Go): round %d: %.1f ns/roundtrip\n", r+1, nsPerOp[r])
		if failed {
			fmt.Fprintf(os.Stderr, "pingpong1 (Go): bad exchange\n")
			os.Exit(1)
		}
	}
	sort.Float64s(nsPerOp)
	fmt.Printf("RESULT pingpong1 %.2f ns/roundtrip\n", nsPerOp[reps/2])
}
