/*
 * The runtime's life at its edges: threads that are not goroutines calling
 * in while gort_run starts and stops, a stop-the-world in progress when
 * main returns, misuse inside a system-call bracket, and the environment
 * settings read at start-up.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

/* ---- gort_go from another thread while runtimes start and stop --------------- */

static atomic_int spawner_stop;
static atomic_long spawned, refused;

static void noop(void *arg) { (void)arg; }

static void *spawner(void *arg) {
    (void)arg;
    while (!atomic_load(&spawner_stop)) {
        /* Under TSan every goroutine is a fiber, and every stack chunk a
         * run maps gets shadow memory that is never given back: keep each
         * run to a few goroutines there, or a long test exhausts it. */
        if (test_tsan() && gort_num_goroutines() > 32) {
            sched_yield();
            continue;
        }
        int64_t id = gort_go(noop, NULL);
        if (id > 0)
            atomic_fetch_add(&spawned, 1);
        else if (id == -EPERM)
            atomic_fetch_add(&refused, 1);
        else
            CHECK(!"gort_go from a thread: neither an id nor -EPERM");
        gort_stats st;
        gort_read_stats(&st); /* enters the runtime the same way */
        CHECK(st.goroutines >= 0);
        int n = gort_maxprocs(0);
        CHECK(n >= 0);
    }
    return NULL;
}

static void short_main(void *arg) {
    long i = (long)(intptr_t)arg;
    /* Some runs spawn and yield, some return at once: both edges. */
    for (long k = 0; k < i % 4; k++) {
        CHECK(gort_go(noop, NULL) > 0);
        gort_yield();
    }
}

TEST(foreign_go_across_start_and_stop) {
    /* Before the fix: "unlock of unlocked lock" in about one run of five
     * and always within a few hundred cycles. */
    int runs = (int)test_scale(2000, 300, 100);
    pthread_t t[2];
    atomic_store(&spawner_stop, 0);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, spawner, NULL), 0);
    for (int i = 0; i < runs; i++) {
        gort_config cfg = { .maxprocs = 1 + i % 2 };
        CHECK_EQ(gort_run(&cfg, short_main, (void *)(intptr_t)i), 0);
    }
    atomic_store(&spawner_stop, 1);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
    CHECK(atomic_load(&refused) > 0); /* the thread did call between runs */
    /* Outside any run, the answer is always -EPERM. */
    CHECK_EQ(gort_go(noop, NULL), -EPERM);
}

/* ---- gort_maxprocs in progress when main returns ---------------------------- */

static void resizer(void *arg) {
    (void)arg;
    for (int i = 0;; i++) {
        gort_maxprocs(1 + i % 2); /* abandoned at shutdown, never returns */
        /* A stop-the-world that does not have to wait never parks: without
         * preemption, a loop of them would keep its P, and main, queued
         * behind it, would never run to return. */
        gort_yield();
    }
}

static void busy(void *arg) {
    (void)arg;
    for (;;)
        gort_yield();
}

static void resize_main(void *arg) {
    long i = (long)(intptr_t)arg;
    CHECK(gort_go(resizer, NULL) > 0);
    CHECK(gort_go(busy, NULL) > 0);
    for (long k = 0; k < i % 7; k++)
        gort_yield();
    /* main returns while resizer is somewhere in stop/start the world */
}

TEST(maxprocs_in_progress_at_shutdown) {
    /* Before the fix gort_run never returned: m0 waited for the Ms to
     * leave, the resizer's M waited for the world to stop. */
    int runs = (int)test_scale(300, 100, 50);
    for (int i = 0; i < runs; i++) {
        gort_config cfg = { .maxprocs = 2 };
        CHECK_EQ(gort_run(&cfg, resize_main, (void *)(intptr_t)i), 0);
    }
}

/* ---- misuse inside a system-call bracket -------------------------------------- */

#define INSYSCALL "between gort_syscall_enter and gort_syscall_exit"

static void yield_in_syscall(void *arg) {
    (void)arg;
    gort_syscall_enter();
    gort_yield();
}

static void exit_in_syscall(void *arg) {
    (void)arg;
    gort_syscall_enter();
    gort_exit();
}

static void recv_in_syscall(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int), 0);
    int v;
    gort_syscall_enter();
    gort_chan_recv(c, &v);
}

static void return_in_syscall(void *arg) {
    (void)arg;
    gort_syscall_enter(); /* and the goroutine's function returns */
}

static void run_main_of(void (*fn)(void *)) { test_run_with(2, fn, NULL); }
static void child_yield(void) { run_main_of(yield_in_syscall); }
static void child_exit(void) { run_main_of(exit_in_syscall); }
static void child_recv(void) { run_main_of(recv_in_syscall); }
static void child_return(void) { run_main_of(return_in_syscall); }

TEST(park_in_syscall_is_named) {
    CHECK(test_expect_death(child_yield, "gort_yield " INSYSCALL));
    CHECK(test_expect_death(child_exit, "exit " INSYSCALL));
    CHECK(test_expect_death(child_recv, "blocking chan receive " INSYSCALL));
    CHECK(test_expect_death(child_return, "exit " INSYSCALL));
}

/* ---- settings from the environment --------------------------------------------- */

static void hello_main(void *arg) { (void)arg; }

static void child_bad_env(void) {
    setenv("GORT_DEBUG", "mtrace=-1,nosuch=1,schedtrace=x", 1);
    setenv("GORT_NOUFFD", "yes", 1);
    setenv("GORT_MAXPROCS", "0", 1);
    test_run_with(0, hello_main, NULL);
    exit(0);
}

static void child_good_env(void) {
    setenv("GORT_DEBUG", "mtrace=0", 1);
    setenv("GORT_NOUFFD", "0", 1);
    setenv("GORT_MAXPROCS", "", 1);
    test_run_with(0, hello_main, NULL);
    exit(0);
}

static void child_mtrace(void) {
    setenv("GORT_DEBUG", "mtrace=1", 1);
    test_run_with(1, hello_main, NULL);
    exit(0);
}

TEST(environment_values_are_parsed) {
    char *err = NULL;
    int st = test_fork_capture(child_bad_env, 60, &err);
    CHECK_EQ(st, 0);
    CHECK(strstr(err, "GORT_DEBUG mtrace=-1: want an integer from 0 to 1; ignored"));
    CHECK(strstr(err, "unknown setting 'nosuch=1'"));
    CHECK(strstr(err, "schedtrace=x"));
    CHECK(strstr(err, "GORT_NOUFFD=yes"));
    CHECK(strstr(err, "GORT_MAXPROCS=0"));
    CHECK(strstr(err, "started on thread") == NULL); /* mtrace stayed off */
    free(err);

    st = test_fork_capture(child_good_env, 60, &err);
    CHECK_EQ(st, 0);
    CHECK(strstr(err, "gort:") == NULL); /* nothing to say */
    free(err);

    st = test_fork_capture(child_mtrace, 60, &err);
    CHECK_EQ(st, 0);
    CHECK(strstr(err, "M0 started on thread"));
    free(err);
}
