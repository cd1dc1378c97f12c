/* Black-box stress tests of gort_select: senders racing for one select,
 * fan-in and fan-out over many channels, selects racing with close. */
#define _GNU_SOURCE
#include <gort.h>
#include "test.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Two senders race for one select waiting on both of their channels: exactly
 * one is taken, the other stays blocked and is received by main. */
static gort_chan *duo_a, *duo_b, *duo_res;
static gort_waitgroup duo_wg;

static void duo_selector(void *arg) {
    (void)arg;
    long va = -1, vb = -1;
    gort_case cs[2] = { test_rcase(duo_a, &va), test_rcase(duo_b, &vb) };
    int k = gort_select(cs, 2, 1);
    CHECK(k == 0 || k == 1);
    long res[2] = { k, k ? vb : va };
    CHECK_EQ(gort_chan_send(duo_res, res), 0);
}

static void duo_sender(void *arg) {
    long v = (long)(intptr_t)arg;
    CHECK_EQ(gort_chan_send(v == 1 ? duo_a : duo_b, &v), 0);
    gort_wg_done(&duo_wg);
}

static void duo_main(void *arg) {
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

TEST(select_two_senders_race_one_select) {
    test_run_with(2, duo_main, NULL);
    test_run_with(4, duo_main, NULL);
}

/* ---- fan-in and fan-out stress ------------------------------------------------- */

typedef struct fan_cfg {
    int nchan;
    size_t cap;
    long per_chan;
} fan_cfg;

static fan_cfg fc = { .nchan = 1 };
static gort_chan **fan_c;
static atomic_uchar *fan_seen;
static atomic_ulong fan_sum, fan_xor;
static atomic_long fan_count;
static gort_waitgroup fan_wg;

static uint64_t fan_value(uint64_t i) { return i * 0xD1B54A32D192ED03ull + 12345; }

static void fanin_producer(void *arg) {
    long p = (long)(intptr_t)arg;
    for (long i = 0; i < fc.per_chan; i++) {
        uint64_t idx = (uint64_t)(p * fc.per_chan + i);
        uint64_t msg[2] = { idx, fan_value(idx) };
        CHECK_EQ(gort_chan_send(fan_c[p], msg), 0);
    }
    CHECK_EQ(gort_chan_close(fan_c[p]), 0);
}

static void fan_record(const uint64_t msg[2], uint64_t *sum, uint64_t *x) {
    uint64_t total = (uint64_t)fc.nchan * (uint64_t)fc.per_chan;
    CHECK(msg[0] < total);
    CHECK(msg[1] == fan_value(msg[0]));
    CHECK_EQ(atomic_fetch_add(&fan_seen[msg[0]], 1), 0);
    *sum += msg[1];
    *x ^= msg[1];
}

static void fan_check(void) {
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

static void fan_setup(void) {
    uint64_t total = (uint64_t)fc.nchan * (uint64_t)fc.per_chan;
    fan_c = calloc((size_t)(unsigned)fc.nchan, sizeof *fan_c);
    for (int i = 0; i < fc.nchan; i++)
        fan_c[i] = test_mkchan(2 * sizeof(uint64_t), fc.cap);
    fan_seen = calloc(total, 1);
    atomic_store(&fan_sum, 0);
    atomic_store(&fan_xor, 0);
    atomic_store(&fan_count, 0);
}

static void fan_teardown(void) {
    for (int i = 0; i < fc.nchan; i++)
        gort_chan_free(fan_c[i]);
    free(fan_c);
    free(fan_seen);
}

static void fanin_main(void *arg) {
    (void)arg;
    fan_setup();
    for (int i = 0; i < fc.nchan; i++)
        CHECK(gort_go(fanin_producer, (void *)(intptr_t)i) > 0);
    gort_case *cs = calloc((size_t)(unsigned)fc.nchan, sizeof *cs);
    uint64_t *msgs = calloc((size_t)(unsigned)fc.nchan * 2, sizeof *msgs);
    for (int i = 0; i < fc.nchan; i++)
        cs[i] = test_rcase(fan_c[i], &msgs[2 * i]);
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

static void fanout_consumer(void *arg) {
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

static void fanout_main(void *arg) {
    (void)arg;
    fan_setup();
    gort_wg_add(&fan_wg, fc.nchan);
    for (int i = 0; i < fc.nchan; i++)
        CHECK(gort_go(fanout_consumer, fan_c[i]) > 0);
    uint64_t total = (uint64_t)fc.nchan * (uint64_t)fc.per_chan;
    gort_case *cs = calloc((size_t)(unsigned)fc.nchan, sizeof *cs);
    uint64_t msg[2];
    for (int i = 0; i < fc.nchan; i++)
        cs[i] = test_scase(fan_c[i], msg);
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

TEST(select_fan_in) {
    size_t caps[] = { 0, 1, 64 };
    int procs[] = { 1, 2, 4 };
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

TEST(select_fan_out) {
    size_t caps[] = { 0, 1, 64 };
    int procs[] = { 1, 2, 4 };
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

static void rc_sender(void *arg) {
    int s = (int)(intptr_t)arg;
    for (int i = 0; i < rc_per_sender; i++) {
        uint32_t v = (uint32_t)(s * rc_per_sender + i);
        gort_case cs[NRC];
        for (int j = 0; j < NRC; j++)
            cs[j] = test_scase(rc_c[j], &v);
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

static void rc_receiver(void *arg) {
    (void)arg;
    uint32_t v[NRC];
    gort_case cs[NRC];
    for (int j = 0; j < NRC; j++)
        cs[j] = test_rcase(rc_c[j], &v[j]);
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

static void rc_closer(void *arg) {
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

static void rc_main(void *arg) {
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

TEST(select_races_with_close) {
    size_t caps[] = { 0, 1, 8 };
    int procs[] = { 1, 2, 4 };
    for (int k = 0; k < 3; k++)
        for (int p = 0; p < 3; p++) {
            rc_senders = 16;
            rc_receivers = 4;
            rc_per_sender = (int)test_scale(2000, 500, 150);
            test_run_with(procs[p], rc_main, &caps[k]);
        }
}
