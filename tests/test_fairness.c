/*
 * Fairness without preemption: a pair of goroutines that wake each other
 * into runnext inherits one time slice, so without a bound it would keep
 * its P for ever and starve every other goroutine queued there, although
 * it reaches a scheduling point every few hundred nanoseconds. gort bounds
 * the inherited slice as Go does (about 10 ms), by cooperative means.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "test.h"

/* ---- main comes back while a ping-pong pair runs on its P ------------------ */

typedef struct {
    gort_chan *c1, *c2;
    atomic_int stop;
    atomic_long rounds;
} pingpong;

static void ping(void *arg) {
    pingpong *pp = arg;
    bool v = true;
    for (;;) {
        CHECK_EQ(gort_chan_send(pp->c1, &v), 0);
        CHECK_EQ(gort_chan_recv(pp->c2, &v), 1);
        atomic_fetch_add_explicit(&pp->rounds, 1, memory_order_relaxed);
        if (atomic_load(&pp->stop))
            break;
    }
    CHECK_EQ(gort_chan_send(pp->c1, &v), 0); /* let pong see stop */
}

static void pong(void *arg) {
    pingpong *pp = arg;
    bool v;
    for (;;) {
        CHECK_EQ(gort_chan_recv(pp->c1, &v), 1);
        if (gort_chan_send(pp->c2, &v) != 0)
            break;
    }
}

static void main_returns(void *arg) {
    (void)arg;
    CHECK_EQ(gort_maxprocs(0), 1);
    pingpong pp = { test_mkchan(sizeof(bool), 0), test_mkchan(sizeof(bool), 0), 0, 0 };
    CHECK(gort_go(ping, &pp) > 0);
    CHECK(gort_go(pong, &pp) > 0);
    /* Main goes to the tail of the local queue; the pair takes the P. Main
     * must get it back: before the fix it never did. Each yield lets the
     * pair run a while; a few yields prove the P keeps rotating. */
    for (int i = 0; i < 5; i++)
        gort_yield();
    CHECK(atomic_load(&pp.rounds) > 0);
    atomic_store(&pp.stop, 1);
    /* ping sends once more after seeing stop; pong then blocks in send on c2,
     * which close wakes with -EPIPE. */
    while (gort_num_goroutines() > 2)
        gort_yield();
    CHECK_EQ(gort_chan_close(pp.c2), 0);
    test_wait_until_only_main();
    gort_chan_free(pp.c1);
    gort_chan_free(pp.c2);
}

TEST(pingpong_pair_does_not_starve_main) {
    gort_config cfg = { .maxprocs = 1 };
    CHECK_EQ(gort_run(&cfg, main_returns, NULL), 0);
}

/* ---- Go's TestPingPongHog (runtime/proc_test.go) ---------------------------- */

/* Two co-scheduled pairs on one P: the hogs do a million increments per
 * hand-off, the light pair a thousand. Each pair hands the P to its buddy
 * well within a slice, so over a window of a few slices both make progress
 * within a factor of 20 (without a bound on the inherited slice the first
 * pair to start keeps the P, and the gap is ~1000x or infinite). */

typedef struct {
    gort_chan *done;
    gort_chan *wake;
    long limit;
    volatile long *counter;
} hogarg;

static volatile long hogCount, lightCount;

static void hogrun(void *arg) {
    hogarg *a = arg;
    for (;;) {
        bool v = true;
        gort_case cases[2] = {
            { .chan = a->done, .op = GORT_RECV, .elem = &v },
            { .chan = a->wake, .op = GORT_RECV, .elem = &v },
        };
        int i = gort_select(cases, 2, 1);
        CHECK(i == 0 || i == 1);
        if (i == 0)
            return;
        for (long k = 0; k < a->limit; k++)
            (*a->counter)++;
        CHECK_EQ(gort_chan_send(a->wake, &v), 0);
    }
}

static void pingponghog_main(void *arg) {
    (void)arg;
    CHECK_EQ(gort_maxprocs(0), 1);
    hogCount = lightCount = 0;
    gort_chan *done = test_mkchan(sizeof(bool), 0);
    hogarg hog = { done, test_mkchan(sizeof(bool), 0), 1000000, &hogCount };
    hogarg light = { done, test_mkchan(sizeof(bool), 0), 1000, &lightCount };
    if (test_sanitized()) {
        hog.limit /= 10; /* keep the work per hand-off ~1 ms there too */
        light.limit /= 10;
    }
    for (int i = 0; i < 2; i++)
        CHECK(gort_go(hogrun, &hog) > 0);
    for (int i = 0; i < 2; i++)
        CHECK(gort_go(hogrun, &light) > 0);

    bool v = true;
    CHECK_EQ(gort_chan_send(hog.wake, &v), 0);
    CHECK_EQ(gort_chan_send(light.wake, &v), 0);
    /* Go sleeps 100 ms here; gort has no sleep in this layer, so main
     * yields for the same span (it needs its own turn on the P to see the
     * clock at all, which is the point of the test). */
    int64_t start = gort_now();
    while (gort_now() - start < 100 * 1000 * 1000)
        gort_yield();
    CHECK_EQ(gort_chan_close(done), 0);
    CHECK_EQ(gort_chan_recv(hog.wake, &v), 1);
    CHECK_EQ(gort_chan_recv(light.wake, &v), 1);
    test_wait_until_only_main();

    const long factor = 20;
    if (hogCount / factor > lightCount || lightCount / factor > hogCount) {
        fprintf(stderr, "want hogCount/lightCount in [1/%ld, %ld]; got %ld/%ld\n", factor, factor,
                (long)hogCount, (long)lightCount);
        CHECK(!"pair progress out of balance");
    }
    gort_chan_free(done);
    gort_chan_free(hog.wake);
    gort_chan_free(light.wake);
}

TEST(pingpong_hog) {
    gort_config cfg = { .maxprocs = 1 };
    CHECK_EQ(gort_run(&cfg, pingponghog_main, NULL), 0);
}

/* ---- the same when every P was idle and a thread starts the pair ------------ */

/* Main waits on a channel, so the only P is idle and sysmon may be in its
 * all-idle sleep. A thread that is not a goroutine then starts the pair and
 * a third goroutine that releases main; that one is queued behind the pair
 * and runs only if the pair's slice is bounded, which needs sysmon awake. */

static pingpong idle_pp;
static gort_chan *idle_done;

static void release_main(void *arg) {
    (void)arg;
    bool v = true;
    CHECK_EQ(gort_chan_send(idle_done, &v), 0);
}

static void *starter(void *arg) {
    (void)arg;
    /* Wait until main has parked and the P is idle. */
    for (;;) {
        gort_stats st;
        gort_read_stats(&st);
        if (st.idle_procs == 1 && st.idle_threads >= 1)
            break;
        sched_yield();
    }
    CHECK(gort_go(ping, &idle_pp) > 0);
    CHECK(gort_go(pong, &idle_pp) > 0);
    CHECK(gort_go(release_main, NULL) > 0);
    return NULL;
}

static void idle_main(void *arg) {
    (void)arg;
    idle_pp = (pingpong){ test_mkchan(sizeof(bool), 0), test_mkchan(sizeof(bool), 0), 0, 0 };
    idle_done = test_mkchan(sizeof(bool), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, starter, NULL), 0);
    bool v;
    CHECK_EQ(gort_chan_recv(idle_done, &v), 1);
    atomic_store(&idle_pp.stop, 1);
    while (gort_num_goroutines() > 2)
        gort_yield();
    CHECK_EQ(gort_chan_close(idle_pp.c2), 0);
    test_wait_until_only_main();
    CHECK_EQ(pthread_join(t, NULL), 0);
    gort_chan_free(idle_pp.c1);
    gort_chan_free(idle_pp.c2);
    gort_chan_free(idle_done);
}

TEST(pingpong_pair_started_on_idle_runtime) {
    gort_config cfg = { .maxprocs = 1 };
    CHECK_EQ(gort_run(&cfg, idle_main, NULL), 0);
}
