/*
 * mutex: a contended gort_mutex (Go's sync.Mutex).
 *
 * With two Ps, G goroutines each lock a shared mutex, increment a shared
 * counter and unlock, N times; the main goroutine waits for them on a
 * waitgroup and checks that the counter is G * N (exit status 1 if not).
 * The time from before the first gort_go to the return of gort_wg_wait,
 * divided by G * N, is the value: ns per lock/unlock pair. Median of REPS
 * rounds in one gort_run.
 *
 * Go peer: bench/go/mutex/main.go.
 */
#include <gort.h>

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define G        8
#define N        1000000
#define REPS     5
#define MAXPROCS 2

static gort_mutex mu;
static int64_t counter; /* guarded by mu */
static gort_waitgroup wg;
static double ns_per_op[REPS];
static int failed;

static void locker(void *arg) {
    (void)arg;
    for (int i = 0; i < N; i++) {
        gort_mutex_lock(&mu);
        counter++;
        gort_mutex_unlock(&mu);
    }
    gort_wg_done(&wg);
}

static void bench_main(void *arg) {
    (void)arg;
    for (int r = 0; r < REPS; r++) {
        counter = 0;
        gort_wg_add(&wg, G);
        int64_t start = gort_now();
        for (int i = 0; i < G; i++) {
            int64_t id = gort_go(locker, NULL);
            if (id < 0) {
                fprintf(stderr, "mutex: gort_go: %s\n", strerror((int)-id));
                failed = 1;
                return; /* abandons the ones started, as Go would */
            }
        }
        gort_wg_wait(&wg);
        int64_t end = gort_now();
        ns_per_op[r] = (double)(end - start) / ((double)G * N);
        fprintf(stderr, "mutex: round %d: %.1f ns/lock (counter %lld)\n", r + 1, ns_per_op[r],
                (long long)counter);
        if (counter != (int64_t)G * N) {
            fprintf(stderr, "mutex: counter is %lld, want %lld\n", (long long)counter,
                    (long long)G * N);
            failed = 1;
            return;
        }
    }
}

int main(void) {
    gort_config cfg = { .maxprocs = MAXPROCS };
    return bench_report("mutex", gort_run(&cfg, bench_main, NULL), failed, ns_per_op, REPS,
                        "ns/lock");
}
