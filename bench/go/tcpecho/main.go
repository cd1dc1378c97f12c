// tcpecho: Go peer of bench/tcpecho.c.
//
// One process is both ends (GOMAXPROCS at its default): an echo server (a
// goroutine per connection reading up to 64 bytes and writing back what it
// read) and c = 100 client connections, each a goroutine that writes a
// 64-byte message and reads the echo with io.ReadFull, m = 2,000 round trips
// per connection and round. Connections are made once; Go sets TCP_NODELAY
// on both ends by default. Median of reps rounds of c*m / round time:
// messages (round trips) per second.
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"sync"
	"time"
)

const (
	c    = 100
	m    = 2000
	msg  = 64
	reps = 5
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcpecho (Go):", err)
		os.Exit(1)
	}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func(conn net.Conn) {
				buf := make([]byte, msg)
				for {
					n, err := conn.Read(buf)
					if err != nil {
						break
					}
					if _, err := conn.Write(buf[:n]); err != nil {
						break
					}
				}
				conn.Close()
			}(conn)
		}
	}()
	conns := make([]net.Conn, c)
	for i := range conns {
		if conns[i], err = net.Dial("tcp", ln.Addr().String()); err != nil {
			fmt.Fprintln(os.Stderr, "tcpecho (Go):", err)
			os.Exit(1)
		}
	}
	var failed int32
	var mu sync.Mutex
	rate := make([]float64, reps)
	var wg sync.WaitGroup
	for r := 0; r < reps; r++ {
		wg.Add(c)
		start := time.Now()
		for i := 0; i < c; i++ {
			go func(i int) {
				defer wg.Done()
				out := make([]byte, msg)
				in := make([]byte, msg)
				for k := 0; k < m; k++ {
					for j := range out {
						out[j] = byte('a' + (i+k)%26)
					}
					binary.LittleEndian.PutUint32(out, uint32(k))
					_, err := conns[i].Write(out)
					if err == nil {
						_, err = io.ReadFull(conns[i], in)
					}
					if err != nil || !bytes.Equal(in, out) {
						mu.Lock()
						failed++
						mu.Unlock()
						fmt.Fprintf(os.Stderr, "tcpecho (Go): conn %d message %d: %v\n", i, k, err)
						return
					}
				}
			}(i)
		}
		wg.Wait()
		rate[r] = float64(c*m) / time.Since(start).Seconds()
		fmt.Fprintf(os.Stderr, "tcpecho (Go): round %d: %.0f msgs/s\n", r+1, rate[r])
		if failed > 0 {
			os.Exit(1)
		}
	}
	sort.Float64s(rate)
	fmt.Printf("RESULT tcpecho %.2f msgs/s\n", rate[reps/2])
}
