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
