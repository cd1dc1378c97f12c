/* Black-box tests of gort_select (Go's select statement): which case fires,
 * NULL and closed channels, blocking and waking, fairness, errors. */
#define _GNU_SOURCE
#include <gort.h>
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

/* ---- picks a ready case; -EAGAIN; NULL channels --------------------------------- */

static void ready_main(void *arg) {
    (void)arg;
    gort_chan *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = test_mkchan(sizeof(int), 1);
    int v[3] = { 0, 0, 0 };
    gort_case cs[3] = { test_rcase(c[0], &v[0]), test_rcase(c[1], &v[1]), test_rcase(c[2], &v[2]) };

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
    gort_case ss[3] = { test_scase(c[0], &s), test_scase(c[1], &s), test_scase(c[2], &s) };
    CHECK_EQ(gort_select(ss, 3, 1), 1);
    CHECK_EQ(gort_chan_len(c[1]), 1);
    CHECK_EQ(gort_select(ss, 3, 0), -EAGAIN);
    CHECK_EQ(gort_chan_recv(c[1], &x), 1);
    CHECK_EQ(x, 9);

    /* Mixed: the only ready case is a receive. */
    gort_case mix[2] = { test_scase(c[0], &s), test_rcase(c[2], &v[2]) };
    v[2] = 0;
    CHECK_EQ(gort_select(mix, 2, 1), 1);
    CHECK_EQ(v[2], 5);
    CHECK_EQ(mix[1].ok, 1);
    for (int i = 0; i < 3; i++)
        gort_chan_free(c[i]);
}

TEST(select_picks_ready_case) { test_run_with(1, ready_main, NULL); }

static void null_main(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int), 1);
    int v = 0, w = 0;
    /* All NULL (both ops), non-blocking: -EAGAIN. */
    gort_case nul[3] = { test_rcase(NULL, &v), test_scase(NULL, &w), test_rcase(NULL, NULL) };
    CHECK_EQ(gort_select(nul, 3, 0), -EAGAIN);
    CHECK_EQ(gort_select(nul, 0, 0), -EAGAIN);
    CHECK_EQ(gort_select(NULL, 0, 0), -EAGAIN);
    /* A NULL channel's case never fires, even when everything else is. */
    for (int i = 0; i < 1000; i++) {
        int x = i;
        CHECK_EQ(gort_chan_send(c, &x), 0);
        gort_case cs[4] = { test_rcase(NULL, &w), test_scase(NULL, &w), test_rcase(c, &v),
                            test_rcase(NULL, &w) };
        CHECK_EQ(gort_select(cs, 4, 1), 2);
        CHECK_EQ(v, i);
        gort_case cs2[3] = { test_scase(NULL, &w), test_scase(c, &x), test_rcase(NULL, &w) };
        CHECK_EQ(gort_select(cs2, 3, 1), 1);
        CHECK_EQ(gort_chan_recv(c, &v), 1);
        CHECK_EQ(v, i);
    }
    gort_chan_free(c);
}

TEST(select_null_channels_never_fire) { test_run_with(1, null_main, NULL); }

/* A blocking select with NULL cases and one real channel is woken by it. */
static atomic_int nb_entered;

static void nb_selector(void *arg) {
    gort_chan *c = arg;
    int v = 0, w = 0;
    gort_case cs[3] = { test_rcase(NULL, &w), test_rcase(c, &v), test_scase(NULL, &w) };
    atomic_store(&nb_entered, 1);
    CHECK_EQ(gort_select(cs, 3, 1), 1);
    CHECK_EQ(v, 31);
    CHECK_EQ(cs[1].ok, 1);
}

static void null_block_main(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int), 0);
    CHECK(gort_go(nb_selector, c) > 0);
    test_yield_until(&nb_entered, 1);
    int v = 31;
    CHECK_EQ(gort_chan_send(c, &v), 0);
    test_wait_until_only_main();
    gort_chan_free(c);
}

TEST(select_null_and_real_blocking) {
    test_run_with(1, null_block_main, NULL);
    atomic_store(&nb_entered, 0);
    test_run_with(2, null_block_main, NULL);
}

/* ---- the same channel twice ------------------------------------------------------ */

static atomic_int tw_entered;

static void tw_sender(void *arg) {
    gort_chan *c = arg;
    int v = 55;
    atomic_fetch_add(&tw_entered, 1);
    CHECK_EQ(gort_chan_send(c, &v), 0);
}

static void tw_selector_sr(void *arg) {
    /* Blocked select with a send and a receive case on one unbuffered channel. */
    gort_chan *c = arg;
    int s = 66, r = 0;
    gort_case cs[2] = { test_scase(c, &s), test_rcase(c, &r) };
    atomic_fetch_add(&tw_entered, 1);
    CHECK_EQ(gort_select(cs, 2, 1), 0); /* main receives */
    atomic_fetch_add(&tw_entered, 1);
    CHECK_EQ(gort_select(cs, 2, 1), 1); /* main sends */
    CHECK_EQ(r, 77);
    CHECK_EQ(cs[1].ok, 1);
}

static void twice_main(void *arg) {
    (void)arg;
    /* Send and receive on one buffered channel of cap 1. */
    gort_chan *c = test_mkchan(sizeof(int), 1);
    int s = 1, r = 0;
    gort_case sr[2] = { test_scase(c, &s), test_rcase(c, &r) };
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
    int a = 0, b = 0, hits[2] = { 0, 0 };
    gort_case rr[2] = { test_rcase(c, &a), test_rcase(c, &b) };
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
    test_yield_until(&tw_entered, 1);
    a = b = 0;
    rr[0] = test_rcase(c, &a);
    rr[1] = test_rcase(c, &b);
    int k = gort_select(rr, 2, 1);
    CHECK(k == 0 || k == 1);
    CHECK_EQ(k ? b : a, 55);
    CHECK_EQ(rr[k].ok, 1);
    /* The case that did not fire left no waiter behind on c. */
    int probe = 0;
    CHECK_EQ(gort_chan_trysend(c, &probe), -EAGAIN);

    /* Send and receive case on one unbuffered channel: a select does not
     * match with itself. */
    sr[0] = test_scase(c, &s);
    sr[1] = test_rcase(c, &r);
    CHECK_EQ(gort_select(sr, 2, 0), -EAGAIN);
    atomic_store(&tw_entered, 0);
    CHECK(gort_go(tw_selector_sr, c) > 0);
    test_yield_until(&tw_entered, 1);
    int got = 0;
    CHECK_EQ(gort_chan_recv(c, &got), 1);
    CHECK_EQ(got, 66);
    test_yield_until(&tw_entered, 2);
    int x = 77;
    CHECK_EQ(gort_chan_send(c, &x), 0);
    test_wait_until_only_main();
    /* Nobody is left waiting on c. */
    CHECK_EQ(gort_chan_trysend(c, &x), -EAGAIN);
    CHECK_EQ(gort_chan_tryrecv(c, &x), -EAGAIN);
    gort_chan_free(c);
}

TEST(select_same_channel_twice) {
    test_run_with(1, twice_main, NULL);
    test_run_with(2, twice_main, NULL);
}

/* ---- fairness ------------------------------------------------------------------ */

static void fair_main(void *arg) {
    (void)arg;
    gort_chan *a = test_mkchan(sizeof(int), 1), *b = test_mkchan(sizeof(int), 1);
    int x = 1, va, vb, hits[2] = { 0, 0 };
    CHECK_EQ(gort_chan_send(a, &x), 0);
    CHECK_EQ(gort_chan_send(b, &x), 0);
    gort_case cs[2] = { test_rcase(a, &va), test_rcase(b, &vb) };
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
    gort_case ss[2] = { test_scase(e, &x), test_scase(f, &x) };
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

TEST(select_fairness) { test_run_with(1, fair_main, NULL); }

/* ---- closed channels ----------------------------------------------------------- */

typedef struct elem32 {
    uint64_t w[4];
} elem32;

static void closed_main(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(elem32), 2), *o = test_mkchan(sizeof(elem32), 0);
    elem32 e, f;
    memset(&e, 0x5a, sizeof e);
    CHECK_EQ(gort_chan_send(c, &e), 0);
    CHECK_EQ(gort_chan_close(c), 0);
    gort_case cs[2] = { test_rcase(o, &f), test_rcase(c, &e) };
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
    gort_case cn[1] = { test_rcase(c, NULL) };
    CHECK_EQ(gort_select(cn, 1, 0), 0);
    CHECK_EQ(cn[0].ok, 0);

    /* Send case on a closed channel: -EPIPE, whether alone or beside
     * not-ready cases. */
    gort_case sc[1] = { test_scase(c, &e) };
    CHECK_EQ(gort_select(sc, 1, 1), -EPIPE);
    CHECK_EQ(gort_select(sc, 1, 0), -EPIPE);
    gort_case sc2[3] = { test_rcase(o, &f), test_scase(c, &e), test_scase(o, &f) };
    for (int i = 0; i < 20; i++)
        CHECK_EQ(gort_select(sc2, 3, i % 2), -EPIPE);
    CHECK_EQ(gort_chan_len(c), 0);
    gort_chan_free(c);
    gort_chan_free(o);
}

TEST(select_closed_channel) { test_run_with(1, closed_main, NULL); }

/* ---- blocked select woken by a send, a receive, a close ------------------------ */

enum { NW = 4 };
static gort_chan *wk[NW];
static atomic_int wk_entered, wk_result;

static void wk_recv_selector(void *arg) {
    (void)arg;
    elem32 e[NW];
    gort_case cs[NW];
    for (int i = 0; i < NW; i++) {
        memset(&e[i], 0x77, sizeof e[i]);
        cs[i] = test_rcase(wk[i], &e[i]);
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

static void wk_send_selector(void *arg) {
    (void)arg;
    elem32 e[NW];
    gort_case cs[NW];
    for (int i = 0; i < NW; i++) {
        memset(&e[i], 0, sizeof e[i]);
        e[i].w[0] = (uint64_t)(2000 + i);
        cs[i] = test_scase(wk[i], &e[i]);
    }
    atomic_fetch_add(&wk_entered, 1);
    int k = gort_select(cs, NW, 1);
    atomic_store(&wk_result, k >= 0 ? 100 + k : k);
}

static void wait_result(void) {
    for (long i = 0; i < 100000000L && atomic_load(&wk_result) == 0; i++)
        gort_yield();
}

static void check_no_waiters(void) {
    /* Unbuffered channels with nobody waiting: both try ops would block. */
    elem32 e = { { 0 } };
    for (int i = 0; i < NW; i++) {
        CHECK_EQ(gort_chan_trysend(wk[i], &e), -EAGAIN);
        CHECK_EQ(gort_chan_tryrecv(wk[i], &e), -EAGAIN);
    }
}

static void woken_main(void *arg) {
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
        test_yield_until(&wk_entered, 1);
        if (procs == 1) {
            test_yield_n(10);
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
        test_yield_until(&wk_entered, 1);
        if (procs == 1) {
            test_yield_n(10);
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
        test_yield_until(&wk_entered, 1);
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
        test_yield_until(&wk_entered, 1);
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

TEST(select_blocked_woken_by_send_recv_close) {
    int procs = 1;
    test_run_with(1, woken_main, &procs);
    procs = 2;
    test_run_with(2, woken_main, &procs);
}

/* ---- stale sudogs: a select re-enqueued many times ----------------------------- */

enum { NST = 8 };
static gort_chan *st_c[NST], *st_ack, *st_go;

static void st_selector(void *arg) {
    long rounds = (long)(intptr_t)arg;
    for (long r = 0; r < rounds; r++) {
        long v[NST];
        gort_case cs[NST];
        for (int i = 0; i < NST; i++)
            cs[i] = test_rcase(st_c[i], &v[i]);
        int k = gort_select(cs, NST, 1);
        CHECK_EQ(k, (int)(r * 5 % NST));
        CHECK_EQ(v[k], r);
        CHECK_EQ(gort_chan_send(st_ack, &r), 0);
        CHECK_EQ(gort_chan_recv(st_go, NULL), 1);
    }
}

static void stale_main(void *arg) {
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

TEST(select_stale_waiters_removed) {
    test_run_with(1, stale_main, NULL);
    test_run_with(2, stale_main, NULL);
    test_run_with(4, stale_main, NULL);
}

/* ---- -EPERM outside a goroutine; -EINVAL ---------------------------------------- */

static void *foreign_select(void *p) {
    gort_chan *c = p;
    int v = 0;
    gort_case cs[1] = { test_rcase(c, &v) };
    CHECK_EQ(gort_select(cs, 1, 0), -EPERM);
    CHECK_EQ(gort_select(cs, 1, 1), -EPERM);
    return NULL;
}

static void eperm_main(void *arg) {
    gort_chan *c = arg;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, foreign_select, c), 0);
    gort_syscall_enter();
    CHECK_EQ(pthread_join(t, NULL), 0);
    gort_syscall_exit();
    /* A goroutine may, of course. */
    int v = 0;
    gort_case cs[1] = { test_rcase(c, &v) };
    CHECK_EQ(gort_select(cs, 1, 0), 0);
    CHECK_EQ(v, 3);
}

TEST(select_outside_goroutine_eperm) {
    gort_chan *c = test_mkchan(sizeof(int), 1);
    int v = 3;
    CHECK_EQ(gort_chan_send(c, &v), 0);
    gort_case cs[1] = { test_rcase(c, &v) };
    CHECK_EQ(gort_select(cs, 1, 0), -EPERM);
    CHECK_EQ(gort_select(cs, 1, 1), -EPERM);
    CHECK_EQ(gort_chan_len(c), 1); /* nothing received */
    test_run_with(2, eperm_main, c);
    gort_chan_free(c);
}

static void einval_main(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int), 1);
    int v = 0;
    gort_case bad_op[1] = { { .chan = c, .op = 0, .elem = &v } };
    CHECK_EQ(gort_select(bad_op, 1, 0), -EINVAL);
    gort_case bad_elem[1] = { test_scase(c, NULL) };
    CHECK_EQ(gort_select(bad_elem, 1, 0), -EINVAL);
    CHECK_EQ(gort_select(NULL, 1, 0), -EINVAL);
    CHECK_EQ(gort_select(bad_op, -1, 0), -EINVAL);
    CHECK_EQ(gort_chan_len(c), 0);
    gort_chan_free(c);
}

TEST(select_einval) { test_run_with(1, einval_main, NULL); }

/* ---- many cases on one channel (past select's on-stack arrays) ------------------ */

enum { NMANY = 100 };
static atomic_int many_entered;

static void many_sender(void *arg) {
    gort_chan *c = arg;
    int v = 4242;
    atomic_fetch_add(&many_entered, 1);
    CHECK_EQ(gort_chan_send(c, &v), 0);
}

static void many_same_main(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int), 3);
    int vals[NMANY];
    gort_case cs[NMANY];
    for (int i = 0; i < NMANY; i++)
        cs[i] = test_rcase(c, &vals[i]);
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
        cs[i] = test_rcase(c, &vals[i]);
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

TEST(select_many_cases_one_channel) {
    test_run_with(1, many_same_main, NULL);
    test_run_with(2, many_same_main, NULL);
}
