/* Black-box tests of gort_rwmutex, gort_once, gort_cond and gort_mutex's
 * starvation mode (Go's sync package). */
#define _GNU_SOURCE
#include <gort.h>
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* One P and no preemption: a goroutine that bumps *ctr right before a
 * blocking call has parked in it once the counter is seen. */
static void yield_until(atomic_int *ctr, int n)
{
    for (long i = 0; i < 100000000L && atomic_load(ctr) < n; i++)
        gort_yield();
    CHECK(atomic_load(ctr) >= n);
}

static void yield_n(int n)
{
    for (int i = 0; i < n; i++)
        gort_yield();
}

static int32_t load_state(const int32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* ---- RWMutex: readers share ------------------------------------------------ */

enum { NREADERS = 4 };
static gort_rwmutex share_rw;
static gort_waitgroup share_in, share_done;
static atomic_int share_inside, share_max;

static void share_reader(void *arg)
{
    (void)arg;
    gort_rwmutex_rlock(&share_rw);
    int n = atomic_fetch_add(&share_inside, 1) + 1;
    int m = atomic_load(&share_max);
    while (n > m && !atomic_compare_exchange_weak(&share_max, &m, n))
        ;
    /* Barrier inside the read lock: if readers excluded one another this
     * would never complete (the harness times the test out). */
    gort_wg_done(&share_in);
    gort_wg_wait(&share_in);
    atomic_fetch_sub(&share_inside, 1);
    gort_rwmutex_runlock(&share_rw);
    gort_wg_done(&share_done);
}

static void share_main(void *arg)
{
    (void)arg;
    for (int round = 0; round < 50; round++) {
        atomic_store(&share_max, 0);
        gort_wg_add(&share_in, NREADERS);
        gort_wg_add(&share_done, NREADERS);
        for (int i = 0; i < NREADERS; i++)
            CHECK(gort_go(share_reader, NULL) > 0);
        gort_wg_wait(&share_done);
        CHECK_EQ(atomic_load(&share_max), NREADERS);
        CHECK_EQ(atomic_load(&share_inside), 0);
    }
    /* Main holds a read lock: another goroutine's read lock (and tryrlock)
     * still gets in, and a writer's trylock does not. */
    gort_rwmutex_rlock(&share_rw);
    CHECK_EQ(gort_rwmutex_tryrlock(&share_rw), 1);
    CHECK_EQ(gort_rwmutex_trylock(&share_rw), 0);
    gort_rwmutex_runlock(&share_rw);
    atomic_store(&share_max, 0);
    gort_wg_add(&share_in, 1);
    gort_wg_add(&share_done, 1);
    CHECK(gort_go(share_reader, NULL) > 0);
    gort_wg_wait(&share_done);
    gort_rwmutex_runlock(&share_rw);
    CHECK_EQ(gort_rwmutex_trylock(&share_rw), 1);
    gort_rwmutex_unlock(&share_rw);
}

TEST(rwmutex_readers_share)
{
    test_run_with(2, share_main, NULL);
    test_run_with(1, share_main, NULL);
}

/* ---- RWMutex: writers exclusive --------------------------------------------- */

static gort_rwmutex ex_rw;
static long ex_counter; /* guarded by ex_rw; deliberately not atomic */
static atomic_int ex_writers_in, ex_readers_in;
static gort_waitgroup ex_wg;

static void ex_writer(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        if (i % 7 == 0) {
            while (!gort_rwmutex_trylock(&ex_rw))
                gort_yield();
        } else {
            gort_rwmutex_lock(&ex_rw);
        }
        CHECK_EQ(atomic_fetch_add(&ex_writers_in, 1), 0);
        CHECK_EQ(atomic_load(&ex_readers_in), 0);
        long c = ex_counter;
        if (i % 64 == 0)
            gort_yield();
        ex_counter = c + 1;
        CHECK_EQ(atomic_fetch_sub(&ex_writers_in, 1), 1);
        gort_rwmutex_unlock(&ex_rw);
    }
    gort_wg_done(&ex_wg);
}

static void ex_reader(void *arg)
{
    long n = (long)(intptr_t)arg;
    long last = 0;
    for (long i = 0; i < n; i++) {
        if (i % 5 == 0) {
            while (!gort_rwmutex_tryrlock(&ex_rw))
                gort_yield();
        } else {
            gort_rwmutex_rlock(&ex_rw);
        }
        atomic_fetch_add(&ex_readers_in, 1);
        CHECK_EQ(atomic_load(&ex_writers_in), 0);
        long c = ex_counter;
        CHECK(c >= last); /* never goes back */
        last = c;
        if (i % 64 == 0)
            gort_yield();
        CHECK_EQ(ex_counter, c); /* no writer while we read */
        atomic_fetch_sub(&ex_readers_in, 1);
        gort_rwmutex_runlock(&ex_rw);
    }
    gort_wg_done(&ex_wg);
}

static void ex_main(void *arg)
{
    long n = *(long *)arg;
    ex_counter = 0;
    gort_wg_add(&ex_wg, 12);
    for (int i = 0; i < 4; i++)
        CHECK(gort_go(ex_writer, (void *)(intptr_t)n) > 0);
    for (int i = 0; i < 8; i++)
        CHECK(gort_go(ex_reader, (void *)(intptr_t)n) > 0);
    gort_wg_wait(&ex_wg);
    gort_rwmutex_rlock(&ex_rw);
    CHECK_EQ(ex_counter, 4 * n);
    gort_rwmutex_runlock(&ex_rw);
}

TEST(rwmutex_writers_exclusive)
{
    long n = test_scale(20000, 5000, 2000);
    test_run_with(1, ex_main, &n);
    test_run_with(2, ex_main, &n);
    test_run_with(4, ex_main, &n);
}

/* ---- RWMutex: try semantics, zero value --------------------------------------- */

static void try_other(void *arg)
{
    gort_rwmutex *rw = arg;
    CHECK_EQ(gort_rwmutex_trylock(rw), 0);
    CHECK_EQ(gort_rwmutex_tryrlock(rw), 0);
}

static void rw_try_main(void *arg)
{
    (void)arg;
    gort_rwmutex rw = {0};
    CHECK_EQ(gort_rwmutex_tryrlock(&rw), 1);
    CHECK_EQ(gort_rwmutex_tryrlock(&rw), 1);
    CHECK_EQ(gort_rwmutex_trylock(&rw), 0);
    gort_rwmutex_runlock(&rw);
    CHECK_EQ(gort_rwmutex_trylock(&rw), 0); /* one reader still in */
    gort_rwmutex_runlock(&rw);
    CHECK_EQ(gort_rwmutex_trylock(&rw), 1);
    CHECK_EQ(gort_rwmutex_trylock(&rw), 0);
    CHECK_EQ(gort_rwmutex_tryrlock(&rw), 0);
    CHECK(gort_go(try_other, &rw) > 0);
    for (int i = 0; i < 100000 && gort_num_goroutines() > 1; i++)
        gort_yield();
    CHECK_EQ(gort_num_goroutines(), 1);
    gort_rwmutex_unlock(&rw);
    CHECK_EQ(gort_rwmutex_tryrlock(&rw), 1);
    gort_rwmutex_runlock(&rw);
    gort_rwmutex_lock(&rw);
    gort_rwmutex_unlock(&rw);
    gort_rwmutex_rlock(&rw);
    gort_rwmutex_runlock(&rw);
    /* Back to the zero state. */
    CHECK_EQ(rw.readerCount, 0);
    CHECK_EQ(rw.w.state, 0);
}

TEST(rwmutex_try_semantics)
{
    test_run_with(1, rw_try_main, NULL);
    test_run_with(2, rw_try_main, NULL);
}

/* ---- RWMutex: a waiting writer keeps new readers out ---------------------------- */

static gort_rwmutex wp_rw;
static atomic_int wp_writer_calling, wp_reader_calling, wp_seq;
static atomic_int wp_writer_got, wp_reader_got;
static gort_waitgroup wp_wg;

static void wp_writer(void *arg)
{
    (void)arg;
    atomic_store(&wp_writer_calling, 1);
    gort_rwmutex_lock(&wp_rw);
    atomic_store(&wp_writer_got, atomic_fetch_add(&wp_seq, 1) + 1);
    yield_n(50);
    gort_rwmutex_unlock(&wp_rw);
    gort_wg_done(&wp_wg);
}

static void wp_reader(void *arg)
{
    (void)arg;
    atomic_store(&wp_reader_calling, 1);
    gort_rwmutex_rlock(&wp_rw);
    atomic_store(&wp_reader_got, atomic_fetch_add(&wp_seq, 1) + 1);
    gort_rwmutex_runlock(&wp_rw);
    gort_wg_done(&wp_wg);
}

static void wp_main(void *arg)
{
    int procs = *(int *)arg;
    for (int round = 0; round < 20; round++) {
        atomic_store(&wp_writer_calling, 0);
        atomic_store(&wp_reader_calling, 0);
        atomic_store(&wp_writer_got, 0);
        atomic_store(&wp_reader_got, 0);
        atomic_store(&wp_seq, 0);
        gort_wg_add(&wp_wg, 2);
        gort_rwmutex_rlock(&wp_rw); /* main reads */
        CHECK(gort_go(wp_writer, NULL) > 0);
        yield_until(&wp_writer_calling, 1);
        if (procs == 1) {
            /* One P: the writer has run up to its park in lock. A new
             * reader must be refused now. */
            CHECK_EQ(gort_rwmutex_tryrlock(&wp_rw), 0);
        } else {
            /* The writer may still be on its way into lock: wait until a
             * try fails, which can only be the pending writer's doing. */
            long i;
            for (i = 0; i < 100000000L; i++) {
                if (!gort_rwmutex_tryrlock(&wp_rw))
                    break;
                gort_rwmutex_runlock(&wp_rw);
                gort_yield();
            }
            CHECK(i < 100000000L);
        }
        /* From here on the writer is pending for good (main still reads). */
        for (int i = 0; i < 10; i++) {
            CHECK_EQ(gort_rwmutex_tryrlock(&wp_rw), 0);
            CHECK_EQ(gort_rwmutex_trylock(&wp_rw), 0);
            gort_yield();
        }
        CHECK_EQ(atomic_load(&wp_writer_got), 0);
        /* A reader arriving now queues behind the writer. */
        CHECK(gort_go(wp_reader, NULL) > 0);
        yield_until(&wp_reader_calling, 1);
        yield_n(20);
        CHECK_EQ(atomic_load(&wp_reader_got), 0);
        CHECK_EQ(atomic_load(&wp_writer_got), 0);
        gort_rwmutex_runlock(&wp_rw);
        gort_wg_wait(&wp_wg);
        /* The writer went first. */
        CHECK_EQ(atomic_load(&wp_writer_got), 1);
        CHECK_EQ(atomic_load(&wp_reader_got), 2);
    }
}

TEST(rwmutex_pending_writer_blocks_readers)
{
    int procs = 1;
    test_run_with(1, wp_main, &procs);
    procs = 2;
    test_run_with(2, wp_main, &procs);
}

/* A stream of overlapping readers does not starve a writer. */
static gort_rwmutex st_rw;
static atomic_int st_stop;
static atomic_long st_reads;
static gort_waitgroup st_wg;

static void st_reader(void *arg)
{
    (void)arg;
    while (!atomic_load(&st_stop)) {
        gort_rwmutex_rlock(&st_rw);
        atomic_fetch_add(&st_reads, 1);
        gort_yield(); /* hold it across a reschedule: readers overlap */
        gort_rwmutex_runlock(&st_rw);
    }
    gort_wg_done(&st_wg);
}

static void st_main(void *arg)
{
    (void)arg;
    atomic_store(&st_stop, 0);
    gort_wg_add(&st_wg, 8);
    for (int i = 0; i < 8; i++)
        CHECK(gort_go(st_reader, NULL) > 0);
    while (atomic_load(&st_reads) < 100)
        gort_yield();
    int n = (int)test_scale(1000, 300, 100);
    for (int i = 0; i < n; i++) {
        gort_rwmutex_lock(&st_rw);
        gort_rwmutex_unlock(&st_rw);
    }
    atomic_store(&st_stop, 1);
    gort_wg_wait(&st_wg);
}

TEST(rwmutex_writer_not_starved)
{
    test_run_with(1, st_main, NULL);
    test_run_with(2, st_main, NULL);
    test_run_with(4, st_main, NULL);
}

/* ---- RWMutex: fatal misuse ------------------------------------------------------ */

static void runlock_unlocked_main(void *arg)
{
    (void)arg;
    gort_rwmutex rw = {0};
    gort_rwmutex_runlock(&rw);
}

static void runlock_unlocked_child(void) { gort_run(NULL, runlock_unlocked_main, NULL); }

static void runlock_write_locked_main(void *arg)
{
    (void)arg;
    gort_rwmutex rw = {0};
    gort_rwmutex_lock(&rw);
    gort_rwmutex_runlock(&rw);
}

static void runlock_write_locked_child(void) { gort_run(NULL, runlock_write_locked_main, NULL); }

static void unlock_unlocked_main(void *arg)
{
    (void)arg;
    gort_rwmutex rw = {0};
    gort_rwmutex_unlock(&rw);
}

static void unlock_unlocked_child(void) { gort_run(NULL, unlock_unlocked_main, NULL); }

static void unlock_read_locked_main(void *arg)
{
    (void)arg;
    gort_rwmutex rw = {0};
    gort_rwmutex_rlock(&rw);
    gort_rwmutex_unlock(&rw);
}

static void unlock_read_locked_child(void) { gort_run(NULL, unlock_read_locked_main, NULL); }

static void double_unlock_main(void *arg)
{
    (void)arg;
    gort_rwmutex rw = {0};
    gort_rwmutex_lock(&rw);
    gort_rwmutex_unlock(&rw);
    gort_rwmutex_unlock(&rw);
}

static void double_unlock_child(void) { gort_run(NULL, double_unlock_main, NULL); }

TEST(rwmutex_runlock_unlocked_fatal)
{
    CHECK(test_expect_death(runlock_unlocked_child, "RUnlock of unlocked"));
    CHECK(test_expect_death(runlock_write_locked_child, "RUnlock of unlocked"));
}

TEST(rwmutex_unlock_unlocked_fatal)
{
    CHECK(test_expect_death(unlock_unlocked_child, "Unlock of unlocked"));
    CHECK(test_expect_death(double_unlock_child, "Unlock of unlocked"));
    CHECK(test_expect_death(unlock_read_locked_child, "Unlock of unlocked"));
}

/* ---- Once ----------------------------------------------------------------------- */

static gort_once once;
static atomic_int once_calls, once_gate;
static long once_data; /* written by fn, read by every caller without a lock */
static gort_waitgroup once_wg;

static void once_fn(void *arg)
{
    CHECK_EQ((intptr_t)arg, 1234);
    atomic_fetch_add(&once_calls, 1);
    /* Take a while, so others arrive while it runs. */
    yield_n(100);
    once_data = 42;
}

static void once_racer(void *arg)
{
    (void)arg;
    while (!atomic_load(&once_gate))
        gort_yield();
    gort_once_do(&once, once_fn, (void *)(intptr_t)1234);
    CHECK_EQ(once_data, 42);              /* its effects are visible */
    CHECK_EQ(atomic_load(&once_calls), 1);
    gort_once_do(&once, once_fn, (void *)(intptr_t)1234);
    gort_wg_done(&once_wg);
}

static void once_main(void *arg)
{
    (void)arg;
    memset(&once, 0, sizeof once);
    once_data = 0;
    atomic_store(&once_calls, 0);
    atomic_store(&once_gate, 0);
    gort_wg_add(&once_wg, 100);
    for (int i = 0; i < 100; i++)
        CHECK(gort_go(once_racer, NULL) > 0);
    yield_n(10);
    atomic_store(&once_gate, 1);
    gort_wg_wait(&once_wg);
    CHECK_EQ(atomic_load(&once_calls), 1);
    CHECK_EQ(once_data, 42);
}

TEST(once_runs_exactly_once)
{
    for (int i = 0; i < 10; i++) {
        test_run_with(4, once_main, NULL);
        test_run_with(2, once_main, NULL);
        test_run_with(1, once_main, NULL);
    }
}

static int plain_calls;
static void plain_fn(void *arg) { (*(int *)arg)++; }

TEST(once_outside_runtime)
{
    gort_once o = {0};
    gort_once_do(&o, plain_fn, &plain_calls);
    gort_once_do(&o, plain_fn, &plain_calls);
    CHECK_EQ(plain_calls, 1);
}

/* ---- Cond ---------------------------------------------------------------------- */

enum { NCW = 10 };
static gort_mutex cv_mu;
static gort_cond cv;
static int cv_tokens;                /* guarded by cv_mu */
static atomic_int cv_waiting, cv_returns, cv_consumed;
static gort_waitgroup cv_wg;

static void cv_waiter(void *arg)
{
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

static void cv_signal_main(void *arg)
{
    (void)arg;
    atomic_store(&cv_waiting, 0);
    atomic_store(&cv_returns, 0);
    atomic_store(&cv_consumed, 0);
    gort_wg_add(&cv_wg, NCW);
    for (int i = 0; i < NCW; i++)
        CHECK(gort_go(cv_waiter, NULL) > 0);
    /* One P: every waiter has run to its park in cond_wait. */
    yield_until(&cv_waiting, NCW);
    yield_n(10);
    CHECK_EQ(atomic_load(&cv_returns), 0);
    for (int k = 1; k <= NCW; k++) {
        gort_mutex_lock(&cv_mu);
        cv_tokens++;
        gort_cond_signal(&cv);
        gort_mutex_unlock(&cv_mu);
        yield_until(&cv_consumed, k);
        yield_n(20);
        /* Exactly one waiter was woken per signal. */
        CHECK_EQ(atomic_load(&cv_returns), k);
        CHECK_EQ(atomic_load(&cv_consumed), k);
    }
    gort_wg_wait(&cv_wg);
    gort_cond_signal(&cv);      /* nobody waits: no effect */
    gort_cond_broadcast(&cv);
}

TEST(cond_signal_wakes_one)
{
    test_run_with(1, cv_signal_main, NULL);
}

static void cv_broadcast_main(void *arg)
{
    int procs = *(int *)arg;
    for (int round = 0; round < 10; round++) {
        atomic_store(&cv_waiting, 0);
        atomic_store(&cv_returns, 0);
        atomic_store(&cv_consumed, 0);
        gort_wg_add(&cv_wg, NCW);
        for (int i = 0; i < NCW; i++)
            CHECK(gort_go(cv_waiter, NULL) > 0);
        yield_until(&cv_waiting, NCW);
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

TEST(cond_broadcast_wakes_all)
{
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

static void q_put(long v, int signal_outside)
{
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

static int q_get(long *v)
{
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

static void q_producer(void *arg)
{
    long p = (long)(intptr_t)arg;
    for (long i = 0; i < q_per_producer; i++)
        q_put(p * q_per_producer + i + 1, (int)(i & 1));
    gort_wg_done(&q_prod_wg);
}

static void q_consumer(void *arg)
{
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

static void q_main(void *arg)
{
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

TEST(cond_no_lost_signal)
{
    q_per_producer = test_scale(50000, 10000, 3000);
    test_run_with(1, q_main, NULL);
    test_run_with(2, q_main, NULL);
    test_run_with(4, q_main, NULL);
}

/* A foreign thread waits on a cond; goroutines signal it, and the reverse. */
static gort_mutex fc_mu;
static gort_cond fc_cv, fc_back;
static int fc_turn;   /* guarded by fc_mu: even, the thread's move; odd, a goroutine's */
static long fc_rounds;
static gort_waitgroup fc_thread_done;

static void *fc_thread(void *p)
{
    (void)p;
    CHECK_EQ(gort_id(), 0);
    gort_mutex_lock(&fc_mu);
    for (long r = 0; r < fc_rounds; r++) {
        while (fc_turn != 2 * r + 1)
            gort_cond_wait(&fc_cv, &fc_mu); /* the thread waits */
        fc_turn++;
        if (r % 2)
            gort_cond_signal(&fc_back);     /* the thread signals a goroutine */
        else
            gort_cond_broadcast(&fc_back);
    }
    gort_mutex_unlock(&fc_mu);
    gort_wg_done(&fc_thread_done);
    return NULL;
}

static void fc_main(void *arg)
{
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

TEST(cond_foreign_thread)
{
    test_run_with(1, fc_main, NULL);
    test_run_with(2, fc_main, NULL);
}

/* ---- Mutex starvation mode -------------------------------------------------------- */

enum { NSW = 4 };
static gort_mutex sv_mu;
static atomic_int sv_calling, sv_next;
static int sv_order[NSW];
static gort_waitgroup sv_wg;

static void sv_waiter(void *arg)
{
    int id = (int)(intptr_t)arg;
    atomic_fetch_add(&sv_calling, 1);
    gort_mutex_lock(&sv_mu);
    sv_order[atomic_fetch_add(&sv_next, 1)] = id;
    gort_mutex_unlock(&sv_mu);
    gort_wg_done(&sv_wg);
}

/* Holds the lock while yielding for at least ns, measured with gort_now. */
static void hold_for(int64_t ns)
{
    int64_t t0 = gort_now();
    while (gort_now() - t0 < ns)
        gort_yield();
}

static void starve_main(void *arg)
{
    (void)arg;
    memset(&sv_mu, 0, sizeof sv_mu);
    atomic_store(&sv_calling, 0);
    atomic_store(&sv_next, 0);
    gort_wg_add(&sv_wg, NSW);

    gort_mutex_lock(&sv_mu);
    CHECK(gort_go(sv_waiter, (void *)(intptr_t)0) > 0);
    yield_until(&sv_calling, 1);   /* waiter 0 parked in lock */
    hold_for(3000000);              /* it waits over 1 ms */
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
        yield_until(&sv_calling, i + 1);
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

TEST(mutex_starvation_mode_fifo)
{
    for (int i = 0; i < 5; i++)
        test_run_with(1, starve_main, NULL);
}

/* ---- zero values ---------------------------------------------------------------- */

static gort_mutex z_mu;
static gort_waitgroup z_wg;
static gort_rwmutex z_rw;
static gort_once z_once;
static gort_cond z_cond;
static int z_once_calls;

static void z_once_fn(void *arg)
{
    (void)arg;
    z_once_calls++;
}

static void z_child(void *arg)
{
    (void)arg;
    gort_mutex_lock(&z_mu);
    gort_cond_signal(&z_cond);
    gort_mutex_unlock(&z_mu);
    gort_wg_done(&z_wg);
}

static void zero_main(void *arg)
{
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
    gort_mutex mu = {0};
    gort_rwmutex rw = {0};
    gort_once o = {0};
    gort_cond cv = {0};
    gort_waitgroup wg = {0};
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

TEST(sync_zero_values)
{
    test_run_with(1, zero_main, NULL);
    test_run_with(2, zero_main, NULL);
}

/* ---- Mutex: starvation mode entered and left under load --------------------------- */

static gort_mutex ld_mu;
static long ld_counter; /* guarded by ld_mu */
static atomic_int ld_inside, ld_seen_starving;
static gort_waitgroup ld_wg;

static void ld_worker(void *arg)
{
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

static void ld_main(void *arg)
{
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

TEST(mutex_starvation_under_load)
{
    test_run_with(2, ld_main, NULL);
    test_run_with(4, ld_main, NULL);
}

/* ---- RWMutex from a foreign thread ------------------------------------------------ */

static gort_rwmutex fr_rw;
static long fr_counter; /* guarded by fr_rw */
static atomic_int fr_writers_in;
static gort_waitgroup fr_wg;
static long fr_n;

static void *fr_thread(void *p)
{
    (void)p;
    for (long i = 0; i < fr_n; i++) {
        gort_rwmutex_lock(&fr_rw);
        CHECK_EQ(atomic_fetch_add(&fr_writers_in, 1), 0);
        fr_counter++;
        CHECK_EQ(atomic_fetch_sub(&fr_writers_in, 1), 1);
        gort_rwmutex_unlock(&fr_rw);
        gort_rwmutex_rlock(&fr_rw);
        CHECK_EQ(atomic_load(&fr_writers_in), 0);
        gort_rwmutex_runlock(&fr_rw);
    }
    return NULL;
}

static void fr_goroutine(void *arg)
{
    (void)arg;
    for (long i = 0; i < fr_n; i++) {
        if (i % 2) {
            gort_rwmutex_lock(&fr_rw);
            CHECK_EQ(atomic_fetch_add(&fr_writers_in, 1), 0);
            fr_counter++;
            if (i % 16 == 1)
                gort_yield();
            CHECK_EQ(atomic_fetch_sub(&fr_writers_in, 1), 1);
            gort_rwmutex_unlock(&fr_rw);
        } else {
            gort_rwmutex_rlock(&fr_rw);
            CHECK_EQ(atomic_load(&fr_writers_in), 0);
            if (i % 16 == 0)
                gort_yield();
            CHECK_EQ(atomic_load(&fr_writers_in), 0);
            gort_rwmutex_runlock(&fr_rw);
        }
    }
    gort_wg_done(&fr_wg);
}

static void fr_main(void *arg)
{
    (void)arg;
    fr_n = test_scale(20000, 5000, 1000);
    fr_counter = 0;
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, fr_thread, NULL), 0);
    gort_wg_add(&fr_wg, 4);
    for (int i = 0; i < 4; i++)
        CHECK(gort_go(fr_goroutine, NULL) > 0);
    gort_wg_wait(&fr_wg);
    gort_syscall_enter();
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_join(t[i], NULL), 0);
    gort_syscall_exit();
    gort_rwmutex_rlock(&fr_rw);
    CHECK_EQ(fr_counter, 2 * fr_n + 4 * (fr_n / 2));
    gort_rwmutex_runlock(&fr_rw);
}

TEST(rwmutex_foreign_thread)
{
    test_run_with(1, fr_main, NULL);
    test_run_with(2, fr_main, NULL);
}
