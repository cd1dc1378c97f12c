// park1m: Go peer of bench/park1m.c.
//
// With GOMAXPROCS(2) and Go's own starting stacks, main starts n = 1,000,000
// goroutines; each adds 1 to an atomic counter, then blocks receiving from
// one shared unbuffered channel that nobody sends on. Main calls
// runtime.Gosched until the counter reaches n; then main closes the channel,
// which wakes every receiver (a receive must see the channel closed), and
// waits on a WaitGroup that each goroutine marks done before it exits.
// Values: park1m, ms from the first go statement until the counter reaches n
// (Go says nothing of how many goroutines are parked: gort also waits for its
// other P to go idle, so that the last goroutine to count itself has parked,
// which Go cannot check); park1m_rss, (VmRSS when the counter reaches n -
// VmRSS before the first go statement) / n, bytes per parked goroutine (the
// growth of the page tables, VmPTE, not in VmRSS, goes to stderr);
// park1m_wake, ms from close to the end of the wait. One round per process;
// bench/run.sh runs it 5 times and takes the median of each value.
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

const (
	n        = 1000000
	maxprocs = 2
)

// statusKB is N from the line "<field>: N kB" of /proc/self/status (VmRSS,
// VmPTE), or -1.
func statusKB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		var kb int64
		if _, err := fmt.Sscanf(s.Text(), field+": %d kB", &kb); err == nil {
			return kb
		}
	}
	return -1
}

func main() {
	runtime.GOMAXPROCS(maxprocs)
	ch := make(chan int)
	var wg sync.WaitGroup
	var started, got int64

	rss0, pte0 := statusKB("VmRSS"), statusKB("VmPTE")
	wg.Add(n)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			atomic.AddInt64(&started, 1)
			if _, ok := <-ch; ok {
				atomic.AddInt64(&got, 1)
			}
			wg.Done()
		}()
	}
	for atomic.LoadInt64(&started) < n {
		runtime.Gosched()
	}
	parkMs := float64(time.Since(t0).Nanoseconds()) / 1e6
	rss1, pte1 := statusKB("VmRSS"), statusKB("VmPTE")
	live := runtime.NumGoroutine()

	t2 := time.Now()
	close(ch)
	wg.Wait()
	wakeMs := float64(time.Since(t2).Nanoseconds()) / 1e6

	rssPerG := float64(rss1-rss0) * 1024 / n
	fmt.Fprintf(os.Stderr, "park1m (Go): park %.1f ms, %.0f B/goroutine (VmRSS %d -> %d kB; "+
		"page tables, not in VmRSS: %.0f B/goroutine), wake %.1f ms\n",
		parkMs, rssPerG, rss0, rss1, float64(pte1-pte0)*1024/n, wakeMs)
	failed := false
	if rss0 < 0 || rss1 < 0 {
		fmt.Fprintf(os.Stderr, "park1m (Go): no VmRSS in /proc/self/status\n")
		failed = true
	}
	if live != n+1 {
		fmt.Fprintf(os.Stderr, "park1m (Go): %d goroutines live once all parked, want %d\n", live, n+1)
		failed = true
	}
	if got != 0 {
		fmt.Fprintf(os.Stderr, "park1m (Go): %d receives got a value from a closed channel\n", got)
		failed = true
	}
	if failed {
		os.Exit(1)
	}
	fmt.Printf("RESULT park1m %.2f ms\n", parkMs)
	fmt.Printf("RESULT park1m_rss %.2f B/goroutine\n", rssPerG)
	fmt.Printf("RESULT park1m_wake %.2f ms\n", wakeMs)
}
