/*
 * Edge cases of a channel's lifetime: when it may be freed, what happens to
 * waiters a finished gort_run left behind, and the limits of gort_chan_make.
 *
 * White-box in one place: wait_for_waiter looks at a channel's queues
 * (chan.h) under its lock, to know that a goroutine or thread has blocked
 * on it without sleeping.
 */
#define _GNU_SOURCE
#include <gort.h>
#include "test.h"
#include "chan.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

/* ---- helpers ---------------------------------------------------------------- */

static gort_case rcase(gort_chan *c, void *elem) {
    return (gort_case){ .chan = c, .op = GORT_RECV, .elem = elem, .ok = -1 };
}

static gort_case scase(gort_chan *c, void *elem) {
    return (gort_case){ .chan = c, .op = GORT_SEND, .elem = elem, .ok = -1 };
}

/* Lets others run: a yield on a goroutine, sched_yield on a plain thread. */
static void pause_once(void) {
    if (gort_id() != 0)
        gort_yield();
    else
        sched_yield();
}

/* Live waiters on c's queues, goroutines and threads: gort__chanlock first
 * drops any that an ended run left behind. */
static int waiters(gort_chan *c) {
    int n = 0;
    gort__chanlock(c);
    for (sudog *s = c->recvq.first; s; s = s->next)
        n++;
    for (sudog *s = c->sendq.first; s; s = s->next)
        n++;
    gort__unlock(&c->lock);
    return n;
}

/* Returns once c's queues hold at least n live waiters. Bounded by a
 * generous minute, so a bug fails here instead of hanging. */
static void wait_for_waiters(gort_chan *c, int n) {
    int64_t give_up = gort_now() + 60LL * 1000 * 1000 * 1000;
    while (waiters(c) < n && gort_now() < give_up)
        pause_once();
    CHECK(waiters(c) >= n);
}

/* ---- 1. a select's channel freed as soon as its case is matched --------------- */

/*
 * A goroutine blocks in select with a case on c (and others). main matches
 * that case (receives the value, sends one, or closes c) and frees c at
 * once: no waiter is left on c, so that is allowed, and the selecting
 * goroutine must not touch c again when it wakes (it cleans up only the
 * other channels). Under ASan a touch is a heap-use-after-free.
 */
enum {
    V_SEND_C_RECV_D,        /* {send c, recv d}; main polls tryrecv(c) */
    V_SEND_C_SEND_C,        /* {send c, send c}; main polls tryrecv(c) */
    V_SEND_C_RECV_C,        /* {send c, recv c}; main polls tryrecv(c) */
    V_SEND_C_RECV_D_RECV_C, /* {send c, recv d, recv c}; tryrecv(c) */
    V_SEND_C_RECV_D_BLOCK,  /* {send c, recv d}; main's blocking recv(c) */
    V_RECV_C_BUFFERED,      /* {recv c, recv d}, c has room; main sends on c */
    V_RECV_C_CLOSE,         /* {recv c, recv d}; main closes c */
    V_SEND_C_CLOSE,         /* {send c, recv d}; main closes c */
    V_SEND_RECV_C_CLOSE,    /* {send c, recv c, recv d}; main closes c */
    V_COUNT
};

typedef struct uaf_round {
    int variant;
    gort_chan *c, *d, *res;
} uaf_round;

static void uaf_selector(void *arg) {
    uaf_round *u = arg;
    long s1 = 1000 + u->variant, s2 = 2000 + u->variant, r1 = -1, r2 = -1;
    gort_case cs[3];
    int n = 2;
    switch (u->variant) {
    case V_SEND_C_RECV_D:
    case V_SEND_C_RECV_D_BLOCK:
    case V_SEND_C_CLOSE:
        cs[0] = scase(u->c, &s1);
        cs[1] = rcase(u->d, &r1);
        break;
    case V_SEND_C_SEND_C:
        cs[0] = scase(u->c, &s1);
        cs[1] = scase(u->c, &s2);
        break;
    case V_SEND_C_RECV_C:
        cs[0] = scase(u->c, &s1);
        cs[1] = rcase(u->c, &r1);
        break;
    case V_SEND_C_RECV_D_RECV_C:
        cs[0] = scase(u->c, &s1);
        cs[1] = rcase(u->d, &r1);
        cs[2] = rcase(u->c, &r2);
        n = 3;
        break;
    case V_RECV_C_BUFFERED:
    case V_RECV_C_CLOSE:
        cs[0] = rcase(u->c, &r1);
        cs[1] = rcase(u->d, &r2);
        break;
    case V_SEND_RECV_C_CLOSE:
        cs[0] = scase(u->c, &s1);
        cs[1] = rcase(u->c, &r1);
        cs[2] = rcase(u->d, &r2);
        n = 3;
        break;
    }
    int k = gort_select(cs, n, 1);
    /* What the selector saw: the case, its ok, and the value received. */
    long res[3] = { k, k >= 0 ? cs[k].ok : -1, r1 };
    CHECK_EQ(gort_chan_send(u->res, res), 0);
}

static void uaf_one(int variant) {
    uaf_round u = { .variant = variant };
    u.c = test_mkchan(sizeof(long), variant == V_RECV_C_BUFFERED ? 1 : 0);
    u.d = test_mkchan(sizeof(long), 0);
    u.res = test_mkchan(3 * sizeof(long), 1);
    CHECK(gort_go(uaf_selector, &u) > 0);

    long v = -1;
    switch (variant) {
    case V_SEND_C_RECV_D:
    case V_SEND_C_SEND_C:
    case V_SEND_C_RECV_C:
    case V_SEND_C_RECV_D_RECV_C: {
        /* Succeeds only once the selector waits on c. */
        int r;
        while ((r = gort_chan_tryrecv(u.c, &v)) == -EAGAIN)
            gort_yield();
        CHECK_EQ(r, 1);
        break;
    }
    case V_SEND_C_RECV_D_BLOCK: CHECK_EQ(gort_chan_recv(u.c, &v), 1); break;
    case V_RECV_C_BUFFERED:
        wait_for_waiters(u.c, 1);
        v = 77;
        CHECK_EQ(gort_chan_send(u.c, &v), 0); /* straight to the selector */
        break;
    case V_RECV_C_CLOSE:
    case V_SEND_C_CLOSE:
    case V_SEND_RECV_C_CLOSE:
        wait_for_waiters(u.c, variant == V_SEND_RECV_C_CLOSE ? 2 : 1);
        CHECK_EQ(gort_chan_close(u.c), 0);
        break;
    }
    /* Matched: nothing of the selector is left on c. */
    CHECK_EQ(waiters(u.c), 0);
    gort_chan_free(u.c);

    long res[3];
    CHECK_EQ(gort_chan_recv(u.res, res), 1);
    switch (variant) {
    case V_SEND_C_RECV_D:
    case V_SEND_C_RECV_D_BLOCK:
    case V_SEND_C_RECV_C:
    case V_SEND_C_RECV_D_RECV_C:
        CHECK_EQ(res[0], 0);
        CHECK_EQ(v, 1000 + variant);
        break;
    case V_SEND_C_SEND_C:
        CHECK(res[0] == 0 || res[0] == 1);
        CHECK_EQ(v, res[0] == 0 ? 1000 + variant : 2000 + variant);
        break;
    case V_RECV_C_BUFFERED:
        CHECK_EQ(res[0], 0);
        CHECK_EQ(res[1], 1);
        CHECK_EQ(res[2], 77);
        break;
    case V_RECV_C_CLOSE:
        CHECK_EQ(res[0], 0);
        CHECK_EQ(res[1], 0);
        CHECK_EQ(res[2], 0); /* zeroed by the closed receive */
        break;
    case V_SEND_C_CLOSE: CHECK_EQ(res[0], -EPIPE); break;
    case V_SEND_RECV_C_CLOSE:
        /* Whichever of the two cases close reaches first. */
        if (res[0] != -EPIPE) {
            CHECK_EQ(res[0], 1);
            CHECK_EQ(res[1], 0);
        }
        break;
    }
    /* The selector has returned: it no longer names d. */
    CHECK_EQ(waiters(u.d), 0);
    gort_chan_free(u.d);
    gort_chan_free(u.res);
}

static void uaf_main(void *arg) {
    (void)arg;
    long rounds = test_scale(10000, 2000, 500);
    for (long r = 0; r < rounds; r++)
        for (int v = 0; v < V_COUNT; v++)
            uaf_one(v);
    test_wait_until_only_main();
}

TEST(select_matched_channel_freed_at_once) {
    test_run_with(1, uaf_main, NULL);
    test_run_with(2, uaf_main, NULL);
    test_run_with(4, uaf_main, NULL);
}

/* ---- 2. waiters abandoned by an ended gort_run ---------------------------------- */

/*
 * Goroutines of one run block on channels in every way (send, receive,
 * select; unbuffered and buffered) and main returns: they are abandoned and
 * their stacks unmapped. Afterwards, from the plain thread, every operation
 * on those channels must skip them (never read their sudogs), and a second
 * gort_run must use the same channels normally. A plain thread blocked on
 * one of them among the goroutines is a live waiter and must be kept.
 */
enum { AB_U, AB_B, AB_S1, AB_S2, AB_T, AB_N }; /* the channels */
static gort_chan *ab[AB_N];
static atomic_int ab_parked;

static void ab_sender(void *arg) {
    long v = (long)(intptr_t)arg;
    atomic_fetch_add(&ab_parked, 1);
    gort_chan_send(v < 100 ? ab[AB_U] : ab[AB_B], &v);
    CHECK(0); /* never returns: abandoned */
}

static void ab_receiver(void *arg) {
    long v;
    atomic_fetch_add(&ab_parked, 1);
    gort_chan_recv(ab[(int)(intptr_t)arg], &v);
    CHECK(0);
}

static void ab_selector(void *arg) {
    (void)arg;
    long s = 5, r1, r2;
    /* Receives on S1 and S2 and a send on U: on three channels, two of
     * them also holding plain waiters. */
    gort_case cs[3] = { rcase(ab[AB_S1], &r1), scase(ab[AB_U], &s), rcase(ab[AB_S2], &r2) };
    atomic_fetch_add(&ab_parked, 1);
    gort_select(cs, 3, 1);
    CHECK(0);
}

/* A plain thread blocked in receive on T, between two goroutines. */
static long ab_thread_got;
static int ab_thread_r;

static void *ab_thread(void *arg) {
    (void)arg;
    ab_thread_r = gort_chan_recv(ab[AB_T], &ab_thread_got);
    return NULL;
}

static pthread_t ab_tid;

static void ab_wait_parked(int n) {
    /* One P: each goroutine counts itself just before it blocks, so it
     * has parked once main runs again and sees the count. */
    while (atomic_load(&ab_parked) < n)
        gort_yield();
}

static void ab_run1(void *arg) {
    (void)arg;
    int n = 0;
    for (long i = 0; i < 3; i++, n++)
        CHECK(gort_go(ab_sender, (void *)(intptr_t)i) > 0); /* U: senders */
    long fill = 1;
    CHECK_EQ(gort_chan_send(ab[AB_B], &fill), 0); /* B full */
    for (long i = 100; i < 103; i++, n++)
        CHECK(gort_go(ab_sender, (void *)(intptr_t)i) > 0); /* B: senders */
    for (int i = 0; i < 2; i++, n++)
        CHECK(gort_go(ab_receiver, (void *)(intptr_t)AB_S1) > 0); /* S1: receivers */
    CHECK(gort_go(ab_selector, NULL) > 0);
    n++;
    CHECK(gort_go(ab_receiver, (void *)(intptr_t)AB_S2) > 0);
    n++;
    CHECK(gort_go(ab_receiver, (void *)(intptr_t)AB_T) > 0); /* T: goroutine, */
    n++;
    ab_wait_parked(n);
    CHECK(pthread_create(&ab_tid, NULL, ab_thread, NULL) == 0); /* thread, */
    wait_for_waiters(ab[AB_T], 2);
    CHECK(gort_go(ab_receiver, (void *)(intptr_t)AB_T) > 0); /* goroutine */
    n++;
    ab_wait_parked(n);
    CHECK_EQ(waiters(ab[AB_T]), 3);
    CHECK_EQ(waiters(ab[AB_U]), 4); /* three senders and the select */
    /* main returns: every one of them is abandoned */
}

/* In the second run: the channels work as if new. */
static void ab_echo(void *arg) {
    gort_chan *c = arg;
    long v;
    while (gort_chan_recv(c, &v) == 1)
        CHECK_EQ(gort_chan_send(c == ab[AB_U] ? ab[AB_S1] : ab[AB_S2], &v), 0);
}

static void ab_run2(void *arg) {
    (void)arg;
    /* The thread still waits on T, between two abandoned goroutines: a
     * goroutine's send reaches it. */
    long v = 42;
    CHECK_EQ(gort_chan_send(ab[AB_T], &v), 0);
    CHECK_EQ(gort_chan_trysend(ab[AB_T], &v), -EAGAIN);
    CHECK(pthread_join(ab_tid, NULL) == 0);
    CHECK_EQ(ab_thread_r, 1);
    CHECK_EQ(ab_thread_got, 42);

    /* U and S2 were closed; S1 and B are open: B holds the one value of
     * the first run. */
    CHECK_EQ(gort_chan_recv(ab[AB_B], &v), 1);
    CHECK_EQ(v, 1);
    CHECK_EQ(gort_chan_tryrecv(ab[AB_B], &v), -EAGAIN);
    gort_chan *u = test_mkchan(sizeof(long), 0);
    gort_chan_free(ab[AB_U]);
    ab[AB_U] = u;
    CHECK(gort_go(ab_echo, ab[AB_U]) > 0);
    CHECK(gort_go(ab_echo, ab[AB_B]) > 0);
    for (long i = 0; i < 1000; i++) {
        /* A select over the old channels, now with live waiters only; the
         * first one is the first touch of S1 since the first run. */
        long got = -1, s = i;
        gort_case cs[2] = { scase(i % 2 ? ab[AB_B] : ab[AB_U], &s), rcase(ab[AB_S1], &got) };
        CHECK_EQ(gort_select(cs, 2, 1), 0);
        if (i % 2) {
            CHECK_EQ(gort_chan_recv(ab[AB_S2], &got), 1);
        } else {
            CHECK_EQ(gort_chan_recv(ab[AB_S1], &got), 1);
        }
        CHECK_EQ(got, i);
    }
    CHECK_EQ(gort_chan_close(ab[AB_U]), 0);
    CHECK_EQ(gort_chan_close(ab[AB_B]), 0);
    test_wait_until_only_main();
}

static void abandoned_body(int procs) {
    atomic_store(&ab_parked, 0);
    ab[AB_U] = test_mkchan(sizeof(long), 0);
    ab[AB_B] = test_mkchan(sizeof(long), 1);
    ab[AB_S1] = test_mkchan(sizeof(long), 0);
    ab[AB_S2] = test_mkchan(sizeof(long), 0);
    ab[AB_T] = test_mkchan(sizeof(long), 0);
    (void)procs;
    test_run_with(1, ab_run1, NULL);

    /* The plain thread, after the run: none of the goroutines is there.
     * S1 (abandoned receivers and the select) and T (abandoned receivers
     * around a live thread) are left for the second run to find. */
    long v = 7;
    CHECK_EQ(gort_chan_trysend(ab[AB_U], &v), -EAGAIN); /* no receiver: the select is gone */
    CHECK_EQ(gort_chan_tryrecv(ab[AB_U], &v), -EAGAIN); /* no sender */
    CHECK_EQ(waiters(ab[AB_U]), 0);
    CHECK_EQ(gort_chan_close(ab[AB_U]), 0); /* wakes nobody */
    CHECK_EQ(gort_chan_recv(ab[AB_U], &v), 0);
    CHECK_EQ(gort_chan_tryrecv(ab[AB_B], &v), 1); /* the buffered value ... */
    CHECK_EQ(v, 1);
    CHECK_EQ(gort_chan_trysend(ab[AB_B], &v), 0); /* ... and room, not a sender */
    CHECK_EQ(gort_chan_trysend(ab[AB_B], &v), -EAGAIN);
    CHECK_EQ(gort_chan_close(ab[AB_S2]), 0);
    gort_chan_free(ab[AB_S2]);
    ab[AB_S2] = test_mkchan(sizeof(long), 0);

    test_run_with(procs, ab_run2, NULL);
    for (int i = 0; i < AB_N; i++)
        gort_chan_free(ab[i]);
}

TEST(chan_abandoned_waiters_skipped) {
    abandoned_body(1);
    abandoned_body(2);
}

/* A thread is a live waiter whatever run comes and goes: freeing its
 * channel is fatal, as for a goroutine of a live run. */
static gort_chan *tf_c;

static void *tf_thread(void *arg) {
    (void)arg;
    gort_chan_recv(tf_c, NULL);
    return NULL;
}

static void tf_run(void *arg) {
    (void)arg;
    CHECK(gort_go(ab_receiver, (void *)(intptr_t)AB_T) > 0); /* abandoned */
    wait_for_waiters(tf_c, 2);
}

static void thread_waiter_free_child(void) {
    tf_c = test_mkchan(sizeof(long), 0);
    ab[AB_T] = tf_c;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, tf_thread, NULL) == 0);
    wait_for_waiters(tf_c, 1);
    test_run_with(1, tf_run, NULL);
    CHECK_EQ(waiters(tf_c), 1); /* the goroutine is gone, the thread is not */
    gort_chan_free(tf_c);
}

TEST(chan_free_with_thread_waiter_fatal) {
    CHECK(test_expect_death(thread_waiter_free_child, "gort_chan_free"));
}

/* ---- 3. the element size limit -------------------------------------------------- */

TEST(chan_make_elem_size_limit) {
    size_t bad[] = {
        65537, 65536 + 4096, (size_t)1 << 20, (size_t)1 << 32, SIZE_MAX / 2, SIZE_MAX
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (size_t cap = 0; cap < 3; cap++) {
            gort_chan *c = (gort_chan *)&c;
            CHECK_EQ(gort_chan_make(&c, bad[i], cap), -EINVAL);
            CHECK(c == NULL);
        }
    }
    /* 64 KiB itself works, unbuffered and buffered, and carries a value. */
    for (size_t cap = 0; cap < 3; cap += 2) {
        gort_chan *c = test_mkchan(65536, cap);
        if (cap) {
            unsigned char *v = malloc(65536), *w = malloc(65536);
            CHECK(v && w);
            for (int j = 0; j < 65536; j++)
                v[j] = (unsigned char)(j * 7);
            CHECK_EQ(gort_chan_send(c, v), 0);
            CHECK_EQ(gort_chan_recv(c, w), 1);
            CHECK(memcmp(v, w, 65536) == 0);
            free(v);
            free(w);
        }
        gort_chan_free(c);
    }
}
