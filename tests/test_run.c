/* Black-box tests of the runtime's life cycle: gort_run, its configuration,
 * gort_go's errors, goroutine ids and counts, gort_read_stats. */
#define _GNU_SOURCE
#include <gort.h>
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int main_ran;

static void set_flag(void *arg) {
    CHECK(gort_id() > 0);
    *(int *)arg = 1;
}

static void nop(void *arg) { (void)arg; }

TEST(run_null_cfg) {
    int ran = 0;
    CHECK_EQ(gort_run(NULL, set_flag, &ran), 0);
    CHECK_EQ(ran, 1);
}

TEST(run_zero_cfg) {
    gort_config cfg = { 0 };
    int ran = 0;
    CHECK_EQ(gort_run(&cfg, set_flag, &ran), 0);
    CHECK_EQ(ran, 1);
}

TEST(run_twice) {
    int a = 0, b = 0;
    CHECK_EQ(gort_run(NULL, set_flag, &a), 0);
    CHECK_EQ(a, 1);
    CHECK_EQ(gort_run(NULL, set_flag, &b), 0);
    CHECK_EQ(b, 1);
}

static atomic_int loop_done;

static void loop_child(void *arg) {
    gort_wg_done(arg);
    atomic_fetch_add(&loop_done, 1);
}

static void loop_main(void *arg) {
    int *ran = arg;
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, 100);
    for (int i = 0; i < 100; i++)
        CHECK(gort_go(loop_child, &wg) > 0);
    gort_wg_wait(&wg);
    (*ran)++;
}

TEST(run_20_times) {
    int ran = 0;
    for (int i = 0; i < 20; i++) {
        gort_config cfg = { .maxprocs = 1 + i % 4 };
        CHECK_EQ(gort_run(&cfg, loop_main, &ran), 0);
        CHECK_EQ(ran, i + 1);
        CHECK_EQ(gort_id(), 0);
    }
    CHECK_EQ(atomic_load(&loop_done), 20 * 100);
}

static void record_arg(void *arg) { *(void **)arg = arg; }

TEST(run_arg_passed_through) {
    void *slot = NULL;
    CHECK_EQ(gort_run(NULL, record_arg, &slot), 0);
    CHECK(slot == &slot);
}

static void must_not_run(void *arg) {
    (void)arg;
    main_ran = 1;
}

TEST(run_negative_maxprocs_einval) {
    gort_config cfg = { .maxprocs = -1 };
    CHECK_EQ(gort_run(&cfg, must_not_run, NULL), -EINVAL);
    cfg.maxprocs = -100;
    CHECK_EQ(gort_run(&cfg, must_not_run, NULL), -EINVAL);
    CHECK_EQ(main_ran, 0);
}

TEST(run_negative_max_threads_einval) {
    gort_config cfg = { .max_threads = -1 };
    CHECK_EQ(gort_run(&cfg, must_not_run, NULL), -EINVAL);
    CHECK_EQ(main_ran, 0);
    /* A failed gort_run leaves nothing behind: the next one works. */
    int ran = 0;
    CHECK_EQ(gort_run(NULL, set_flag, &ran), 0);
    CHECK_EQ(ran, 1);
}

TEST(run_null_main_fn) {
    /* Not documented; any sane answer is a negative errno, not a crash. */
    CHECK(gort_run(NULL, NULL, NULL) < 0);
}

static void tiny_stack_main(void *arg) {
    int ran = 0;
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, 1);
    CHECK(gort_go(loop_child, &wg) > 0);
    gort_wg_wait(&wg);
    ran = 1;
    *(int *)arg = ran;
}

TEST(run_tiny_stack_size) {
    /* The library may round a tiny stack up to its minimum or refuse it. */
    size_t sizes[] = { 1, 100, 4096 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        gort_config cfg = { .stack_size = sizes[i] };
        int ran = 0;
        int r = gort_run(&cfg, tiny_stack_main, &ran);
        CHECK(r == 0 || r == -EINVAL);
        CHECK_EQ(ran, r == 0);
    }
}

static void nested_run_main(void *arg) {
    (void)arg;
    CHECK_EQ(gort_run(NULL, must_not_run, NULL), -EBUSY);
    main_ran = 2;
}

TEST(run_inside_goroutine_ebusy) {
    CHECK_EQ(gort_run(NULL, nested_run_main, NULL), 0);
    CHECK_EQ(main_ran, 2);
}

static void nested_run_child(void *arg) {
    CHECK_EQ(gort_run(NULL, must_not_run, NULL), -EBUSY);
    gort_wg_done(arg);
}

static void nested_run_in_child_main(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, 4);
    for (int i = 0; i < 4; i++)
        CHECK(gort_go(nested_run_child, &wg) > 0);
    gort_wg_wait(&wg);
}

TEST(run_inside_other_goroutine_ebusy) {
    gort_config cfg = { .maxprocs = 2 };
    CHECK_EQ(gort_run(&cfg, nested_run_in_child_main, NULL), 0);
    CHECK_EQ(main_ran, 0);
}

static void *foreign_run(void *arg) {
    *(int *)arg = gort_run(NULL, must_not_run, NULL);
    return NULL;
}

static void foreign_run_main(void *arg) {
    (void)arg;
    pthread_t t;
    int r = 1;
    CHECK_EQ(pthread_create(&t, NULL, foreign_run, &r), 0);
    gort_syscall_enter();
    pthread_join(t, NULL);
    gort_syscall_exit();
    CHECK_EQ(r, -EBUSY);
}

TEST(run_from_foreign_thread_while_running_ebusy) {
    CHECK_EQ(gort_run(NULL, foreign_run_main, NULL), 0);
    CHECK_EQ(main_ran, 0);
}

static void read_maxprocs(void *arg) {
    *(int *)arg = gort_maxprocs(0);
    gort_stats st;
    gort_read_stats(&st);
    CHECK_EQ(st.procs, *(int *)arg);
}

TEST(maxprocs_env) {
    CHECK_EQ(setenv("GORT_MAXPROCS", "3", 1), 0);
    int n = 0;
    CHECK_EQ(gort_run(NULL, read_maxprocs, &n), 0);
    CHECK_EQ(n, 3);
    gort_config cfg = { 0 };
    n = 0;
    CHECK_EQ(gort_run(&cfg, read_maxprocs, &n), 0);
    CHECK_EQ(n, 3);
    /* An explicit cfg.maxprocs wins over the environment. */
    cfg.maxprocs = 2;
    CHECK_EQ(gort_run(&cfg, read_maxprocs, &n), 0);
    CHECK_EQ(n, 2);
    CHECK_EQ(setenv("GORT_MAXPROCS", "5", 1), 0);
    CHECK_EQ(gort_run(NULL, read_maxprocs, &n), 0);
    CHECK_EQ(n, 5);
    unsetenv("GORT_MAXPROCS");
}

TEST(maxprocs_default_is_cpus) {
    unsetenv("GORT_MAXPROCS");
    cpu_set_t set;
    CHECK_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    int n = 0;
    CHECK_EQ(gort_run(NULL, read_maxprocs, &n), 0);
    CHECK_EQ(n, CPU_COUNT(&set));
}

TEST(maxprocs_cfg_honoured) {
    for (int p = 1; p <= 8; p++) {
        gort_config cfg = { .maxprocs = p };
        int n = 0;
        CHECK_EQ(gort_run(&cfg, read_maxprocs, &n), 0);
        CHECK_EQ(n, p);
    }
}

TEST(go_without_runtime_eperm) {
    CHECK_EQ(gort_go(nop, NULL), -EPERM);
    int ran = 0;
    CHECK_EQ(gort_run(NULL, set_flag, &ran), 0);
    CHECK_EQ(gort_go(nop, NULL), -EPERM);
}

static void go_null_main(void *arg) {
    (void)arg;
    CHECK_EQ(gort_go(NULL, NULL), -EINVAL);
    CHECK_EQ(gort_go(NULL, &main_ran), -EINVAL);
    main_ran = 3;
}

TEST(go_null_fn_einval) {
    CHECK_EQ(gort_run(NULL, go_null_main, NULL), 0);
    CHECK_EQ(main_ran, 3);
}

TEST(id_zero_outside) {
    CHECK_EQ(gort_id(), 0);
    int ran = 0;
    CHECK_EQ(gort_run(NULL, set_flag, &ran), 0);
    CHECK_EQ(gort_id(), 0);
}

#define NIDS 1000
static int64_t ids_returned[NIDS];
static _Atomic int64_t ids_seen[NIDS];

static void record_id(void *arg) {
    intptr_t i = (intptr_t)arg;
    atomic_store(&ids_seen[i], gort_id());
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void ids_main(void *arg) {
    (void)arg;
    int64_t me = gort_id();
    CHECK(me > 0);
    for (intptr_t i = 0; i < NIDS; i++) {
        ids_returned[i] = gort_go(record_id, (void *)i);
        CHECK(ids_returned[i] > 0);
        CHECK(ids_returned[i] != me);
    }
    for (int i = 0; i < NIDS; i++)
        while (atomic_load(&ids_seen[i]) == 0)
            gort_yield();
    CHECK_EQ(gort_id(), me);
}

TEST(id_distinct_and_matches_go) {
    gort_config cfg = { .maxprocs = 2 };
    CHECK_EQ(gort_run(&cfg, ids_main, NULL), 0);
    int64_t sorted[NIDS];
    for (int i = 0; i < NIDS; i++) {
        CHECK_EQ(atomic_load(&ids_seen[i]), ids_returned[i]);
        sorted[i] = ids_returned[i];
    }
    qsort(sorted, NIDS, sizeof sorted[0], cmp_i64);
    for (int i = 1; i < NIDS; i++)
        CHECK(sorted[i] != sorted[i - 1]);
}

/* Goroutines that park on gate once they have said they started. */
struct gated {
    gort_waitgroup started;
    gort_waitgroup gate;
    gort_waitgroup finished;
};

static void gated_child(void *arg) {
    struct gated *g = arg;
    gort_wg_done(&g->started);
    gort_wg_wait(&g->gate);
    gort_wg_done(&g->finished);
}

static void count_main(void *arg) {
    (void)arg;
    CHECK_EQ(gort_num_goroutines(), 1);
    struct gated g = { 0 };
    for (int k = 1; k <= 50; k += 7) {
        gort_wg_add(&g.started, k);
        gort_wg_add(&g.gate, 1);
        gort_wg_add(&g.finished, k);
        for (int i = 0; i < k; i++)
            CHECK(gort_go(gated_child, &g) > 0);
        gort_wg_wait(&g.started);
        CHECK_EQ(gort_num_goroutines(), 1 + k);
        gort_stats st;
        gort_read_stats(&st);
        CHECK_EQ(st.goroutines, 1 + k);
        gort_wg_done(&g.gate);
        gort_wg_wait(&g.finished);
        test_wait_until_only_main();
    }
}

TEST(num_goroutines_counts) {
    gort_config cfg = { .maxprocs = 2 };
    CHECK_EQ(gort_run(&cfg, count_main, NULL), 0);
    cfg.maxprocs = 1;
    CHECK_EQ(gort_run(&cfg, count_main, NULL), 0);
}

static void stats_main(void *arg) {
    int procs = *(int *)arg;
    gort_stats st;
    memset(&st, 0xa5, sizeof st);
    gort_read_stats(&st);
    CHECK_EQ(st.procs, procs);
    CHECK(st.threads >= 1);
    CHECK(st.goroutines >= 1);
    CHECK(st.idle_threads >= 0 && st.idle_threads <= st.threads);
    CHECK(st.spinning >= 0 && st.spinning <= st.threads);
    /* The main goroutine is running, so its P is not idle. */
    CHECK(st.idle_procs >= 0 && st.idle_procs <= procs - 1);
    CHECK(st.in_syscall >= 0 && st.in_syscall <= st.threads);
    CHECK(st.steals >= 0);

    /* With goroutines running, the numbers stay in range. */
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, 1000);
    for (int i = 0; i < 1000; i++)
        CHECK(gort_go(loop_child, &wg) > 0);
    gort_read_stats(&st);
    CHECK_EQ(st.procs, procs);
    CHECK(st.goroutines >= 1 && st.goroutines <= 1001);
    CHECK(st.threads >= 1);
    gort_wg_wait(&wg);
    gort_read_stats(&st);
    CHECK(st.steals >= 0);
}

TEST(read_stats_plausible) {
    for (int p = 1; p <= 4; p++) {
        gort_config cfg = { .maxprocs = p };
        CHECK_EQ(gort_run(&cfg, stats_main, &p), 0);
    }
}

static void check_stats_zero(void) {
    gort_stats st, zero;
    memset(&st, 0xa5, sizeof st);
    memset(&zero, 0, sizeof zero);
    gort_read_stats(&st);
    CHECK_EQ(st.goroutines, 0);
    CHECK_EQ(st.threads, 0);
    CHECK_EQ(st.idle_threads, 0);
    CHECK_EQ(st.spinning, 0);
    CHECK_EQ(st.procs, 0);
    CHECK_EQ(st.idle_procs, 0);
    CHECK_EQ(st.in_syscall, 0);
    CHECK_EQ(st.steals, 0);
}

TEST(read_stats_zero_outside) {
    check_stats_zero();
    int p = 2;
    gort_config cfg = { .maxprocs = p };
    CHECK_EQ(gort_run(&cfg, stats_main, &p), 0);
    check_stats_zero();
}

/* max_threads: the runtime must either manage within the limit or fail
 * clearly (gort_run returns -EAGAIN/-EINVAL, or the process dies with a
 * message about threads); never hang, never silently exceed it. */

#define LIMIT_BLOCKERS 20
static int limit_pipe[2];
static atomic_int limit_in_read;

static void limit_blocker(void *arg) {
    gort_waitgroup *wg = arg;
    char c;
    atomic_fetch_add(&limit_in_read, 1);
    gort_syscall_enter();
    ssize_t n = read(limit_pipe[0], &c, 1);
    gort_syscall_exit();
    CHECK_EQ(n, 1);
    gort_wg_done(wg);
}

static void limit_writer(void *arg) {
    gort_waitgroup *wg = arg;
    /* Runs only once every blocker holds a thread in read(): more threads
     * than the limit allows. */
    while (atomic_load(&limit_in_read) < LIMIT_BLOCKERS)
        gort_yield();
    char buf[LIMIT_BLOCKERS];
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(write(limit_pipe[1], buf, sizeof buf), LIMIT_BLOCKERS);
    gort_wg_done(wg);
}

static void limit_main(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, LIMIT_BLOCKERS + 1);
    for (int i = 0; i < LIMIT_BLOCKERS; i++)
        CHECK(gort_go(limit_blocker, &wg) > 0);
    CHECK(gort_go(limit_writer, &wg) > 0);
    gort_wg_wait(&wg);
}

static void limit_child(void) {
    CHECK_EQ(pipe(limit_pipe), 0);
    gort_config cfg = { .maxprocs = 1, .max_threads = 4 };
    int r = gort_run(&cfg, limit_main, NULL);
    if (r == -EAGAIN) {
        fprintf(stderr, "gort_run returned -EAGAIN: out of threads\n");
        abort();
    }
    fprintf(stderr, "gort_run returned %d: the thread limit was not enforced\n", r);
}

TEST(max_threads_exceeded_fails_clearly) { CHECK(test_expect_death(limit_child, "thread")); }

static atomic_int small_limit_done;

static void small_limit_main(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, 1000);
    for (int i = 0; i < 1000; i++)
        CHECK(gort_go(loop_child, &wg) > 0);
    gort_wg_wait(&wg);
    atomic_store(&small_limit_done, 1);
}

static void small_limit_child(void) {
    /* Fewer threads than Ps: run within the limit (fewer Ps running at
     * once), refuse the config, or die naming threads. */
    gort_config cfg = { .maxprocs = 4, .max_threads = 1 };
    int r = gort_run(&cfg, small_limit_main, NULL);
    if (r == 0 && atomic_load(&small_limit_done))
        _exit(0);
    if (r == -EINVAL || r == -EAGAIN)
        _exit(3);
    fprintf(stderr, "gort_run returned %d, main done %d\n", r, atomic_load(&small_limit_done));
    _exit(4);
}

TEST(max_threads_below_maxprocs) {
    char *err = NULL;
    int st = test_fork_capture(small_limit_child, 120, &err);
    int ok = st != -1 && ((WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 3)) ||
                          (WIFEXITED(st) && WEXITSTATUS(st) == 2 && strstr(err, "thread") != NULL));
    if (!ok)
        fprintf(stderr, "status %#x, stderr:\n%s\n", st, err);
    free(err);
    CHECK(ok);
}

/* ---- Main returning with goroutines still alive ------------------------- */

static gort_waitgroup forever_gate; /* never released */
static atomic_int abandon_started;

static void blocked_forever(void *arg) {
    (void)arg;
    atomic_fetch_add(&abandon_started, 1);
    gort_wg_wait(&forever_gate);
    CHECK(0); /* never released */
}

static void yielding_forever(void *arg) {
    (void)arg;
    atomic_fetch_add(&abandon_started, 1);
    for (;;)
        gort_yield();
}

struct abandon {
    int blocked, yielding;
};

static void abandon_main(void *arg) {
    struct abandon *a = arg;
    CHECK_EQ(gort_num_goroutines(), 1);
    atomic_store(&abandon_started, 0);
    gort_wg_add(&forever_gate, 1);
    for (int i = 0; i < a->blocked; i++)
        CHECK(gort_go(blocked_forever, NULL) > 0);
    for (int i = 0; i < a->yielding; i++)
        CHECK(gort_go(yielding_forever, NULL) > 0);
    /* Let some of them start; the rest are abandoned never having run. */
    while (atomic_load(&abandon_started) < (a->blocked + a->yielding) / 10)
        gort_yield();
}

static void count_is_one(void *arg) {
    (void)arg;
    CHECK_EQ(gort_num_goroutines(), 1);
}

static void abandon_rounds(struct abandon *a) {
    for (int p = 1; p <= 4; p++) {
        gort_config cfg = { .maxprocs = p };
        forever_gate = (gort_waitgroup){ 0 };
        CHECK_EQ(gort_run(&cfg, abandon_main, a), 0);
        CHECK_EQ(gort_id(), 0);
        /* The abandoned goroutines are gone: a new runtime counts only main. */
        CHECK_EQ(gort_run(&cfg, count_is_one, NULL), 0);
    }
}

TEST(main_returns_with_blocked_goroutines) {
    struct abandon a = { .blocked = 200, .yielding = 0 };
    abandon_rounds(&a);
}

TEST(main_returns_with_yielding_goroutines) {
    /* "Goroutines still alive when main_fn returns are abandoned"; a
     * goroutine looping on gort_yield reaches a scheduling point at every
     * iteration, so gort_run must return. */
    struct abandon a = { .blocked = 100, .yielding = 200 };
    abandon_rounds(&a);
}

static atomic_int spin_started, spin_finished;

static void long_spinner(void *arg) {
    (void)arg;
    atomic_store(&spin_started, 1);
    /* No scheduling point in here. */
    for (volatile long i = 0; i < 50 * 1000 * 1000; i++)
        ;
    atomic_store(&spin_finished, 1);
    gort_wg_wait(&forever_gate); /* a scheduling point; never released */
}

static void spin_main(void *arg) {
    (void)arg;
    CHECK(gort_go(long_spinner, NULL) > 0);
    while (!atomic_load(&spin_started))
        gort_yield();
}

TEST(run_waits_for_running_goroutines) {
    /* gort_run returns only after goroutines running when main returned
     * have reached a scheduling point. */
    gort_config cfg = { .maxprocs = 2 };
    gort_wg_add(&forever_gate, 1);
    CHECK_EQ(gort_run(&cfg, spin_main, NULL), 0);
    CHECK_EQ(atomic_load(&spin_finished), 1);
}

/* ---- gort_now ----------------------------------------------------------- */

static void now_child(void *arg) {
    int64_t last = gort_now();
    for (int i = 0; i < 1000; i++) {
        gort_yield(); /* may resume on another thread */
        int64_t t = gort_now();
        CHECK(t >= last);
        last = t;
    }
    gort_wg_done(arg);
}

static void now_main(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    int64_t start = gort_now();
    gort_wg_add(&wg, 8);
    for (int i = 0; i < 8; i++)
        CHECK(gort_go(now_child, &wg) > 0);
    gort_wg_wait(&wg);
    CHECK(gort_now() >= start);
}

TEST(now_monotonic) {
    int64_t a = gort_now();
    CHECK(a > 0);
    gort_config cfg = { .maxprocs = 4 };
    CHECK_EQ(gort_run(&cfg, now_main, NULL), 0);
    CHECK(gort_now() >= a);
}

/* ---- GORT_DEBUG=schedtrace ------------------------------------------------ */

static void trace_main(void *arg) {
    (void)arg;
    /* Stay alive for 50 trace periods. */
    int64_t end = gort_now() + 500 * 1000 * 1000;
    while (gort_now() < end)
        gort_yield();
}

static void trace_child(void) {
    setenv("GORT_DEBUG", "schedtrace=10", 1);
    gort_config cfg = { .maxprocs = 3 };
    CHECK_EQ(gort_run(&cfg, trace_main, NULL), 0);
}

TEST(schedtrace_prints) {
    char *err = NULL;
    int st = test_fork_capture(trace_child, 120, &err);
    int ok = st == 0 && strstr(err, "SCHED") && strstr(err, "gomaxprocs=3");
    if (!ok)
        fprintf(stderr, "status %#x, stderr:\n%s\n", st, err);
    free(err);
    CHECK(ok);
}

/* scheddetail=1: Go's per-P, per-M and per-G lines, a goroutine parked in
 * a channel receive among them. */
static gort_chan *detail_never;

static void detail_parked(void *arg) {
    (void)arg;
    gort_chan_recv(detail_never, NULL);
}

static void detail_main(void *arg) {
    CHECK_EQ(gort_chan_make(&detail_never, 0, 0), 0);
    CHECK(gort_go(detail_parked, NULL) > 0);
    trace_main(arg);
    gort_chan_close(detail_never);
}

static void detail_child(void) {
    setenv("GORT_DEBUG", "schedtrace=10,scheddetail=1,bogus=1", 1);
    gort_config cfg = { .maxprocs = 2 };
    CHECK_EQ(gort_run(&cfg, detail_main, NULL), 0);
}

TEST(scheddetail_prints_p_m_g) {
    char *err = NULL;
    int st = test_fork_capture(detail_child, 120, &err);
    int ok = st == 0 && strstr(err, "SCHED") && strstr(err, "gcwaiting=false") &&
             strstr(err, "\n  P0: status=") && strstr(err, "\n  P1: status=") &&
             strstr(err, "\n  M0: p=") && strstr(err, "\n  G1: status=") &&
             strstr(err, "(chan receive) m=-1 lockedm=-1") &&
             strstr(err, "unknown setting 'bogus=1'");
    if (!ok)
        fprintf(stderr, "status %#x, stderr:\n%.3000s\n", st, err);
    free(err);
    CHECK(ok);
}

/* ---- Many Ps ------------------------------------------------------------- */

TEST(maxprocs_many_more_than_cpus) {
    int ran = 0;
    gort_config cfg = { .maxprocs = 64 };
    CHECK_EQ(gort_run(&cfg, loop_main, &ran), 0);
    CHECK_EQ(ran, 1);
    int n = 0;
    CHECK_EQ(gort_run(&cfg, read_maxprocs, &n), 0);
    CHECK_EQ(n, 64);
}
