/*
 * handoff: CPU-bound goroutines beside goroutines blocked in system calls.
 *
 * With 2 Ps, 2 goroutines each do the same fixed computation (WORK chunks
 * of xorshift steps, a gort_yield after each chunk, since gort does not
 * preempt: the Go peer yields the same way). A round measures the time
 * from their start to the end of both, alone and then beside B = 50
 * goroutines that each make 5 nanosleep(100 ms) calls in a row, each one
 * between gort_syscall_enter and gort_syscall_exit, a real blocking call
 * that holds its thread. Every blocked call's P must be handed to another
 * thread (sysmon's retake) for the computation to go on at full speed.
 *
 *   handoff_slowdown  median time beside the sleepers / median time alone
 *                     (1.00: the sleepers cost the computation nothing)
 *   handoff_threads   the most threads seen at once during a round beside
 *                     the sleepers (gort_read_stats' threads: m0, sysmon
 *                     and every M; sampled every ms by a goroutine, and by
 *                     each sleeper as its call returns), median of rounds
 *
 * The computation is calibrated at start to last about ALONE_MS alone, so
 * that it outlasts the sleepers (at least 500 ms) on any machine.
 *
 * Go peer: bench/go/handoff/main.go (syscall.Syscall(SYS_NANOSLEEP), the
 * thread count from /proc/self/status).
 */
#define _GNU_SOURCE
#include <gort.h>
#include <stdbool.h>
#include <time.h>

#include "bench.h"

#define NCPU     2
#define B        50
#define CALLS    5
#define CALLNS   (100 * 1000000L)
#define CHUNK    100000 /* xorshift steps between yields: 0.1 to 1 ms */
#define ALONE_MS 1000   /* what the computation lasts alone */
#define REPS     5

static gort_waitgroup cpu_wg, sleep_wg;
static int stop_sampler;             /* atomic */
static int peak;                     /* atomic: the most threads seen this round */
static volatile uint64_t sink[NCPU]; /* read, so that the work is done */
static int work;                     /* chunks per CPU-bound goroutine */
static int failed;

static void see_threads(void) {
    gort_stats st;
    gort_read_stats(&st);
    int p = __atomic_load_n(&peak, __ATOMIC_RELAXED);
    while (st.threads > p && !__atomic_compare_exchange_n(&peak, &p, st.threads, false,
                                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

static uint64_t chunk(uint64_t x) {
    for (int k = 0; k < CHUNK; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

static void cpu(void *arg) {
    int i = (int)(intptr_t)arg;
    uint64_t x = 88172645463325252ull + (uint64_t)i;
    for (int c = 0; c < work; c++) {
        x = chunk(x);
        gort_yield();
    }
    sink[i] = x;
    gort_wg_done(&cpu_wg);
}

static void sleeper(void *arg) {
    (void)arg;
    for (int c = 0; c < CALLS; c++) {
        struct timespec ts = { 0, CALLNS };
        gort_syscall_enter();
        while (nanosleep(&ts, &ts) != 0)
            ;          /* EINTR: sleep the rest */
        see_threads(); /* still in the call's bracket: this thread counts */
        gort_syscall_exit();
    }
    gort_wg_done(&sleep_wg);
}

static void sampler(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&stop_sampler, __ATOMIC_RELAXED)) {
        see_threads();
        gort_sleep(1000000);
    }
    gort_wg_done(&sleep_wg);
}

/* One round: the computation, with or without the sleepers beside it.
 * Returns its time in ms; *threads gets the peak thread count. */
static double round_ms(int with_sleepers, int *threads) {
    __atomic_store_n(&peak, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&stop_sampler, 0, __ATOMIC_RELAXED);
    gort_wg_add(&sleep_wg, 1 + (with_sleepers ? B : 0));
    if (gort_go(sampler, NULL) < 0)
        failed = 1;
    for (int b = 0; with_sleepers && b < B; b++)
        if (gort_go(sleeper, NULL) < 0)
            failed = 1;
    gort_wg_add(&cpu_wg, NCPU);
    int64_t t0 = gort_now();
    for (int i = 0; i < NCPU; i++)
        if (gort_go(cpu, (void *)(intptr_t)i) < 0)
            failed = 1;
    gort_wg_wait(&cpu_wg);
    int64_t t1 = gort_now();
    __atomic_store_n(&stop_sampler, 1, __ATOMIC_RELAXED);
    gort_wg_wait(&sleep_wg);
    *threads = __atomic_load_n(&peak, __ATOMIC_RELAXED);
    return (double)(t1 - t0) / 1e6;
}

static double alone[REPS], beside[REPS], threads[REPS];

static void bench_main(void *arg) {
    (void)arg;
    /* Calibrate: the best of 5 timings of 20 chunks. */
    int64_t best = INT64_MAX;
    for (int k = 0; k < 5; k++) {
        int64_t t0 = gort_now();
        uint64_t x = (uint64_t)k + 1;
        for (int c = 0; c < 20; c++)
            x = chunk(x);
        sink[0] = x;
        if (gort_now() - t0 < best)
            best = gort_now() - t0;
    }
    work = (int)(ALONE_MS * 1000000.0 * 20 / (double)best);
    fprintf(stderr, "handoff: %d chunks of %d steps (%.2f ms each) per goroutine\n", work, CHUNK,
            (double)best / 20 / 1e6);
    for (int r = 0; r < REPS && !failed; r++) {
        int t0, t1;
        alone[r] = round_ms(0, &t0);
        beside[r] = round_ms(1, &t1);
        threads[r] = t1;
        fprintf(stderr,
                "handoff: round %d: alone %.1f ms (%d threads), beside %d sleepers %.1f ms "
                "(%d threads at most): %.3fx\n",
                r + 1, alone[r], t0, B, beside[r], t1, beside[r] / alone[r]);
    }
}

int main(void) {
    gort_config cfg = { .maxprocs = NCPU };
    if (bench_check("handoff", gort_run(&cfg, bench_main, NULL), failed))
        return 1;
    double a = bench_median(alone, REPS), b = bench_median(beside, REPS);
    bench_result("handoff_slowdown", b / a, "x");
    bench_result("handoff_threads", bench_median(threads, REPS), "threads");
    return 0;
}
