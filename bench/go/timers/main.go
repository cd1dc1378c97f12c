// timers: Go peer of bench/timers.c.
//
// With GOMAXPROCS at its default (every core), main starts n = 100,000
// goroutines; each reads the clock, sleeps a random 1 to 50 ms (time.Sleep,
// durations from the same xorshift sequence as the C side) and records how
// late it woke. Median of reps rounds of: the wall time (ms), and the
// lateness p50 and p99 of the round's n sleeps (us).
package main

import (
	"fmt"
	"math"
	"os"
	"sort"
	"sync"
	"time"
)

const (
	n    = 100000
	reps = 5
)

// percentile is the nearest-rank p-th percentile of sorted v.
func percentile(v []int64, p float64) int64 {
	k := int(math.Ceil(p / 100 * float64(len(v))))
	if k < 1 {
		k = 1
	}
	if k > len(v) {
		k = len(v)
	}
	return v[k-1]
}

func median(v []float64) float64 {
	sort.Float64s(v)
	return v[len(v)/2]
}

func main() {
	dur := make([]time.Duration, n)
	x := uint64(88172645463325252)
	for i := range dur {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		dur[i] = time.Duration(1+x%50) * time.Millisecond
	}
	late := make([]int64, n)
	var wall, p50, p99 []float64
	var wg sync.WaitGroup
	for r := 0; r < reps; r++ {
		wg.Add(n)
		start := time.Now()
		for i := 0; i < n; i++ {
			go func(i int) {
				t0 := time.Now()
				time.Sleep(dur[i])
				late[i] = int64(time.Since(t0) - dur[i])
				wg.Done()
			}(i)
		}
		wg.Wait()
		elapsed := time.Since(start)
		for i, l := range late {
			if l < 0 {
				fmt.Fprintf(os.Stderr, "timers (Go): goroutine %d woke %d ns early\n", i, -l)
				os.Exit(1)
			}
		}
		sort.Slice(late, func(a, b int) bool { return late[a] < late[b] })
		wall = append(wall, float64(elapsed.Nanoseconds())/1e6)
		p50 = append(p50, float64(percentile(late, 50))/1e3)
		p99 = append(p99, float64(percentile(late, 99))/1e3)
		fmt.Fprintf(os.Stderr, "timers (Go): round %d: %.1f ms, lateness p50 %.1f us, p99 %.1f us, max %.1f us\n",
			r+1, wall[r], p50[r], p99[r], float64(late[n-1])/1e3)
	}
	fmt.Printf("RESULT timers_wall %.2f ms\n", median(wall))
	fmt.Printf("RESULT timers_p50 %.2f us\n", median(p50))
	fmt.Printf("RESULT timers_p99 %.2f us\n", median(p99))
}
