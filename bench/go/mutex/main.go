// mutex: Go peer of bench/mutex.c, a contended sync.Mutex.
//
// With GOMAXPROCS(2), g goroutines each lock a shared mutex, increment a
// shared counter and unlock, n times; main waits on a WaitGroup and checks
// that the counter is g*n (exit status 1 if not). The value is the elapsed
// time / (g*n): ns per lock/unlock pair. Median of reps rounds in one process.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"
)

const (
	g        = 8
	n        = 1000000
	reps     = 5
	maxprocs = 2
)

func main() {
	runtime.GOMAXPROCS(maxprocs)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var counter int64
	nsPerOp := make([]float64, reps)
	for r := 0; r < reps; r++ {
		counter = 0
		wg.Add(g)
		start := time.Now()
		for i := 0; i < g; i++ {
			go func() {
				for j := 0; j < n; j++ {
					mu.Lock()
					counter++
					mu.Unlock()
				}
				wg.Done()
			}()
		}
		wg.Wait()
		nsPerOp[r] = float64(time.Since(start).Nanoseconds()) / (g * n)
		fmt.Fprintf(os.Stderr, "mutex (Go): round %d: %.1f ns/lock (counter %d)\n", r+1, nsPerOp[r], counter)
		if counter != g*n {
			fmt.Fprintf(os.Stderr, "mutex (Go): counter is %d, want %d\n", counter, g*n)
			os.Exit(1)
		}
	}
	sort.Float64s(nsPerOp)
	fmt.Printf("RESULT mutex %.2f ns/lock\n", nsPerOp[reps/2])
}
