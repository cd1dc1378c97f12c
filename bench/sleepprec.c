/*
 * sleepprec: how precisely a short sleep ends on an idle runtime.
 *
 * One goroutine, and nothing else to run on any P (every P, 2 here): it
 * sleeps 50 us, N = 1,000 times in a row, and records each time how late
 * it woke (the time it slept minus 50 us). The value is the median over
 * REPS rounds of each round's lateness p50 and p99, in us:
 *
 *   sleepprec_p50, sleepprec_p99
 *
 * With nothing to run, the M that sleeps is the one blocked in the
 * poller, so this is the poller's timeout precision (gort: epoll_pwait2
 * with a nanosecond timeout and no timer slack) plus one wake-up.
 *
 * Go peer: bench/go/sleepprec/main.go (time.Sleep).
 */
#include <gort.h>

#include "bench.h"

#define N        1000
#define REPS     5
#define SLEEP_NS 50000

static int64_t late[N];
static double p50_us[REPS], p99_us[REPS];
static int failed;

static void bench_main(void *arg) {
    (void)arg;
    for (int r = 0; r < REPS; r++) {
        for (int i = 0; i < N; i++) {
            int64_t t0 = gort_now();
            gort_sleep(SLEEP_NS);
            late[i] = gort_now() - t0 - SLEEP_NS;
            if (late[i] < 0) {
                fprintf(stderr, "sleepprec: woke %lld ns early\n", (long long)-late[i]);
                failed = 1;
            }
        }
        bench_sort_i64(late, N);
        p50_us[r] = (double)bench_percentile(late, N, 50) / 1e3;
        p99_us[r] = (double)bench_percentile(late, N, 99) / 1e3;
        fprintf(
            stderr,
            "sleepprec: round %d: lateness min %.1f us, p50 %.1f us, p99 %.1f us, max %.1f us\n",
            r + 1, (double)late[0] / 1e3, p50_us[r], p99_us[r], (double)late[N - 1] / 1e3);
    }
}

int main(void) {
    if (bench_check("sleepprec", gort_run(NULL, bench_main, NULL), failed))
        return 1;
    bench_result("sleepprec_p50", bench_median(p50_us, REPS), "us");
    bench_result("sleepprec_p99", bench_median(p99_us, REPS), "us");
    return 0;
}
