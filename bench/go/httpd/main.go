// httpd: Go peer of examples/httpd.c, for the httpd benchmark (bench/run.sh
// points wrk at each server in turn).
//
// net/http with the same answers: GET / is "Hello, World!" (text/plain, 13
// bytes), GET /sleep?ms=N sleeps N ms then answers "slept N ms\n", anything
// else is 404. Listens on 127.0.0.1:PORT, PORT from the first argument, then
// $PORT, then 8080; GOMAXPROCS is left at its default, every core.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"time"
)

func main() {
	port := "8080"
	if len(os.Args) > 1 {
		port = os.Args[1]
	} else if p := os.Getenv("PORT"); p != "" {
		port = p
	}
	hello := []byte("Hello, World!")
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write(hello)
	})
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
		if err != nil || ms < 0 || ms > 60000 {
			http.Error(w, "want /sleep?ms=N, N from 0 to 60000", http.StatusBadRequest)
			return
		}
		time.Sleep(time.Duration(ms) * time.Millisecond)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "slept %d ms\n", ms)
	})
	fmt.Printf("httpd (Go): serving http://127.0.0.1:%s/ on %d Ps\n", port, runtime.GOMAXPROCS(0))
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, mux))
}
