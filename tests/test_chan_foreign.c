/* Black-box tests of gort channels used by threads that are not goroutines
 * (foreign pthreads), on one side of a channel or blocked in it. */
#define _GNU_SOURCE
#include <gort.h>
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* ---- a foreign pthread on one side ----------------------------------------- */

typedef struct foreign_arg {
    gort_chan *c, *done;
    long n;
} foreign_arg;

static void *foreign_sender(void *p) {
    foreign_arg *a = p;
    CHECK_EQ(gort_id(), 0);
    for (long i = 0; i < a->n; i++)
        CHECK_EQ(gort_chan_send(a->c, &i), 0);
    CHECK_EQ(gort_chan_close(a->c), 0);
    return NULL;
}

static void *foreign_receiver(void *p) {
    foreign_arg *a = p;
    long v, sum = 0, count = 0;
    while (gort_chan_recv(a->c, &v) == 1) {
        sum += v;
        count++;
    }
    long res[2] = { sum, count };
    CHECK_EQ(gort_chan_send(a->done, res), 0); /* foreign send to a goroutine */
    return NULL;
}

static gort_waitgroup fg_wg;

static void foreign_goroutine_sender(void *arg) {
    foreign_arg *a = arg;
    for (long i = 0; i < a->n; i++)
        CHECK_EQ(gort_chan_send(a->c, &i), 0);
    gort_wg_done(&fg_wg);
}

static void join_thread(pthread_t t) {
    gort_syscall_enter();
    int r = pthread_join(t, NULL);
    gort_syscall_exit();
    CHECK_EQ(r, 0);
}

static void foreign_main(void *arg) {
    (void)arg;
    long n = test_scale(20000, 5000, 2000);
    for (size_t cap = 0; cap <= 4; cap += 4) {
        /* Thread sends, goroutine receives. */
        foreign_arg a = { .c = test_mkchan(sizeof(long), cap), .n = n };
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, foreign_sender, &a), 0);
        long v, expect = 0;
        while (gort_chan_recv(a.c, &v) == 1) {
            CHECK_EQ(v, expect);
            expect++;
        }
        CHECK_EQ(expect, n);
        join_thread(t);
        gort_chan_free(a.c);

        /* Goroutines send, thread receives; the thread reports on a channel. */
        foreign_arg b = { .c = test_mkchan(sizeof(long), cap),
                          .done = test_mkchan(2 * sizeof(long), 0),
                          .n = n };
        CHECK_EQ(pthread_create(&t, NULL, foreign_receiver, &b), 0);
        gort_wg_add(&fg_wg, 4);
        for (int i = 0; i < 4; i++)
            CHECK(gort_go(foreign_goroutine_sender, &b) > 0);
        gort_wg_wait(&fg_wg);
        CHECK_EQ(gort_chan_close(b.c), 0);
        long res[2];
        CHECK_EQ(gort_chan_recv(b.done, res), 1);
        CHECK_EQ(res[0], 4 * (n * (n - 1) / 2));
        CHECK_EQ(res[1], 4 * n);
        join_thread(t);
        gort_chan_free(b.c);
        gort_chan_free(b.done);
    }
}

TEST(chan_foreign_thread) {
    test_run_with(1, foreign_main, NULL);
    test_run_with(2, foreign_main, NULL);
}

/* A foreign thread blocked in recv and one blocked in send are woken by close. */
static atomic_int fc_entered;

static void *foreign_blocked_recv(void *p) {
    gort_chan *c = p;
    long v = 7;
    atomic_fetch_add(&fc_entered, 1);
    CHECK_EQ(gort_chan_recv(c, &v), 0);
    CHECK_EQ(v, 0);
    return NULL;
}

static void *foreign_blocked_send(void *p) {
    gort_chan *c = p;
    long v = 7;
    atomic_fetch_add(&fc_entered, 1);
    CHECK_EQ(gort_chan_send(c, &v), -EPIPE);
    return NULL;
}

static void foreign_close_main(void *arg) {
    (void)arg;
    atomic_store(&fc_entered, 0);
    gort_chan *r = test_mkchan(sizeof(long), 0), *s = test_mkchan(sizeof(long), 1);
    long v = 1;
    CHECK_EQ(gort_chan_send(s, &v), 0); /* full: the thread's send blocks */
    pthread_t t1, t2;
    CHECK_EQ(pthread_create(&t1, NULL, foreign_blocked_recv, r), 0);
    CHECK_EQ(pthread_create(&t2, NULL, foreign_blocked_send, s), 0);
    test_yield_until(&fc_entered, 2);
    CHECK_EQ(gort_chan_close(r), 0);
    CHECK_EQ(gort_chan_close(s), 0);
    join_thread(t1);
    join_thread(t2);
    CHECK_EQ(gort_chan_recv(s, &v), 1);
    CHECK_EQ(v, 1);
    CHECK_EQ(gort_chan_recv(s, &v), 0);
    gort_chan_free(r);
    gort_chan_free(s);
}

TEST(chan_foreign_thread_close) { test_run_with(2, foreign_close_main, NULL); }
