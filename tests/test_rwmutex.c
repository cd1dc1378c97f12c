/* Black-box tests of gort_rwmutex (Go's sync.RWMutex): readers share,
 * writers exclude, try operations, writer priority, fatal misuse, and use
 * from foreign threads. */
#define _GNU_SOURCE
#include <gort.h>
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* ---- RWMutex: readers share ------------------------------------------------ */

enum { NREADERS = 4 };
static gort_rwmutex share_rw;
static gort_waitgroup share_in, share_done;
static atomic_int share_inside, share_max;

static void share_reader(void *arg) {
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

static void share_main(void *arg) {
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

TEST(rwmutex_readers_share) {
    test_run_with(2, share_main, NULL);
    test_run_with(1, share_main, NULL);
}

/* ---- RWMutex: writers exclusive --------------------------------------------- */

static gort_rwmutex ex_rw;
static long ex_counter; /* guarded by ex_rw; deliberately not atomic */
static atomic_int ex_writers_in, ex_readers_in;
static gort_waitgroup ex_wg;

static void ex_writer(void *arg) {
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

static void ex_reader(void *arg) {
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

static void ex_main(void *arg) {
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

TEST(rwmutex_writers_exclusive) {
    long n = test_scale(20000, 5000, 2000);
    test_run_with(1, ex_main, &n);
    test_run_with(2, ex_main, &n);
    test_run_with(4, ex_main, &n);
}

/* ---- RWMutex: try semantics, zero value --------------------------------------- */

static void try_other(void *arg) {
    gort_rwmutex *rw = arg;
    CHECK_EQ(gort_rwmutex_trylock(rw), 0);
    CHECK_EQ(gort_rwmutex_tryrlock(rw), 0);
}

static void rw_try_main(void *arg) {
    (void)arg;
    gort_rwmutex rw = { 0 };
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
    test_wait_until_only_main();
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

TEST(rwmutex_try_semantics) {
    test_run_with(1, rw_try_main, NULL);
    test_run_with(2, rw_try_main, NULL);
}

/* ---- RWMutex: a waiting writer keeps new readers out ---------------------------- */

static gort_rwmutex wp_rw;
static atomic_int wp_writer_calling, wp_reader_calling, wp_seq;
static atomic_int wp_writer_got, wp_reader_got;
static gort_waitgroup wp_wg;

static void wp_writer(void *arg) {
    (void)arg;
    atomic_store(&wp_writer_calling, 1);
    gort_rwmutex_lock(&wp_rw);
    atomic_store(&wp_writer_got, atomic_fetch_add(&wp_seq, 1) + 1);
    test_yield_n(50);
    gort_rwmutex_unlock(&wp_rw);
    gort_wg_done(&wp_wg);
}

static void wp_reader(void *arg) {
    (void)arg;
    atomic_store(&wp_reader_calling, 1);
    gort_rwmutex_rlock(&wp_rw);
    atomic_store(&wp_reader_got, atomic_fetch_add(&wp_seq, 1) + 1);
    gort_rwmutex_runlock(&wp_rw);
    gort_wg_done(&wp_wg);
}

static void wp_main(void *arg) {
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
        test_yield_until(&wp_writer_calling, 1);
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
        test_yield_until(&wp_reader_calling, 1);
        test_yield_n(20);
        CHECK_EQ(atomic_load(&wp_reader_got), 0);
        CHECK_EQ(atomic_load(&wp_writer_got), 0);
        gort_rwmutex_runlock(&wp_rw);
        gort_wg_wait(&wp_wg);
        /* The writer went first. */
        CHECK_EQ(atomic_load(&wp_writer_got), 1);
        CHECK_EQ(atomic_load(&wp_reader_got), 2);
    }
}

TEST(rwmutex_pending_writer_blocks_readers) {
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

static void st_reader(void *arg) {
    (void)arg;
    while (!atomic_load(&st_stop)) {
        gort_rwmutex_rlock(&st_rw);
        atomic_fetch_add(&st_reads, 1);
        gort_yield(); /* hold it across a reschedule: readers overlap */
        gort_rwmutex_runlock(&st_rw);
    }
    gort_wg_done(&st_wg);
}

static void st_main(void *arg) {
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

TEST(rwmutex_writer_not_starved) {
    test_run_with(1, st_main, NULL);
    test_run_with(2, st_main, NULL);
    test_run_with(4, st_main, NULL);
}

/* ---- RWMutex: fatal misuse ------------------------------------------------------ */

static void runlock_unlocked_main(void *arg) {
    (void)arg;
    gort_rwmutex rw = { 0 };
    gort_rwmutex_runlock(&rw);
}

static void runlock_write_locked_main(void *arg) {
    (void)arg;
    gort_rwmutex rw = { 0 };
    gort_rwmutex_lock(&rw);
    gort_rwmutex_runlock(&rw);
}

static void unlock_unlocked_main(void *arg) {
    (void)arg;
    gort_rwmutex rw = { 0 };
    gort_rwmutex_unlock(&rw);
}

static void unlock_read_locked_main(void *arg) {
    (void)arg;
    gort_rwmutex rw = { 0 };
    gort_rwmutex_rlock(&rw);
    gort_rwmutex_unlock(&rw);
}

static void double_unlock_main(void *arg) {
    (void)arg;
    gort_rwmutex rw = { 0 };
    gort_rwmutex_lock(&rw);
    gort_rwmutex_unlock(&rw);
    gort_rwmutex_unlock(&rw);
}

TEST(rwmutex_runlock_unlocked_fatal) {
    CHECK(test_expect_fatal(NULL, runlock_unlocked_main, NULL, "RUnlock of unlocked"));
    CHECK(test_expect_fatal(NULL, runlock_write_locked_main, NULL, "RUnlock of unlocked"));
}

TEST(rwmutex_unlock_unlocked_fatal) {
    CHECK(test_expect_fatal(NULL, unlock_unlocked_main, NULL, "Unlock of unlocked"));
    CHECK(test_expect_fatal(NULL, double_unlock_main, NULL, "Unlock of unlocked"));
    CHECK(test_expect_fatal(NULL, unlock_read_locked_main, NULL, "Unlock of unlocked"));
}

/* ---- RWMutex from a foreign thread ------------------------------------------------ */

static gort_rwmutex fr_rw;
static long fr_counter; /* guarded by fr_rw */
static atomic_int fr_writers_in;
static gort_waitgroup fr_wg;
static long fr_n;

static void *fr_thread(void *p) {
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

static void fr_goroutine(void *arg) {
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

static void fr_main(void *arg) {
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

TEST(rwmutex_foreign_thread) {
    test_run_with(1, fr_main, NULL);
    test_run_with(2, fr_main, NULL);
}
