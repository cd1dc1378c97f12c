/*
 * enomem: how long gort_go takes to fail when memory is gone.
 *
 * The address space is capped (RLIMIT_AS, soft limit 4 GiB) and one P
 * starts goroutines, which cannot run while main does not yield, until
 * gort_go returns -ENOMEM: the stack pool cannot map another chunk. Then
 * ATTEMPTS more calls each fail; the value is the mean time of one, in
 * microseconds. The limit is lifted again, every goroutine runs and ends,
 * and one more must start (exit status 1 if anything else happens).
 *
 * There is no Go peer: Go has no way to refuse a goroutine (it dies when
 * memory is gone). The target is gort's own: at most 20 us a call.
 */
#include <gort.h>

#include "bench.h"

#include <errno.h>
#include <sys/resource.h>

#define ATTEMPTS 100000
#define REPS     5

static gort_waitgroup done;
static double us_per_call[REPS];
static int failed;

static void nothing(void *arg) {
    (void)arg;
    gort_wg_done(&done);
}

static void bench(void *arg) {
    (void)arg;
    struct rlimit rl, capped;
    getrlimit(RLIMIT_AS, &rl);
    capped = rl;
    capped.rlim_cur = 4UL << 30;
    if (setrlimit(RLIMIT_AS, &capped) != 0) {
        failed = 1;
        return;
    }
    int64_t started = 0;
    for (;;) {
        int64_t id = gort_go(nothing, NULL);
        if (id == -ENOMEM)
            break;
        if (id <= 0) {
            failed = 1;
            break;
        }
        gort_wg_add(&done, 1);
        started++;
    }
    for (int r = 0; r < REPS && !failed; r++) {
        int64_t t0 = gort_now();
        for (int i = 0; i < ATTEMPTS; i++)
            failed |= gort_go(nothing, NULL) != -ENOMEM;
        us_per_call[r] = (double)(gort_now() - t0) / ATTEMPTS / 1000.0;
    }
    setrlimit(RLIMIT_AS, &rl);
    gort_wg_add(&done, 1);
    failed |= gort_go(nothing, NULL) <= 0;
    gort_wg_wait(&done);
    fprintf(stderr, "enomem: %lld goroutines started under a 4 GiB address space\n",
            (long long)started);
}

int main(void) {
    gort_config cfg = { .maxprocs = 1 };
    int rc = gort_run(&cfg, bench, NULL);
    return bench_report("enomem", rc, failed, us_per_call, REPS, "us/call");
}
