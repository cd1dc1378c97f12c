/*
 * buffered.h: the body of bench/buffered11.c and bench/buffered44.c, which
 * define BENCH_NAME, PRODUCERS and CONSUMERS and include it.
 *
 * With two Ps, PRODUCERS goroutines send N ints in all (N / PRODUCERS each,
 * the values 1..N) into one channel of capacity 1024, and CONSUMERS
 * goroutines receive until it is closed, each counting and summing what it
 * got. A single producer closes the channel itself when done; with several,
 * a closer goroutine waits on their waitgroup and then closes it, as Go code
 * does. The main goroutine waits for the consumers on another waitgroup and
 * checks that N items summing to N(N+1)/2 came through (exit status 1 if
 * not). The time from before the first gort_go to the return of that wait,
 * divided by N, is the value: ns per item. Median of REPS rounds in one
 * gort_run.
 *
 * Go peers: bench/go/buffered11/main.go, bench/go/buffered44/main.go.
 */
#include <gort.h>

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N        4000000
#define CAP      1024
#define REPS     5
#define MAXPROCS 2

_Static_assert(N % PRODUCERS == 0, "N must split evenly between the producers");

static gort_chan *ch;
static gort_waitgroup producers_wg, consumers_wg;
static double ns_per_op[REPS];
static int failed;

/* Totals of the round, added to by each consumer once it is done. */
static gort_mutex totals_mu;
static int64_t total_count, total_sum;

static void producer(void *arg) {
    int64_t first = (int64_t)(intptr_t)arg * (N / PRODUCERS) + 1;
    for (int64_t v = first; v < first + N / PRODUCERS; v++) {
        if (gort_chan_send(ch, &v) != 0) {
            fprintf(stderr, BENCH_NAME ": producer: send failed\n");
            failed = 1;
            break;
        }
    }
    if (PRODUCERS == 1)
        gort_chan_close(ch);
    else
        gort_wg_done(&producers_wg);
}

static void closer(void *arg) {
    (void)arg;
    gort_wg_wait(&producers_wg);
    gort_chan_close(ch);
}

static void consumer(void *arg) {
    (void)arg;
    int64_t v, count = 0, sum = 0;
    while (gort_chan_recv(ch, &v) == 1) {
        count++;
        sum += v;
    }
    gort_mutex_lock(&totals_mu);
    total_count += count;
    total_sum += sum;
    gort_mutex_unlock(&totals_mu);
    gort_wg_done(&consumers_wg);
}

static int start(void (*fn)(void *), void *arg) {
    int64_t id = gort_go(fn, arg);
    if (id < 0) {
        fprintf(stderr, BENCH_NAME ": gort_go: %s\n", strerror((int)-id));
        failed = 1;
        return -1;
    }
    return 0;
}

static void bench_main(void *arg) {
    (void)arg;
    const int64_t want_sum = (int64_t)N * (N + 1) / 2;
    for (int r = 0; r < REPS; r++) {
        int rc = gort_chan_make(&ch, sizeof(int64_t), CAP);
        if (rc < 0) {
            fprintf(stderr, BENCH_NAME ": gort_chan_make: %s\n", strerror(-rc));
            failed = 1;
            return;
        }
        total_count = total_sum = 0;
        gort_wg_add(&consumers_wg, CONSUMERS);
        if (PRODUCERS > 1)
            gort_wg_add(&producers_wg, PRODUCERS);

        int64_t t0 = gort_now();
        for (intptr_t i = 0; i < CONSUMERS; i++)
            if (start(consumer, NULL) < 0)
                return; /* abandons what was started, as Go would */
        for (intptr_t i = 0; i < PRODUCERS; i++)
            if (start(producer, (void *)i) < 0)
                return;
        if (PRODUCERS > 1 && start(closer, NULL) < 0)
            return;
        gort_wg_wait(&consumers_wg);
        int64_t t1 = gort_now();

        gort_chan_free(ch);
        ns_per_op[r] = (double)(t1 - t0) / N;
        fprintf(stderr, BENCH_NAME ": round %d: %.1f ns/item (%lld items, sum %lld)\n", r + 1,
                ns_per_op[r], (long long)total_count, (long long)total_sum);
        if (total_count != N || total_sum != want_sum) {
            fprintf(stderr,
                    BENCH_NAME
                    ": wrong result: %lld items summing to %lld, want %d summing to %lld\n",
                    (long long)total_count, (long long)total_sum, N, (long long)want_sum);
            failed = 1;
            return;
        }
    }
}

int main(void) {
    gort_config cfg = { .maxprocs = MAXPROCS };
    return bench_report(BENCH_NAME, gort_run(&cfg, bench_main, NULL), failed, ns_per_op, REPS,
                        "ns/item");
}
