/* Black-box tests of gort channels (Go's chan semantics): unbuffered
 * hand-off, buffered FIFO, element sizes, close, try operations, errors. */
#define _GNU_SOURCE
#include <gort.h>
#include "test.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

/* ---- Unbuffered hand-off ---------------------------------------------------- */

static atomic_int ho_started, ho_done;

static void ho_sender(void *arg) {
    gort_chan *c = arg;
    int v = 42;
    atomic_store(&ho_started, 1);
    CHECK_EQ(gort_chan_send(c, &v), 0);
    atomic_store(&ho_done, 1);
    for (int i = 0; i < 1000; i++)
        CHECK_EQ(gort_chan_send(c, &i), 0);
    atomic_store(&ho_done, 2);
}

static void handoff_main(void *arg) {
    (void)arg;
    atomic_store(&ho_started, 0);
    atomic_store(&ho_done, 0);
    gort_chan *c = test_mkchan(sizeof(int), 0);
    CHECK(gort_go(ho_sender, c) > 0);
    test_yield_until(&ho_started, 1);
    test_yield_n(100);
    /* No receiver yet: the send cannot have completed. */
    CHECK_EQ(atomic_load(&ho_done), 0);
    CHECK_EQ(gort_chan_len(c), 0);
    int v = 0;
    CHECK_EQ(gort_chan_recv(c, &v), 1);
    CHECK_EQ(v, 42);
    for (int i = 0; i < 1000; i++) {
        CHECK_EQ(gort_chan_recv(c, &v), 1);
        CHECK_EQ(v, i);
        CHECK_EQ(gort_chan_len(c), 0);
    }
    test_yield_until(&ho_done, 2);
    CHECK_EQ(gort_chan_tryrecv(c, &v), -EAGAIN);
    gort_chan_free(c);
}

TEST(chan_unbuffered_handoff) {
    test_run_with(1, handoff_main, NULL);
    test_run_with(2, handoff_main, NULL);
}

/* ---- Buffered FIFO, len and cap ---------------------------------------------- */

static void fifo_main(void *arg) {
    (void)arg;
    size_t caps[] = { 1, 3, 8, 100 };
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        size_t cap = caps[k];
        gort_chan *c = test_mkchan(sizeof(long), cap);
        long next_send = 0, next_recv = 0, v;
        /* Several rounds of fill and partial drain, so the ring wraps. */
        for (int round = 0; round < 7; round++) {
            while (gort_chan_len(c) < cap) {
                size_t before = gort_chan_len(c);
                CHECK_EQ(gort_chan_send(c, &next_send), 0);
                next_send++;
                CHECK_EQ(gort_chan_len(c), before + 1);
            }
            v = -1;
            CHECK_EQ(gort_chan_trysend(c, &v), -EAGAIN);
            CHECK_EQ(gort_chan_len(c), cap);
            size_t take = round % 2 ? cap : (cap + 1) / 2;
            for (size_t i = 0; i < take; i++) {
                size_t before = gort_chan_len(c);
                CHECK_EQ(gort_chan_recv(c, &v), 1);
                CHECK_EQ(v, next_recv);
                next_recv++;
                CHECK_EQ(gort_chan_len(c), before - 1);
                CHECK_EQ(gort_chan_cap(c), cap);
            }
        }
        while (gort_chan_len(c) > 0) {
            CHECK_EQ(gort_chan_tryrecv(c, &v), 1);
            CHECK_EQ(v, next_recv);
            next_recv++;
        }
        CHECK_EQ(next_recv, next_send);
        CHECK_EQ(gort_chan_tryrecv(c, &v), -EAGAIN);
        gort_chan_free(c);
    }
}

TEST(chan_buffered_fifo_len_cap) { test_run_with(1, fifo_main, NULL); }

/* ---- elem_size 0 ------------------------------------------------------------ */

static void zero_sender(void *arg) {
    gort_chan *c = arg;
    for (int i = 0; i < 100; i++)
        CHECK_EQ(gort_chan_send(c, NULL), 0);
    CHECK_EQ(gort_chan_close(c), 0);
}

static void zero_main(void *arg) {
    (void)arg;
    /* Buffered struct{} channel: it still counts. */
    gort_chan *c = test_mkchan(0, 4);
    char dummy = 7;
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(gort_chan_send(c, i % 2 ? NULL : &dummy), 0);
        CHECK_EQ(gort_chan_len(c), i + 1);
    }
    CHECK_EQ(gort_chan_trysend(c, NULL), -EAGAIN);
    CHECK_EQ(gort_chan_recv(c, NULL), 1);
    CHECK_EQ(gort_chan_recv(c, &dummy), 1);
    CHECK_EQ(dummy, 7); /* nothing written for a zero-size element */
    CHECK_EQ(gort_chan_len(c), 2);
    CHECK_EQ(gort_chan_close(c), 0);
    CHECK_EQ(gort_chan_recv(c, NULL), 1);
    CHECK_EQ(gort_chan_tryrecv(c, NULL), 1);
    CHECK_EQ(gort_chan_recv(c, NULL), 0);
    CHECK_EQ(gort_chan_tryrecv(c, NULL), 0);
    gort_chan_free(c);

    /* Unbuffered struct{} channel between goroutines. */
    c = test_mkchan(0, 0);
    CHECK_EQ(gort_chan_trysend(c, NULL), -EAGAIN);
    CHECK(gort_go(zero_sender, c) > 0);
    int n = 0;
    while (gort_chan_recv(c, NULL) == 1)
        n++;
    CHECK_EQ(n, 100);
    gort_chan_free(c);
}

TEST(chan_elem_size_zero) {
    test_run_with(1, zero_main, NULL);
    test_run_with(2, zero_main, NULL);
}

/* ---- Large elements (4 KiB) --------------------------------------------------- */

typedef struct big {
    uint32_t w[1024];
} big;

static void big_fill(big *b, uint32_t seed) {
    for (int i = 0; i < 1024; i++)
        b->w[i] = seed * 2654435761u + (uint32_t)i;
}

static void big_check(const big *b, uint32_t seed) {
    for (int i = 0; i < 1024; i++)
        if (b->w[i] != seed * 2654435761u + (uint32_t)i)
            CHECK_EQ(b->w[i], seed * 2654435761u + (uint32_t)i);
}

enum { BIG_N = 300 };

static void big_sender(void *arg) {
    gort_chan *c = arg;
    big b;
    for (uint32_t i = 0; i < BIG_N; i++) {
        big_fill(&b, i);
        CHECK_EQ(gort_chan_send(c, &b), 0);
        memset(&b, 0xee, sizeof b); /* the value was copied at send */
    }
    CHECK_EQ(gort_chan_close(c), 0);
}

static void big_main(void *arg) {
    (void)arg;
    size_t caps[] = { 0, 1, 5 };
    for (int k = 0; k < 3; k++) {
        gort_chan *c = test_mkchan(sizeof(big), caps[k]);
        CHECK(gort_go(big_sender, c) > 0);
        big b;
        uint32_t i = 0;
        for (;;) {
            memset(&b, 0x55, sizeof b);
            int r = gort_chan_recv(c, &b);
            if (r == 0)
                break;
            CHECK_EQ(r, 1);
            big_check(&b, i);
            i++;
        }
        CHECK_EQ(i, BIG_N);
        for (int j = 0; j < 1024; j++)
            CHECK_EQ(b.w[j], 0); /* zeroed by the closed receive */
        gort_chan_free(c);
    }
}

TEST(chan_large_elem) {
    test_run_with(1, big_main, NULL);
    test_run_with(2, big_main, NULL);
}

/* ---- recv with elem NULL -------------------------------------------------- */

static void null_sender(void *arg) {
    gort_chan *c = arg;
    for (int i = 0; i < 10; i++)
        CHECK_EQ(gort_chan_send(c, &i), 0);
}

static void recv_null_main(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int), 4);
    int v = 1;
    CHECK_EQ(gort_chan_send(c, &v), 0);
    v = 2;
    CHECK_EQ(gort_chan_send(c, &v), 0);
    CHECK_EQ(gort_chan_recv(c, NULL), 1); /* discards 1 */
    CHECK_EQ(gort_chan_len(c), 1);
    CHECK_EQ(gort_chan_recv(c, &v), 1);
    CHECK_EQ(v, 2);
    v = 3;
    CHECK_EQ(gort_chan_send(c, &v), 0);
    CHECK_EQ(gort_chan_tryrecv(c, NULL), 1);
    CHECK_EQ(gort_chan_len(c), 0);
    gort_chan_free(c);

    c = test_mkchan(sizeof(int), 0);
    CHECK(gort_go(null_sender, c) > 0);
    for (int i = 0; i < 10; i++) {
        if (i % 2) {
            CHECK_EQ(gort_chan_recv(c, NULL), 1);
        } else {
            CHECK_EQ(gort_chan_recv(c, &v), 1);
            CHECK_EQ(v, i);
        }
    }
    CHECK_EQ(gort_chan_close(c), 0);
    CHECK_EQ(gort_chan_recv(c, NULL), 0);
    gort_chan_free(c);
}

TEST(chan_recv_null_elem) {
    test_run_with(1, recv_null_main, NULL);
    test_run_with(2, recv_null_main, NULL);
}

/* ---- close wakes every blocked receiver and sender ------------------------ */

typedef struct elem64 {
    uint64_t w[8];
} elem64;

enum { NWAIT = 100 };
static atomic_int cw_entered, cw_zero, cw_epipe;
static gort_waitgroup cw_wg;

static void cw_receiver(void *arg) {
    gort_chan *c = arg;
    elem64 e;
    memset(&e, 0xab, sizeof e);
    atomic_fetch_add(&cw_entered, 1);
    int r = gort_chan_recv(c, &e);
    CHECK_EQ(r, 0);
    for (int i = 0; i < 8; i++)
        CHECK_EQ(e.w[i], 0);
    atomic_fetch_add(&cw_zero, 1);
    gort_wg_done(&cw_wg);
}

static void cw_sender(void *arg) {
    gort_chan *c = arg;
    elem64 e;
    memset(&e, 0x11, sizeof e);
    atomic_fetch_add(&cw_entered, 1);
    CHECK_EQ(gort_chan_send(c, &e), -EPIPE);
    atomic_fetch_add(&cw_epipe, 1);
    gort_wg_done(&cw_wg);
}

static void close_wakes_main(void *arg) {
    int procs = *(int *)arg;
    size_t caps[] = { 0, 3 };
    for (int k = 0; k < 2; k++) {
        size_t cap = caps[k];
        /* Receivers on an empty channel. */
        atomic_store(&cw_entered, 0);
        atomic_store(&cw_zero, 0);
        gort_chan *c = test_mkchan(sizeof(elem64), cap);
        gort_wg_add(&cw_wg, NWAIT);
        for (int i = 0; i < NWAIT; i++)
            CHECK(gort_go(cw_receiver, c) > 0);
        test_yield_until(&cw_entered, NWAIT);
        if (procs == 1)
            CHECK_EQ(atomic_load(&cw_zero), 0); /* all parked */
        CHECK_EQ(gort_chan_close(c), 0);
        gort_wg_wait(&cw_wg);
        CHECK_EQ(atomic_load(&cw_zero), NWAIT);
        gort_chan_free(c);

        /* Senders on a full channel. */
        atomic_store(&cw_entered, 0);
        atomic_store(&cw_epipe, 0);
        c = test_mkchan(sizeof(elem64), cap);
        elem64 e;
        for (size_t i = 0; i < cap; i++) {
            memset(&e, (int)(i + 1), sizeof e);
            CHECK_EQ(gort_chan_send(c, &e), 0);
        }
        gort_wg_add(&cw_wg, NWAIT);
        for (int i = 0; i < NWAIT; i++)
            CHECK(gort_go(cw_sender, c) > 0);
        test_yield_until(&cw_entered, NWAIT);
        if (procs == 1)
            CHECK_EQ(atomic_load(&cw_epipe), 0);
        CHECK_EQ(gort_chan_close(c), 0);
        gort_wg_wait(&cw_wg);
        CHECK_EQ(atomic_load(&cw_epipe), NWAIT);
        /* The buffered values are still there, then zero. */
        CHECK_EQ(gort_chan_len(c), cap);
        for (size_t i = 0; i < cap; i++) {
            CHECK_EQ(gort_chan_recv(c, &e), 1);
            for (int j = 0; j < 8; j++)
                CHECK_EQ(e.w[j], 0x0101010101010101ull * (i + 1));
        }
        CHECK_EQ(gort_chan_recv(c, &e), 0);
        for (int j = 0; j < 8; j++)
            CHECK_EQ(e.w[j], 0);
        gort_chan_free(c);
    }
}

TEST(chan_close_wakes_all_waiters) {
    int procs = 1;
    test_run_with(1, close_wakes_main, &procs);
    procs = 2;
    test_run_with(2, close_wakes_main, &procs);
    procs = 4;
    test_run_with(4, close_wakes_main, &procs);
}

/* ---- drain after close, and closed-channel errors ------------------------- */

static void drain_recv(void *arg) {
    gort_chan *c = arg;
    long v = 0;
    for (long i = 0; i < 5; i++) {
        CHECK_EQ(gort_chan_recv(c, &v), 1);
        CHECK_EQ(v, i * 10);
    }
    v = 99;
    CHECK_EQ(gort_chan_recv(c, &v), 0);
    CHECK_EQ(v, 0);
}

static void drain_main(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(long), 10);
    for (long i = 0; i < 5; i++) {
        long v = i * 10;
        CHECK_EQ(gort_chan_send(c, &v), 0);
    }
    CHECK_EQ(gort_chan_close(c), 0);
    CHECK_EQ(gort_chan_len(c), 5);
    CHECK_EQ(gort_chan_cap(c), 10);
    long v = 1;
    CHECK_EQ(gort_chan_send(c, &v), -EPIPE);
    CHECK_EQ(gort_chan_trysend(c, &v), -EPIPE);
    CHECK_EQ(gort_chan_close(c), -EPIPE);
    CHECK_EQ(gort_chan_len(c), 5);
    drain_recv(c);
    CHECK_EQ(gort_chan_len(c), 0);
    for (int i = 0; i < 3; i++) {
        v = 5;
        CHECK_EQ(gort_chan_recv(c, &v), 0);
        CHECK_EQ(v, 0);
        v = 5;
        CHECK_EQ(gort_chan_tryrecv(c, &v), 0);
        CHECK_EQ(v, 0);
        CHECK_EQ(gort_chan_recv(c, NULL), 0);
    }
    CHECK_EQ(gort_chan_close(c), -EPIPE);
    gort_chan_free(c);

    /* Same on an unbuffered channel. */
    c = test_mkchan(sizeof(long), 0);
    CHECK_EQ(gort_chan_close(c), 0);
    CHECK_EQ(gort_chan_send(c, &v), -EPIPE);
    CHECK_EQ(gort_chan_trysend(c, &v), -EPIPE);
    CHECK_EQ(gort_chan_close(c), -EPIPE);
    v = 5;
    CHECK_EQ(gort_chan_recv(c, &v), 0);
    CHECK_EQ(v, 0);
    CHECK_EQ(gort_chan_tryrecv(c, NULL), 0);
    gort_chan_free(c);
}

TEST(chan_drain_after_close_and_epipe) { test_run_with(1, drain_main, NULL); }

/* ---- try operations ------------------------------------------------------- */

static atomic_int try_entered, try_got;

static void try_receiver(void *arg) {
    gort_chan *c = arg;
    int v = 0;
    atomic_fetch_add(&try_entered, 1);
    CHECK_EQ(gort_chan_recv(c, &v), 1);
    CHECK_EQ(v, 77);
    atomic_store(&try_got, 1);
}

static void try_sender(void *arg) {
    gort_chan *c = arg;
    int v = 88;
    atomic_fetch_add(&try_entered, 1);
    CHECK_EQ(gort_chan_send(c, &v), 0);
}

static void try_main(void *arg) {
    (void)arg;
    int v = 1;
    gort_chan *c = test_mkchan(sizeof(int), 0);
    CHECK_EQ(gort_chan_trysend(c, &v), -EAGAIN);
    CHECK_EQ(gort_chan_tryrecv(c, &v), -EAGAIN);
    /* A parked receiver makes trysend succeed (one P: parked for sure). */
    CHECK(gort_go(try_receiver, c) > 0);
    test_yield_until(&try_entered, 1);
    v = 77;
    CHECK_EQ(gort_chan_trysend(c, &v), 0);
    test_yield_n(10);
    CHECK_EQ(atomic_load(&try_got), 1);
    CHECK_EQ(gort_chan_trysend(c, &v), -EAGAIN);
    /* A parked sender makes tryrecv succeed. */
    CHECK(gort_go(try_sender, c) > 0);
    test_yield_until(&try_entered, 2);
    v = 0;
    CHECK_EQ(gort_chan_tryrecv(c, &v), 1);
    CHECK_EQ(v, 88);
    CHECK_EQ(gort_chan_tryrecv(c, &v), -EAGAIN);
    gort_chan_free(c);

    c = test_mkchan(sizeof(int), 2);
    CHECK_EQ(gort_chan_tryrecv(c, &v), -EAGAIN);
    v = 5;
    CHECK_EQ(gort_chan_trysend(c, &v), 0);
    v = 6;
    CHECK_EQ(gort_chan_trysend(c, &v), 0);
    CHECK_EQ(gort_chan_trysend(c, &v), -EAGAIN);
    CHECK_EQ(gort_chan_len(c), 2);
    CHECK_EQ(gort_chan_tryrecv(c, &v), 1);
    CHECK_EQ(v, 5);
    CHECK_EQ(gort_chan_tryrecv(c, &v), 1);
    CHECK_EQ(v, 6);
    CHECK_EQ(gort_chan_tryrecv(c, &v), -EAGAIN);
    gort_chan_free(c);
}

TEST(chan_try_eagain) { test_run_with(1, try_main, NULL); }

/* ---- -EINVAL and huge capacities ------------------------------------------ */

static void einval_main(void *arg) {
    (void)arg;
    int v = 0;
    CHECK_EQ(gort_chan_make(NULL, 4, 1), -EINVAL);
    CHECK_EQ(gort_chan_send(NULL, &v), -EINVAL);
    CHECK_EQ(gort_chan_recv(NULL, &v), -EINVAL);
    CHECK_EQ(gort_chan_trysend(NULL, &v), -EINVAL);
    CHECK_EQ(gort_chan_tryrecv(NULL, &v), -EINVAL);
    CHECK_EQ(gort_chan_close(NULL), -EINVAL);
    gort_chan *c = test_mkchan(sizeof(int), 1);
    /* A value-carrying channel needs a value to send. */
    CHECK_EQ(gort_chan_send(c, NULL), -EINVAL);
    CHECK_EQ(gort_chan_trysend(c, NULL), -EINVAL);
    CHECK_EQ(gort_chan_len(c), 0);
    gort_chan_free(c);
}

TEST(chan_einval) {
    test_run_with(1, einval_main, NULL);
    /* The same calls outside a runtime. */
    einval_main(NULL);
}

TEST(chan_make_huge_cap) {
    struct {
        size_t elem, cap;
    } cases[] = {
        { 8, SIZE_MAX },     { 1, SIZE_MAX },           { 8, SIZE_MAX / 8 + 1 }, { SIZE_MAX, 2 },
        { SIZE_MAX / 2, 3 }, { 4096, (size_t)1 << 52 }, { 1, (size_t)1 << 62 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gort_chan *c = NULL;
        int r = gort_chan_make(&c, cases[i].elem, cases[i].cap);
        if (r != -EINVAL && r != -ENOMEM) {
            fprintf(stderr, "gort_chan_make(elem %zu, cap %zu) = %d\n", cases[i].elem, cases[i].cap,
                    r);
            CHECK(r == -EINVAL || r == -ENOMEM);
        }
    }
    /* A sizeable but possible one works. */
    gort_chan *c = NULL;
    CHECK_EQ(gort_chan_make(&c, 8, 1 << 20), 0);
    CHECK_EQ(gort_chan_cap(c), 1 << 20);
    gort_chan_free(c);
}

/* ---- outside any runtime: non-blocking use from a plain thread ------------- */

TEST(chan_outside_runtime) {
    gort_chan *c = test_mkchan(sizeof(int), 3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(gort_chan_send(c, &i), 0);
    int v = -1;
    CHECK_EQ(gort_chan_trysend(c, &v), -EAGAIN);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(gort_chan_recv(c, &v), 1);
        CHECK_EQ(v, i);
    }
    CHECK_EQ(gort_chan_tryrecv(c, &v), -EAGAIN);
    CHECK_EQ(gort_chan_close(c), 0);
    CHECK_EQ(gort_chan_recv(c, &v), 0);
    gort_chan_free(c);
}

/* ---- freeing a channel somebody waits on is fatal -------------------------- */

static atomic_int fw_entered;

static void fw_receiver(void *arg) {
    atomic_store(&fw_entered, 1);
    gort_chan_recv(arg, NULL);
}

static void free_waited_main(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int), 0);
    CHECK(gort_go(fw_receiver, c) > 0);
    test_yield_until(&fw_entered, 1); /* one P: it is parked in recv */
    gort_chan_free(c);
}

static void fw_sender(void *arg) {
    int v = 1;
    atomic_store(&fw_entered, 1);
    gort_chan_send(arg, &v);
}

static void free_waited_sender_main(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int), 1);
    int v = 0;
    CHECK_EQ(gort_chan_send(c, &v), 0);
    CHECK(gort_go(fw_sender, c) > 0);
    test_yield_until(&fw_entered, 1);
    gort_chan_free(c);
}

TEST(chan_free_with_waiter_fatal) {
    gort_config cfg = { .maxprocs = 1 };
    CHECK(test_expect_fatal(&cfg, free_waited_main, NULL, "gort_chan_free"));
    CHECK(test_expect_fatal(&cfg, free_waited_sender_main, NULL, "gort_chan_free"));
}
