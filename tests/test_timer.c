/* Black-box tests of time: gort_sleep and gort_timer_* (Go's time.Sleep,
 * time.Timer, time.Ticker and time.AfterFunc; ports of time/sleep_test.go
 * and time/tick_test.go where they map). Timing is only asserted as a lower
 * bound ("never early"); upper bounds, where there are any, are loose
 * enough for a loaded machine. "Enough time has passed" is always the
 * firing of another timer, never a sleep taken as synchronisation. */
#define _GNU_SOURCE
#include <gort.h>
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MS  (1000 * 1000LL)
#define SEC (1000 * MS)

static uint64_t xorshift(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Receives the int64_t a channel timer sends. */
static int64_t recv_time(gort_chan *c) {
    int64_t v = -1;
    CHECK_EQ(gort_chan_recv(c, &v), 1);
    return v;
}

/* Waits for a fresh one-shot timer of ns: the "enough time has passed"
 * signal of the tests below. */
static void wait_timer(int64_t ns) {
    gort_chan *c = test_mkchan(sizeof(int64_t), 1);
    gort_timer *t = NULL;
    int64_t start = gort_now();
    CHECK_EQ(gort_timer_start(&t, ns, 0, c, NULL, NULL), 0);
    CHECK(recv_time(c) >= start + ns);
    gort_timer_free(t);
    gort_chan_free(c);
}

/* ---- gort_sleep never returns early ------------------------------------------- */

static atomic_int sleep_bad;

static void sleeper(void *arg) {
    uint64_t seed = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
    for (int k = 0; k < 3; k++) {
        int64_t d = (int64_t)(xorshift(&seed) % (5 * MS + 1));
        int64_t before = gort_now();
        gort_sleep(d);
        int64_t after = gort_now();
        if (after < before + d)
            atomic_fetch_add(&sleep_bad, 1);
        CHECK(after >= before + d);
    }
}

static void sleep_many_main(void *arg) {
    int n = *(int *)arg;
    for (int i = 0; i < n; i++)
        CHECK(gort_go(sleeper, (void *)(uintptr_t)(i + 1)) > 0);
    test_wait_until_only_main();
}

TEST(sleep_never_early) {
    int n = (int)test_scale(3000, 600, 300);
    int procs[] = { 1, 2, 4 };
    for (int i = 0; i < 3; i++)
        test_run_with(procs[i], sleep_many_main, &n);
    CHECK_EQ(atomic_load(&sleep_bad), 0);
}

/* 10,000 sleepers park their goroutines, not threads. */
static atomic_int lazy_started;

static void lazy_sleeper(void *arg) {
    (void)arg;
    atomic_fetch_add(&lazy_started, 1);
    gort_sleep(300 * MS);
}

static void sleepers_few_threads_main(void *arg) {
    int n = *(int *)arg;
    for (int i = 0; i < n; i++)
        CHECK(gort_go(lazy_sleeper, NULL) > 0);
    test_yield_until(&lazy_started, n);
    gort_stats st;
    gort_read_stats(&st);
    CHECK(st.threads <= st.procs + 4);
    test_wait_until_only_main();
    gort_read_stats(&st);
    CHECK(st.threads <= st.procs + 4);
}

TEST(sleep_parks_goroutines_not_threads) {
    int n = (int)test_scale(10000, 2000, 1000);
    test_run_with(2, sleepers_few_threads_main, &n);
}

/* ---- gort_sleep(0) and negative durations yield -------------------------------- */

static atomic_int yield_ran;

static void yield_marker(void *arg) {
    (void)arg;
    atomic_fetch_add(&yield_ran, 1);
}

static void sleep_zero_main(void *arg) {
    (void)arg;
    int64_t durations[] = { 0, -1, -5 * SEC, INT64_MIN };
    for (int i = 0; i < 4; i++) {
        atomic_store(&yield_ran, 0);
        CHECK(gort_go(yield_marker, NULL) > 0);
        int64_t before = gort_now();
        /* One P and no preemption: the marker only runs if main goes
         * through the scheduler (usually at once; the scheduler may pick
         * main again from the global queue now and then). */
        for (int k = 0; k < 1000 && atomic_load(&yield_ran) == 0; k++)
            gort_sleep(durations[i]);
        CHECK_EQ(atomic_load(&yield_ran), 1);
        CHECK(gort_now() - before < 10 * SEC); /* did not sleep for real */
    }
}

TEST(sleep_zero_and_negative_yield) { test_run_with(1, sleep_zero_main, NULL); }

/* ---- gort_sleep on a thread that is not a goroutine -------------------------------- */

static void *thread_sleeper(void *arg) {
    int64_t d = *(int64_t *)arg;
    CHECK_EQ(gort_id(), 0);
    int64_t before = gort_now();
    gort_sleep(d);
    CHECK(gort_now() >= before + d);
    gort_sleep(0);
    gort_sleep(-1);
    return NULL;
}

static void thread_sleep_main(void *arg) {
    (void)arg;
    pthread_t th;
    int64_t d = 30 * MS;
    CHECK_EQ(pthread_create(&th, NULL, thread_sleeper, &d), 0);
    gort_syscall_enter();
    CHECK_EQ(pthread_join(th, NULL), 0);
    gort_syscall_exit();
}

TEST(sleep_on_plain_thread) {
    int64_t d = 20 * MS;
    thread_sleeper(&d); /* no runtime at all */
    test_run_with(2, thread_sleep_main, NULL);
}

/* A huge duration does not overflow into the past (Go's TestOverflowSleep). */
static atomic_int overflow_woke;

static void overflow_sleeper(void *arg) {
    gort_sleep(*(int64_t *)arg);
    atomic_store(&overflow_woke, 1);
}

static void overflow_main(void *arg) {
    (void)arg;
    static int64_t huge[] = { INT64_MAX, INT64_MAX - 1, INT64_MAX / 2 + 12345 };
    for (int i = 0; i < 3; i++)
        CHECK(gort_go(overflow_sleeper, &huge[i]) > 0);
    gort_chan *c = test_mkchan(sizeof(int64_t), 1);
    gort_timer *t[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ(gort_timer_start(&t[i], huge[i], huge[i], c, NULL, NULL), 0);
    wait_timer(50 * MS);
    CHECK_EQ(atomic_load(&overflow_woke), 0);
    CHECK_EQ(gort_chan_tryrecv(c, NULL), -EAGAIN);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(gort_timer_stop(t[i]), 1);
        gort_timer_free(t[i]);
    }
    gort_chan_free(c);
    /* the sleepers are abandoned at return */
}

TEST(sleep_and_timer_huge_durations) { test_run_with(2, overflow_main, NULL); }

/* ---- one-shot channel timers ------------------------------------------------------- */

static void oneshot_main(void *arg) {
    (void)arg;
    int64_t durations[] = { 10 * MS, 1 * MS, 1, 0, -5 * MS };
    for (int i = 0; i < 5; i++) {
        gort_chan *c = test_mkchan(sizeof(int64_t), 1);
        gort_timer *t = NULL;
        int64_t start = gort_now();
        CHECK_EQ(gort_timer_start(&t, durations[i], 0, c, NULL, NULL), 0);
        CHECK(t != NULL);
        int64_t v = recv_time(c);
        int64_t got = gort_now();
        int64_t d = durations[i] > 0 ? durations[i] : 0;
        CHECK(v >= start + d);
        CHECK(got >= v);
        /* expired: stop and a second stop both say so */
        CHECK_EQ(gort_timer_stop(t), 0);
        CHECK_EQ(gort_timer_stop(t), 0);
        CHECK_EQ(gort_chan_tryrecv(c, NULL), -EAGAIN);
        gort_timer_free(t);
        gort_chan_free(c);
    }
}

TEST(timer_channel_oneshot) {
    test_run_with(1, oneshot_main, NULL);
    test_run_with(4, oneshot_main, NULL);
}

/* Many timers with random durations, all on one buffered channel: every
 * one fires exactly once and none early (Go's TestAfterStress, TestSleep
 * with many timers). */
static void many_oneshots_main(void *arg) {
    (void)arg;
    int n = (int)test_scale(5000, 1000, 500);
    gort_chan *c = test_mkchan(sizeof(int64_t), (size_t)n);
    gort_timer **t = calloc((size_t)n, sizeof *t);
    int64_t *when = calloc((size_t)n, sizeof *when);
    CHECK(t && when);
    uint64_t seed = 88172645463325252ull;
    int64_t latest = 0;
    for (int i = 0; i < n; i++) {
        int64_t d = (int64_t)(xorshift(&seed) % (20 * MS));
        when[i] = gort_now() + d;
        if (when[i] > latest)
            latest = when[i];
        CHECK_EQ(gort_timer_start(&t[i], d, 0, c, NULL, NULL), 0);
    }
    /* Values arrive in any order; each is at or after some timer's due
     * time, and the k-th smallest value is at or after the k-th smallest
     * due time. */
    int64_t *got = calloc((size_t)n, sizeof *got);
    CHECK(got != NULL);
    for (int i = 0; i < n; i++)
        got[i] = recv_time(c);
    CHECK_EQ(gort_chan_len(c), 0);
    /* insertion sort is too slow for 5000: shell sort both */
    int64_t *arrs[2] = { got, when };
    for (int a = 0; a < 2; a++) {
        int64_t *v = arrs[a];
        for (int gap = n / 2; gap > 0; gap /= 2)
            for (int i = gap; i < n; i++) {
                int64_t x = v[i];
                int j = i;
                for (; j >= gap && v[j - gap] > x; j -= gap)
                    v[j] = v[j - gap];
                v[j] = x;
            }
    }
    for (int i = 0; i < n; i++)
        CHECK(got[i] >= when[i]);
    CHECK(got[n - 1] >= latest);
    for (int i = 0; i < n; i++) {
        CHECK_EQ(gort_timer_stop(t[i]), 0);
        gort_timer_free(t[i]);
    }
    CHECK_EQ(gort_chan_tryrecv(c, NULL), -EAGAIN);
    gort_chan_free(c);
    free(t);
    free(when);
    free(got);
}

TEST(timer_many_oneshots_each_once_never_early) {
    test_run_with(1, many_oneshots_main, NULL);
    test_run_with(4, many_oneshots_main, NULL);
}

/* ---- tickers ----------------------------------------------------------------------- */

static void ticker_main(void *arg) {
    (void)arg;
    const int64_t period = 2 * MS;
    const int n = 25;
    size_t caps[] = { 1, 0, 4 };
    for (int k = 0; k < 3; k++) {
        gort_chan *c = test_mkchan(sizeof(int64_t), caps[k]);
        gort_timer *t = NULL;
        int64_t start = gort_now();
        CHECK_EQ(gort_timer_start(&t, period, period, c, NULL, NULL), 0);
        int64_t prev = 0;
        for (int i = 0; i < n; i++) {
            int64_t v = recv_time(c);
            CHECK(v >= prev);
            /* The i-th delivered tick comes from the i-th firing or a
             * later one (dropped ticks only skip firings). */
            CHECK(v >= start + period + (int64_t)i * period);
            CHECK(gort_now() >= v);
            prev = v;
        }
        /* Active until stopped. */
        CHECK_EQ(gort_timer_stop(t), 1);
        CHECK_EQ(gort_timer_stop(t), 0);
        /* What was buffered before the stop may be read; nothing after. */
        while (gort_chan_tryrecv(c, NULL) == 1)
            ;
        wait_timer(10 * period);
        CHECK_EQ(gort_chan_tryrecv(c, NULL), -EAGAIN);
        gort_timer_free(t);
        gort_chan_free(c);
    }
}

TEST(timer_ticker) {
    test_run_with(1, ticker_main, NULL);
    test_run_with(2, ticker_main, NULL);
}

/* A ticker whose channel nobody reads drops ticks (a full channel keeps
 * its value) and keeps running: Go's sendTime. */
static void ticker_drop_main(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int64_t), 1);
    gort_timer *t = NULL;
    int64_t start = gort_now();
    CHECK_EQ(gort_timer_start(&t, MS, MS, c, NULL, NULL), 0);
    wait_timer(30 * MS);
    CHECK_EQ(gort_chan_len(c), 1);
    int64_t first = recv_time(c);
    CHECK(first >= start + MS);
    /* Still ticking: the next one is later than the kept one. */
    int64_t next = recv_time(c);
    CHECK(next > first);
    CHECK_EQ(gort_timer_stop(t), 1);
    gort_timer_free(t);
    gort_chan_free(c);
}

TEST(timer_ticker_full_channel_drops) { test_run_with(2, ticker_drop_main, NULL); }

/* ---- function timers --------------------------------------------------------------- */

typedef struct {
    gort_chan *done; /* of int64_t: gort_now() when fn ran */
    atomic_int runs;
    int64_t start, ns;
    atomic_int bad;
} fnstate;

static void timer_fn(void *arg) {
    fnstate *s = arg;
    int64_t now = gort_now();
    if (gort_id() <= 0 || now < s->start + s->ns)
        atomic_fetch_add(&s->bad, 1);
    CHECK(gort_id() > 0);
    CHECK(now >= s->start + s->ns);
    atomic_fetch_add(&s->runs, 1);
    /* A goroutine of its own: it may block. */
    gort_sleep(MS);
    CHECK_EQ(gort_chan_send(s->done, &now), 0);
}

static void func_timer_main(void *arg) {
    (void)arg;
    fnstate s = { 0 };
    s.done = test_mkchan(sizeof(int64_t), 64);
    /* one-shot */
    s.ns = 5 * MS;
    s.start = gort_now();
    gort_timer *t = NULL;
    CHECK_EQ(gort_timer_start(&t, s.ns, 0, NULL, timer_fn, &s), 0);
    int64_t ran = recv_time(s.done);
    CHECK(ran >= s.start + s.ns);
    CHECK_EQ(atomic_load(&s.runs), 1);
    CHECK_EQ(gort_timer_stop(t), 0);
    gort_timer_free(t);

    /* periodic: runs again and again until stopped */
    atomic_store(&s.runs, 0);
    s.ns = 2 * MS;
    s.start = gort_now();
    CHECK_EQ(gort_timer_start(&t, s.ns, 3 * MS, NULL, timer_fn, &s), 0);
    for (int i = 0; i < 5; i++)
        recv_time(s.done);
    CHECK_EQ(gort_timer_stop(t), 1);
    /* Functions started before the stop may still run; then nothing. */
    test_wait_until_only_main();
    int runs = atomic_load(&s.runs);
    CHECK(runs >= 5);
    wait_timer(20 * MS);
    CHECK_EQ(atomic_load(&s.runs), runs);
    while (gort_chan_tryrecv(s.done, NULL) == 1)
        ;
    gort_timer_free(t);
    CHECK_EQ(atomic_load(&s.bad), 0);
    gort_chan_free(s.done);
}

TEST(timer_function) {
    test_run_with(1, func_timer_main, NULL);
    test_run_with(4, func_timer_main, NULL);
}

/* Go's TestAfterFunc: a function timer that starts the next one, ten in a
 * chain. */
static atomic_int chain_left;
static gort_timer *chain_timers[11];
static gort_chan *chain_done;
static gort_waitgroup chain_wg; /* each function has stored its timer */

static void chain_fn(void *arg) {
    (void)arg;
    int i = atomic_fetch_sub(&chain_left, 1) - 1;
    if (i == 0)
        CHECK_EQ(gort_chan_send(chain_done, NULL), 0);
    else
        CHECK_EQ(gort_timer_start(&chain_timers[i], 0, 0, NULL, chain_fn, NULL), 0);
    gort_wg_done(&chain_wg);
}

static void chain_main(void *arg) {
    (void)arg;
    atomic_store(&chain_left, 10);
    chain_done = test_mkchan(0, 0);
    gort_wg_add(&chain_wg, 10);
    CHECK_EQ(gort_timer_start(&chain_timers[10], 0, 0, NULL, chain_fn, NULL), 0);
    CHECK_EQ(gort_chan_recv(chain_done, NULL), 1);
    gort_wg_wait(&chain_wg);
    for (int i = 1; i <= 10; i++) {
        CHECK_EQ(gort_timer_stop(chain_timers[i]), 0);
        gort_timer_free(chain_timers[i]);
    }
    gort_chan_free(chain_done);
}

TEST(timer_function_chain) { test_run_with(2, chain_main, NULL); }

/* ---- stop before firing: nothing is ever delivered --------------------------------- */

static atomic_int never_ran;

static void never_fn(void *arg) {
    (void)arg;
    atomic_fetch_add(&never_ran, 1);
}

static void stop_before_main(void *arg) {
    (void)arg;
    gort_chan *c1 = test_mkchan(sizeof(int64_t), 1);
    gort_chan *c2 = test_mkchan(sizeof(int64_t), 1);
    gort_timer *t1, *t2, *f1, *tick;
    /* A 1 s timer and a short one stopped at once, a function timer, a
     * ticker: all stopped before they fire. */
    CHECK_EQ(gort_timer_start(&t1, SEC, 0, c1, NULL, NULL), 0);
    CHECK_EQ(gort_timer_start(&t2, 5 * MS, 0, c2, NULL, NULL), 0);
    CHECK_EQ(gort_timer_start(&f1, 5 * MS, 0, NULL, never_fn, NULL), 0);
    CHECK_EQ(gort_timer_start(&tick, 5 * MS, 5 * MS, c2, NULL, NULL), 0);
    int64_t t0 = gort_now();
    int s2 = gort_timer_stop(t2), sf = gort_timer_stop(f1), st = gort_timer_stop(tick);
    int64_t t1s = gort_now();
    CHECK_EQ(gort_timer_stop(t1), 1);
    if (t1s < t0 + 5 * MS) { /* stopped before they were due: certain */
        CHECK_EQ(s2, 1);
        CHECK_EQ(sf, 1);
        CHECK_EQ(st, 1);
    }
    /* A second stop: already stopped. */
    CHECK_EQ(gort_timer_stop(t1), 0);
    CHECK_EQ(gort_timer_stop(t2), 0);
    CHECK_EQ(gort_timer_stop(f1), 0);
    CHECK_EQ(gort_timer_stop(tick), 0);
    /* Well past when the short ones were due. */
    wait_timer(30 * MS);
    CHECK_EQ(gort_chan_tryrecv(c1, NULL), -EAGAIN);
    if (s2 == 1 && st == 1)
        CHECK_EQ(gort_chan_tryrecv(c2, NULL), -EAGAIN);
    if (sf == 1)
        CHECK_EQ(atomic_load(&never_ran), 0);
    gort_timer_free(t1);
    gort_timer_free(t2);
    gort_timer_free(f1);
    gort_timer_free(tick);
    gort_chan_free(c1);
    gort_chan_free(c2);
}

TEST(timer_stop_before_firing) {
    test_run_with(1, stop_before_main, NULL);
    test_run_with(4, stop_before_main, NULL);
}

/* ---- reset ---------------------------------------------------------------------------- */

static void reset_main(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int64_t), 1);
    gort_timer *t;
    /* Reset of an active timer: 1; it now fires at the new time (Go's
     * TestReset and TestTimerModifiedEarlier: 10 s moved to 5 ms). */
    CHECK_EQ(gort_timer_start(&t, 10 * SEC, 0, c, NULL, NULL), 0);
    int64_t start = gort_now();
    CHECK_EQ(gort_timer_reset(t, 5 * MS, 0), 1);
    int64_t v = recv_time(c);
    CHECK(v >= start + 5 * MS);
    CHECK(v < start + 5 * SEC); /* the old 10 s schedule is gone (loose) */
    /* Reset of an expired timer: 0, and it fires again. */
    start = gort_now();
    CHECK_EQ(gort_timer_reset(t, 2 * MS, 0), 0);
    CHECK(recv_time(c) >= start + 2 * MS);
    /* Reset of a stopped timer: 0, and it fires. */
    CHECK_EQ(gort_timer_reset(t, SEC, 0), 0);
    CHECK_EQ(gort_timer_stop(t), 1);
    start = gort_now();
    CHECK_EQ(gort_timer_reset(t, MS, 0), 0);
    CHECK(recv_time(c) >= start + MS);
    /* Reset turns a one-shot into a ticker and back. */
    start = gort_now();
    CHECK_EQ(gort_timer_reset(t, MS, MS), 0);
    int64_t prev = 0;
    for (int i = 0; i < 5; i++) {
        v = recv_time(c);
        CHECK(v >= start + MS + i * MS);
        CHECK(v >= prev);
        prev = v;
    }
    CHECK_EQ(gort_timer_stop(t), 1);
    while (gort_chan_tryrecv(c, NULL) == 1)
        ;
    start = gort_now();
    CHECK_EQ(gort_timer_reset(t, 3 * MS, 0), 0);
    CHECK(recv_time(c) >= start + 3 * MS);
    wait_timer(20 * MS);
    CHECK_EQ(gort_chan_tryrecv(c, NULL), -EAGAIN); /* one-shot again */
    CHECK_EQ(gort_timer_stop(t), 0);
    /* Reset of a function timer. */
    atomic_store(&never_ran, 0);
    gort_timer *f;
    CHECK_EQ(gort_timer_start(&f, 10 * SEC, 0, NULL, never_fn, NULL), 0);
    CHECK_EQ(gort_timer_reset(f, MS, 0), 1);
    while (atomic_load(&never_ran) == 0)
        wait_timer(MS);
    CHECK_EQ(gort_timer_stop(f), 0);
    gort_timer_free(f);
    gort_timer_free(t);
    gort_chan_free(c);
}

TEST(timer_reset) {
    test_run_with(1, reset_main, NULL);
    test_run_with(2, reset_main, NULL);
}

/* ---- stop and reset races ---------------------------------------------------------- */

/* One one-shot timer, several goroutines stopping it while it fires: it is
 * either stopped (exactly one stop says 1) or delivered (once), never both
 * and never neither. After every stop has returned, a send in progress has
 * completed, so the value is in the channel. */
typedef struct {
    gort_timer *t;
    gort_waitgroup *wg;
    atomic_int *stopped;
    atomic_int *go;
} stopper_arg;

static void racing_stopper(void *arg) {
    stopper_arg *a = arg;
    while (!atomic_load(a->go))
        gort_yield(); /* a scheduling point: due timers run there */
    int r = gort_timer_stop(a->t);
    CHECK(r == 0 || r == 1);
    if (r == 1)
        atomic_fetch_add(a->stopped, 1);
    gort_wg_done(a->wg);
}

static void stop_race_main(void *arg) {
    (void)arg;
    int iters = (int)test_scale(3000, 1000, 300);
    enum { STOPPERS = 3 };
    gort_chan *c = test_mkchan(sizeof(int64_t), 1);
    uint64_t seed = 12345;
    int stopped_total = 0, delivered_total = 0;
    for (int it = 0; it < iters; it++) {
        gort_timer *t;
        atomic_int stopped = 0, go = 0;
        gort_waitgroup wg = { 0 };
        stopper_arg a = { NULL, &wg, &stopped, &go };
        gort_wg_add(&wg, STOPPERS);
        int64_t ns = (int64_t)(xorshift(&seed) % 20000);
        int64_t release = gort_now() + (int64_t)(xorshift(&seed) % 20000);
        CHECK_EQ(gort_timer_start(&t, ns, 0, c, NULL, NULL), 0);
        a.t = t;
        for (int i = 0; i < STOPPERS; i++)
            CHECK(gort_go(racing_stopper, &a) > 0);
        while (gort_now() < release)
            gort_yield();
        atomic_store(&go, 1);
        gort_wg_wait(&wg);
        int delivered = gort_chan_tryrecv(c, NULL) == 1;
        int s = atomic_load(&stopped);
        CHECK(s <= 1);
        CHECK_EQ(s + delivered, 1);
        stopped_total += s;
        delivered_total += delivered;
        gort_timer_free(t);
        CHECK_EQ(gort_chan_tryrecv(c, NULL), -EAGAIN);
    }
    gort_chan_free(c);
    printf("# %d stopped, %d delivered\n", stopped_total, delivered_total);
}

TEST(timer_stop_race_exactly_once) {
    test_run_with(2, stop_race_main, NULL);
    test_run_with(4, stop_race_main, NULL);
}

/* The same from one goroutine, checked at once: a stop that returns 0 has
 * waited for the send in progress, so the value is already there. The
 * timer fires on the other P (its M wakes from the poller for it) while
 * this one stops it. */
static void stop_waits_main(void *arg) {
    (void)arg;
    int iters = (int)test_scale(100000, 20000, 5000);
    gort_chan *c = test_mkchan(sizeof(int64_t), 1);
    uint64_t seed = 777;
    int zeros = 0;
    for (int it = 0; it < iters; it++) {
        gort_timer *t;
        uint64_t r = xorshift(&seed);
        int64_t ns = (int64_t)(r % 4000);
        CHECK_EQ(gort_timer_start(&t, ns, 0, c, NULL, NULL), 0);
        int64_t until = gort_now() + (int64_t)((r >> 16) % 6000);
        while (gort_now() < until)
            ;
        int s = gort_timer_stop(t);
        if (s == 0) {
            CHECK_EQ(gort_chan_len(c), 1);
            zeros++;
        }
        gort_timer_free(t);
        CHECK_EQ(gort_chan_tryrecv(c, NULL), s == 0 ? 1 : -EAGAIN);
    }
    printf("# %d of %d fired before the stop\n", zeros, iters);
    gort_chan_free(c);
}

TEST(timer_stop_waits_for_send_in_progress) { test_run_with(2, stop_waits_main, NULL); }

/* Goroutines reset and stop one timer at random while it fires. Every
 * arming (the start and each reset) ends exactly once: by firing (a value,
 * the channel never fills), by a reset or a stop that returns 1, or by the
 * final stop. */
typedef struct {
    gort_timer *t;
    int ops;
    atomic_int *ones;
    atomic_int *resets;
    gort_waitgroup *wg;
    uint64_t seed;
} resetter_arg;

static void racing_resetter(void *arg) {
    resetter_arg *a = arg;
    uint64_t seed = a->seed;
    for (int i = 0; i < a->ops; i++) {
        uint64_t r = xorshift(&seed);
        int64_t ns = (int64_t)(r % 4000);
        int got;
        if (r % 3 == 0) {
            got = gort_timer_stop(a->t);
        } else {
            got = gort_timer_reset(a->t, ns, 0);
            atomic_fetch_add(a->resets, 1);
        }
        CHECK(got == 0 || got == 1);
        if (got == 1)
            atomic_fetch_add(a->ones, 1);
        if (r % 2 == 0)
            gort_yield();
    }
    gort_wg_done(a->wg);
}

static void reset_race_main(void *arg) {
    (void)arg;
    enum { R = 4 };
    int ops = (int)test_scale(5000, 1000, 300);
    gort_chan *c = test_mkchan(sizeof(int64_t), (size_t)(R * ops + 2));
    gort_timer *t;
    atomic_int ones = 0, resets = 0;
    gort_waitgroup wg = { 0 };
    resetter_arg a[R];
    CHECK_EQ(gort_timer_start(&t, 10000, 0, c, NULL, NULL), 0);
    gort_wg_add(&wg, R);
    for (int i = 0; i < R; i++) {
        a[i] = (resetter_arg){ t, ops, &ones, &resets, &wg, 0x1234567ull * (uint64_t)(i + 1) };
        CHECK(gort_go(racing_resetter, &a[i]) > 0);
    }
    gort_wg_wait(&wg);
    int final = gort_timer_stop(t);
    int64_t delivered = (int64_t)gort_chan_len(c);
    CHECK_EQ(delivered + atomic_load(&ones) + final, 1 + atomic_load(&resets));
    /* Nothing more after the final stop. */
    wait_timer(5 * MS);
    CHECK_EQ((int64_t)gort_chan_len(c), delivered);
    printf("# %d resets, %lld delivered\n", atomic_load(&resets), (long long)delivered);
    gort_timer_free(t);
    gort_chan_free(c);
}

TEST(timer_reset_stop_race_accounting) {
    test_run_with(1, reset_race_main, NULL);
    test_run_with(4, reset_race_main, NULL);
}

/* Timers freed while they fire: no crash, no use after free (ASan). */
static atomic_int freefire_runs;

static void freefire_fn(void *arg) {
    (void)arg;
    atomic_fetch_add(&freefire_runs, 1);
}

typedef struct {
    int iters;
    gort_chan *c;
    gort_waitgroup *wg;
    uint64_t seed;
} freer_arg;

static void racing_freer(void *arg) {
    freer_arg *a = arg;
    uint64_t seed = a->seed;
    for (int i = 0; i < a->iters; i++) {
        gort_timer *t;
        uint64_t r = xorshift(&seed);
        int64_t ns = (int64_t)(r % 5000);
        if (r & 1)
            CHECK_EQ(gort_timer_start(&t, ns, 0, a->c, NULL, NULL), 0);
        else
            CHECK_EQ(gort_timer_start(&t, ns, (r & 2) ? 1000 : 0, NULL, freefire_fn, NULL), 0);
        for (uint64_t k = r % 64; k > 0; k--)
            __asm__ volatile("" ::: "memory");
        gort_timer_free(t);
        while (gort_chan_tryrecv(a->c, NULL) == 1)
            ;
    }
    gort_wg_done(a->wg);
}

static void free_race_main(void *arg) {
    (void)arg;
    enum { F = 4 };
    int iters = (int)test_scale(20000, 3000, 1000);
    gort_chan *c = test_mkchan(sizeof(int64_t), 1);
    gort_waitgroup wg = { 0 };
    freer_arg a[F];
    gort_wg_add(&wg, F);
    for (int i = 0; i < F; i++) {
        a[i] = (freer_arg){ iters, c, &wg, 0xabcdefull * (uint64_t)(i + 3) };
        CHECK(gort_go(racing_freer, &a[i]) > 0);
    }
    gort_wg_wait(&wg);
    test_wait_until_only_main();
    gort_chan_free(c);
}

TEST(timer_free_while_firing) {
    test_run_with(2, free_race_main, NULL);
    test_run_with(4, free_race_main, NULL);
}

/* ---- timers and threads that are not goroutines ------------------------------------ */

typedef struct {
    gort_chan *c;
    gort_chan *fromthread;
    atomic_int *fnran;
} thr_arg;

static void thr_fn(void *arg) {
    thr_arg *a = arg;
    CHECK(gort_id() > 0);
    atomic_fetch_add(a->fnran, 1);
}

static void *timer_thread(void *arg) {
    thr_arg *a = arg;
    CHECK_EQ(gort_id(), 0);
    /* A channel timer received by a goroutine. */
    gort_timer *t1, *t2, *t3, *t4;
    int64_t start = gort_now();
    CHECK_EQ(gort_timer_start(&t1, 5 * MS, 0, a->c, NULL, NULL), 0);
    /* A channel timer received here (a thread blocks on the channel). */
    CHECK_EQ(gort_timer_start(&t2, 2 * MS, 0, a->fromthread, NULL, NULL), 0);
    int64_t v = -1;
    CHECK_EQ(gort_chan_recv(a->fromthread, &v), 1);
    CHECK(v >= start + 2 * MS);
    /* A function timer: the function runs on a goroutine. */
    CHECK_EQ(gort_timer_start(&t3, MS, 0, NULL, thr_fn, a), 0);
    /* Stop, reset and free from here. */
    CHECK_EQ(gort_timer_start(&t4, 10 * SEC, 0, a->fromthread, NULL, NULL), 0);
    CHECK_EQ(gort_timer_reset(t4, 20 * SEC, 0), 1);
    CHECK_EQ(gort_timer_stop(t4), 1);
    start = gort_now();
    CHECK_EQ(gort_timer_reset(t4, MS, 0), 0);
    CHECK_EQ(gort_chan_recv(a->fromthread, &v), 1);
    CHECK(v >= start + MS);
    CHECK_EQ(gort_timer_stop(t4), 0);
    while (atomic_load(a->fnran) == 0) {
        struct timespec ts = { 0, 100000 };
        nanosleep(&ts, NULL); /* a plain thread waits for the function */
    }
    gort_timer_free(t4);
    gort_timer_free(t3);
    gort_timer_free(t2);
    return t1; /* the goroutine's to free */
}

static void thread_timers_main(void *arg) {
    (void)arg;
    atomic_int fnran = 0;
    thr_arg a = { test_mkchan(sizeof(int64_t), 1), test_mkchan(sizeof(int64_t), 1), &fnran };
    pthread_t th;
    int64_t start = gort_now();
    CHECK_EQ(pthread_create(&th, NULL, timer_thread, &a), 0);
    CHECK(recv_time(a.c) >= start + 5 * MS);
    void *t1 = NULL;
    gort_syscall_enter();
    CHECK_EQ(pthread_join(th, &t1), 0);
    gort_syscall_exit();
    CHECK_EQ(gort_timer_stop(t1), 0);
    gort_timer_free(t1);
    while (gort_chan_tryrecv(a.fromthread, NULL) == 1)
        ;
    test_wait_until_only_main();
    gort_chan_free(a.c);
    gort_chan_free(a.fromthread);
}

TEST(timer_from_plain_thread) {
    test_run_with(1, thread_timers_main, NULL);
    test_run_with(2, thread_timers_main, NULL);
}

/* Without a runtime: nothing can be started, and a stop says "not active". */
TEST(timer_without_runtime) {
    gort_timer *t = (gort_timer *)1;
    gort_chan *c = NULL;
    CHECK_EQ(gort_chan_make(&c, sizeof(int64_t), 1), 0);
    CHECK_EQ(gort_timer_start(&t, MS, 0, c, NULL, NULL), -EPERM);
    CHECK(t == NULL);
    gort_chan_free(c);
}

/* ---- free and EINVAL ---------------------------------------------------------------- */

static void free_active_main(void *arg) {
    (void)arg;
    atomic_store(&never_ran, 0);
    gort_chan *c = test_mkchan(sizeof(int64_t), 1);
    gort_timer *t1, *t2, *t3;
    CHECK_EQ(gort_timer_start(&t1, 5 * MS, 0, c, NULL, NULL), 0);
    CHECK_EQ(gort_timer_start(&t2, 5 * MS, 0, NULL, never_fn, NULL), 0);
    CHECK_EQ(gort_timer_start(&t3, 2 * MS, 2 * MS, c, NULL, NULL), 0);
    int64_t t0 = gort_now();
    gort_timer_free(t1);
    gort_timer_free(t2);
    int64_t t1s = gort_now();
    recv_time(c); /* the ticker has ticked: freed while active, below */
    gort_timer_free(t3);
    while (gort_chan_tryrecv(c, NULL) == 1)
        ;
    gort_timer_free(NULL);
    wait_timer(30 * MS);
    if (t1s < t0 + 5 * MS)
        CHECK_EQ(atomic_load(&never_ran), 0);
    CHECK_EQ(gort_chan_tryrecv(c, NULL), -EAGAIN);
    gort_chan_free(c);
}

TEST(timer_free_active) { test_run_with(2, free_active_main, NULL); }

static void einval_main(void *arg) {
    (void)arg;
    gort_chan *c4 = test_mkchan(4, 1), *c8 = test_mkchan(8, 1), *c16 = test_mkchan(16, 1),
              *c0 = test_mkchan(0, 1);
    gort_timer *t = (gort_timer *)1;
    CHECK_EQ(gort_timer_start(&t, MS, 0, c4, NULL, NULL), -EINVAL);
    CHECK(t == NULL);
    t = (gort_timer *)1;
    CHECK_EQ(gort_timer_start(&t, MS, 0, c16, NULL, NULL), -EINVAL);
    CHECK(t == NULL);
    CHECK_EQ(gort_timer_start(&t, MS, 0, c0, NULL, NULL), -EINVAL);
    CHECK_EQ(gort_timer_start(&t, MS, 0, c8, never_fn, NULL), -EINVAL); /* both */
    CHECK_EQ(gort_timer_start(&t, MS, 0, NULL, NULL, NULL), -EINVAL);   /* neither */
    CHECK_EQ(gort_timer_start(&t, MS, -1, c8, NULL, NULL), -EINVAL);    /* negative period */
    CHECK_EQ(gort_timer_start(&t, MS, INT64_MIN, NULL, never_fn, NULL), -EINVAL);
    CHECK_EQ(gort_timer_start(NULL, MS, 0, c8, NULL, NULL), -EINVAL); /* no out */
    CHECK_EQ(gort_timer_stop(NULL), -EINVAL);
    CHECK_EQ(gort_timer_reset(NULL, MS, 0), -EINVAL);
    CHECK_EQ(gort_timer_start(&t, SEC, 0, c8, NULL, NULL), 0);
    CHECK_EQ(gort_timer_reset(t, MS, -1), -EINVAL);
    CHECK_EQ(gort_timer_stop(t), 1); /* the bad reset left it as it was */
    gort_timer_free(t);
    CHECK_EQ(gort_chan_len(c8), 0);
    gort_chan_free(c4);
    gort_chan_free(c8);
    gort_chan_free(c16);
    gort_chan_free(c0);
}

TEST(timer_einval) { test_run_with(1, einval_main, NULL); }

/* ---- timers across gort_maxprocs and across runs ----------------------------------- */

/* Timers in the heaps of Ps that gort_maxprocs destroys still fire. */
enum { SHRINK_N = 64 };
static gort_timer *shrink_timers[2 * SHRINK_N];
static gort_chan *shrink_chan;

static gort_waitgroup shrink_wg;

static void shrink_starter(void *arg) {
    int i = (int)(intptr_t)arg;
    CHECK_EQ(gort_timer_start(&shrink_timers[i], 20 * MS, 0, shrink_chan, NULL, NULL), 0);
    gort_wg_done(&shrink_wg);
}

static void shrink_main(void *arg) {
    (void)arg;
    shrink_chan = test_mkchan(sizeof(int64_t), 2 * SHRINK_N);
    int64_t start = gort_now();
    /* Started here and from goroutines spread over the 4 Ps. */
    for (int i = 0; i < SHRINK_N; i++)
        CHECK_EQ(gort_timer_start(&shrink_timers[i], 20 * MS, 0, shrink_chan, NULL, NULL), 0);
    gort_wg_add(&shrink_wg, SHRINK_N);
    for (int i = SHRINK_N; i < 2 * SHRINK_N; i++)
        CHECK(gort_go(shrink_starter, (void *)(intptr_t)i) > 0);
    gort_wg_wait(&shrink_wg);
    CHECK_EQ(gort_maxprocs(1), 4);
    for (int i = 0; i < 2 * SHRINK_N; i++)
        CHECK(recv_time(shrink_chan) >= start + 20 * MS);
    for (int i = 0; i < 2 * SHRINK_N; i++) {
        CHECK_EQ(gort_timer_stop(shrink_timers[i]), 0);
        gort_timer_free(shrink_timers[i]);
    }
    CHECK_EQ(gort_maxprocs(4), 1);
    gort_chan_free(shrink_chan);
}

TEST(timer_survives_maxprocs_shrink) { test_run_with(4, shrink_main, NULL); }

/* Timers and sleepers pending when main returns are abandoned; gort_run
 * returns, again and again. A timer of an ended run is not active; it can
 * be freed, or reset in the next run, where it fires. */
static gort_timer *pend_timers[8];
static gort_chan *pend_chans[8];

static void long_sleeper(void *arg) {
    (void)arg;
    gort_sleep(10 * SEC);
    CHECK(0);
}

static void busy_fn(void *arg) {
    (void)arg;
    gort_sleep(10 * SEC);
}

static void pending_main(void *arg) {
    int run = *(int *)arg;
    if (run > 0) {
        /* The previous run's timers: inactive here, and resettable. */
        for (int i = 0; i < 8; i++)
            CHECK_EQ(gort_timer_stop(pend_timers[i]), 0);
        int64_t start = gort_now();
        CHECK_EQ(gort_timer_reset(pend_timers[0], MS, 0), 0);
        int64_t v = -1;
        CHECK_EQ(gort_chan_recv(pend_chans[0], &v), 1);
        CHECK(v >= start + MS);
        CHECK_EQ(gort_timer_stop(pend_timers[0]), 0);
        for (int i = 0; i < 8; i++) {
            gort_timer_free(pend_timers[i]);
            gort_chan_free(pend_chans[i]);
        }
    }
    for (int i = 0; i < 100; i++)
        CHECK(gort_go(long_sleeper, NULL) > 0);
    for (int i = 0; i < 8; i++) {
        pend_chans[i] = test_mkchan(sizeof(int64_t), 1);
        switch (i % 4) {
        case 0:
            CHECK_EQ(gort_timer_start(&pend_timers[i], 10 * SEC, 0, pend_chans[i], NULL, NULL), 0);
            break;
        case 1: /* a fast ticker, its channel full */
            CHECK_EQ(gort_timer_start(&pend_timers[i], 0, 100 * 1000, pend_chans[i], NULL, NULL),
                     0);
            break;
        case 2: /* a fast periodic function, its goroutines piling up */
            CHECK_EQ(gort_timer_start(&pend_timers[i], 0, 200 * 1000, NULL, busy_fn, NULL), 0);
            break;
        default: CHECK_EQ(gort_timer_start(&pend_timers[i], 10 * SEC, 0, NULL, busy_fn, NULL), 0);
        }
    }
    wait_timer(5 * MS);
}

TEST(timers_pending_at_return) {
    for (int run = 0; run < 6; run++)
        test_run_with(1 + run % 3, pending_main, &run);
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(gort_timer_stop(pend_timers[i]), 0); /* no runtime: not active */
        gort_timer_free(pend_timers[i]);
        gort_chan_free(pend_chans[i]);
    }
}

/* ---- deadlock detection -------------------------------------------------------------- */

static void waiter_on(void *arg) { gort_chan_recv(arg, NULL); }

/* Only goroutines waiting on channels, no timer: a deadlock. */
static void deadlock_main(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(0, 0);
    CHECK(gort_go(waiter_on, c) > 0);
    gort_chan *c2 = test_mkchan(0, 0);
    gort_chan_recv(c2, NULL);
}

/* A timer that was started and stopped (or has fired) wakes no one. */
static void deadlock_after_timers_main(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int64_t), 1);
    gort_timer *t1, *t2;
    CHECK_EQ(gort_timer_start(&t1, 10 * SEC, 0, c, NULL, NULL), 0);
    CHECK_EQ(gort_timer_start(&t2, MS, 0, c, NULL, NULL), 0);
    CHECK_EQ(gort_timer_stop(t1), 1);
    recv_time(c);   /* t2 fired */
    gort_sleep(MS); /* and a sleep is over */
    CHECK(gort_go(waiter_on, c) > 0);
    gort_chan *c2 = test_mkchan(0, 0);
    gort_chan_recv(c2, NULL);
}

TEST(deadlock_without_timers_is_reported) {
    if (test_tsan()) /* TSan's own thread: the detector rightly stands down */
        return;
    if (test_emulated() && test_skip("qemu-user's /proc/self/stat has no thread count, so checkdead gives no verdict"))
        return;
    gort_config cfg = { .maxprocs = 2 };
    CHECK(test_expect_fatal(&cfg, deadlock_main, NULL, "all goroutines are asleep - deadlock!"));
    CHECK(test_expect_fatal(&cfg, deadlock_after_timers_main, NULL,
                            "all goroutines are asleep - deadlock!"));
    cfg.maxprocs = 1;
    CHECK(test_expect_fatal(&cfg, deadlock_main, NULL, "main goroutine: chan receive"));
}

/* Every goroutine blocked, but a timer pending: not a deadlock. */
static void sleeping_main(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(0, 0);
    CHECK(gort_go(waiter_on, c) > 0);
    gort_sleep(50 * MS); /* everything asleep: only the timer can wake main */
    CHECK_EQ(gort_chan_send(c, NULL), 0);
    gort_chan_free(c);
}

static void timer_wakes_main(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int64_t), 0);
    gort_timer *t;
    /* Unbuffered: the send only succeeds because main already waits. */
    CHECK_EQ(gort_timer_start(&t, 50 * MS, 0, c, NULL, NULL), 0);
    recv_time(c);
    gort_timer_free(t);
    gort_chan_free(c);
}

static gort_chan *fn_wake_chan;
static void fn_waker(void *arg) {
    (void)arg;
    CHECK_EQ(gort_chan_send(fn_wake_chan, NULL), 0);
}

static void fn_timer_wakes_main(void *arg) {
    (void)arg;
    fn_wake_chan = test_mkchan(0, 0);
    gort_timer *t;
    CHECK_EQ(gort_timer_start(&t, 50 * MS, 0, NULL, fn_waker, NULL), 0);
    CHECK_EQ(gort_chan_recv(fn_wake_chan, NULL), 1);
    gort_timer_free(t);
    gort_chan_free(fn_wake_chan);
}

static void no_deadlock_child(void) {
    for (int procs = 1; procs <= 2; procs++) {
        test_run_with(procs, sleeping_main, NULL);
        test_run_with(procs, timer_wakes_main, NULL);
        test_run_with(procs, fn_timer_wakes_main, NULL);
    }
}

TEST(pending_timer_is_not_deadlock) {
    char *err = NULL;
    int status = test_fork_capture(no_deadlock_child, 120, &err);
    if (status != 0)
        fprintf(stderr, "child status %#x, stderr:\n%s\n", status, err);
    CHECK_EQ(status, 0);
    CHECK(strstr(err, "deadlock") == NULL);
    free(err);
}

/* ---- gort_after ------------------------------------------------------------------------ */

/* Each gort_after channel receives one int64_t, not early; it frees itself
 * once received (ASan's leak checker runs at exit). */
static atomic_int after_bad;

static void after_receiver(void *arg) {
    uint64_t seed = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull + 7;
    for (int k = 0; k < 3; k++) {
        int64_t d = (int64_t)(xorshift(&seed) % (3 * MS + 1)) - 100 * 1000; /* some <= 0 */
        gort_chan *c = NULL;
        int64_t start = gort_now();
        CHECK_EQ(gort_after(&c, d), 0);
        CHECK(c != NULL);
        int64_t v = -1;
        if (k == 1) {
            while (gort_chan_tryrecv(c, &v) != 1)
                gort_yield();
        } else {
            CHECK_EQ(gort_chan_recv(c, &v), 1);
        }
        int64_t now = gort_now();
        if (v < start + (d > 0 ? d : 0) || now < v)
            atomic_fetch_add(&after_bad, 1);
        CHECK(v >= start + (d > 0 ? d : 0));
        CHECK(now >= v);
        /* c is gone: not touched again */
    }
}

static void after_main(void *arg) {
    int n = *(int *)arg;
    for (int i = 0; i < n; i++)
        CHECK(gort_go(after_receiver, (void *)(uintptr_t)(i + 1)) > 0);
    test_wait_until_only_main();
}

TEST(after_fires_once_never_early_frees_itself) {
    int n = (int)test_scale(2000, 500, 200);
    test_run_with(1, after_main, &n);
    test_run_with(4, after_main, &n);
    CHECK_EQ(atomic_load(&after_bad), 0);
}

/* Go's timeout pattern: select on a channel that never becomes ready and
 * on gort_after; and one where the data comes first, leaving the after
 * channel unreceived (it stays until gort_run returns, then is freed). */
static void after_select_main(void *arg) {
    (void)arg;
    gort_chan *never = test_mkchan(sizeof(int), 0);
    for (int i = 0; i < 5; i++) {
        gort_chan *timeout;
        int64_t start = gort_now();
        CHECK_EQ(gort_after(&timeout, 5 * MS), 0);
        int x;
        int64_t v = -1;
        gort_case cs[2] = { test_rcase(never, &x), test_rcase(timeout, &v) };
        CHECK_EQ(gort_select(cs, 2, 1), 1);
        CHECK_EQ(cs[1].ok, 1);
        CHECK(v >= start + 5 * MS);
    }
    gort_chan *data = test_mkchan(sizeof(int), 1);
    for (int i = 0; i < 50; i++) {
        gort_chan *timeout;
        CHECK_EQ(gort_after(&timeout, i % 2 ? 3600 * SEC : 20 * MS), 0);
        int x = i, y = -1;
        CHECK_EQ(gort_chan_send(data, &x), 0);
        int64_t v;
        gort_case cs[2] = { test_rcase(data, &y), test_rcase(timeout, &v) };
        CHECK_EQ(gort_select(cs, 2, 1), 0); /* data was ready first */
        CHECK_EQ(y, i);
        /* timeout abandoned, fired or not */
    }
    wait_timer(30 * MS); /* the short ones have fired into their channels */
    gort_chan_free(data);
    gort_chan_free(never);
}

TEST(after_select_timeout_and_abandoned) {
    for (int run = 0; run < 3; run++)
        test_run_with(1 + run, after_select_main, NULL);
}

static void *after_thread(void *arg) {
    (void)arg;
    gort_chan *c;
    int64_t start = gort_now();
    CHECK_EQ(gort_after(&c, 2 * MS), 0);
    int64_t v = -1;
    CHECK_EQ(gort_chan_recv(c, &v), 1); /* a plain thread blocks on it */
    CHECK(v >= start + 2 * MS);
    return NULL;
}

static void after_thread_main(void *arg) {
    (void)arg;
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, after_thread, NULL), 0);
    gort_syscall_enter();
    CHECK_EQ(pthread_join(th, NULL), 0);
    gort_syscall_exit();
    CHECK_EQ(gort_after(NULL, MS), -EINVAL);
}

TEST(after_from_plain_thread_and_errors) {
    gort_chan *c = (gort_chan *)1;
    CHECK_EQ(gort_after(&c, MS), -EPERM); /* no runtime */
    CHECK(c == NULL);
    test_run_with(2, after_thread_main, NULL);
}

/* Many gort_after channels pending when main returns: freed with the run,
 * again and again. */
static void after_pending_main(void *arg) {
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        gort_chan *c;
        CHECK_EQ(gort_after(&c, i % 2 ? 0 : 3600 * SEC), 0);
    }
    wait_timer(2 * MS);
}

TEST(after_pending_at_return) {
    for (int run = 0; run < 5; run++)
        test_run_with(1 + run % 2, after_pending_main, NULL);
}
