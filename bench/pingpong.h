/*
 * pingpong.h: the body of bench/pingpong1.c and bench/pingpong2.c, which
 * define BENCH_NAME and MAXPROCS and include it.
 *
 * Two goroutines bounce an int over two unbuffered channels: ping sends i on
 * c1 and waits for the answer on c2; pong receives from c1 and sends the
 * value + 1 back on c2. N round trips; the main goroutine waits for both on a
 * waitgroup. The time from before the first gort_go to the return of
 * gort_wg_wait, divided by N, is the value: ns per round trip (two channel
 * handoffs, each waking the other goroutine). Median of REPS rounds in one
 * gort_run.
 *
 * Go peers: bench/go/pingpong1/main.go, bench/go/pingpong2/main.go.
 */
#include <gort.h>

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N    1000000
#define REPS 5

static gort_chan *c1, *c2;
static gort_waitgroup wg;
static double ns_per_op[REPS];
static int failed;

static void ping(void *arg) {
    (void)arg;
    for (int i = 0; i < N; i++) {
        int v = i, got = -1;
        if (gort_chan_send(c1, &v) != 0 || gort_chan_recv(c2, &got) != 1) {
            fprintf(stderr, BENCH_NAME ": ping: channel error at %d\n", i);
            failed = 1;
            break;
        }
        if (got != i + 1)
            failed = 1; /* noted; pong still expects the remaining round trips */
    }
    gort_wg_done(&wg);
}

static void pong(void *arg) {
    (void)arg;
    for (int i = 0; i < N; i++) {
        int v;
        if (gort_chan_recv(c1, &v) != 1) {
            fprintf(stderr, BENCH_NAME ": pong: bad receive at %d\n", i);
            failed = 1;
            break;
        }
        v++;
        if (gort_chan_send(c2, &v) != 0) {
            fprintf(stderr, BENCH_NAME ": pong: bad send at %d\n", i);
            failed = 1;
            break;
        }
    }
    gort_wg_done(&wg);
}

static void bench_main(void *arg) {
    (void)arg;
    int rc;
    if ((rc = gort_chan_make(&c1, sizeof(int), 0)) < 0 ||
        (rc = gort_chan_make(&c2, sizeof(int), 0)) < 0) {
        fprintf(stderr, BENCH_NAME ": gort_chan_make: %s\n", strerror(-rc));
        failed = 1;
        return;
    }
    for (int r = 0; r < REPS && !failed; r++) {
        gort_wg_add(&wg, 2);
        int64_t start = gort_now();
        int64_t id1 = gort_go(ping, NULL);
        int64_t id2 = gort_go(pong, NULL);
        if (id1 < 0 || id2 < 0) {
            fprintf(stderr, BENCH_NAME ": gort_go: %s\n", strerror((int)-(id1 < 0 ? id1 : id2)));
            failed = 1;
            return; /* abandons the one started, as Go would */
        }
        gort_wg_wait(&wg);
        int64_t end = gort_now();
        ns_per_op[r] = (double)(end - start) / N;
        fprintf(stderr, BENCH_NAME ": round %d: %.1f ns/roundtrip\n", r + 1, ns_per_op[r]);
    }
    gort_chan_free(c1);
    gort_chan_free(c2);
}

int main(void) {
    gort_config cfg = { .maxprocs = MAXPROCS };
    return bench_report(BENCH_NAME, gort_run(&cfg, bench_main, NULL), failed, ns_per_op, REPS,
                        "ns/roundtrip");
}
