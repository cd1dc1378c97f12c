/* Black-box tests of gort channels (Go's chan semantics). */
#define _GNU_SOURCE
#include <gort.h>
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* Yields until *ctr reaches n. On one P (there is no preemption), a
 * goroutine that bumps a counter right before a blocking channel operation
 * has parked in it by the time the counter is seen. */
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

/* ---- Unbuffered hand-off ---------------------------------------------------- */

static atomic_int ho_started, ho_done;

static void ho_sender(void *arg)
{
    gort_chan *c = arg;
    int v = 42;
    atomic_store(&ho_started, 1);
    CHECK_EQ(gort_chan_send(c, &v), 0);
    atomic_store(&ho_done, 1);
    for (int i = 0; i < 1000; i++)
        CHECK_EQ(gort_chan_send(c, &i), 0);
    atomic_store(&ho_done, 2);
}

static void handoff_main(void *arg)
{
    (void)arg;
    atomic_store(&ho_started, 0);
    atomic_store(&ho_done, 0);
    gort_chan *c = test_mkchan(sizeof(int), 0);
    CHECK(gort_go(ho_sender, c) > 0);
    yield_until(&ho_started, 1);
    yield_n(100);
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
    yield_until(&ho_done, 2);
    CHECK_EQ(gort_chan_tryrecv(c, &v), -EAGAIN);
    gort_chan_free(c);
}

TEST(chan_unbuffered_handoff)
{
    test_run_with(1, handoff_main, NULL);
    test_run_with(2, handoff_main, NULL);
}

/* ---- Buffered FIFO, len and cap ---------------------------------------------- */

static void fifo_main(void *arg)
{
    (void)arg;
    size_t caps[] = {1, 3, 8, 100};
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

TEST(chan_buffered_fifo_len_cap)
{
    test_run_with(1, fifo_main, NULL);
}

/* ---- elem_size 0 ------------------------------------------------------------ */

static void zero_sender(void *arg)
{
    gort_chan *c = arg;
    for (int i = 0; i < 100; i++)
        CHECK_EQ(gort_chan_send(c, NULL), 0);
    CHECK_EQ(gort_chan_close(c), 0);
}

static void zero_main(void *arg)
{
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

TEST(chan_elem_size_zero)
{
    test_run_with(1, zero_main, NULL);
    test_run_with(2, zero_main, NULL);
}

/* ---- Large elements (4 KiB) --------------------------------------------------- */

typedef struct big {
    uint32_t w[1024];
} big;

static void big_fill(big *b, uint32_t seed)
{
    for (int i = 0; i < 1024; i++)
        b->w[i] = seed * 2654435761u + (uint32_t)i;
}

static void big_check(const big *b, uint32_t seed)
{
    for (int i = 0; i < 1024; i++)
        if (b->w[i] != seed * 2654435761u + (uint32_t)i)
            CHECK_EQ(b->w[i], seed * 2654435761u + (uint32_t)i);
}

enum { BIG_N = 300 };

static void big_sender(void *arg)
{
    gort_chan *c = arg;
    big b;
    for (uint32_t i = 0; i < BIG_N; i++) {
        big_fill(&b, i);
        CHECK_EQ(gort_chan_send(c, &b), 0);
        memset(&b, 0xee, sizeof b); /* the value was copied at send */
    }
    CHECK_EQ(gort_chan_close(c), 0);
}

static void big_main(void *arg)
{
    (void)arg;
    size_t caps[] = {0, 1, 5};
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

TEST(chan_large_elem)
{
    test_run_with(1, big_main, NULL);
    test_run_with(2, big_main, NULL);
}

/* ---- recv with elem NULL -------------------------------------------------- */

static void null_sender(void *arg)
{
    gort_chan *c = arg;
    for (int i = 0; i < 10; i++)
        CHECK_EQ(gort_chan_send(c, &i), 0);
}

static void recv_null_main(void *arg)
{
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

TEST(chan_recv_null_elem)
{
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

static void cw_receiver(void *arg)
{
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

static void cw_sender(void *arg)
{
    gort_chan *c = arg;
    elem64 e;
    memset(&e, 0x11, sizeof e);
    atomic_fetch_add(&cw_entered, 1);
    CHECK_EQ(gort_chan_send(c, &e), -EPIPE);
    atomic_fetch_add(&cw_epipe, 1);
    gort_wg_done(&cw_wg);
}

static void close_wakes_main(void *arg)
{
    int procs = *(int *)arg;
    size_t caps[] = {0, 3};
    for (int k = 0; k < 2; k++) {
        size_t cap = caps[k];
        /* Receivers on an empty channel. */
        atomic_store(&cw_entered, 0);
        atomic_store(&cw_zero, 0);
        gort_chan *c = test_mkchan(sizeof(elem64), cap);
        gort_wg_add(&cw_wg, NWAIT);
        for (int i = 0; i < NWAIT; i++)
            CHECK(gort_go(cw_receiver, c) > 0);
        yield_until(&cw_entered, NWAIT);
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
        yield_until(&cw_entered, NWAIT);
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

TEST(chan_close_wakes_all_waiters)
{
    int procs = 1;
    test_run_with(1, close_wakes_main, &procs);
    procs = 2;
    test_run_with(2, close_wakes_main, &procs);
    procs = 4;
    test_run_with(4, close_wakes_main, &procs);
}

/* ---- drain after close, and closed-channel errors ------------------------- */

static void drain_recv(void *arg)
{
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

static void drain_main(void *arg)
{
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

TEST(chan_drain_after_close_and_epipe)
{
    test_run_with(1, drain_main, NULL);
}

/* ---- try operations ------------------------------------------------------- */

static atomic_int try_entered, try_got;

static void try_receiver(void *arg)
{
    gort_chan *c = arg;
    int v = 0;
    atomic_fetch_add(&try_entered, 1);
    CHECK_EQ(gort_chan_recv(c, &v), 1);
    CHECK_EQ(v, 77);
    atomic_store(&try_got, 1);
}

static void try_sender(void *arg)
{
    gort_chan *c = arg;
    int v = 88;
    atomic_fetch_add(&try_entered, 1);
    CHECK_EQ(gort_chan_send(c, &v), 0);
}

static void try_main(void *arg)
{
    (void)arg;
    int v = 1;
    gort_chan *c = test_mkchan(sizeof(int), 0);
    CHECK_EQ(gort_chan_trysend(c, &v), -EAGAIN);
    CHECK_EQ(gort_chan_tryrecv(c, &v), -EAGAIN);
    /* A parked receiver makes trysend succeed (one P: parked for sure). */
    CHECK(gort_go(try_receiver, c) > 0);
    yield_until(&try_entered, 1);
    v = 77;
    CHECK_EQ(gort_chan_trysend(c, &v), 0);
    yield_n(10);
    CHECK_EQ(atomic_load(&try_got), 1);
    CHECK_EQ(gort_chan_trysend(c, &v), -EAGAIN);
    /* A parked sender makes tryrecv succeed. */
    CHECK(gort_go(try_sender, c) > 0);
    yield_until(&try_entered, 2);
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

TEST(chan_try_eagain)
{
    test_run_with(1, try_main, NULL);
}

/* ---- -EINVAL and huge capacities ------------------------------------------ */

static void einval_main(void *arg)
{
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

TEST(chan_einval)
{
    test_run_with(1, einval_main, NULL);
    /* The same calls outside a runtime. */
    einval_main(NULL);
}

TEST(chan_make_huge_cap)
{
    struct {
        size_t elem, cap;
    } cases[] = {
        {8, SIZE_MAX},
        {1, SIZE_MAX},
        {8, SIZE_MAX / 8 + 1},
        {SIZE_MAX, 2},
        {SIZE_MAX / 2, 3},
        {4096, (size_t)1 << 52},
        {1, (size_t)1 << 62},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gort_chan *c = NULL;
        int r = gort_chan_make(&c, cases[i].elem, cases[i].cap);
        if (r != -EINVAL && r != -ENOMEM) {
            fprintf(stderr, "gort_chan_make(elem %zu, cap %zu) = %d\n", cases[i].elem,
                    cases[i].cap, r);
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

TEST(chan_outside_runtime)
{
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

static void fw_receiver(void *arg)
{
    atomic_store(&fw_entered, 1);
    gort_chan_recv(arg, NULL);
}

static void free_waited_main(void *arg)
{
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int), 0);
    CHECK(gort_go(fw_receiver, c) > 0);
    yield_until(&fw_entered, 1); /* one P: it is parked in recv */
    gort_chan_free(c);
}

static void free_waited_child(void)
{
    gort_config cfg = {.maxprocs = 1};
    gort_run(&cfg, free_waited_main, NULL);
}

static void fw_sender(void *arg)
{
    int v = 1;
    atomic_store(&fw_entered, 1);
    gort_chan_send(arg, &v);
}

static void free_waited_sender_main(void *arg)
{
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int), 1);
    int v = 0;
    CHECK_EQ(gort_chan_send(c, &v), 0);
    CHECK(gort_go(fw_sender, c) > 0);
    yield_until(&fw_entered, 1);
    gort_chan_free(c);
}

static void free_waited_sender_child(void)
{
    gort_config cfg = {.maxprocs = 1};
    gort_run(&cfg, free_waited_sender_main, NULL);
}

TEST(chan_free_with_waiter_fatal)
{
    CHECK(test_expect_death(free_waited_child, "gort_chan_free"));
    CHECK(test_expect_death(free_waited_sender_child, "gort_chan_free"));
}

/* ---- races between close and send/recv ------------------------------------ */

typedef struct race_cfg {
    size_t cap;
    int senders, receivers, per_sender;
} race_cfg;

static race_cfg rc;
static gort_chan *race_c;
static atomic_uchar *race_ok_sent;    /* per value: its send returned 0 */
static atomic_uchar *race_seen;       /* per value: times received */
static atomic_long race_sent_ok, race_received;
static gort_waitgroup race_wg;

static void race_sender(void *arg)
{
    int s = (int)(intptr_t)arg;
    for (int i = 0; i < rc.per_sender; i++) {
        uint32_t v = (uint32_t)(s * rc.per_sender + i);
        int r = gort_chan_send(race_c, &v);
        if (r == 0) {
            atomic_store(&race_ok_sent[v], 1);
            atomic_fetch_add(&race_sent_ok, 1);
        } else {
            CHECK_EQ(r, -EPIPE);
        }
    }
    gort_wg_done(&race_wg);
}

static void race_receiver(void *arg)
{
    (void)arg;
    uint32_t v;
    int r;
    while ((r = gort_chan_recv(race_c, &v)) == 1) {
        CHECK(v < (uint32_t)(rc.senders * rc.per_sender));
        CHECK_EQ(atomic_fetch_add(&race_seen[v], 1), 0);
        atomic_fetch_add(&race_received, 1);
    }
    CHECK_EQ(r, 0);
    CHECK_EQ(v, 0);
    gort_wg_done(&race_wg);
}

static void race_closer(void *arg)
{
    long after = (long)(intptr_t)arg;
    while (atomic_load(&race_received) < after)
        gort_yield();
    CHECK_EQ(gort_chan_close(race_c), 0);
    gort_wg_done(&race_wg);
}

static void race_main(void *arg)
{
    (void)arg;
    int total = rc.senders * rc.per_sender;
    int rounds = (int)test_scale(20, 5, 3);
    for (int round = 0; round < rounds; round++) {
        race_c = test_mkchan(sizeof(uint32_t), rc.cap);
        race_ok_sent = calloc((size_t)total, 1);
        race_seen = calloc((size_t)total, 1);
        atomic_store(&race_sent_ok, 0);
        atomic_store(&race_received, 0);
        gort_wg_add(&race_wg, rc.senders + rc.receivers + 1);
        /* Close somewhere between the start and (roughly) the end. */
        long after = (long)total * round / rounds;
        CHECK(gort_go(race_closer, (void *)(intptr_t)after) > 0);
        for (int i = 0; i < rc.receivers; i++)
            CHECK(gort_go(race_receiver, NULL) > 0);
        for (int i = 0; i < rc.senders; i++)
            CHECK(gort_go(race_sender, (void *)(intptr_t)i) > 0);
        gort_wg_wait(&race_wg);
        CHECK_EQ(atomic_load(&race_received), atomic_load(&race_sent_ok));
        for (int v = 0; v < total; v++)
            if (atomic_load(&race_seen[v]) != atomic_load(&race_ok_sent[v]))
                CHECK_EQ(atomic_load(&race_seen[v]), atomic_load(&race_ok_sent[v]));
        CHECK_EQ(gort_chan_len(race_c), 0);
        gort_chan_free(race_c);
        free(race_ok_sent);
        free(race_seen);
    }
}

TEST(chan_close_races_send_recv)
{
    size_t caps[] = {0, 1, 16};
    int procs[] = {1, 2, 4};
    for (int k = 0; k < 3; k++) {
        for (int p = 0; p < 3; p++) {
            rc.cap = caps[k];
            rc.senders = 16;
            rc.receivers = 4;
            rc.per_sender = (int)test_scale(2000, 500, 200);
            test_run_with(procs[p], race_main, NULL);
        }
    }
}

/* ---- many producers x many consumers, checksums ---------------------------- */

typedef struct mpmc_cfg {
    size_t cap;
    int producers, consumers;
    long per_producer;
} mpmc_cfg;

static mpmc_cfg mc;
static gort_chan *mpmc_c;
static atomic_uchar *mpmc_seen;
static atomic_ulong mpmc_sum, mpmc_xor;
static atomic_long mpmc_count;
static gort_waitgroup mpmc_prod_wg, mpmc_cons_wg;

/* Distinct values that are not just 0..n-1: index i maps to value(i). */
static uint64_t mpmc_value(uint64_t i) { return i * 0x9E3779B97F4A7C15ull ^ (i << 7); }

static void mpmc_producer(void *arg)
{
    long p = (long)(intptr_t)arg;
    for (long i = 0; i < mc.per_producer; i++) {
        uint64_t idx = (uint64_t)(p * mc.per_producer + i);
        uint64_t msg[2] = {idx, mpmc_value(idx)};
        CHECK_EQ(gort_chan_send(mpmc_c, msg), 0);
    }
    gort_wg_done(&mpmc_prod_wg);
}

static void mpmc_consumer(void *arg)
{
    (void)arg;
    uint64_t msg[2], sum = 0, x = 0;
    long n = 0;
    uint64_t total = (uint64_t)mc.producers * (uint64_t)mc.per_producer;
    while (gort_chan_recv(mpmc_c, msg) == 1) {
        CHECK(msg[0] < total);
        CHECK(msg[1] == mpmc_value(msg[0]));
        CHECK_EQ(atomic_fetch_add(&mpmc_seen[msg[0]], 1), 0);
        sum += msg[1];
        x ^= msg[1];
        n++;
    }
    atomic_fetch_add(&mpmc_sum, sum);
    atomic_fetch_xor(&mpmc_xor, x);
    atomic_fetch_add(&mpmc_count, n);
    gort_wg_done(&mpmc_cons_wg);
}

static void mpmc_main(void *arg)
{
    (void)arg;
    uint64_t total = (uint64_t)mc.producers * (uint64_t)mc.per_producer;
    mpmc_c = test_mkchan(2 * sizeof(uint64_t), mc.cap);
    mpmc_seen = calloc(total, 1);
    atomic_store(&mpmc_sum, 0);
    atomic_store(&mpmc_xor, 0);
    atomic_store(&mpmc_count, 0);
    gort_wg_add(&mpmc_prod_wg, mc.producers);
    gort_wg_add(&mpmc_cons_wg, mc.consumers);
    for (int i = 0; i < mc.consumers; i++)
        CHECK(gort_go(mpmc_consumer, NULL) > 0);
    for (int i = 0; i < mc.producers; i++)
        CHECK(gort_go(mpmc_producer, (void *)(intptr_t)i) > 0);
    gort_wg_wait(&mpmc_prod_wg);
    CHECK_EQ(gort_chan_close(mpmc_c), 0);
    gort_wg_wait(&mpmc_cons_wg);

    uint64_t sum = 0, x = 0;
    for (uint64_t i = 0; i < total; i++) {
        sum += mpmc_value(i);
        x ^= mpmc_value(i);
        if (atomic_load(&mpmc_seen[i]) != 1)
            CHECK_EQ(atomic_load(&mpmc_seen[i]), 1);
    }
    CHECK_EQ(atomic_load(&mpmc_count), total);
    CHECK(atomic_load(&mpmc_sum) == sum);
    CHECK(atomic_load(&mpmc_xor) == x);
    gort_chan_free(mpmc_c);
    free(mpmc_seen);
}

TEST(chan_mpmc_checksums)
{
    size_t caps[] = {0, 1, 16, 1024};
    int procs[] = {1, 2, 4};
    for (int k = 0; k < 4; k++) {
        for (int p = 0; p < 3; p++) {
            mc.cap = caps[k];
            mc.producers = 8;
            mc.consumers = 8;
            mc.per_producer = test_scale(20000, 4000, 1000);
            test_run_with(procs[p], mpmc_main, NULL);
        }
    }
}

TEST(chan_mpmc_many_goroutines)
{
    /* Lots of producers and consumers parked at once. */
    size_t caps[] = {0, 16};
    for (int k = 0; k < 2; k++) {
        mc.cap = caps[k];
        mc.producers = (int)test_scale(1000, 500, 200);
        mc.consumers = (int)test_scale(1000, 500, 200);
        mc.per_producer = test_scale(100, 40, 20);
        test_run_with(2, mpmc_main, NULL);
    }
}

/* ---- ping-pong ---------------------------------------------------------------- */

static gort_chan *ping, *pong;

static void ponger(void *arg)
{
    long n = (long)(intptr_t)arg, v;
    for (long i = 0; i < n; i++) {
        CHECK_EQ(gort_chan_recv(ping, &v), 1);
        CHECK_EQ(v, 2 * i);
        v++;
        CHECK_EQ(gort_chan_send(pong, &v), 0);
    }
}

static void pingpong_main(void *arg)
{
    long n = *(long *)arg;
    for (int cap = 0; cap <= 1; cap++) {
        ping = test_mkchan(sizeof(long), (size_t)cap);
        pong = test_mkchan(sizeof(long), (size_t)cap);
        CHECK(gort_go(ponger, (void *)(intptr_t)n) > 0);
        int64_t t0 = gort_now();
        long v = 0;
        for (long i = 0; i < n; i++) {
            CHECK_EQ(gort_chan_send(ping, &v), 0);
            CHECK_EQ(gort_chan_recv(pong, &v), 1);
            CHECK_EQ(v, 2 * i + 1);
            v++;
        }
        CHECK_EQ(v, 2 * n);
        int64_t dt = gort_now() - t0;
        (void)dt; /* measured only */
        gort_chan_free(ping);
        gort_chan_free(pong);
    }
}

TEST(chan_ping_pong)
{
    long n = test_scale(100000, 20000, 10000);
    test_run_with(1, pingpong_main, &n);
    test_run_with(2, pingpong_main, &n);
}

/* ---- daisy chain -------------------------------------------------------------- */

typedef struct dlink {
    gort_chan *left, *right;
} dlink;

static void daisy(void *arg)
{
    dlink *l = arg;
    long v;
    CHECK_EQ(gort_chan_recv(l->right, &v), 1);
    v++;
    CHECK_EQ(gort_chan_send(l->left, &v), 0);
}

static void daisy_main(void *arg)
{
    int n = *(int *)arg;
    gort_chan **chans = calloc((size_t)n + 1, sizeof *chans);
    dlink *links = calloc((size_t)n, sizeof *links);
    for (int i = 0; i <= n; i++)
        chans[i] = test_mkchan(sizeof(long), 0);
    for (int i = 0; i < n; i++) {
        links[i].left = chans[i];
        links[i].right = chans[i + 1];
        CHECK(gort_go(daisy, &links[i]) > 0);
    }
    long v = 1;
    CHECK_EQ(gort_chan_send(chans[n], &v), 0);
    CHECK_EQ(gort_chan_recv(chans[0], &v), 1);
    CHECK_EQ(v, 1 + n);
    for (int i = 0; i <= n; i++)
        gort_chan_free(chans[i]);
    free(chans);
    free(links);
}

TEST(chan_daisy_chain)
{
    int n = (int)test_scale(10000, 10000, 1000);
    test_run_with(1, daisy_main, &n);
    test_run_with(4, daisy_main, &n);
}

/* ---- a foreign pthread on one side ----------------------------------------- */

typedef struct foreign_arg {
    gort_chan *c, *done;
    long n;
} foreign_arg;

static void *foreign_sender(void *p)
{
    foreign_arg *a = p;
    CHECK_EQ(gort_id(), 0);
    for (long i = 0; i < a->n; i++)
        CHECK_EQ(gort_chan_send(a->c, &i), 0);
    CHECK_EQ(gort_chan_close(a->c), 0);
    return NULL;
}

static void *foreign_receiver(void *p)
{
    foreign_arg *a = p;
    long v, sum = 0, count = 0;
    while (gort_chan_recv(a->c, &v) == 1) {
        sum += v;
        count++;
    }
    long res[2] = {sum, count};
    CHECK_EQ(gort_chan_send(a->done, res), 0); /* foreign send to a goroutine */
    return NULL;
}

static gort_waitgroup fg_wg;

static void foreign_goroutine_sender(void *arg)
{
    foreign_arg *a = arg;
    for (long i = 0; i < a->n; i++)
        CHECK_EQ(gort_chan_send(a->c, &i), 0);
    gort_wg_done(&fg_wg);
}

static void join_thread(pthread_t t)
{
    gort_syscall_enter();
    int r = pthread_join(t, NULL);
    gort_syscall_exit();
    CHECK_EQ(r, 0);
}

static void foreign_main(void *arg)
{
    (void)arg;
    long n = test_scale(20000, 5000, 2000);
    for (size_t cap = 0; cap <= 4; cap += 4) {
        /* Thread sends, goroutine receives. */
        foreign_arg a = {.c = test_mkchan(sizeof(long), cap), .n = n};
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
        foreign_arg b = {.c = test_mkchan(sizeof(long), cap), .done = test_mkchan(2 * sizeof(long), 0),
                         .n = n};
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

TEST(chan_foreign_thread)
{
    test_run_with(1, foreign_main, NULL);
    test_run_with(2, foreign_main, NULL);
}

/* A foreign thread blocked in recv and one blocked in send are woken by close. */
static atomic_int fc_entered;

static void *foreign_blocked_recv(void *p)
{
    gort_chan *c = p;
    long v = 7;
    atomic_fetch_add(&fc_entered, 1);
    CHECK_EQ(gort_chan_recv(c, &v), 0);
    CHECK_EQ(v, 0);
    return NULL;
}

static void *foreign_blocked_send(void *p)
{
    gort_chan *c = p;
    long v = 7;
    atomic_fetch_add(&fc_entered, 1);
    CHECK_EQ(gort_chan_send(c, &v), -EPIPE);
    return NULL;
}

static void foreign_close_main(void *arg)
{
    (void)arg;
    atomic_store(&fc_entered, 0);
    gort_chan *r = test_mkchan(sizeof(long), 0), *s = test_mkchan(sizeof(long), 1);
    long v = 1;
    CHECK_EQ(gort_chan_send(s, &v), 0); /* full: the thread's send blocks */
    pthread_t t1, t2;
    CHECK_EQ(pthread_create(&t1, NULL, foreign_blocked_recv, r), 0);
    CHECK_EQ(pthread_create(&t2, NULL, foreign_blocked_send, s), 0);
    yield_until(&fc_entered, 2);
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

TEST(chan_foreign_thread_close)
{
    test_run_with(2, foreign_close_main, NULL);
}
