/*
 * spawn: the cost of starting a goroutine that does almost nothing.
 *
 * With two Ps, the main goroutine starts N goroutines, each of which calls
 * gort_wg_done on one shared waitgroup, then waits for all of them. The time
 * from just before the first gort_go to the return of gort_wg_wait, divided by
 * N, is the value: ns per goroutine, creation, scheduling and exit included.
 * The measurement is repeated REPS times inside one gort_run (later rounds
 * reuse freed goroutines and stacks, as a long-lived program would) and the
 * median is reported.
 *
 * Go peer: bench/go/spawn/main.go.
 */
#include <gort.h>

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N        1000000
#define REPS     5
#define MAXPROCS 2

static gort_waitgroup wg;
static double ns_per_op[REPS];
static int failed;

static void worker(void *arg) {
    (void)arg;
    gort_wg_done(&wg);
}

static void bench_main(void *arg) {
    (void)arg;
    for (int r = 0; r < REPS; r++) {
        gort_wg_add(&wg, N);
        int64_t start = gort_now();
        for (int i = 0; i < N; i++) {
            int64_t id = gort_go(worker, NULL);
            if (id < 0) {
                fprintf(stderr, "spawn: gort_go failed at goroutine %d of round %d: %s\n", i, r,
                        strerror((int)-id));
                failed = 1;
                /* Main returning abandons the goroutines already started. */
                return;
            }
        }
        gort_wg_wait(&wg);
        int64_t end = gort_now();
        ns_per_op[r] = (double)(end - start) / N;
        fprintf(stderr, "spawn: round %d: %.1f ns/goroutine\n", r + 1, ns_per_op[r]);
    }
}

int main(void) {
    gort_config cfg = { .maxprocs = MAXPROCS };
    return bench_report("spawn", gort_run(&cfg, bench_main, NULL), failed, ns_per_op, REPS,
                        "ns/goroutine");
}
