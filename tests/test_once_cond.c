/* Black-box tests of gort_once and gort_cond (Go's sync.Once and
 * sync.Cond), and of the zero value of every sync type. */
#define _GNU_SOURCE
#include <gort.h>
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

/* ---- Once ----------------------------------------------------------------------- */

static gort_once once;
static atomic_int once_calls, once_gate;
static long once_data; /* written by fn, read by every caller without a lock */
static gort_waitgroup once_wg;

static void once_fn(void *arg) {
    CHECK_EQ((intptr_t)arg, 1234);
    atomic_fetch_add(&once_calls, 1);
    /* Take a while, so others arrive while it runs. */
    test_yield_n(100);
    once_data = 42;
}

static void once_racer(void *arg) {
    (void)arg;
    while (!atomic_load(&once_gate))
        gort_yield();
    gort_once_do(&once, once_fn, (void *)(intptr_t)1234);
    CHECK_EQ(once_data, 42); /* its effects are visible */
    CHECK_EQ(atomic_load(&once_calls), 1);
    gort_once_do(&once, once_fn, (void *)(intptr_t)1234);
    gort_wg_done(&once_wg);
}

static void once_main(void *arg) {
    (void)arg;
    memset(&once, 0, sizeof once);
    once_data = 0;
    atomic_store(&once_calls, 0);
    atomic_store(&once_gate, 0);
    gort_wg_add(&once_wg, 100);
    for (int i = 0; i < 100; i++)
        CHECK(gort_go(once_racer, NULL) > 0);
    test_yield_n(10);
    atomic_store(&once_gate, 1);
    gort_wg_wait(&once_wg);
    CHECK_EQ(atomic_load(&once_calls), 1);
    CHECK_EQ(once_data, 42);
}

TEST(once_runs_exactly_once) {
    for (int i = 0; i < 10; i++) {
        test_run_with(4, once_main, NULL);
        test_run_with(2, once_main, NULL);
        test_run_with(1, once_main, NULL);
    }
}

static int plain_calls;
static void plain_fn(void *arg) { (*(int *)arg)++; }

TEST(once_outside_runtime) {
    gort_once o = { 0 };
    gort_once_do(&o, plain_fn, &plain_calls);
    gort_once_do(&o, plain_fn, &plain_calls);
    CHECK_EQ(plain_calls, 1);
}

/* ---- Cond ---------------------------------------------------------------------- */

enum { NCW = 10 };
static gort_mutex cv_mu;
static gort_cond cv;
static int cv_tokens; /* guarded by cv_mu */
static atomic_int cv_waiting, cv_returns, cv_consumed;
static gort_waitgroup cv_wg;

static void cv_waiter(void *arg) {
    (void)arg;
    gort_mutex_lock(&cv_mu);
    atomic_fetch_add(&cv_waiting, 1);
    while (cv_tokens == 0) {
        gort_cond_wait(&cv, &cv_mu);
        atomic_fetch_add(&cv_returns, 1);
    }
    cv_tokens--;
    atomic_fetch_add(&cv_consumed, 1);
    gort_mutex_unlock(&cv_mu);
    gort_wg_done(&cv_wg);
}

static void cv_signal_main(void *arg) {
    (void)arg;
    atomic_store(&cv_waiting, 0);
    atomic_store(&cv_returns, 0);
    atomic_store(&cv_consumed, 0);
    gort_wg_add(&cv_wg, NCW);
    for (int i = 0; i < NCW; i++)
        CHECK(gort_go(cv_waiter, NULL) > 0);
    /* One P: every waiter has run to its park in cond_wait. */
    test_yield_until(&cv_waiting, NCW);
    test_yield_n(10);
    CHECK_EQ(atomic_load(&cv_returns), 0);
    for (int k = 1; k <= NCW; k++) {
        gort_mutex_lock(&cv_mu);
        cv_tokens++;
        gort_cond_signal(&cv);
        gort_mutex_unlock(&cv_mu);
        test_yield_until(&cv_consumed, k);
        test_yield_n(20);
        /* Exactly one waiter was woken per signal. */
        CHECK_EQ(atomic_load(&cv_returns), k);
        CHECK_EQ(atomic_load(&cv_consumed), k);
    }
    gort_wg_wait(&cv_wg);
    gort_cond_signal(&cv); /* nobody waits: no effect */
    gort_cond_broadcast(&cv);
}

TEST(cond_signal_wakes_one) { test_run_with(1, cv_signal_main, NULL); }

static void cv_broadcast_main(void *arg) {
    int procs = *(int *)arg;
    for (int round = 0; round < 10; round++) {
        atomic_store(&cv_waiting, 0);
        atomic_store(&cv_returns, 0);
        atomic_store(&cv_consumed, 0);
        gort_wg_add(&cv_wg, NCW);
        for (int i = 0; i < NCW; i++)
            CHECK(gort_go(cv_waiter, NULL) > 0);
        test_yield_until(&cv_waiting, NCW);
        gort_mutex_lock(&cv_mu);
        cv_tokens += NCW;
        gort_cond_broadcast(&cv);
        gort_mutex_unlock(&cv_mu);
        gort_wg_wait(&cv_wg);
        CHECK_EQ(atomic_load(&cv_consumed), NCW);
        if (procs == 1)
            CHECK_EQ(atomic_load(&cv_returns), NCW); /* each woken once */
        gort_mutex_lock(&cv_mu);
        CHECK_EQ(cv_tokens, 0);
        gort_mutex_unlock(&cv_mu);
    }
}

TEST(cond_broadcast_wakes_all) {
    int procs = 1;
    test_run_with(1, cv_broadcast_main, &procs);
    procs = 2;
    test_run_with(2, cv_broadcast_main, &procs);
}

/* Bounded queue with two conds: a lost signal hangs it. */
enum { QCAP = 4 };
static gort_mutex q_mu;
static gort_cond q_notempty, q_notfull;
static long q_buf[QCAP];
static int q_head, q_len, q_closed;
static atomic_ulong q_sum;
static atomic_long q_count;
static gort_waitgroup q_prod_wg, q_cons_wg;

static void q_put(long v, int signal_outside) {
    gort_mutex_lock(&q_mu);
    while (q_len == QCAP)
        gort_cond_wait(&q_notfull, &q_mu);
    q_buf[(q_head + q_len) % QCAP] = v;
    q_len++;
    if (signal_outside) {
        gort_mutex_unlock(&q_mu);
        gort_cond_signal(&q_notempty);
    } else {
        gort_cond_signal(&q_notempty);
        gort_mutex_unlock(&q_mu);
    }
}

static int q_get(long *v) {
    gort_mutex_lock(&q_mu);
    while (q_len == 0 && !q_closed)
        gort_cond_wait(&q_notempty, &q_mu);
    if (q_len == 0) {
        gort_mutex_unlock(&q_mu);
        return 0;
    }
    *v = q_buf[q_head];
    q_head = (q_head + 1) % QCAP;
    q_len--;
    gort_cond_signal(&q_notfull);
    gort_mutex_unlock(&q_mu);
    return 1;
}

static long q_per_producer;

static void q_producer(void *arg) {
    long p = (long)(intptr_t)arg;
    for (long i = 0; i < q_per_producer; i++)
        q_put(p * q_per_producer + i + 1, (int)(i & 1));
    gort_wg_done(&q_prod_wg);
}

static void q_consumer(void *arg) {
    (void)arg;
    long v;
    unsigned long sum = 0;
    long n = 0;
    while (q_get(&v)) {
        sum += (unsigned long)v;
        n++;
    }
    atomic_fetch_add(&q_sum, sum);
    atomic_fetch_add(&q_count, n);
    gort_wg_done(&q_cons_wg);
}

static void q_main(void *arg) {
    (void)arg;
    const int np = 4, nc = 4;
    q_head = q_len = q_closed = 0;
    atomic_store(&q_sum, 0);
    atomic_store(&q_count, 0);
    gort_wg_add(&q_prod_wg, np);
    gort_wg_add(&q_cons_wg, nc);
    for (int i = 0; i < nc; i++)
        CHECK(gort_go(q_consumer, NULL) > 0);
    for (int i = 0; i < np; i++)
        CHECK(gort_go(q_producer, (void *)(intptr_t)i) > 0);
    gort_wg_wait(&q_prod_wg);
    gort_mutex_lock(&q_mu);
    q_closed = 1;
    gort_cond_broadcast(&q_notempty);
    gort_mutex_unlock(&q_mu);
    gort_wg_wait(&q_cons_wg);
    long total = np * q_per_producer;
    CHECK_EQ(atomic_load(&q_count), total);
    CHECK(atomic_load(&q_sum) == (unsigned long)(total * (total + 1) / 2));
}

TEST(cond_no_lost_signal) {
    q_per_producer = test_scale(50000, 10000, 3000);
    test_run_with(1, q_main, NULL);
    test_run_with(2, q_main, NULL);
    test_run_with(4, q_main, NULL);
}

/* A foreign thread waits on a cond; goroutines signal it, and the reverse. */
static gort_mutex fc_mu;
static gort_cond fc_cv, fc_back;
static int fc_turn; /* guarded by fc_mu: even, the thread's move; odd, a goroutine's */
static long fc_rounds;
static gort_waitgroup fc_thread_done;

static void *fc_thread(void *p) {
    (void)p;
    CHECK_EQ(gort_id(), 0);
    gort_mutex_lock(&fc_mu);
    for (long r = 0; r < fc_rounds; r++) {
        while (fc_turn != 2 * r + 1)
            gort_cond_wait(&fc_cv, &fc_mu); /* the thread waits */
        fc_turn++;
        if (r % 2)
            gort_cond_signal(&fc_back); /* the thread signals a goroutine */
        else
            gort_cond_broadcast(&fc_back);
    }
    gort_mutex_unlock(&fc_mu);
    gort_wg_done(&fc_thread_done);
    return NULL;
}

static void fc_main(void *arg) {
    (void)arg;
    fc_turn = 0;
    fc_rounds = test_scale(5000, 1000, 300);
    gort_wg_add(&fc_thread_done, 1);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, fc_thread, NULL), 0);
    gort_mutex_lock(&fc_mu);
    for (long r = 0; r < fc_rounds; r++) {
        while (fc_turn != 2 * r)
            gort_cond_wait(&fc_back, &fc_mu);
        fc_turn++;
        gort_cond_signal(&fc_cv);
    }
    while (fc_turn != 2 * fc_rounds)
        gort_cond_wait(&fc_back, &fc_mu);
    gort_mutex_unlock(&fc_mu);
    gort_wg_wait(&fc_thread_done);
    gort_syscall_enter();
    CHECK_EQ(pthread_join(t, NULL), 0);
    gort_syscall_exit();
}

TEST(cond_foreign_thread) {
    test_run_with(1, fc_main, NULL);
    test_run_with(2, fc_main, NULL);
}

/* ---- zero values ---------------------------------------------------------------- */

static gort_mutex z_mu;
static gort_waitgroup z_wg;
static gort_rwmutex z_rw;
static gort_once z_once;
static gort_cond z_cond;
static int z_once_calls;

static void z_once_fn(void *arg) {
    (void)arg;
    z_once_calls++;
}

static void z_child(void *arg) {
    (void)arg;
    gort_mutex_lock(&z_mu);
    gort_cond_signal(&z_cond);
    gort_mutex_unlock(&z_mu);
    gort_wg_done(&z_wg);
}

static void zero_main(void *arg) {
    (void)arg;
    /* Static zero values. */
    gort_mutex_lock(&z_mu);
    gort_mutex_unlock(&z_mu);
    gort_rwmutex_lock(&z_rw);
    gort_rwmutex_unlock(&z_rw);
    gort_rwmutex_rlock(&z_rw);
    gort_rwmutex_runlock(&z_rw);
    gort_once_do(&z_once, z_once_fn, NULL);
    gort_once_do(&z_once, z_once_fn, NULL);
    CHECK_EQ(z_once_calls, 1);
    gort_cond_signal(&z_cond);
    gort_cond_broadcast(&z_cond);
    gort_wg_wait(&z_wg);
    /* A cond wait on zero values, woken by a child. */
    gort_wg_add(&z_wg, 1);
    gort_mutex_lock(&z_mu);
    CHECK(gort_go(z_child, NULL) > 0);
    gort_cond_wait(&z_cond, &z_mu);
    gort_mutex_unlock(&z_mu);
    gort_wg_wait(&z_wg);

    /* Automatic zero values, `= {0}`. */
    gort_mutex mu = { 0 };
    gort_rwmutex rw = { 0 };
    gort_once o = { 0 };
    gort_cond cv = { 0 };
    gort_waitgroup wg = { 0 };
    int calls = 0;
    gort_mutex_lock(&mu);
    CHECK_EQ(gort_mutex_trylock(&mu), 0);
    gort_mutex_unlock(&mu);
    CHECK_EQ(gort_rwmutex_trylock(&rw), 1);
    gort_rwmutex_unlock(&rw);
    CHECK_EQ(gort_rwmutex_tryrlock(&rw), 1);
    gort_rwmutex_runlock(&rw);
    gort_once_do(&o, plain_fn, &calls);
    gort_once_do(&o, plain_fn, &calls);
    CHECK_EQ(calls, 1);
    gort_cond_signal(&cv);
    gort_cond_broadcast(&cv);
    gort_wg_wait(&wg);
    CHECK_EQ(mu.state, 0);
    CHECK_EQ(rw.readerCount, 0);
}

TEST(sync_zero_values) {
    test_run_with(1, zero_main, NULL);
    test_run_with(2, zero_main, NULL);
}
