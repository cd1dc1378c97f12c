// buffered11: Go peer of bench/buffered11.c (workload in bench/buffered.h).
//
// With GOMAXPROCS(2), producers goroutines send n ints in all (n/producers
// each, the values 1..n) into one channel of capacity 1024, and consumers
// goroutines range over it until it is closed, each counting and summing
// what it got. A single producer closes the channel itself; with several, a
// closer goroutine waits on their WaitGroup and then closes it. main waits
// for the consumers and checks that n items summing to n(n+1)/2 came through
// (exit status 1 if not). The value is the elapsed time / n: ns per item.
// Median of reps rounds in one process.
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
	n         = 4000000
	capacity  = 1024
	reps      = 5
	maxprocs  = 2
	producers = 1
	consumers = 1
)

func main() {
	runtime.GOMAXPROCS(maxprocs)
	const wantSum = int64(n) * (n + 1) / 2
	nsPerOp := make([]float64, reps)
	for r := 0; r < reps; r++ {
		ch := make(chan int, capacity)
		var pwg, cwg sync.WaitGroup
		var mu sync.Mutex
		var totalCount, totalSum int64
		cwg.Add(consumers)
		if producers > 1 {
			pwg.Add(producers)
		}

		start := time.Now()
		for i := 0; i < consumers; i++ {
			go func() {
				var count, sum int64
				for v := range ch {
					count++
					sum += int64(v)
				}
				mu.Lock()
				totalCount += count
				totalSum += sum
				mu.Unlock()
				cwg.Done()
			}()
		}
		for i := 0; i < producers; i++ {
			go func(p int) {
				first := p*(n/producers) + 1
				for v := first; v < first+n/producers; v++ {
					ch <- v
				}
				if producers == 1 {
					close(ch)
				} else {
					pwg.Done()
				}
			}(i)
		}
		if producers > 1 {
			go func() {
				pwg.Wait()
				close(ch)
			}()
		}
		cwg.Wait()
		nsPerOp[r] = float64(time.Since(start).Nanoseconds()) / n

		fmt.Fprintf(os.Stderr, "buffered11 (Go): round %d: %.1f ns/item (%d items, sum %d)\n",
			r+1, nsPerOp[r], totalCount, totalSum)
		if totalCount != n || totalSum != wantSum {
			fmt.Fprintf(os.Stderr, "buffered11 (Go): wrong result: %d items summing to %d, want %d summing to %d\n",
				totalCount, totalSum, n, wantSum)
			os.Exit(1)
		}
	}
	sort.Float64s(nsPerOp)
	fmt.Printf("RESULT buffered11 %.2f ns/item\n", nsPerOp[reps/2])
}
