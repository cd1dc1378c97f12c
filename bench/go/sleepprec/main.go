// sleepprec: Go peer of bench/sleepprec.c.
//
// One goroutine on an otherwise idle runtime (GOMAXPROCS at its default)
// sleeps 50 us n = 1,000 times (time.Sleep) and records how late each sleep
// ended. Median of reps rounds of the round's lateness p50 and p99, in us.
package main

import (
	"fmt"
	"math"
	"os"
	"sort"
	"time"
)

const (
	n     = 1000
	reps  = 5
	sleep = 50 * time.Microsecond
)

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
	late := make([]int64, n)
	var p50, p99 []float64
	for r := 0; r < reps; r++ {
		for i := range late {
			t0 := time.Now()
			time.Sleep(sleep)
			late[i] = int64(time.Since(t0) - sleep)
		}
		sort.Slice(late, func(a, b int) bool { return late[a] < late[b] })
		p50 = append(p50, float64(percentile(late, 50))/1e3)
		p99 = append(p99, float64(percentile(late, 99))/1e3)
		fmt.Fprintf(os.Stderr, "sleepprec (Go): round %d: lateness min %.1f us, p50 %.1f us, p99 %.1f us, max %.1f us\n",
			r+1, float64(late[0])/1e3, p50[r], p99[r], float64(late[n-1])/1e3)
	}
	fmt.Printf("RESULT sleepprec_p50 %.2f us\n", median(p50))
	fmt.Printf("RESULT sleepprec_p99 %.2f us\n", median(p99))
}
