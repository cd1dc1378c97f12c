// yield: Go peer of bench/yield.c.
//
// With GOMAXPROCS(1), two goroutines each call runtime.Gosched N times; the
// main goroutine waits for both on a WaitGroup. The value is the elapsed time
// divided by 2N (ns per yield). Median of REPS rounds in one process.
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
	n        = 2000000
	reps     = 5
	maxprocs = 1
)

func main() {
	runtime.GOMAXPROCS(maxprocs)
	var wg sync.WaitGroup
	nsPerOp := make([]float64, reps)
	for r := 0; r < reps; r++ {
		wg.Add(2)
		start := time.Now()
		for i := 0; i < 2; i++ {
			go func() {
				for j := 0; j < n; j++ {
					runtime.Gosched()
				}
				wg.Done()
			}()
		}
		wg.Wait()
		nsPerOp[r] = float64(time.Since(start).Nanoseconds()) / (2 * n)
		fmt.Fprintf(os.Stderr, "yield (Go): round %d: %.1f ns/yield\n", r+1, nsPerOp[r])
	}
	sort.Float64s(nsPerOp)
	fmt.Printf("RESULT yield %.2f ns/yield\n", nsPerOp[reps/2])
}
