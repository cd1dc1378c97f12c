/*
 * timers: many sleeping goroutines at once.
 *
 * With every P (2 here), the main goroutine starts N = 100,000 goroutines;
 * each reads the clock, sleeps a random 1 to 50 ms (gort_sleep) and
 * records how late it woke: the time it slept minus the time it asked for.
 * The durations come from a fixed xorshift sequence, the same in the Go
 * peer. Three values, each the median of REPS rounds in one gort_run:
 *
 *   timers_wall  ms from the first gort_go to the return of gort_wg_wait
 *                (at least 50 ms: the longest sleep)
 *   timers_p50   the median lateness of the round's N sleeps, us
 *   timers_p99   their 99th percentile, us
 *
 * Lateness is what a timer implementation adds: the time for the timer to
 * be seen due (heap order, how long the poller sleeps), the wake-up, and
 * the wait in the run queue behind the others that woke at the same time
 * (about 2,000 goroutines a ms here).
 *
 * Go peer: bench/go/timers/main.go (time.Sleep).
 */
#include <gort.h>

#include "bench.h"

#define N    100000
#define REPS 5

static int64_t dur[N];  /* what goroutine i sleeps, ns */
static int64_t late[N]; /* how late it woke, ns */
static gort_waitgroup wg;
static double wall_ms[REPS], p50_us[REPS], p99_us[REPS];
static int failed;

static void sleeper(void *arg) {
    int i = (int)(intptr_t)arg;
    int64_t t0 = gort_now();
    gort_sleep(dur[i]);
    late[i] = gort_now() - t0 - dur[i];
    gort_wg_done(&wg);
}

static void bench_main(void *arg) {
    (void)arg;
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        dur[i] = (int64_t)(1 + x % 50) * 1000000;
    }
    for (int r = 0; r < REPS; r++) {
        gort_wg_add(&wg, N);
        int64_t start = gort_now();
        for (int i = 0; i < N; i++) {
            int64_t id = gort_go(sleeper, (void *)(intptr_t)i);
            if (id < 0) {
                fprintf(stderr, "timers: gort_go: %s\n", strerror((int)-id));
                failed = 1;
                return;
            }
        }
        gort_wg_wait(&wg);
        int64_t end = gort_now();
        for (int i = 0; i < N; i++)
            if (late[i] < 0) {
                fprintf(stderr, "timers: goroutine %d woke %lld ns early\n", i,
                        (long long)-late[i]);
                failed = 1;
            }
        bench_sort_i64(late, N);
        wall_ms[r] = (double)(end - start) / 1e6;
        p50_us[r] = (double)bench_percentile(late, N, 50) / 1e3;
        p99_us[r] = (double)bench_percentile(late, N, 99) / 1e3;
        fprintf(stderr,
                "timers: round %d: %.1f ms, lateness p50 %.1f us, p99 %.1f us, max %.1f us\n",
                r + 1, wall_ms[r], p50_us[r], p99_us[r], (double)late[N - 1] / 1e3);
    }
}

int main(void) {
    if (bench_check("timers", gort_run(NULL, bench_main, NULL), failed))
        return 1;
    bench_result("timers_wall", bench_median(wall_ms, REPS), "ms");
    bench_result("timers_p50", bench_median(p50_us, REPS), "us");
    bench_result("timers_p99", bench_median(p99_us, REPS), "us");
    return 0;
}
