/* Black-box stress tests of gort channels: close racing sends and
 * receives, many producers and consumers with checksums, ping-pong, a daisy
 * chain of goroutines. */
#define _GNU_SOURCE
#include <gort.h>
#include "test.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- races between close and send/recv ------------------------------------ */

typedef struct race_cfg {
    size_t cap;
    int senders, receivers, per_sender;
} race_cfg;

static race_cfg rc;
static gort_chan *race_c;
static atomic_uchar *race_ok_sent; /* per value: its send returned 0 */
static atomic_uchar *race_seen;    /* per value: times received */
static atomic_long race_sent_ok, race_received;
static gort_waitgroup race_wg;

static void race_sender(void *arg) {
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

static void race_receiver(void *arg) {
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

static void race_closer(void *arg) {
    long after = (long)(intptr_t)arg;
    while (atomic_load(&race_received) < after)
        gort_yield();
    CHECK_EQ(gort_chan_close(race_c), 0);
    gort_wg_done(&race_wg);
}

static void race_main(void *arg) {
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

TEST(chan_close_races_send_recv) {
    size_t caps[] = { 0, 1, 16 };
    int procs[] = { 1, 2, 4 };
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

static void mpmc_producer(void *arg) {
    long p = (long)(intptr_t)arg;
    for (long i = 0; i < mc.per_producer; i++) {
        uint64_t idx = (uint64_t)(p * mc.per_producer + i);
        uint64_t msg[2] = { idx, mpmc_value(idx) };
        CHECK_EQ(gort_chan_send(mpmc_c, msg), 0);
    }
    gort_wg_done(&mpmc_prod_wg);
}

static void mpmc_consumer(void *arg) {
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

static void mpmc_main(void *arg) {
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

TEST(chan_mpmc_checksums) {
    size_t caps[] = { 0, 1, 16, 1024 };
    int procs[] = { 1, 2, 4 };
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

TEST(chan_mpmc_many_goroutines) {
    /* Lots of producers and consumers parked at once. */
    size_t caps[] = { 0, 16 };
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

static void ponger(void *arg) {
    long n = (long)(intptr_t)arg, v;
    for (long i = 0; i < n; i++) {
        CHECK_EQ(gort_chan_recv(ping, &v), 1);
        CHECK_EQ(v, 2 * i);
        v++;
        CHECK_EQ(gort_chan_send(pong, &v), 0);
    }
}

static void pingpong_main(void *arg) {
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

TEST(chan_ping_pong) {
    long n = test_scale(100000, 20000, 10000);
    test_run_with(1, pingpong_main, &n);
    test_run_with(2, pingpong_main, &n);
}

/* ---- daisy chain -------------------------------------------------------------- */

typedef struct dlink {
    gort_chan *left, *right;
} dlink;

static void daisy(void *arg) {
    dlink *l = arg;
    long v;
    CHECK_EQ(gort_chan_recv(l->right, &v), 1);
    v++;
    CHECK_EQ(gort_chan_send(l->left, &v), 0);
}

static void daisy_main(void *arg) {
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

TEST(chan_daisy_chain) {
    int n = (int)test_scale(10000, 10000, 1000);
    test_run_with(1, daisy_main, &n);
    test_run_with(4, daisy_main, &n);
}
