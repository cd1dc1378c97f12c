// skynet: Go peer of bench/skynet.c, the classic skynet benchmark.
//
// skynet(c, num, size, div): a leaf (size 1) sends num on c; any other node
// makes an unbuffered channel rc, starts div children skynet(rc, num +
// i*size/div, size/div, div), sums div receives from rc and sends the sum on
// c. size 1,000,000 and div 10: 1,111,111 goroutines, and the root's sum is
// 499,999,500,000 (exit status 1 if not). With GOMAXPROCS(2), the time from
// starting the root to receiving its sum is the value: ms per run. Median of
// reps runs in one process.
//
// With the argument -cold: one run only, the first in a fresh process, as
// skynet_cold (bench/skynet.c -cold; bench/run.sh runs it in 5 processes and
// takes the median).
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"time"
)

const (
	size     = 1000000
	div      = 10
	want     = 499999500000
	reps     = 5 // rounds in one process; 1 with -cold
	maxprocs = 2
)

func skynet(c chan int, num int, size int, div int) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int)
	var sum int
	for i := 0; i < div; i++ {
		subNum := num + i*(size/div)
		go skynet(rc, subNum, size/div, div)
	}
	for i := 0; i < div; i++ {
		sum += <-rc
	}
	c <- sum
}

func main() {
	name, rounds := "skynet", reps
	if len(os.Args) == 2 && os.Args[1] == "-cold" {
		name, rounds = "skynet_cold", 1
	} else if len(os.Args) != 1 {
		fmt.Fprintf(os.Stderr, "usage: %s [-cold]\n", os.Args[0])
		os.Exit(2)
	}
	runtime.GOMAXPROCS(maxprocs)
	c := make(chan int)
	msPerRun := make([]float64, rounds)
	for r := 0; r < rounds; r++ {
		start := time.Now()
		go skynet(c, 0, size, div)
		result := <-c
		msPerRun[r] = float64(time.Since(start).Nanoseconds()) / 1e6
		fmt.Fprintf(os.Stderr, "%s (Go): round %d: %.1f ms (result %d)\n", name, r+1, msPerRun[r], result)
		if result != want {
			fmt.Fprintf(os.Stderr, "%s (Go): wrong result %d, want %d\n", name, result, want)
			os.Exit(1)
		}
	}
	sort.Float64s(msPerRun)
	fmt.Printf("RESULT %s %.2f ms/run\n", name, msPerRun[rounds/2])
}
