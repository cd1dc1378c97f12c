/* Black-box tests of the scheduler: spawning at scale, parallelism, fairness,
 * gort_yield, gort_exit, spawning from foreign threads, gort_maxprocs. */
#define _GNU_SOURCE
#include <gort.h>
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

/* ---- A recursive tree of goroutines ------------------------------------- */

static int tree_depth = 10;
static gort_waitgroup tree_wg;
static atomic_int tree_nodes;

static void tree_node(void *arg) {
    intptr_t depth = (intptr_t)arg;
    atomic_fetch_add(&tree_nodes, 1);
    if (depth < tree_depth) {
        gort_wg_add(&tree_wg, 2);
        CHECK(gort_go(tree_node, (void *)(depth + 1)) > 0);
        CHECK(gort_go(tree_node, (void *)(depth + 1)) > 0);
    }
    gort_wg_done(&tree_wg);
}

static void tree_main(void *arg) {
    (void)arg;
    gort_wg_add(&tree_wg, 1);
    CHECK(gort_go(tree_node, (void *)0) > 0);
    gort_wg_wait(&tree_wg);
    CHECK_EQ(atomic_load(&tree_nodes), (1 << (tree_depth + 1)) - 1);
    test_wait_until_only_main();
}

TEST(spawn_tree) {
    tree_depth = (int)test_scale(10, 10, 8);
    for (int p = 1; p <= 4; p++) {
        atomic_store(&tree_nodes, 0);
        test_run_with(p, tree_main, NULL);
        CHECK_EQ(atomic_load(&tree_nodes), (1 << (tree_depth + 1)) - 1);
    }
}

/* ---- A million goroutines ------------------------------------------------ */

static gort_waitgroup many_wg;
static atomic_long many_count;

static void many_child(void *arg) {
    (void)arg;
    atomic_fetch_add_explicit(&many_count, 1, memory_order_relaxed);
    gort_wg_done(&many_wg);
}

static void many_main(void *arg) {
    long n = *(long *)arg;
    gort_wg_add(&many_wg, n);
    for (long i = 0; i < n; i++) {
        int64_t id = gort_go(many_child, NULL);
        if (id <= 0) {
            fprintf(stderr, "gort_go #%ld returned %lld\n", i, (long long)id);
            CHECK(id > 0);
        }
    }
    gort_wg_wait(&many_wg);
    CHECK_EQ(atomic_load(&many_count), n);
    test_wait_until_only_main();
}

TEST(million_goroutines_one_proc) {
    /* With one P and no preemption, every goroutine is spawned before any
     * runs: a million live at once. */
    long n = test_scale(1000000, 100000, 2000);
    test_run_with(1, many_main, &n);
    CHECK_EQ(atomic_load(&many_count), n);
}

TEST(many_goroutines_all_procs) {
    long n = test_scale(1000000, 100000, 2000);
    test_run_with(0, many_main, &n);
    CHECK_EQ(atomic_load(&many_count), n);
}

/* ---- Parallelism ---------------------------------------------------------- */

#define NPAR 4
static gort_waitgroup par_wg;

/* Spins without calling the runtime until every other spinner has said it
 * started: only possible if they run on distinct threads at the same time. */
static atomic_int par_seen[NPAR];
static int par_n;

static void par_barrier(void *arg) {
    intptr_t me = (intptr_t)arg;
    atomic_store(&par_seen[me], 1);
    for (;;) {
        int all = 1;
        for (int i = 0; i < par_n; i++)
            all &= atomic_load(&par_seen[i]);
        if (all)
            break;
    }
    gort_wg_done(&par_wg);
}

static void par_main(void *arg) {
    par_n = *(int *)arg;
    gort_wg_add(&par_wg, par_n);
    for (intptr_t i = 0; i < par_n; i++)
        CHECK(gort_go(par_barrier, (void *)i) > 0);
    gort_wg_wait(&par_wg);
}

TEST(parallel_progress_two_procs) {
    int n = 2;
    test_run_with(2, par_main, &n);
    for (int i = 0; i < n; i++)
        CHECK_EQ(atomic_load(&par_seen[i]), 1);
}

TEST(parallel_progress_four_procs) {
    int n = 4;
    test_run_with(4, par_main, &n);
    for (int i = 0; i < n; i++)
        CHECK_EQ(atomic_load(&par_seen[i]), 1);
}

static void par_main_rounds(void *arg) {
    (void)arg;
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < NPAR; i++)
            atomic_store(&par_seen[i], 0);
        int n = 2;
        par_main(&n);
    }
}

TEST(parallel_progress_repeated) { test_run_with(2, par_main_rounds, NULL); }

/* ---- Fairness and gort_yield ----------------------------------------------- */

static atomic_int fair_flag;

static void fair_waiter(void *arg) {
    while (!atomic_load(&fair_flag))
        gort_yield();
    gort_wg_done(arg);
}

static void fair_setter(void *arg) {
    atomic_store(&fair_flag, 1);
    gort_wg_done(arg);
}

static void fair_main(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, 11);
    /* Ten goroutines spinning on gort_yield must not starve the one that
     * releases them. */
    for (int i = 0; i < 10; i++)
        CHECK(gort_go(fair_waiter, &wg) > 0);
    CHECK(gort_go(fair_setter, &wg) > 0);
    gort_wg_wait(&wg);
}

TEST(yield_does_not_starve_others) {
    test_run_with(1, fair_main, NULL);
    CHECK_EQ(atomic_load(&fair_flag), 1);
}

static void fair_main_spin_in_main(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, 1);
    CHECK(gort_go(fair_setter, &wg) > 0);
    /* The main goroutine itself spins on yield. */
    while (!atomic_load(&fair_flag))
        gort_yield();
    gort_wg_wait(&wg);
}

TEST(yield_in_main_lets_others_run) { test_run_with(1, fair_main_spin_in_main, NULL); }

#define NFAIR       10
#define FAIR_ROUNDS 200
static atomic_int fair_progress[NFAIR];

static void fair_worker(void *arg) {
    intptr_t me = (intptr_t)arg;
    /* Keep yielding until everyone has made FAIR_ROUNDS steps: finishes
     * only if every goroutine keeps getting turns. */
    for (;;) {
        if (atomic_load(&fair_progress[me]) < FAIR_ROUNDS)
            atomic_fetch_add(&fair_progress[me], 1);
        int min = FAIR_ROUNDS;
        for (int i = 0; i < NFAIR; i++) {
            int p = atomic_load(&fair_progress[i]);
            if (p < min)
                min = p;
        }
        if (min >= FAIR_ROUNDS)
            break;
        gort_yield();
    }
}

static void fair_workers_main(void *arg) {
    (void)arg;
    for (intptr_t i = 0; i < NFAIR; i++)
        CHECK(gort_go(fair_worker, (void *)i) > 0);
    test_wait_until_only_main();
}

TEST(yield_round_robin_progress) {
    test_run_with(1, fair_workers_main, NULL);
    for (int i = 0; i < NFAIR; i++)
        CHECK_EQ(atomic_load(&fair_progress[i]), FAIR_ROUNDS);
}

static void *yield_on_thread(void *arg) {
    (void)arg;
    gort_yield();
    CHECK_EQ(gort_id(), 0);
    return NULL;
}

static void yield_outside_main(void *arg) {
    (void)arg;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, yield_on_thread, NULL), 0);
    gort_syscall_enter();
    CHECK_EQ(pthread_join(t, NULL), 0);
    gort_syscall_exit();
}

TEST(yield_outside_goroutine_harmless) {
    gort_yield();
    CHECK_EQ(gort_id(), 0);
    test_run_with(2, yield_outside_main, NULL);
    gort_yield();
}

static int nyielders;
static atomic_long yield_total;
static gort_waitgroup yield_wg;

static void yielder(void *arg) {
    long times = (long)(intptr_t)arg;
    int64_t me = gort_id();
    for (long i = 0; i < times; i++) {
        atomic_fetch_add_explicit(&yield_total, 1, memory_order_relaxed);
        gort_yield();
        /* The runtime must find the right goroutine wherever it resumes. */
        CHECK_EQ(gort_id(), me);
    }
    gort_wg_done(&yield_wg);
}

static void yielders_main(void *arg) {
    long times = *(long *)arg;
    gort_wg_add(&yield_wg, nyielders);
    for (int i = 0; i < nyielders; i++)
        CHECK(gort_go(yielder, (void *)(intptr_t)times) > 0);
    gort_wg_wait(&yield_wg);
    CHECK_EQ(atomic_load(&yield_total), (long)nyielders * times);
}

TEST(many_goroutines_yield_many_times) {
    long times = test_scale(1000, 200, 200);
    nyielders = (int)test_scale(1000, 1000, 100);
    for (int p = 1; p <= 4; p *= 2) {
        atomic_store(&yield_total, 0);
        test_run_with(p, yielders_main, &times);
    }
}

/* ---- gort_exit ------------------------------------------------------------- */

static atomic_int exit_after_ran;
static atomic_int exit_reached;

__attribute__((noinline)) static void exit_nested(int depth, gort_waitgroup *wg) {
    if (depth == 0) {
        atomic_fetch_add(&exit_reached, 1);
        gort_wg_done(wg);
        gort_exit();
        atomic_store(&exit_after_ran, 1);
        return;
    }
    exit_nested(depth - 1, wg);
    atomic_store(&exit_after_ran, 1);
}

static void exit_child(void *arg) {
    exit_nested(5, arg);
    atomic_store(&exit_after_ran, 1);
}

static void exit_main(void *arg) {
    int n = *(int *)arg;
    for (int round = 0; round < 3; round++) {
        gort_waitgroup wg = { 0 };
        gort_wg_add(&wg, n);
        for (int i = 0; i < n; i++)
            CHECK(gort_go(exit_child, &wg) > 0);
        gort_wg_wait(&wg);
        /* Exited goroutines are no longer counted. */
        test_wait_until_only_main();
    }
}

TEST(exit_from_nested_frames) {
    int n = 1;
    test_run_with(1, exit_main, &n);
    CHECK_EQ(atomic_load(&exit_reached), 3);
    n = (int)test_scale(1000, 1000, 100);
    test_run_with(2, exit_main, &n);
    CHECK_EQ(atomic_load(&exit_reached), 3 + 3 * n);
    CHECK_EQ(atomic_load(&exit_after_ran), 0);
}

static void exit_immediately(void *arg) {
    (void)arg;
    gort_exit();
}

static void exit_then_spawn_main(void *arg) {
    (void)arg;
    /* Goroutines that end by gort_exit free their slots for reuse. */
    int rounds = (int)test_scale(100, 100, 10);
    for (int round = 0; round < rounds; round++) {
        for (int i = 0; i < 100; i++)
            CHECK(gort_go(exit_immediately, NULL) > 0);
        test_wait_until_only_main();
    }
}

TEST(exit_then_spawn_again) { test_run_with(2, exit_then_spawn_main, NULL); }

/* ---- gort_go from a foreign thread -------------------------------------- */

static int foreign_n = 1000;
static gort_waitgroup foreign_wg;
static atomic_int foreign_ran;

static void foreign_child(void *arg) {
    (void)arg;
    CHECK(gort_id() > 0);
    atomic_fetch_add(&foreign_ran, 1);
    gort_wg_done(&foreign_wg);
}

static void *foreign_spawner(void *arg) {
    (void)arg;
    CHECK_EQ(gort_id(), 0);
    for (int i = 0; i < foreign_n; i++)
        CHECK(gort_go(foreign_child, NULL) > 0);
    CHECK_EQ(gort_go(NULL, NULL), -EINVAL);
    CHECK_EQ(gort_id(), 0);
    return NULL;
}

static void foreign_main(void *arg) {
    int threads = *(int *)arg;
    pthread_t t[4];
    gort_wg_add(&foreign_wg, (int64_t)threads * foreign_n);
    for (int i = 0; i < threads; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, foreign_spawner, NULL), 0);
    /* main parks here while the foreign threads spawn. */
    gort_wg_wait(&foreign_wg);
    CHECK_EQ(atomic_load(&foreign_ran), threads * foreign_n);
    gort_syscall_enter();
    for (int i = 0; i < threads; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
    gort_syscall_exit();
}

TEST(go_from_foreign_thread) {
    int threads = 1;
    foreign_n = (int)test_scale(1000, 1000, 200);
    test_run_with(1, foreign_main, &threads);
    atomic_store(&foreign_ran, 0);
    threads = 4;
    test_run_with(2, foreign_main, &threads);
}

/* The same with main kept runnable (yielding, not parked), so no deadlock
 * detector can see "all goroutines asleep" while the foreign threads work. */
static void foreign_main_yielding(void *arg) {
    int threads = *(int *)arg;
    pthread_t t[4];
    gort_wg_add(&foreign_wg, (int64_t)threads * foreign_n);
    for (int i = 0; i < threads; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, foreign_spawner, NULL), 0);
    while (atomic_load(&foreign_ran) < threads * foreign_n)
        gort_yield();
    gort_wg_wait(&foreign_wg);
    gort_syscall_enter();
    for (int i = 0; i < threads; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
    gort_syscall_exit();
}

TEST(go_from_foreign_thread_main_yielding) {
    int threads = 1;
    foreign_n = (int)test_scale(1000, 1000, 200);
    test_run_with(1, foreign_main_yielding, &threads);
    atomic_store(&foreign_ran, 0);
    threads = 4;
    test_run_with(2, foreign_main_yielding, &threads);
}

/* ---- gort_maxprocs ----------------------------------------------------------- */

static atomic_int mp_ran;

static void mp_child(void *arg) {
    atomic_fetch_add(&mp_ran, 1);
    gort_wg_done(arg);
}

static void mp_spawn_wait(int n) {
    gort_waitgroup wg = { 0 };
    atomic_store(&mp_ran, 0);
    gort_wg_add(&wg, n);
    for (int i = 0; i < n; i++)
        CHECK(gort_go(mp_child, &wg) > 0);
    gort_wg_wait(&wg);
    CHECK_EQ(atomic_load(&mp_ran), n);
}

static void maxprocs_main(void *arg) {
    (void)arg;
    int n = (int)test_scale(10000, 10000, 500);
    gort_stats st;
    CHECK_EQ(gort_maxprocs(0), 2);
    CHECK_EQ(gort_maxprocs(-1), 2);
    CHECK_EQ(gort_maxprocs(4), 2);
    CHECK_EQ(gort_maxprocs(0), 4);
    gort_read_stats(&st);
    CHECK_EQ(st.procs, 4);
    mp_spawn_wait(n);
    CHECK_EQ(gort_maxprocs(1), 4);
    CHECK_EQ(gort_maxprocs(0), 1);
    gort_read_stats(&st);
    CHECK_EQ(st.procs, 1);
    mp_spawn_wait(n);
    CHECK_EQ(gort_maxprocs(4), 1);
    mp_spawn_wait(n);
    CHECK_EQ(gort_maxprocs(4), 4);
    CHECK_EQ(gort_maxprocs(3), 4);
    mp_spawn_wait(n);
    gort_read_stats(&st);
    CHECK_EQ(st.procs, 3);
}

TEST(maxprocs_change) { test_run_with(2, maxprocs_main, NULL); }

/* Changing GOMAXPROCS while goroutines are running and queued. */
static atomic_int mp_stop;

static void mp_busy(void *arg) {
    while (!atomic_load(&mp_stop)) {
        atomic_fetch_add(&mp_ran, 1);
        gort_yield();
    }
    gort_wg_done(arg);
}

static void maxprocs_live_main(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, 100);
    for (int i = 0; i < 100; i++)
        CHECK(gort_go(mp_busy, &wg) > 0);
    for (int i = 0; i < 200; i++) {
        gort_maxprocs(1 + i % 4);
        gort_yield();
    }
    gort_maxprocs(1);
    /* Every goroutine still runs on the single P left. */
    int before = atomic_load(&mp_ran);
    while (atomic_load(&mp_ran) < before + 1000)
        gort_yield();
    atomic_store(&mp_stop, 1);
    gort_wg_wait(&wg);
    test_wait_until_only_main();
}

TEST(maxprocs_change_while_busy) { test_run_with(2, maxprocs_live_main, NULL); }

/* ---- The FPU control words belong to the goroutine ----------------------- */

/* The rounding mode (SSE: MXCSR bits 13-14; AArch64: FPCR bits 22-23),
 * read and set directly: fenv.h would need libm. */
#if defined(__x86_64__)
#define HAVE_ROUNDING 1
static int get_rounding(void) { return (int)((__builtin_ia32_stmxcsr() >> 13) & 3); }

static void set_rounding(int mode) {
    __builtin_ia32_ldmxcsr((__builtin_ia32_stmxcsr() & ~(3u << 13)) | ((unsigned)mode << 13));
}
#elif defined(__aarch64__)
/* FPCR's RMode, bits 22-23 (the same four modes, in another order). */
#define HAVE_ROUNDING 1
static int get_rounding(void) {
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    return (int)((fpcr >> 22) & 3);
}

static void set_rounding(int mode) {
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    fpcr = (fpcr & ~(3ull << 22)) | ((uint64_t)mode << 22);
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr));
}
#else
#define HAVE_ROUNDING 0
static int get_rounding(void) { return 0; }
static void set_rounding(int mode) { (void)mode; }
#endif

static void fpu_child(void *arg) {
    int mode = (int)(intptr_t)arg;
    set_rounding(mode);
    for (int i = 0; i < 1000; i++) {
        gort_yield();
        CHECK_EQ(get_rounding(), mode);
    }
}

static void fpu_main(void *arg) {
    (void)arg;
    int mode = get_rounding();
    for (int i = 0; i < 40; i++)
        CHECK(gort_go(fpu_child, (void *)(intptr_t)(i % 4)) > 0);
    test_wait_until_only_main();
    CHECK_EQ(get_rounding(), mode);
}

TEST(rounding_mode_per_goroutine) {
    if (!HAVE_ROUNDING)
        return;
    test_run_with(1, fpu_main, NULL);
    test_run_with(2, fpu_main, NULL);
}

/* A misaligned goroutine stack breaks SSE spills in printf's float code. */
static void align_child(void *arg) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.3f %.2Lf", 1.5, (long double)2.25);
    CHECK(strcmp(buf, "1.500 2.25") == 0);
    double x = *(double *)arg;
    CHECK(x == 0.5);
}

static void align_main(void *arg) {
    (void)arg;
    static double half = 0.5;
    for (int i = 0; i < 10; i++)
        CHECK(gort_go(align_child, &half) > 0);
    align_child(&half);
    test_wait_until_only_main();
}

TEST(floating_point_on_goroutine_stack) { test_run_with(2, align_main, NULL); }

/* ---- Stress ------------------------------------------------------------------ */

static gort_waitgroup stress_wg;
static atomic_long stress_count;

static void stress_child(void *arg) {
    (void)arg;
    atomic_fetch_add_explicit(&stress_count, 1, memory_order_relaxed);
    gort_wg_done(&stress_wg);
}

static void stress_main(void *arg) {
    long n = *(long *)arg;
    for (int round = 0; round < 8; round++) {
        atomic_store(&stress_count, 0);
        gort_wg_add(&stress_wg, n);
        for (long i = 0; i < n; i++)
            CHECK(gort_go(stress_child, NULL) > 0);
        gort_wg_wait(&stress_wg);
        CHECK_EQ(atomic_load(&stress_count), n);
        test_wait_until_only_main();
    }
}

TEST(stress_spawn_rounds) {
    long n = test_scale(100000, 50000, 500);
    test_run_with(0, stress_main, &n);
}

static void spawner(void *arg) {
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++)
        CHECK(gort_go(stress_child, NULL) > 0);
    gort_wg_done(&stress_wg);
}

static void stress_many_spawners_main(void *arg) {
    long n = *(long *)arg;
    for (int round = 0; round < 8; round++) {
        atomic_store(&stress_count, 0);
        /* 10 spawners, each spawning n/10 children, all done'ing one wg. */
        gort_wg_add(&stress_wg, 10 + n);
        for (int i = 0; i < 10; i++)
            CHECK(gort_go(spawner, (void *)(intptr_t)(n / 10)) > 0);
        gort_wg_wait(&stress_wg);
        CHECK_EQ(atomic_load(&stress_count), n);
        test_wait_until_only_main();
    }
}

TEST(stress_many_spawners) {
    long n = test_scale(100000, 50000, 500);
    test_run_with(0, stress_many_spawners_main, &n);
    test_run_with(4, stress_many_spawners_main, &n);
}
