// spawn: Go peer of bench/spawn.c.
//
// With GOMAXPROCS(2), the main goroutine starts N goroutines, each of which
// calls wg.Done on one shared WaitGroup, then waits for all of them; the value
// is the elapsed time divided by N (ns per goroutine). Median of REPS rounds
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
	maxprocs = 2
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
	var wg sync.WaitGroup
	nsPerOp := make([]float64, reps)
	for r := 0; r < reps; r++ {
		wg.Add(n)
		start := time.Now()
		for i := 0; i < n; i++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
		nsPerOp[r] = float64(time.Since(start).Nanoseconds()) / n
		fmt.Fprintf(os.Stderr, "spawn (Go): round %d: %.1f ns/goroutine\n", r+1, nsPerOp[r])
	}
	sort.Float64s(nsPerOp)
	fmt.Printf("RESULT spawn %.2f ns/goroutine\n", nsPerOp[reps/2])
}
