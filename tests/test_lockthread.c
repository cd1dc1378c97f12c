/*
 * gort_lock_thread / gort_unlock_thread: Go's LockOSThread semantics
 * (runtime/proc_test.go's TestLockOSThread*, adapted): a locked goroutine
 * always runs on its thread, the thread runs nothing else, the lock is
 * counted, a goroutine that exits locked takes its thread with it, and
 * threads started while a goroutine is locked do not inherit its state.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "test.h"

static pid_t tid(void) { return gettid(); }

/* ---- a locked goroutine stays on its thread; its thread runs only it ------ */

enum { nlocked = 8, rounds = 300 };

static gort_chan *lockch;
static gort_waitgroup lockwg;
static _Atomic pid_t lockedtids[nlocked];
static atomic_int moved, intruded;

static void locked_worker(void *arg) {
    int k = (int)(intptr_t)arg;
    CHECK_EQ(gort_lock_thread(), 0);
    pid_t me = tid();
    atomic_store(&lockedtids[k], me);
    for (int i = 0; i < rounds; i++) {
        int v;
        CHECK_EQ(gort_chan_recv(lockch, &v), 1); /* park */
        if (i % 50 == 0)
            gort_sleep(10 * 1000); /* park on a timer */
        gort_yield();              /* requeue */
        if (tid() != me)
            atomic_fetch_add(&moved, 1);
    }
    atomic_store(&lockedtids[k], 0); /* from here on others may run here */
    CHECK_EQ(gort_unlock_thread(), 0);
    gort_wg_done(&lockwg);
}

static void free_worker(void *arg) {
    (void)arg;
    for (int i = 0; i < rounds; i++) {
        /* A goroutine that is not locked never runs on a locked thread. */
        pid_t me = tid();
        for (int k = 0; k < nlocked; k++)
            if (atomic_load(&lockedtids[k]) == me)
                atomic_fetch_add(&intruded, 1);
        int v = i;
        CHECK_EQ(gort_chan_send(lockch, &v), 0);
    }
    gort_wg_done(&lockwg);
}

static void stays_main(void *arg) {
    (void)arg;
    lockch = test_mkchan(sizeof(int), 0);
    gort_wg_add(&lockwg, 2 * nlocked);
    for (int k = 0; k < nlocked; k++) {
        CHECK(gort_go(locked_worker, (void *)(intptr_t)k) > 0);
        CHECK(gort_go(free_worker, NULL) > 0);
    }
    gort_wg_wait(&lockwg);
    CHECK_EQ(atomic_load(&moved), 0);
    CHECK_EQ(atomic_load(&intruded), 0);
    gort_chan_free(lockch);
}

TEST(locked_goroutine_stays_on_its_thread) {
    test_run_with(2, stays_main, NULL);
    test_run_with(1, stays_main, NULL);
}

/* ---- counted, and outside a goroutine ------------------------------------ */

static void nested_main(void *arg) {
    (void)arg;
    pid_t me = tid(); /* main starts on the caller's thread */
    CHECK_EQ(gort_lock_thread(), 0);
    CHECK_EQ(gort_lock_thread(), 0);
    CHECK_EQ(gort_unlock_thread(), 0);
    gort_sleep(1000 * 1000); /* still locked once */
    CHECK_EQ(tid(), me);
    CHECK_EQ(gort_unlock_thread(), 0);
    CHECK_EQ(gort_unlock_thread(), 0); /* unlocked: does nothing, as Go */
}

TEST(lock_is_counted) {
    pid_t caller = tid();
    test_run_with(2, nested_main, NULL);
    CHECK_EQ(tid(), caller);
    CHECK_EQ(gort_lock_thread(), -EPERM);
    CHECK_EQ(gort_unlock_thread(), -EPERM);
}

/* ---- the main goroutine may keep the main thread --------------------------- */

static pid_t caller_tid;

static void spin_other(void *arg) {
    (void)arg;
    for (int i = 0; i < 1000; i++)
        gort_yield();
}

static void main_on_m0(void *arg) {
    (void)arg;
    CHECK_EQ(tid(), caller_tid);
    CHECK_EQ(gort_lock_thread(), 0);
    gort_chan *c = test_mkchan(sizeof(int), 0);
    for (int i = 0; i < 100; i++) {
        CHECK(gort_go(spin_other, NULL) > 0);
        gort_sleep(100 * 1000);
        CHECK_EQ(tid(), caller_tid);
    }
    gort_chan_free(c);
    test_wait_until_only_main();
}

TEST(main_goroutine_keeps_the_main_thread) {
    caller_tid = tid();
    test_run_with(2, main_on_m0, NULL);
}

/* ---- exiting locked takes the thread; new threads come out clean ---------- */

static gort_chan *exitch;

static _Atomic int dirty_seen;

static void check_name(void *arg) {
    (void)arg;
    char name[32] = { 0 };
    prctl(PR_GET_NAME, name, 0, 0, 0);
    if (strcmp(name, "dirty") == 0)
        atomic_fetch_add(&dirty_seen, 1);
    gort_syscall_enter();
    usleep(2000); /* a blocking call: sysmon hands the P to another M */
    gort_syscall_exit();
    prctl(PR_GET_NAME, name, 0, 0, 0);
    if (strcmp(name, "dirty") == 0)
        atomic_fetch_add(&dirty_seen, 1);
}

static void exit_locked(void *arg) {
    (void)arg;
    CHECK_EQ(gort_lock_thread(), 0);
    /* Mark the thread (its name: per-thread state a new thread would
     * inherit from its creator, as namespaces are). */
    CHECK_EQ(prctl(PR_SET_NAME, "dirty", 0, 0, 0), 0);
    int v = tid();
    /* Make the runtime want more threads while this one is dirty: new
     * goroutines that block in system calls, started from here (wakep,
     * startm and newm run on this thread). */
    for (int k = 0; k < 4; k++)
        CHECK(gort_go(check_name, NULL) > 0);
    CHECK_EQ(gort_chan_send(exitch, &v), 0);
}

static void exit_main(void *arg) {
    (void)arg;
    /* Main keeps the caller's thread, so the locked goroutines below run
     * on threads the runtime made (m0 never exits). */
    CHECK_EQ(gort_lock_thread(), 0);
    exitch = test_mkchan(sizeof(int), 0);
    gort_stats st;
    for (int i = 0; i < 20; i++) {
        CHECK(gort_go(exit_locked, NULL) > 0);
        int t;
        CHECK_EQ(gort_chan_recv(exitch, &t), 1);
        test_wait_until_only_main();
        /* The dirty thread is gone: no thread of the process has its tid. */
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%d", t);
        for (int k = 0; k < 100000 && access(path, F_OK) == 0; k++)
            gort_sleep(100 * 1000);
        CHECK(access(path, F_OK) != 0);
    }
    gort_read_stats(&st);
    CHECK(st.threads < 20); /* threads were given back, not piled up */
    CHECK_EQ(atomic_load(&dirty_seen), 0);
    gort_chan_free(exitch);
}

TEST(exit_locked_takes_the_thread) {
    test_run_with(2, exit_main, NULL);
    test_run_with(2, exit_main, NULL); /* and a second run starts clean */
}

/* ---- shutdown with locked goroutines parked -------------------------------- */

static void park_locked(void *arg) {
    CHECK_EQ(gort_lock_thread(), 0);
    int v;
    gort_chan_recv(arg, &v); /* never sent: abandoned at shutdown */
}

static void shutdown_main(void *arg) {
    for (int i = 0; i < 10; i++)
        CHECK(gort_go(park_locked, arg) > 0);
    for (int i = 0; i < 20; i++)
        gort_yield(); /* some parked, some not yet: both edges */
}

TEST(shutdown_with_locked_goroutines_parked) {
    for (int i = 0; i < 20; i++) {
        gort_chan *never = test_mkchan(sizeof(int), 0);
        test_run_with(2, shutdown_main, never);
        gort_chan_free(never); /* allowed once gort_run has returned */
    }
}
