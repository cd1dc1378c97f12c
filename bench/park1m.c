/*
 * park1m: a million goroutines parked on one channel, what they cost to
 * start and park, to keep, and to wake.
 *
 * With two Ps and the default stack size, main starts N = 1,000,000
 * goroutines; each adds 1 to an atomic counter, then blocks receiving from
 * one shared unbuffered channel that nobody sends on. Main yields until the
 * counter reaches N; every goroutine has then run, and since gort never
 * preempts, all have parked but at most the one running on the other P,
 * between its count and its park. Main then reads gort_read_stats until
 * only its own P is busy (procs - 1 idle): from that moment all N are parked.
 * Then main closes the channel, which wakes every receiver (a receive on a
 * closed channel returns 0; a value would be a failure), and waits on a
 * waitgroup that each goroutine marks done before it exits. Three values:
 *
 *   park1m       ms from the first gort_go until all N are parked
 *   park1m_rss   VmRSS (/proc/self/status) once all are parked minus VmRSS
 *                just before the first gort_go, over N: bytes per parked
 *                goroutine (its stack's touched pages, its G, its wait entry);
 *                the page tables that map them are not in VmRSS: their
 *                growth (VmPTE) goes to stderr
 *   park1m_wake  ms from gort_chan_close until the waitgroup's wait returns
 *
 * One round per process: a second round in the same process would reuse
 * the first one's stacks, already faulted in, and its RSS would not grow.
 * bench/run.sh runs the program 5 times and takes the median of each value.
 * Exit status 1 if a receive got a value, a goroutine count is off, or a
 * call failed. Nothing is left allocated: the goroutines have all exited
 * when main returns, and the channel is freed after gort_run.
 *
 * Go peer: bench/go/park1m/main.go.
 */
#include <gort.h>

#include "bench.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N        1000000
#define MAXPROCS 2

static gort_chan *ch;
static gort_waitgroup wg;
static atomic_long started; /* goroutines that have run up to their receive */
static atomic_long got;     /* receives that returned a value: must stay 0 */
static double park_ms, wake_ms, rss_per_g;
static int failed;

/* A "<field>: N kB" line of /proc/self/status (VmRSS, VmPTE): N, or -1. */
static long status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t len = strlen(field);
    long kb = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, field, len) == 0 && line[len] == ':' &&
            sscanf(line + len + 1, "%ld", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static void parker(void *arg) {
    (void)arg;
    int64_t v;
    atomic_fetch_add_explicit(&started, 1, memory_order_relaxed);
    if (gort_chan_recv(ch, &v) != 0)
        atomic_fetch_add_explicit(&got, 1, memory_order_relaxed);
    gort_wg_done(&wg);
}

static void bench_main(void *arg) {
    (void)arg;
    long rss0 = status_kb("VmRSS"), pte0 = status_kb("VmPTE");
    gort_wg_add(&wg, N);
    int64_t t0 = gort_now();
    for (int i = 0; i < N; i++) {
        int64_t id = gort_go(parker, NULL);
        if (id < 0) {
            fprintf(stderr, "park1m: gort_go failed at goroutine %d: %s\n", i, strerror((int)-id));
            failed = 1;
            return; /* main returning abandons the goroutines already started */
        }
    }
    while (atomic_load_explicit(&started, memory_order_relaxed) < N)
        gort_yield();
    gort_stats st;
    do
        gort_read_stats(&st);
    while (st.idle_procs != st.procs - 1);
    int64_t t1 = gort_now();
    long rss1 = status_kb("VmRSS"), pte1 = status_kb("VmPTE");
    int64_t live = gort_num_goroutines();

    int64_t t2 = gort_now();
    gort_chan_close(ch);
    gort_wg_wait(&wg);
    int64_t t3 = gort_now();

    park_ms = (double)(t1 - t0) / 1e6;
    wake_ms = (double)(t3 - t2) / 1e6;
    rss_per_g = (double)(rss1 - rss0) * 1024 / N;
    fprintf(stderr,
            "park1m: park %.1f ms, %.0f B/goroutine (VmRSS %ld -> %ld kB; page tables, not in "
            "VmRSS: %.0f B/goroutine), wake %.1f ms\n",
            park_ms, rss_per_g, rss0, rss1, (double)(pte1 - pte0) * 1024 / N, wake_ms);
    if (rss0 < 0 || rss1 < 0) {
        fprintf(stderr, "park1m: no VmRSS in /proc/self/status\n");
        failed = 1;
    }
    if (live != N + 1) {
        fprintf(stderr, "park1m: %lld goroutines live once all parked, want %d\n", (long long)live,
                N + 1);
        failed = 1;
    }
    if (atomic_load(&got) != 0) {
        fprintf(stderr, "park1m: %ld receives got a value from a closed channel\n",
                atomic_load(&got));
        failed = 1;
    }
}

int main(void) {
    if (gort_chan_make(&ch, sizeof(int64_t), 0) < 0) {
        fprintf(stderr, "park1m: out of memory\n");
        return 1;
    }
    gort_config cfg = { .maxprocs = MAXPROCS };
    int rc = gort_run(&cfg, bench_main, NULL);
    gort_chan_free(ch);
    if (bench_check("park1m", rc, failed))
        return 1;
    bench_result("park1m", park_ms, "ms");
    bench_result("park1m_rss", rss_per_g, "B/goroutine");
    bench_result("park1m_wake", wake_ms, "ms");
    return 0;
}
