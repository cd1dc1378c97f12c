/* Black-box tests of gort_select (Go's select statement). */
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

static gort_case rcase(gort_chan *c, void *elem)
{
    return (gort_case){.chan = c, .op = GORT_RECV, .elem = elem, .ok = -1};
}

static gort_case scase(gort_chan *c, void *elem)
{
    return (gort_case){.chan = c, .op = GORT_SEND, .elem = elem, .ok = -1};
}

/* ---- picks a ready case; -EAGAIN; NULL channels --------------------------------- */

static void ready_main(void *arg)
{
    (void)arg;
    gort_chan *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = test_mkchan(sizeof(int), 1);
    int v[3] = {0, 0, 0};
    gort_case cs[3] = {rcase(c[0], &v[0]), rcase(c[1], &v[1]), rcase(c[2], &v[2])};

    /* Nothing ready: -EAGAIN, nothing touched. */
    CHECK_EQ(gort_select(cs, 3, 0), -EAGAIN);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(v[i], 0);

    for (int round = 0; round < 30; round++) {
        int k = round % 3, x = 100 + round;
        CHECK_EQ(gort_chan_send(c[k], &x), 0);
        int r = gort_select(cs, 3, round % 2);
        CHECK_EQ(r, k);
        CHECK_EQ(cs[k].ok, 1);
        CHECK_EQ(v[k], x);
        CHECK_EQ(gort_chan_len(c[k]), 0);
        CHECK_EQ(gort_select(cs, 3, 0), -EAGAIN);
    }

    /* A send case with room is ready; a full one is not. */
    int x = 5;
    CHECK_EQ(gort_chan_send(c[0], &x), 0);
    CHECK_EQ(gort_chan_send(c[2], &x), 0);
    int s = 9;
    gort_case ss[3] = {scase(c[0], &s), scase(c[1], &s), scase(c[2], &s)};
    CHECK_EQ(gort_select(ss, 3, 1), 1);
    CHECK_EQ(gort_chan_len(c[1]), 1);
    CHECK_EQ(gort_select(ss, 3, 0), -EAGAIN);
    CHECK_EQ(gort_chan_recv(c[1], &x), 1);
    CHECK_EQ(x, 9);

    /* Mixed: the only ready case is a receive. */
    gort_case mix[2] = {scase(c[0], &s), rcase(c[2], &v[2])};
    v[2] = 0;
    CHECK_EQ(gort_select(mix, 2, 1), 1);
    CHECK_EQ(v[2], 5);
    CHECK_EQ(mix[1].ok, 1);
    for (int i = 0; i < 3; i++)
        gort_chan_free(c[i]);
}

TEST(select_picks_ready_case)
{
    test_run_with(1, ready_main, NULL);
}

static void null_main(void *arg)
{
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int), 1);
    int v = 0, w = 0;
    /* All NULL (both ops), non-blocking: -EAGAIN. */
    gort_case nul[3] = {rcase(NULL, &v), scase(NULL, &w), rcase(NULL, NULL)};
    CHECK_EQ(gort_select(nul, 3, 0), -EAGAIN);
    CHECK_EQ(gort_select(nul, 0, 0), -EAGAIN);
    CHECK_EQ(gort_select(NULL, 0, 0), -EAGAIN);
    /* A NULL channel's case never fires, even when everything else is. */
    for (int i = 0; i < 1000; i++) {
        int x = i;
        CHECK_EQ(gort_chan_send(c, &x), 0);
        gort_case cs[4] = {rcase(NULL, &w), scase(NULL, &w), rcase(c, &v), rcase(NULL, &w)};
        CHECK_EQ(gort_select(cs, 4, 1), 2);
        CHECK_EQ(v, i);
        gort_case cs2[3] = {scase(NULL, &w), scase(c, &x), rcase(NULL, &w)};
        CHECK_EQ(gort_select(cs2, 3, 1), 1);
        CHECK_EQ(gort_chan_recv(c, &v), 1);
        CHECK_EQ(v, i);
    }
    gort_chan_free(c);
}

TEST(select_null_channels_never_fire)
{
    test_run_with(1, null_main, NULL);
}

/* A blocking select with NULL cases and one real channel is woken by it. */
static atomic_int nb_entered;

static void nb_selector(void *arg)
{
    gort_chan *c = arg;
    int v = 0, w = 0;
    gort_case cs[3] = {rcase(NULL, &w), rcase(c, &v), scase(NULL, &w)};
    atomic_store(&nb_entered, 1);
    CHECK_EQ(gort_select(cs, 3, 1), 1);
    CHECK_EQ(v, 31);
    CHECK_EQ(cs[1].ok, 1);
}

static void null_block_main(void *arg)
{
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int), 0);
    CHECK(gort_go(nb_selector, c) > 0);
    yield_until(&nb_entered, 1);
    int v = 31;
    CHECK_EQ(gort_chan_send(c, &v), 0);
    for (int i = 0; i < 100000 && gort_num_goroutines() > 1; i++)
        gort_yield();
    CHECK_EQ(gort_num_goroutines(), 1);
    gort_chan_free(c);
}

TEST(select_null_and_real_blocking)
{
    test_run_with(1, null_block_main, NULL);
    atomic_store(&nb_entered, 0);
    test_run_with(2, null_block_main, NULL);
}

/* ---- the same channel twice ------------------------------------------------------ */

static atomic_int tw_entered;

static void tw_sender(void *arg)
{
    gort_chan *c = arg;
    int v = 55;
    atomic_fetch_add(&tw_entered, 1);
    CHECK_EQ(gort_chan_send(c, &v), 0);
}

static void tw_selector_sr(void *arg)
{
    /* Blocked select with a send and a receive case on one unbuffered channel. */
    gort_chan *c = arg;
    int s = 66, r = 0;
    gort_case cs[2] = {scase(c, &s), rcase(c, &r)};
    atomic_fetch_add(&tw_entered, 1);
    CHECK_EQ(gort_select(cs, 2, 1), 0); /* main receives */
    atomic_fetch_add(&tw_entered, 1);
    CHECK_EQ(gort_select(cs, 2, 1), 1); /* main sends */
    CHECK_EQ(r, 77);
    CHECK_EQ(cs[1].ok, 1);
}

static void twice_main(void *arg)
{
    (void)arg;
    /* Send and receive on one buffered channel of cap 1. */
    gort_chan *c = test_mkchan(sizeof(int), 1);
    int s = 1, r = 0;
    gort_case sr[2] = {scase(c, &s), rcase(c, &r)};
    for (int i = 0; i < 100; i++) {
        s = i;
        CHECK_EQ(gort_select(sr, 2, 1), 0); /* empty: only the send is ready */
        CHECK_EQ(gort_chan_len(c), 1);
        CHECK_EQ(gort_select(sr, 2, 1), 1); /* full: only the receive */
        CHECK_EQ(r, i);
        CHECK_EQ(sr[1].ok, 1);
        CHECK_EQ(gort_chan_len(c), 0);
    }
    gort_chan_free(c);

    /* Two receive cases on one channel: FIFO order kept, both indices used. */
    c = test_mkchan(sizeof(int), 2);
    int a = 0, b = 0, hits[2] = {0, 0};
    gort_case rr[2] = {rcase(c, &a), rcase(c, &b)};
    for (int i = 0; i < 1000; i++) {
        int x = 2 * i, y = 2 * i + 1;
        CHECK_EQ(gort_chan_send(c, &x), 0);
        CHECK_EQ(gort_chan_send(c, &y), 0);
        int k = gort_select(rr, 2, 1);
        CHECK(k == 0 || k == 1);
        CHECK_EQ(k ? b : a, x);
        hits[k]++;
        k = gort_select(rr, 2, 1);
        CHECK(k == 0 || k == 1);
        CHECK_EQ(k ? b : a, y);
        hits[k]++;
        CHECK_EQ(gort_select(rr, 2, 0), -EAGAIN);
    }
    CHECK(hits[0] > 0 && hits[1] > 0); /* each fails with probability 2^-2000 */
    gort_chan_free(c);

    /* Two receive cases on one unbuffered channel, blocked, woken by a sender. */
    c = test_mkchan(sizeof(int), 0);
    atomic_store(&tw_entered, 0);
    CHECK(gort_go(tw_sender, c) > 0);
    yield_until(&tw_entered, 1);
    a = b = 0;
    rr[0] = rcase(c, &a);
    rr[1] = rcase(c, &b);
    int k = gort_select(rr, 2, 1);
    CHECK(k == 0 || k == 1);
    CHECK_EQ(k ? b : a, 55);
    CHECK_EQ(rr[k].ok, 1);
    /* The case that did not fire left no waiter behind on c. */
    int probe = 0;
    CHECK_EQ(gort_chan_trysend(c, &probe), -EAGAIN);

    /* Send and receive case on one unbuffered channel: a select does not
     * match with itself. */
    sr[0] = scase(c, &s);
    sr[1] = rcase(c, &r);
    CHECK_EQ(gort_select(sr, 2, 0), -EAGAIN);
    atomic_store(&tw_entered, 0);
    CHECK(gort_go(tw_selector_sr, c) > 0);
    yield_until(&tw_entered, 1);
    int got = 0;
    CHECK_EQ(gort_chan_recv(c, &got), 1);
    CHECK_EQ(got, 66);
    yield_until(&tw_entered, 2);
    int x = 77;
    CHECK_EQ(gort_chan_send(c, &x), 0);
    for (int i = 0; i < 100000 && gort_num_goroutines() > 1; i++)
        gort_yield();
    CHECK_EQ(gort_num_goroutines(), 1);
    /* Nobody is left waiting on c. */
    CHECK_EQ(gort_chan_trysend(c, &x), -EAGAIN);
    CHECK_EQ(gort_chan_tryrecv(c, &x), -EAGAIN);
    gort_chan_free(c);
}

TEST(select_same_channel_twice)
{
    test_run_with(1, twice_main, NULL);
    test_run_with(2, twice_main, NULL);
}

/* ---- fairness ------------------------------------------------------------------ */

static void fair_main(void *arg)
{
    (void)arg;
    gort_chan *a = test_mkchan(sizeof(int), 1), *b = test_mkchan(sizeof(int), 1);
    int x = 1, va, vb, hits[2] = {0, 0};
    CHECK_EQ(gort_chan_send(a, &x), 0);
    CHECK_EQ(gort_chan_send(b, &x), 0);
    gort_case cs[2] = {rcase(a, &va), rcase(b, &vb)};
    for (int i = 0; i < 10000; i++) {
        int k = gort_select(cs, 2, 1);
        CHECK(k == 0 || k == 1);
        hits[k & 1]++;
        CHECK_EQ(gort_chan_send(k ? b : a, &x), 0); /* both always ready */
    }
    /* Binomial sd is 50: 40..60 % is 20 sd. */
    if (hits[0] < 4000 || hits[0] > 6000)
        fprintf(stderr, "select fairness: %d / %d\n", hits[0], hits[1]);
    CHECK(hits[0] >= 4000 && hits[0] <= 6000);

    /* Two send cases with room, too. */
    gort_chan *e = test_mkchan(sizeof(int), 1), *f = test_mkchan(sizeof(int), 1);
    gort_case ss[2] = {scase(e, &x), scase(f, &x)};
    hits[0] = hits[1] = 0;
    for (int i = 0; i < 10000; i++) {
        int k = gort_select(ss, 2, 0);
        CHECK(k == 0 || k == 1);
        hits[k & 1]++;
        CHECK_EQ(gort_chan_recv(k ? f : e, &va), 1);
    }
    CHECK(hits[0] >= 4000 && hits[0] <= 6000);
    gort_chan_free(a);
    gort_chan_free(b);
    gort_chan_free(e);
    gort_chan_free(f);
}

TEST(select_fairness)
{
    test_run_with(1, fair_main, NULL);
}

/* ---- closed channels ----------------------------------------------------------- */

typedef struct elem32 {
    uint64_t w[4];
} elem32;

static void closed_main(void *arg)
{
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(elem32), 2), *o = test_mkchan(sizeof(elem32), 0);
    elem32 e, f;
    memset(&e, 0x5a, sizeof e);
    CHECK_EQ(gort_chan_send(c, &e), 0);
    CHECK_EQ(gort_chan_close(c), 0);
    gort_case cs[2] = {rcase(o, &f), rcase(c, &e)};
    /* Buffered value first, with ok == 1. */
    memset(&e, 0, sizeof e);
    CHECK_EQ(gort_select(cs, 2, 1), 1);
    CHECK_EQ(cs[1].ok, 1);
    CHECK(e.w[0] == 0x5a5a5a5a5a5a5a5aull);
    /* Then ok == 0 and a zeroed element, every time. */
    for (int i = 0; i < 10; i++) {
        memset(&e, 0xab, sizeof e);
        cs[1].ok = -1;
        CHECK_EQ(gort_select(cs, 2, i % 2), 1);
        CHECK_EQ(cs[1].ok, 0);
        for (int j = 0; j < 4; j++)
            CHECK_EQ(e.w[j], 0);
    }
    /* Receive case with NULL elem on a closed channel. */
    gort_case cn[1] = {rcase(c, NULL)};
    CHECK_EQ(gort_select(cn, 1, 0), 0);
    CHECK_EQ(cn[0].ok, 0);

    /* Send case on a closed channel: -EPIPE, whether alone or beside
     * not-ready cases. */
    gort_case sc[1] = {scase(c, &e)};
    CHECK_EQ(gort_select(sc, 1, 1), -EPIPE);
    CHECK_EQ(gort_select(sc, 1, 0), -EPIPE);
    gort_case sc2[3] = {rcase(o, &f), scase(c, &e), scase(o, &f)};
    for (int i = 0; i < 20; i++)
        CHECK_EQ(gort_select(sc2, 3, i % 2), -EPIPE);
    CHECK_EQ(gort_chan_len(c), 0);
    gort_chan_free(c);
    gort_chan_free(o);
}

TEST(select_closed_channel)
{
    test_run_with(1, closed_main, NULL);
}

/* ---- blocked select woken by a send, a receive, a close ------------------------ */

enum { NW = 4 };
static gort_chan *wk[NW];
static atomic_int wk_entered, wk_result;

static void wk_recv_selector(void *arg)
{
    (void)arg;
    elem32 e[NW];
    gort_case cs[NW];
    for (int i = 0; i < NW; i++) {
        memset(&e[i], 0x77, sizeof e[i]);
        cs[i] = rcase(wk[i], &e[i]);
    }
    atomic_fetch_add(&wk_entered, 1);
    int k = gort_select(cs, NW, 1);
    CHECK(k >= 0 && k < NW);
    if (cs[k].ok == 1) {
        CHECK(e[k].w[0] == (uint64_t)(1000 + k));
    } else {
        CHECK_EQ(cs[k].ok, 0);
        for (int j = 0; j < 4; j++)
            CHECK_EQ(e[k].w[j], 0);
    }
    /* The other cases' elements were not touched. */
    for (int i = 0; i < NW; i++)
        if (i != k)
            CHECK(e[i].w[0] == 0x7777777777777777ull);
    atomic_store(&wk_result, cs[k].ok == 1 ? 100 + k : 200 + k);
}

static void wk_send_selector(void *arg)
{
    (void)arg;
    elem32 e[NW];
    gort_case cs[NW];
    for (int i = 0; i < NW; i++) {
        memset(&e[i], 0, sizeof e[i]);
        e[i].w[0] = (uint64_t)(2000 + i);
        cs[i] = scase(wk[i], &e[i]);
    }
    atomic_fetch_add(&wk_entered, 1);
    int k = gort_select(cs, NW, 1);
    atomic_store(&wk_result, k >= 0 ? 100 + k : k);
}

static void wait_result(void)
{
    for (long i = 0; i < 100000000L && atomic_load(&wk_result) == 0; i++)
        gort_yield();
}

static void check_no_waiters(void)
{
    /* Unbuffered channels with nobody waiting: both try ops would block. */
    elem32 e = {{0}};
    for (int i = 0; i < NW; i++) {
        CHECK_EQ(gort_chan_trysend(wk[i], &e), -EAGAIN);
        CHECK_EQ(gort_chan_tryrecv(wk[i], &e), -EAGAIN);
    }
}

static void woken_main(void *arg)
{
    int procs = *(int *)arg;
    for (int round = 0; round < 3 * NW; round++) {
        int k = round % NW;
        for (int i = 0; i < NW; i++)
            wk[i] = test_mkchan(sizeof(elem32), 0);
        elem32 e;
        memset(&e, 0, sizeof e);

        /* Receive cases, woken by a send on channel k. */
        atomic_store(&wk_entered, 0);
        atomic_store(&wk_result, 0);
        CHECK(gort_go(wk_recv_selector, NULL) > 0);
        yield_until(&wk_entered, 1);
        if (procs == 1) {
            yield_n(10);
            CHECK_EQ(atomic_load(&wk_result), 0);
        }
        e.w[0] = (uint64_t)(1000 + k);
        CHECK_EQ(gort_chan_send(wk[k], &e), 0);
        wait_result();
        CHECK_EQ(atomic_load(&wk_result), 100 + k);
        check_no_waiters();

        /* Send cases, woken by a receive on channel k. */
        atomic_store(&wk_entered, 0);
        atomic_store(&wk_result, 0);
        CHECK(gort_go(wk_send_selector, NULL) > 0);
        yield_until(&wk_entered, 1);
        if (procs == 1) {
            yield_n(10);
            CHECK_EQ(atomic_load(&wk_result), 0);
        }
        CHECK_EQ(gort_chan_recv(wk[k], &e), 1);
        CHECK(e.w[0] == (uint64_t)(2000 + k));
        wait_result();
        CHECK_EQ(atomic_load(&wk_result), 100 + k);
        check_no_waiters();

        /* Receive cases, woken by a close of channel k. */
        atomic_store(&wk_entered, 0);
        atomic_store(&wk_result, 0);
        CHECK(gort_go(wk_recv_selector, NULL) > 0);
        yield_until(&wk_entered, 1);
        CHECK_EQ(gort_chan_close(wk[k]), 0);
        wait_result();
        CHECK_EQ(atomic_load(&wk_result), 200 + k);
        for (int i = 0; i < NW; i++)
            if (i != k) {
                CHECK_EQ(gort_chan_trysend(wk[i], &e), -EAGAIN);
                CHECK_EQ(gort_chan_tryrecv(wk[i], &e), -EAGAIN);
            }

        /* Send cases, woken by a close (on a channel that is not yet closed). */
        int k2 = (k + 1) % NW;
        atomic_store(&wk_entered, 0);
        atomic_store(&wk_result, 0);
        /* Replace the closed channel so the select blocks. */
        gort_chan_free(wk[k]);
        wk[k] = test_mkchan(sizeof(elem32), 0);
        CHECK(gort_go(wk_send_selector, NULL) > 0);
        yield_until(&wk_entered, 1);
        CHECK_EQ(gort_chan_close(wk[k2]), 0);
        wait_result();
        CHECK_EQ(atomic_load(&wk_result), -EPIPE);
        for (int i = 0; i < NW; i++)
            if (i != k2) {
                CHECK_EQ(gort_chan_trysend(wk[i], &e), -EAGAIN);
                CHECK_EQ(gort_chan_tryrecv(wk[i], &e), -EAGAIN);
            }
        for (int i = 0; i < NW; i++)
            gort_chan_free(wk[i]);
    }
}

TEST(select_blocked_woken_by_send_recv_close)
{
    int procs = 1;
    test_run_with(1, woken_main, &procs);
    procs = 2;
    test_run_with(2, woken_main, &procs);
}

/* ---- stale sudogs: a select re-enqueued many times ----------------------------- */

enum { NST = 8 };
static gort_chan *st_c[NST], *st_ack, *st_go;

static void st_selector(void *arg)
{
    long rounds = (long)(intptr_t)arg;
    for (long r = 0; r < rounds; r++) {
        long v[NST];
        gort_case cs[NST];
        for (int i = 0; i < NST; i++)
            cs[i] = rcase(st_c[i], &v[i]);
        int k = gort_select(cs, NST, 1);
        CHECK_EQ(k, (int)(r * 5 % NST));
        CHECK_EQ(v[k], r);
        CHECK_EQ(gort_chan_send(st_ack, &r), 0);
        CHECK_EQ(gort_chan_recv(st_go, NULL), 1);
    }
}

static void stale_main(void *arg)
{
    (void)arg;
    long rounds = test_scale(10000, 3000, 1000);
    for (int i = 0; i < NST; i++)
        st_c[i] = test_mkchan(sizeof(long), 0);
    st_ack = test_mkchan(sizeof(long), 0);
    st_go = test_mkchan(0, 0);
    CHECK(gort_go(st_selector, (void *)(intptr_t)rounds) > 0);
    for (long r = 0; r < rounds; r++) {
        CHECK_EQ(gort_chan_send(st_c[r * 5 % NST], &r), 0);
        long a;
        CHECK_EQ(gort_chan_recv(st_ack, &a), 1);
        CHECK_EQ(a, r);
        /* The selector is between its select and its next one: no channel
         * may still hold a (stale) waiter of it. */
        for (int i = 0; i < NST; i++)
            CHECK_EQ(gort_chan_trysend(st_c[i], &r), -EAGAIN);
        CHECK_EQ(gort_chan_send(st_go, NULL), 0);
    }
    for (int i = 0; i < NST; i++)
        gort_chan_free(st_c[i]);
    gort_chan_free(st_ack);
    gort_chan_free(st_go);
}

TEST(select_stale_waiters_removed)
{
    test_run_with(1, stale_main, NULL);
    test_run_with(2, stale_main, NULL);
    test_run_with(4, stale_main, NULL);
}

/* Two senders race for one select waiting on both of their channels: exactly
 * one is taken, the other stays blocked and is received by main. */
static gort_chan *duo_a, *duo_b, *duo_res;
static gort_waitgroup duo_wg;

static void duo_selector(void *arg)
{
    (void)arg;
    long va = -1, vb = -1;
    gort_case cs[2] = {rcase(duo_a, &va), rcase(duo_b, &vb)};
    int k = gort_select(cs, 2, 1);
    CHECK(k == 0 || k == 1);
    long res[2] = {k, k ? vb : va};
    CHECK_EQ(gort_chan_send(duo_res, res), 0);
}

static void duo_sender(void *arg)
{
    long v = (long)(intptr_t)arg;
    CHECK_EQ(gort_chan_send(v == 1 ? duo_a : duo_b, &v), 0);
    gort_wg_done(&duo_wg);
}

static void duo_main(void *arg)
{
    (void)arg;
    duo_a = test_mkchan(sizeof(long), 0);
    duo_b = test_mkchan(sizeof(long), 0);
    duo_res = test_mkchan(2 * sizeof(long), 0);
    long rounds = test_scale(20000, 5000, 2000);
    for (long r = 0; r < rounds; r++) {
        gort_wg_add(&duo_wg, 2);
        CHECK(gort_go(duo_selector, NULL) > 0);
        CHECK(gort_go(duo_sender, (void *)(intptr_t)1) > 0);
        CHECK(gort_go(duo_sender, (void *)(intptr_t)2) > 0);
        long res[2];
        CHECK_EQ(gort_chan_recv(duo_res, res), 1);
        CHECK_EQ(res[1], res[0] + 1);
        /* The other sender is still there (or about to be). */
        long v;
        CHECK_EQ(gort_chan_recv(res[0] ? duo_a : duo_b, &v), 1);
        CHECK_EQ(v, res[0] ? 1 : 2);
        gort_wg_wait(&duo_wg);
        CHECK_EQ(gort_chan_tryrecv(duo_a, &v), -EAGAIN);
        CHECK_EQ(gort_chan_tryrecv(duo_b, &v), -EAGAIN);
    }
    gort_chan_free(duo_a);
    gort_chan_free(duo_b);
    gort_chan_free(duo_res);
}

TEST(select_two_senders_race_one_select)
{
    test_run_with(2, duo_main, NULL);
    test_run_with(4, duo_main, NULL);
}

/* ---- fan-in and fan-out stress ------------------------------------------------- */

typedef struct fan_cfg {
    int nchan;
    size_t cap;
    long per_chan;
} fan_cfg;

static fan_cfg fc = {.nchan = 1};
static gort_chan **fan_c;
static atomic_uchar *fan_seen;
static atomic_ulong fan_sum, fan_xor;
static atomic_long fan_count;
static gort_waitgroup fan_wg;

static uint64_t fan_value(uint64_t i) { return i * 0xD1B54A32D192ED03ull + 12345; }

static void fanin_producer(void *arg)
{
    long p = (long)(intptr_t)arg;
    for (long i = 0; i < fc.per_chan; i++) {
        uint64_t idx = (uint64_t)(p * fc.per_chan + i);
        uint64_t msg[2] = {idx, fan_value(idx)};
        CHECK_EQ(gort_chan_send(fan_c[p], msg), 0);
    }
    CHECK_EQ(gort_chan_close(fan_c[p]), 0);
}

static void fan_record(const uint64_t msg[2], uint64_t *sum, uint64_t *x)
{
    uint64_t total = (uint64_t)fc.nchan * (uint64_t)fc.per_chan;
    CHECK(msg[0] < total);
    CHECK(msg[1] == fan_value(msg[0]));
    CHECK_EQ(atomic_fetch_add(&fan_seen[msg[0]], 1), 0);
    *sum += msg[1];
    *x ^= msg[1];
}

static void fan_check(void)
{
    uint64_t total = (uint64_t)fc.nchan * (uint64_t)fc.per_chan, sum = 0, x = 0;
    for (uint64_t i = 0; i < total; i++) {
        sum += fan_value(i);
        x ^= fan_value(i);
        if (atomic_load(&fan_seen[i]) != 1)
            CHECK_EQ(atomic_load(&fan_seen[i]), 1);
    }
    CHECK_EQ(atomic_load(&fan_count), total);
    CHECK(atomic_load(&fan_sum) == sum);
    CHECK(atomic_load(&fan_xor) == x);
}

static void fan_setup(void)
{
    uint64_t total = (uint64_t)fc.nchan * (uint64_t)fc.per_chan;
    fan_c = calloc((size_t)(unsigned)fc.nchan, sizeof *fan_c);
    for (int i = 0; i < fc.nchan; i++)
        fan_c[i] = test_mkchan(2 * sizeof(uint64_t), fc.cap);
    fan_seen = calloc(total, 1);
    atomic_store(&fan_sum, 0);
    atomic_store(&fan_xor, 0);
    atomic_store(&fan_count, 0);
}

static void fan_teardown(void)
{
    for (int i = 0; i < fc.nchan; i++)
        gort_chan_free(fan_c[i]);
    free(fan_c);
    free(fan_seen);
}

static void fanin_main(void *arg)
{
    (void)arg;
    fan_setup();
    for (int i = 0; i < fc.nchan; i++)
        CHECK(gort_go(fanin_producer, (void *)(intptr_t)i) > 0);
    gort_case *cs = calloc((size_t)(unsigned)fc.nchan, sizeof *cs);
    uint64_t *msgs = calloc((size_t)(unsigned)fc.nchan * 2, sizeof *msgs);
    for (int i = 0; i < fc.nchan; i++)
        cs[i] = rcase(fan_c[i], &msgs[2 * i]);
    int open = fc.nchan;
    uint64_t sum = 0, x = 0;
    long n = 0;
    long *next = calloc((size_t)(unsigned)fc.nchan, sizeof *next);
    while (open > 0) {
        int k = gort_select(cs, fc.nchan, 1);
        CHECK(k >= 0 && k < fc.nchan);
        if (cs[k].ok == 0) {
            cs[k].chan = NULL; /* closed: as setting a Go channel to nil */
            open--;
            continue;
        }
        CHECK_EQ(cs[k].ok, 1);
        /* Values on one channel arrive in order. */
        CHECK_EQ(msgs[2 * k], (uint64_t)(k * fc.per_chan + next[k]));
        next[k]++;
        fan_record(&msgs[2 * k], &sum, &x);
        n++;
    }
    atomic_store(&fan_sum, sum);
    atomic_store(&fan_xor, x);
    atomic_store(&fan_count, n);
    fan_check();
    /* Non-blocking select over only NULL channels now. */
    CHECK_EQ(gort_select(cs, fc.nchan, 0), -EAGAIN);
    for (int i = 0; i < fc.nchan; i++)
        CHECK_EQ(next[i], fc.per_chan);
    free(next);
    free(cs);
    free(msgs);
    fan_teardown();
}

static void fanout_consumer(void *arg)
{
    gort_chan *c = arg;
    uint64_t msg[2], sum = 0, x = 0;
    long n = 0;
    while (gort_chan_recv(c, msg) == 1) {
        fan_record(msg, &sum, &x);
        n++;
    }
    atomic_fetch_add(&fan_sum, sum);
    atomic_fetch_xor(&fan_xor, x);
    atomic_fetch_add(&fan_count, n);
    gort_wg_done(&fan_wg);
}

static void fanout_main(void *arg)
{
    (void)arg;
    fan_setup();
    gort_wg_add(&fan_wg, fc.nchan);
    for (int i = 0; i < fc.nchan; i++)
        CHECK(gort_go(fanout_consumer, fan_c[i]) > 0);
    uint64_t total = (uint64_t)fc.nchan * (uint64_t)fc.per_chan;
    gort_case *cs = calloc((size_t)(unsigned)fc.nchan, sizeof *cs);
    uint64_t msg[2];
    for (int i = 0; i < fc.nchan; i++)
        cs[i] = scase(fan_c[i], msg);
    for (uint64_t idx = 0; idx < total; idx++) {
        msg[0] = idx;
        msg[1] = fan_value(idx);
        int k = gort_select(cs, fc.nchan, 1);
        CHECK(k >= 0 && k < fc.nchan);
    }
    for (int i = 0; i < fc.nchan; i++)
        CHECK_EQ(gort_chan_close(fan_c[i]), 0);
    gort_wg_wait(&fan_wg);
    fan_check();
    free(cs);
    fan_teardown();
}

TEST(select_fan_in)
{
    size_t caps[] = {0, 1, 64};
    int procs[] = {1, 2, 4};
    for (int k = 0; k < 3; k++)
        for (int p = 0; p < 3; p++) {
            fc.nchan = 16;
            fc.cap = caps[k];
            fc.per_chan = test_scale(5000, 1000, 300);
            test_run_with(procs[p], fanin_main, NULL);
        }
    /* More cases than fit in select's on-stack arrays. */
    fc.nchan = 100;
    fc.cap = 0;
    fc.per_chan = test_scale(500, 100, 30);
    test_run_with(2, fanin_main, NULL);
}

TEST(select_fan_out)
{
    size_t caps[] = {0, 1, 64};
    int procs[] = {1, 2, 4};
    for (int k = 0; k < 3; k++)
        for (int p = 0; p < 3; p++) {
            fc.nchan = 16;
            fc.cap = caps[k];
            fc.per_chan = test_scale(5000, 1000, 300);
            test_run_with(procs[p], fanout_main, NULL);
        }
    fc.nchan = 100;
    fc.cap = 0;
    fc.per_chan = test_scale(500, 100, 30);
    test_run_with(2, fanout_main, NULL);
}

/* ---- selects racing with close ------------------------------------------------- */

enum { NRC = 4 };
static gort_chan *rc_c[NRC];
static int rc_senders, rc_receivers, rc_per_sender;
static atomic_uchar *rc_ok_sent, *rc_seen;
static atomic_long rc_sent_ok, rc_received;
static atomic_int rc_senders_done;
static gort_waitgroup rc_wg;

static void rc_sender(void *arg)
{
    int s = (int)(intptr_t)arg;
    for (int i = 0; i < rc_per_sender; i++) {
        uint32_t v = (uint32_t)(s * rc_per_sender + i);
        gort_case cs[NRC];
        for (int j = 0; j < NRC; j++)
            cs[j] = scase(rc_c[j], &v);
        int k = gort_select(cs, NRC, 1);
        if (k >= 0) {
            CHECK(k < NRC);
            atomic_store(&rc_ok_sent[v], 1);
            atomic_fetch_add(&rc_sent_ok, 1);
        } else {
            CHECK_EQ(k, -EPIPE);
        }
    }
    atomic_fetch_add(&rc_senders_done, 1);
    gort_wg_done(&rc_wg);
}

static void rc_receiver(void *arg)
{
    (void)arg;
    uint32_t v[NRC];
    gort_case cs[NRC];
    for (int j = 0; j < NRC; j++)
        cs[j] = rcase(rc_c[j], &v[j]);
    int open = NRC;
    while (open > 0) {
        int k = gort_select(cs, NRC, 1);
        CHECK(k >= 0 && k < NRC);
        if (cs[k].ok == 0) {
            CHECK_EQ(v[k], 0);
            cs[k].chan = NULL;
            open--;
            continue;
        }
        CHECK(v[k] < (uint32_t)(rc_senders * rc_per_sender));
        CHECK_EQ(atomic_fetch_add(&rc_seen[v[k]], 1), 0);
        atomic_fetch_add(&rc_received, 1);
    }
    gort_wg_done(&rc_wg);
}

static void rc_closer(void *arg)
{
    long after = (long)(intptr_t)arg;
    for (int j = 0; j < NRC; j++) {
        /* A send case on a closed channel fails, so fewer values may get
         * through than planned: stop waiting once the senders are done. */
        while (atomic_load(&rc_received) < after * (j + 1) / NRC &&
               atomic_load(&rc_senders_done) < rc_senders)
            gort_yield();
        CHECK_EQ(gort_chan_close(rc_c[j]), 0);
    }
    gort_wg_done(&rc_wg);
}

static void rc_main(void *arg)
{
    size_t cap = *(size_t *)arg;
    int total = rc_senders * rc_per_sender;
    int rounds = (int)test_scale(10, 4, 2);
    for (int round = 0; round < rounds; round++) {
        for (int j = 0; j < NRC; j++)
            rc_c[j] = test_mkchan(sizeof(uint32_t), cap);
        rc_ok_sent = calloc((size_t)total, 1);
        rc_seen = calloc((size_t)total, 1);
        atomic_store(&rc_sent_ok, 0);
        atomic_store(&rc_received, 0);
        atomic_store(&rc_senders_done, 0);
        gort_wg_add(&rc_wg, rc_senders + rc_receivers + 1);
        long after = (long)total * round / rounds;
        CHECK(gort_go(rc_closer, (void *)(intptr_t)after) > 0);
        for (int i = 0; i < rc_receivers; i++)
            CHECK(gort_go(rc_receiver, NULL) > 0);
        for (int i = 0; i < rc_senders; i++)
            CHECK(gort_go(rc_sender, (void *)(intptr_t)i) > 0);
        gort_wg_wait(&rc_wg);
        CHECK_EQ(atomic_load(&rc_received), atomic_load(&rc_sent_ok));
        for (int v = 0; v < total; v++)
            if (atomic_load(&rc_seen[v]) != atomic_load(&rc_ok_sent[v]))
                CHECK_EQ(atomic_load(&rc_seen[v]), atomic_load(&rc_ok_sent[v]));
        for (int j = 0; j < NRC; j++) {
            CHECK_EQ(gort_chan_len(rc_c[j]), 0);
            gort_chan_free(rc_c[j]);
        }
        free(rc_ok_sent);
        free(rc_seen);
    }
}

TEST(select_races_with_close)
{
    size_t caps[] = {0, 1, 8};
    int procs[] = {1, 2, 4};
    for (int k = 0; k < 3; k++)
        for (int p = 0; p < 3; p++) {
            rc_senders = 16;
            rc_receivers = 4;
            rc_per_sender = (int)test_scale(2000, 500, 150);
            test_run_with(procs[p], rc_main, &caps[k]);
        }
}

/* ---- -EPERM outside a goroutine; -EINVAL ---------------------------------------- */

static void *foreign_select(void *p)
{
    gort_chan *c = p;
    int v = 0;
    gort_case cs[1] = {rcase(c, &v)};
    CHECK_EQ(gort_select(cs, 1, 0), -EPERM);
    CHECK_EQ(gort_select(cs, 1, 1), -EPERM);
    return NULL;
}

static void eperm_main(void *arg)
{
    gort_chan *c = arg;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, foreign_select, c), 0);
    gort_syscall_enter();
    CHECK_EQ(pthread_join(t, NULL), 0);
    gort_syscall_exit();
    /* A goroutine may, of course. */
    int v = 0;
    gort_case cs[1] = {rcase(c, &v)};
    CHECK_EQ(gort_select(cs, 1, 0), 0);
    CHECK_EQ(v, 3);
}

TEST(select_outside_goroutine_eperm)
{
    gort_chan *c = test_mkchan(sizeof(int), 1);
    int v = 3;
    CHECK_EQ(gort_chan_send(c, &v), 0);
    gort_case cs[1] = {rcase(c, &v)};
    CHECK_EQ(gort_select(cs, 1, 0), -EPERM);
    CHECK_EQ(gort_select(cs, 1, 1), -EPERM);
    CHECK_EQ(gort_chan_len(c), 1); /* nothing received */
    test_run_with(2, eperm_main, c);
    gort_chan_free(c);
}

static void einval_main(void *arg)
{
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int), 1);
    int v = 0;
    gort_case bad_op[1] = {{.chan = c, .op = 0, .elem = &v}};
    CHECK_EQ(gort_select(bad_op, 1, 0), -EINVAL);
    gort_case bad_elem[1] = {scase(c, NULL)};
    CHECK_EQ(gort_select(bad_elem, 1, 0), -EINVAL);
    CHECK_EQ(gort_select(NULL, 1, 0), -EINVAL);
    CHECK_EQ(gort_select(bad_op, -1, 0), -EINVAL);
    CHECK_EQ(gort_chan_len(c), 0);
    gort_chan_free(c);
}

TEST(select_einval)
{
    test_run_with(1, einval_main, NULL);
}

/* ---- many cases on one channel (past select's on-stack arrays) ------------------ */

enum { NMANY = 100 };
static atomic_int many_entered;

static void many_sender(void *arg)
{
    gort_chan *c = arg;
    int v = 4242;
    atomic_fetch_add(&many_entered, 1);
    CHECK_EQ(gort_chan_send(c, &v), 0);
}

static void many_same_main(void *arg)
{
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int), 3);
    int vals[NMANY];
    gort_case cs[NMANY];
    for (int i = 0; i < NMANY; i++)
        cs[i] = rcase(c, &vals[i]);
    CHECK_EQ(gort_select(cs, NMANY, 0), -EAGAIN);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(gort_chan_send(c, &i), 0);
    for (int i = 0; i < 3; i++) {
        int k = gort_select(cs, NMANY, 1);
        CHECK(k >= 0 && k < NMANY);
        CHECK_EQ(vals[k], i);
        CHECK_EQ(cs[k].ok, 1);
    }
    CHECK_EQ(gort_select(cs, NMANY, 0), -EAGAIN);
    gort_chan_free(c);

    /* Unbuffered, blocked with 100 sudogs on one channel, woken by a sender:
     * afterwards not one is left. */
    c = test_mkchan(sizeof(int), 0);
    for (int i = 0; i < NMANY; i++)
        cs[i] = rcase(c, &vals[i]);
    for (int round = 0; round < 20; round++) {
        atomic_store(&many_entered, 0);
        CHECK(gort_go(many_sender, c) > 0);
        int k = gort_select(cs, NMANY, 1);
        CHECK(k >= 0 && k < NMANY);
        CHECK_EQ(vals[k], 4242);
        for (int i = 0; i < 100000 && gort_num_goroutines() > 1; i++)
            gort_yield();
        int probe = 0;
        CHECK_EQ(gort_chan_trysend(c, &probe), -EAGAIN);
        CHECK_EQ(gort_chan_tryrecv(c, &probe), -EAGAIN);
    }
    gort_chan_free(c);
}

TEST(select_many_cases_one_channel)
{
    test_run_with(1, many_same_main, NULL);
    test_run_with(2, many_same_main, NULL);
}
