/*
 * yield: the cost of one gort_yield (runtime.Gosched) between two goroutines.
 *
 * With one P, two goroutines each yield N times, so every yield switches to
 * the other one through the run queue. The main goroutine waits for both on a
 * waitgroup; the time from before the first gort_go to the return of
 * gort_wg_wait, divided by the 2N yields, is the value: ns per yield. The
 * measurement is repeated REPS times inside one gort_run and the median is
 * reported.
 *
 * Go peer: bench/go/yield/main.go.
 */
#include <gort.h>

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N        2000000
#define REPS     5
#define MAXPROCS 1

static gort_waitgroup wg;
static double ns_per_op[REPS];
static int failed;

static void yielder(void *arg) {
    (void)arg;
    for (int i = 0; i < N; i++)
        gort_yield();
    gort_wg_done(&wg);
}

static void bench_main(void *arg) {
    (void)arg;
    for (int r = 0; r < REPS; r++) {
        gort_wg_add(&wg, 2);
        int64_t start = gort_now();
        for (int i = 0; i < 2; i++) {
            int64_t id = gort_go(yielder, NULL);
            if (id < 0) {
                fprintf(stderr, "yield: gort_go: %s\n", strerror((int)-id));
                failed = 1;
                return;
            }
        }
        gort_wg_wait(&wg);
        int64_t end = gort_now();
        ns_per_op[r] = (double)(end - start) / (2.0 * N);
        fprintf(stderr, "yield: round %d: %.1f ns/yield\n", r + 1, ns_per_op[r]);
    }
}

int main(void) {
    gort_config cfg = { .maxprocs = MAXPROCS };
    return bench_report("yield", gort_run(&cfg, bench_main, NULL), failed, ns_per_op, REPS,
                        "ns/yield");
}
