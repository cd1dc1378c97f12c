// handoff: Go peer of bench/handoff.c.
//
// With GOMAXPROCS(2), 2 goroutines each do the same fixed computation
// (chunks of xorshift steps, runtime.Gosched after each chunk, as the C side
// yields; as many chunks as last aloneMS alone, calibrated at start), alone and then beside b = 50 goroutines that each make 5
// blocking nanosleep(100 ms) system calls (syscall.Syscall(SYS_NANOSLEEP),
// which enters and exits the system call as the C side's bracket does;
// time.Sleep would park the goroutine instead). Results: the median time
// beside the sleepers over the median time alone, and the median over
// rounds of the most threads seen at once (the Threads: line of
// /proc/self/status, sampled every ms and by each sleeper after each call).
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

const (
	ncpu    = 2
	b       = 50
	calls   = 5
	callNS  = 100 * 1000000
	chunk   = 100000
	aloneMS = 1000
	reps    = 5
)

var (
	peak        int64
	stopSampler int32
	sink        [ncpu]uint64
	work        int // chunks per CPU-bound goroutine
	buf         = make([]byte, 4096)
	bufMu       sync.Mutex
)

// threads reads the Threads: line of /proc/self/status.
func threads() int64 {
	bufMu.Lock()
	defer bufMu.Unlock()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	n, _ := f.Read(buf)
	f.Close()
	sc := bufio.NewScanner(bytes.NewReader(buf[:n]))
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, []byte("Threads:")) {
			v, _ := strconv.ParseInt(string(bytes.TrimSpace(line[8:])), 10, 64)
			return v
		}
	}
	return 0
}

func seeThreads() {
	t := threads()
	for {
		p := atomic.LoadInt64(&peak)
		if t <= p || atomic.CompareAndSwapInt64(&peak, p, t) {
			return
		}
	}
}

func steps(x uint64) uint64 {
	for k := 0; k < chunk; k++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

func cpu(i int, wg *sync.WaitGroup) {
	x := uint64(88172645463325252) + uint64(i)
	for c := 0; c < work; c++ {
		x = steps(x)
		runtime.Gosched()
	}
	sink[i] = x
	wg.Done()
}

func sleeper(wg *sync.WaitGroup) {
	for c := 0; c < calls; c++ {
		ts := syscall.Timespec{Sec: 0, Nsec: callNS}
		for {
			_, _, e := syscall.Syscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), uintptr(unsafe.Pointer(&ts)), 0)
			if e != syscall.EINTR {
				break
			}
		}
		seeThreads()
	}
	wg.Done()
}

func round(withSleepers bool) (float64, int64) {
	atomic.StoreInt64(&peak, 0)
	atomic.StoreInt32(&stopSampler, 0)
	var sleepWG, cpuWG sync.WaitGroup
	sleepWG.Add(1)
	go func() {
		for atomic.LoadInt32(&stopSampler) == 0 {
			seeThreads()
			time.Sleep(time.Millisecond)
		}
		sleepWG.Done()
	}()
	if withSleepers {
		sleepWG.Add(b)
		for i := 0; i < b; i++ {
			go sleeper(&sleepWG)
		}
	}
	cpuWG.Add(ncpu)
	start := time.Now()
	for i := 0; i < ncpu; i++ {
		go cpu(i, &cpuWG)
	}
	cpuWG.Wait()
	elapsed := time.Since(start)
	atomic.StoreInt32(&stopSampler, 1)
	sleepWG.Wait()
	return float64(elapsed.Nanoseconds()) / 1e6, atomic.LoadInt64(&peak)
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func main() {
	runtime.GOMAXPROCS(ncpu)
	best := time.Duration(1 << 62)
	for k := 0; k < 5; k++ {
		t0 := time.Now()
		x := uint64(k + 1)
		for c := 0; c < 20; c++ {
			x = steps(x)
		}
		sink[0] = x
		if d := time.Since(t0); d < best {
			best = d
		}
	}
	work = int(aloneMS * 1e6 * 20 / float64(best.Nanoseconds()))
	fmt.Fprintf(os.Stderr, "handoff (Go): %d chunks of %d steps (%.2f ms each) per goroutine\n",
		work, chunk, float64(best.Nanoseconds())/20/1e6)
	var alone, beside, thr []float64
	for r := 0; r < reps; r++ {
		a, t0 := round(false)
		s, t1 := round(true)
		alone = append(alone, a)
		beside = append(beside, s)
		thr = append(thr, float64(t1))
		fmt.Fprintf(os.Stderr, "handoff (Go): round %d: alone %.1f ms (%d threads), beside %d sleepers %.1f ms (%d threads at most): %.3fx\n",
			r+1, a, t0, b, s, t1, s/a)
	}
	fmt.Printf("RESULT handoff_slowdown %.2f x\n", median(beside)/median(alone))
	fmt.Printf("RESULT handoff_threads %.2f threads\n", median(thr))
}
