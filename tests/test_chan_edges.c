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

static gort_case rcase(gort_chan *c, void *elem)
{
    return (gort_case){.chan = c, .op = GORT_RECV, .elem = elem, .ok = -1};
}

static gort_case scase(gort_chan *c, void *elem)
{
    return (gort_case){.chan = c, .op = GORT_SEND, .elem = elem, .ok = -1};
}

/* Lets others run: a yield on a goroutine, sched_yield on a plain thread. */
static void pause_once(void)
{
    if (gort_id() != 0)
        gort_yield();
    else
        sched_yield();
}

/* Waiters on c's queues: goroutines (live or not) and threads. */
static int waiters(gort_chan *c)
{
    int n = 0;
    gort__lock(&c->lock);
    for (sudog *s = c->recvq.first; s; s = s->next)
        n++;
    for (sudog *s = c->sendq.first; s; s = s->next)
        n++;
    gort__unlock(&c->lock);
    return n;
}

/* Returns once c's queues hold at least n waiters, all from the live run
 * (or threads): only for channels with no abandoned waiter. Bounded by a
 * generous minute, so a bug fails here instead of hanging. */
static void wait_for_waiters(gort_chan *c, int n)
{
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
    V_SEND_C_RECV_D,      /* {send c, recv d}; main polls tryrecv(c) */
    V_SEND_C_SEND_C,      /* {send c, send c}; main polls tryrecv(c) */
    V_SEND_C_RECV_C,      /* {send c, recv c}; main polls tryrecv(c) */
    V_SEND_C_RECV_D_RECV_C, /* {send c, recv d, recv c}; tryrecv(c) */
    V_SEND_C_RECV_D_BLOCK,  /* {send c, recv d}; main's blocking recv(c) */
    V_RECV_C_BUFFERED,    /* {recv c, recv d}, c has room; main sends on c */
    V_RECV_C_CLOSE,       /* {recv c, recv d}; main closes c */
    V_SEND_C_CLOSE,       /* {send c, recv d}; main closes c */
    V_SEND_RECV_C_CLOSE,  /* {send c, recv c, recv d}; main closes c */
    V_COUNT
};

typedef struct uaf_round {
    int variant;
    gort_chan *c, *d, *res;
} uaf_round;

static void uaf_selector(void *arg)
{
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
    long res[3] = {k, k >= 0 ? cs[k].ok : -1, r1};
    CHECK_EQ(gort_chan_send(u->res, res), 0);
}

static void uaf_one(int variant)
{
    uaf_round u = {.variant = variant};
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
    case V_SEND_C_RECV_D_BLOCK:
        CHECK_EQ(gort_chan_recv(u.c, &v), 1);
        break;
    case V_RECV_C_BUFFERED:
        wait_for_waiters(u.c, 1);
        v = 77;
        CHECK_EQ(gort_chan_send(u.c, &v), 0);   /* straight to the selector */
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
        CHECK_EQ(res[2], 0);   /* zeroed by the closed receive */
        break;
    case V_SEND_C_CLOSE:
        CHECK_EQ(res[0], -EPIPE);
        break;
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

static void uaf_main(void *arg)
{
    (void)arg;
    long rounds = test_scale(10000, 2000, 500);
    for (long r = 0; r < rounds; r++)
        for (int v = 0; v < V_COUNT; v++)
            uaf_one(v);
    test_wait_until_only_main();
}

TEST(select_matched_channel_freed_at_once)
{
    test_run_with(1, uaf_main, NULL);
    test_run_with(2, uaf_main, NULL);
    test_run_with(4, uaf_main, NULL);
}
