/*
 * traced.c: a program with known behaviour, traced, for tests/trace/check.py
 * (ctest: trace_json). Two goroutines play ping-pong over unbuffered
 * channels, fifty workers take a mutex, one sleeps, one blocks in a system
 * call, one yields, one made before the trace starts waits for main to
 * let it go, a thread that is not an M starts one, and main waits for them
 * all on a wait group.
 *
 *   traced env           the trace comes from GORT_TRACE (set by run.sh)
 *   traced api PATH      main traces itself with gort_trace_start/stop, and
 *                        checks their answers to misuse
 *
 * Prints "traced: ok" when every call answered as API.md says.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gort.h"

#define ROUNDTRIPS 100
#define WORKERS    50

static gort_waitgroup wg;
static gort_mutex mu;
static int counter;
static int failures;
static const char *tracepath;

#define EXPECT(cond)                                                              \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "traced: %s:%d: %s\n", __FILE__, __LINE__, #cond);   \
            failures++;                                                           \
        }                                                                         \
    } while (0)

static gort_chan *ping, *pong;

static void pinger(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDTRIPS; i++) {
        int v = i, r;
        gort_chan_send(ping, &v);
        gort_chan_recv(pong, &r);
        EXPECT(r == i + 1);
    }
    gort_wg_done(&wg);
}

static void ponger(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDTRIPS; i++) {
        int v;
        gort_chan_recv(ping, &v);
        v++;
        gort_chan_send(pong, &v);
    }
    gort_wg_done(&wg);
}

static void worker(void *arg) {
    (void)arg;
    gort_mutex_lock(&mu);
    counter++;
    gort_mutex_unlock(&mu);
    gort_wg_done(&wg);
}

static void sleeper(void *arg) {
    (void)arg;
    gort_sleep(1000000);
    gort_sleep(1000000);
    gort_wg_done(&wg);
}

static void syscaller(void *arg) {
    (void)arg;
    struct timespec ts = { 0, 5 * 1000 * 1000 };
    gort_syscall_enter();
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    gort_syscall_exit();
    gort_wg_done(&wg);
}

static void yielder(void *arg) {
    (void)arg;
    for (int i = 0; i < 3; i++)
        gort_yield();
    gort_wg_done(&wg);
}

/* Made before gort_trace_start (api): the trace names its slices by the
 * goroutines it found alive when it started. */
static gort_chan *gate;
static void early(void *arg) {
    (void)arg;
    int v;
    EXPECT(gort_chan_recv(gate, &v) == 1);
    gort_wg_done(&wg);
}

/* Started by a thread that is not an M, while the trace runs. */
static void foreigner(void *arg) {
    (void)arg;
    gort_wg_done(&wg);
}

static void *foreign_thread(void *arg) {
    (void)arg;
    EXPECT(gort_go(foreigner, NULL) > 0);
    return NULL;
}

static void warmup(void *arg) {
    (void)arg;
    gort_wg_done(&wg);
}

/* A trace before the checked one, in which main parks and runs again: a
 * trace's starts leave out a goroutine's function only when that trace
 * has it, so the checked trace must still name main's slices. */
static void first_trace(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s.first", tracepath);
    EXPECT(gort_trace_start(path) == 0);
    gort_wg_add(&wg, 1);
    gort_go(warmup, NULL);
    gort_wg_wait(&wg);
    EXPECT(gort_trace_stop() == 0);
    unlink(path);
}

static void tmain(void *arg) {
    (void)arg;
    EXPECT(gort_chan_make(&gate, sizeof(int), 0) == 0);
    gort_go(early, NULL);   /* counted in wg below, before gate lets it go */
    if (tracepath) {
        first_trace();
        EXPECT(gort_trace_start(NULL) == -EINVAL);
        EXPECT(gort_trace_start("/nonexistent-dir/trace.json") == -ENOENT);
        EXPECT(gort_trace_stop() == -ESRCH);
        EXPECT(gort_trace_start(tracepath) == 0);
        EXPECT(gort_trace_start(tracepath) == -EBUSY);
    } else {
        EXPECT(gort_trace_start("/dev/null") == -EBUSY);   /* GORT_TRACE's runs */
    }
    EXPECT(gort_chan_make(&ping, sizeof(int), 0) == 0);
    EXPECT(gort_chan_make(&pong, sizeof(int), 0) == 0);
    gort_wg_add(&wg, 2 + WORKERS + 3 + 1);
    gort_go(pinger, NULL);
    gort_go(ponger, NULL);
    for (int i = 0; i < WORKERS; i++)
        gort_go(worker, NULL);
    gort_go(sleeper, NULL);
    gort_go(syscaller, NULL);
    gort_go(yielder, NULL);
    int one = 1;
    EXPECT(gort_chan_send(gate, &one) == 0);
    gort_wg_add(&wg, 1);
    pthread_t th;
    gort_syscall_enter();   /* the thread's start and join block this M */
    EXPECT(pthread_create(&th, NULL, foreign_thread, NULL) == 0);
    EXPECT(pthread_join(th, NULL) == 0);
    gort_syscall_exit();
    gort_wg_wait(&wg);
    EXPECT(counter == WORKERS);
    gort_chan_free(ping);
    gort_chan_free(pong);
    gort_chan_free(gate);
    if (tracepath) {
        EXPECT(gort_trace_stop() == 0);
        EXPECT(gort_trace_stop() == -ESRCH);
    }
}

int main(int argc, char **argv) {
    if (argc < 2 || (strcmp(argv[1], "env") != 0 && (strcmp(argv[1], "api") != 0 || argc < 3))) {
        fprintf(stderr, "usage: traced env | traced api PATH\n");
        return 2;
    }
    if (strcmp(argv[1], "api") == 0)
        tracepath = argv[2];
    /* Not a goroutine: no trace may start here. */
    EXPECT(gort_trace_start("/dev/null") == -EPERM);
    gort_config cfg = { 0 };
    cfg.maxprocs = 2;
    int err = gort_run(&cfg, tmain, NULL);
    EXPECT(err == 0);
    if (failures)
        return 1;
    printf("traced: ok\n");
    return 0;
}
