/* Black-box tests of gort_mutex (Go's sync.Mutex): exclusion, trylock,
 * waking waiters, fatal misuse, and starvation mode. */
#define _GNU_SOURCE
#include <gort.h>
#include "test.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

static gort_mutex counter_mu; /* zero value: ready to use */
static long counter;          /* guarded by counter_mu; deliberately not atomic */
static atomic_int inside;
static gort_waitgroup counter_wg;

static void counter_worker(void *arg) {
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        gort_mutex_lock(&counter_mu);
        CHECK_EQ(atomic_fetch_add(&inside, 1), 0);
        counter++;
        /* Sometimes hold the lock across a reschedule, so others park. */
        if (i % 1024 == 0)
            gort_yield();
        CHECK_EQ(atomic_fetch_sub(&inside, 1), 1);
        gort_mutex_unlock(&counter_mu);
    }
    gort_wg_done(&counter_wg);
}

static void counter_main(void *arg) {
    long n = *(long *)arg;
    gort_wg_add(&counter_wg, 8);
    for (int i = 0; i < 8; i++)
        CHECK(gort_go(counter_worker, (void *)(intptr_t)n) > 0);
    gort_wg_wait(&counter_wg);
    gort_mutex_lock(&counter_mu);
    CHECK_EQ(counter, 8 * n);
    gort_mutex_unlock(&counter_mu);
}

TEST(mutex_protects_counter) {
    long n = test_scale(100000, 20000, 10000);
    test_run_with(2, counter_main, &n);
    CHECK_EQ(counter, 8 * n);
}

TEST(mutex_protects_counter_many_procs) {
    long n = test_scale(50000, 10000, 5000);
    counter = 0;
    test_run_with(4, counter_main, &n);
    CHECK_EQ(counter, 8 * n);
    counter = 0;
    test_run_with(1, counter_main, &n);
    CHECK_EQ(counter, 8 * n);
}

static void trylock_other(void *arg) {
    gort_mutex *mu = arg;
    CHECK_EQ(gort_mutex_trylock(mu), 0);
}

static void trylock_main(void *arg) {
    (void)arg;
    gort_mutex mu = { 0 };
    CHECK_EQ(gort_mutex_trylock(&mu), 1);
    CHECK_EQ(gort_mutex_trylock(&mu), 0);
    gort_mutex_unlock(&mu);
    CHECK_EQ(gort_mutex_trylock(&mu), 1);
    gort_mutex_unlock(&mu);

    gort_mutex_lock(&mu);
    CHECK_EQ(gort_mutex_trylock(&mu), 0);
    /* Held by main: another goroutine can't take it either. */
    int64_t id = gort_go(trylock_other, &mu);
    CHECK(id > 0);
    test_wait_until_only_main();
    gort_mutex_unlock(&mu);
    CHECK_EQ(gort_mutex_trylock(&mu), 1);
    gort_mutex_unlock(&mu);
}

TEST(mutex_trylock) { test_run_with(2, trylock_main, NULL); }

static gort_mutex handoff_mu;
static atomic_int handoff_state;

static void handoff_locker(void *arg) {
    /* Blocks until main unlocks, then owns the mutex. */
    atomic_store(&handoff_state, 1);
    gort_mutex_lock(&handoff_mu);
    atomic_store(&handoff_state, 2);
    gort_mutex_unlock(&handoff_mu);
    gort_wg_done(arg);
}

static void handoff_main(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, 1);
    gort_mutex_lock(&handoff_mu);
    CHECK(gort_go(handoff_locker, &wg) > 0);
    while (atomic_load(&handoff_state) == 0)
        gort_yield();
    for (int i = 0; i < 100; i++)
        gort_yield();
    CHECK_EQ(atomic_load(&handoff_state), 1);
    gort_mutex_unlock(&handoff_mu);
    gort_wg_wait(&wg);
    CHECK_EQ(atomic_load(&handoff_state), 2);
}

TEST(mutex_waiter_wakes_on_unlock) {
    test_run_with(1, handoff_main, NULL);
    atomic_store(&handoff_state, 0);
    test_run_with(2, handoff_main, NULL);
}

/* Many goroutines park on one mutex held by main, then all get it in turn. */
static gort_mutex crowd_mu;
static long crowd_count;

static void crowd_member(void *arg) {
    gort_mutex_lock(&crowd_mu);
    crowd_count++;
    gort_mutex_unlock(&crowd_mu);
    gort_wg_done(arg);
}

static void crowd_main(void *arg) {
    int n = *(int *)arg;
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, n);
    gort_mutex_lock(&crowd_mu);
    for (int i = 0; i < n; i++)
        CHECK(gort_go(crowd_member, &wg) > 0);
    for (int i = 0; i < 1000; i++)
        gort_yield();
    CHECK_EQ(crowd_count, 0);
    gort_mutex_unlock(&crowd_mu);
    gort_wg_wait(&wg);
    gort_mutex_lock(&crowd_mu);
    CHECK_EQ(crowd_count, n);
    gort_mutex_unlock(&crowd_mu);
}

TEST(mutex_many_waiters) {
    int n = (int)test_scale(10000, 5000, 500);
    test_run_with(2, crowd_main, &n);
}

static void unlock_unlocked_main(void *arg) {
    (void)arg;
    gort_mutex mu = { 0 };
    gort_mutex_unlock(&mu);
}

TEST(mutex_unlock_unlocked_fatal) {
    CHECK(test_expect_fatal(NULL, unlock_unlocked_main, NULL, "unlock of unlocked mutex"));
}

static void double_unlock_main(void *arg) {
    (void)arg;
    gort_mutex mu = { 0 };
    gort_mutex_lock(&mu);
    gort_mutex_unlock(&mu);
    gort_mutex_unlock(&mu);
}

TEST(mutex_double_unlock_fatal) {
    CHECK(test_expect_fatal(NULL, double_unlock_main, NULL, "unlock of unlocked mutex"));
}

static int32_t load_state(const int32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

/* ---- Mutex starvation mode -------------------------------------------------------- */

enum { NSW = 4 };
static gort_mutex sv_mu;
static atomic_int sv_calling, sv_next;
static int sv_order[NSW];
static gort_waitgroup sv_wg;

static void sv_waiter(void *arg) {
    int id = (int)(intptr_t)arg;
    atomic_fetch_add(&sv_calling, 1);
    gort_mutex_lock(&sv_mu);
    sv_order[atomic_fetch_add(&sv_next, 1)] = id;
    gort_mutex_unlock(&sv_mu);
    gort_wg_done(&sv_wg);
}

/* Holds the lock while yielding for at least ns, measured with gort_now. */
static void hold_for(int64_t ns) {
    int64_t t0 = gort_now();
    while (gort_now() - t0 < ns)
        gort_yield();
}

static void starve_main(void *arg) {
    (void)arg;
    memset(&sv_mu, 0, sizeof sv_mu);
    atomic_store(&sv_calling, 0);
    atomic_store(&sv_next, 0);
    gort_wg_add(&sv_wg, NSW);

    gort_mutex_lock(&sv_mu);
    CHECK(gort_go(sv_waiter, (void *)(intptr_t)0) > 0);
    test_yield_until(&sv_calling, 1); /* waiter 0 parked in lock */
    hold_for(3000000);                /* it waits over 1 ms */
    CHECK_EQ(load_state(&sv_mu.state) & 4, 0);
    /* Release, then barge straight back in before the woken waiter runs:
     * it finds the lock taken after waiting > 1 ms and switches the mutex
     * to starvation mode. */
    gort_mutex_unlock(&sv_mu);
    gort_mutex_lock(&sv_mu);
    for (int i = 0; i < 1000000 && !(load_state(&sv_mu.state) & 4); i++)
        gort_yield();
    CHECK(load_state(&sv_mu.state) & 4);
    CHECK_EQ(atomic_load(&sv_next), 0);
    /* In starvation mode a newcomer neither spins nor takes it. */
    CHECK_EQ(gort_mutex_trylock(&sv_mu), 0);
    /* More waiters, queued in order 1, 2, 3. */
    for (int i = 1; i < NSW; i++) {
        CHECK(gort_go(sv_waiter, (void *)(intptr_t)i) > 0);
        test_yield_until(&sv_calling, i + 1);
    }
    hold_for(3000000);
    CHECK(load_state(&sv_mu.state) & 4);
    CHECK_EQ(load_state(&sv_mu.state) >> 3, NSW); /* all four counted waiting */
    gort_mutex_unlock(&sv_mu);
    gort_wg_wait(&sv_wg);
    /* Handed over in FIFO order. */
    for (int i = 0; i < NSW; i++)
        CHECK_EQ(sv_order[i], i);
    /* The last waiter took it out of starvation mode; it is free again. */
    CHECK_EQ(load_state(&sv_mu.state), 0);
    CHECK_EQ(gort_mutex_trylock(&sv_mu), 1);
    gort_mutex_unlock(&sv_mu);
}

TEST(mutex_starvation_mode_fifo) {
    for (int i = 0; i < 5; i++)
        test_run_with(1, starve_main, NULL);
}

/* ---- Mutex: starvation mode entered and left under load --------------------------- */

static gort_mutex ld_mu;
static long ld_counter; /* guarded by ld_mu */
static atomic_int ld_inside, ld_seen_starving;
static gort_waitgroup ld_wg;

static void ld_worker(void *arg) {
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        gort_mutex_lock(&ld_mu);
        CHECK_EQ(atomic_fetch_add(&ld_inside, 1), 0);
        if (load_state(&ld_mu.state) & 4)
            atomic_store(&ld_seen_starving, 1); /* measured only */
        if (i % 25 == 0)
            hold_for(1500000); /* others wait > 1 ms */
        ld_counter++;
        CHECK_EQ(atomic_fetch_sub(&ld_inside, 1), 1);
        gort_mutex_unlock(&ld_mu);
        if (i % 3 == 0)
            gort_yield();
    }
    gort_wg_done(&ld_wg);
}

static void ld_main(void *arg) {
    (void)arg;
    long n = test_scale(200, 100, 50);
    ld_counter = 0;
    gort_wg_add(&ld_wg, 8);
    for (int i = 0; i < 8; i++)
        CHECK(gort_go(ld_worker, (void *)(intptr_t)n) > 0);
    gort_wg_wait(&ld_wg);
    gort_mutex_lock(&ld_mu);
    CHECK_EQ(ld_counter, 8 * n);
    gort_mutex_unlock(&ld_mu);
    CHECK_EQ(load_state(&ld_mu.state), 0);
}

TEST(mutex_starvation_under_load) {
    test_run_with(2, ld_main, NULL);
    test_run_with(4, ld_main, NULL);
}
