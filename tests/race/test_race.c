/*
 * test_race.c: the race flavour (libgort-tsan) under ThreadSanitizer. This
 * program is compiled with -fsanitize=thread and linked with libgort-tsan,
 * as a user's is (docs/API.md, "Sanitizer flavours").
 *
 * Each scenario runs as a program of its own: a forked child runs it under
 * gort_run, with TSAN_OPTIONS=halt_on_error=1:exitcode=66 (ctest sets it),
 * so a report ends the child with status 66 and its text on stderr, which
 * is checked. A racy scenario must be reported in every run, naming both
 * racing functions; a correct one never. Several correct ones are Go's
 * runtime/race/testdata/chan_test.go "NoRace" tests, and racy ones its
 * "Race" tests, written with gort.
 *
 * No sleeps order anything here: where two goroutines must run at once,
 * they meet on relaxed atomics, which ThreadSanitizer does not take for
 * synchronisation.
 */
#define _GNU_SOURCE
#include "test.h"

#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOINLINE __attribute__((noipa))

/* The variables raced on, reset by every child (each is a fresh process).
 * volatile: a store to a static the program never reads is dead to the
 * compiler, which removed write_other_first's and write_other_after's (a
 * race on `other` was then never reported: TestRaceChanWrongSend "missed"
 * it whenever main received the first sender's value). */
static volatile int shared __attribute__((aligned(64)));
static volatile int other __attribute__((aligned(64)));

/* The scenario the next child runs, and on how many Ps. */
static void (*scenario)(void *);
static int scenario_procs;

static void child(void) {
    gort_config cfg = { .maxprocs = scenario_procs };
    int r = gort_run(&cfg, scenario, NULL);
    _exit(r == 0 ? 0 : 1);
}

/* Runs fn n times, each in a child of its own. racy: every run must end in
 * a data-race report that names every function in names (NULL-ended);
 * otherwise: none may, and ThreadSanitizer must say nothing. */
static void runs(void (*fn)(void *), int procs, int n, bool racy, const char *const *names) {
    scenario = fn;
    scenario_procs = procs;
    for (int i = 0; i < n; i++) {
        char *err = NULL;
        int status = test_fork_capture(child, 120, &err);
        bool reported = err && strstr(err, "WARNING: ThreadSanitizer: data race");
        bool ok;
        if (racy) {
            ok = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 66 && reported;
            for (const char *const *p = names; ok && p && *p; p++)
                ok = strstr(err, *p) != NULL;
        } else {
            ok = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0 && err &&
                 !strstr(err, "ThreadSanitizer");
        }
        if (!ok) {
            fprintf(stderr, "run %d of %d (%d Ps): expected %s; status %d; stderr:\n%s\n", i + 1, n,
                    procs, racy ? "a report naming the racing functions" : "no report", status,
                    err ? err : "(none)");
            free(err);
            CHECK(ok);
        }
        free(err);
    }
}

/* The accesses, in functions of their own so that the report names them. */
static NOINLINE void write_in_main(int v) { shared = v; }
static NOINLINE void write_in_goroutine(int v) { shared = v; }
static NOINLINE int read_in_main(void) { return shared; }

static const char *const main_and_goroutine[] = { "write_in_main", "write_in_goroutine", NULL };

/* ---- a race: main and one goroutine write one global ---------------------- */

static void racer(void *arg) {
    write_in_goroutine(2);
    gort_wg_done(arg);
}

/* The program: nothing orders the two writes. The wait group only
 * orders the goroutine's write before Wait returns, and main's write comes
 * before Wait. */
static void race_main(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, 1);
    gort_go(racer, &wg);
    write_in_main(1);
    gort_wg_wait(&wg);
}

TEST(race_reported_every_run) {
    runs(race_main, 1, 20, true, main_and_goroutine);
}

/* On 4 Ps the goroutine may run on another thread at the very moment main
 * writes, and two writes at the same instant can each miss the other in
 * TSan's shadow memory, which is updated without a lock (1 run in a few
 * hundred, under load): Go's race detector, on the same runtime, has the
 * same blind spot. So main writes once the goroutine has (a relaxed flag:
 * still no happens-before), yielding meanwhile in case it shares main's P. */
static int racer_wrote;

static void racer_flagged(void *arg) {
    write_in_goroutine(2);
    __atomic_store_n(&racer_wrote, 1, __ATOMIC_RELAXED);
    gort_wg_done(arg);
}

static void race_main_4procs(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, 1);
    gort_go(racer_flagged, &wg);
    while (__atomic_load_n(&racer_wrote, __ATOMIC_RELAXED) == 0)
        gort_yield();
    write_in_main(1);
    gort_wg_wait(&wg);
}

TEST(race_reported_every_run_4procs) {
    runs(race_main_4procs, 4, 20, true, main_and_goroutine);
}

/* ---- a race between two goroutines on different Ps ------------------------- */

static int met;   /* relaxed atomics only: no happens-before */

static NOINLINE void write_on_one_p(void) { shared = 1; }
static NOINLINE void write_on_another_p(void) { shared = 2; }

/* Both goroutines spin until both have arrived: neither yields, so they
 * run at once, on two Ps and two threads. */
static void meet(void) {
    __atomic_fetch_add(&met, 1, __ATOMIC_RELAXED);
    while (__atomic_load_n(&met, __ATOMIC_RELAXED) < 2)
        ;
}

/* The second write waits (relaxed: still no happens-before) until the
 * first is done: two writes at the same instant can each miss the other
 * in TSan's shadow memory, which is updated without a lock. */
static int written;

static void one_p(void *arg) {
    meet();
    write_on_one_p();
    __atomic_store_n(&written, 1, __ATOMIC_RELAXED);
    gort_wg_done(arg);
}

static void another_p(void *arg) {
    meet();
    while (__atomic_load_n(&written, __ATOMIC_RELAXED) == 0)
        ;
    write_on_another_p();
    gort_wg_done(arg);
}

static void race_two_ps(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, 2);
    gort_go(one_p, &wg);
    gort_go(another_p, &wg);
    gort_wg_wait(&wg);
}

TEST(race_two_ps) {
    static const char *const names[] = { "write_on_one_p", "write_on_another_p", NULL };
    runs(race_two_ps, 2, 20, true, names);
}

/* ---- the same program made correct ----------------------------------------- */

static void by_channel_g(void *arg) {
    write_in_goroutine(2);
    gort_chan_send(arg, NULL);
}

/* Go's TestNoRaceChanSync: the send happens before the receive completes. */
static void by_channel(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(0, 0);
    gort_go(by_channel_g, c);
    gort_chan_recv(c, NULL);
    write_in_main(1);
    gort_chan_free(c);
}

static void by_channel_rev_g(void *arg) {
    gort_chan_send(arg, NULL);
    write_in_goroutine(2);
}

/* TestNoRaceChanSyncRev: on an unbuffered channel the receive also happens
 * before the send completes. main waits on a second channel so the
 * program does not end first (that receive orders nothing we check). */
static gort_chan *done;

static void by_channel_rev_g2(void *arg) {
    by_channel_rev_g(arg);
    gort_chan_send(done, NULL);
}

static void by_channel_rev(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(0, 0);
    done = test_mkchan(0, 1);
    gort_go(by_channel_rev_g2, c);
    write_in_main(1);
    gort_chan_recv(c, NULL);
    gort_chan_recv(done, NULL);
}

/* TestNoRaceChanAsync: a buffered send happens before its receive. */
static void by_buffered_g(void *arg) {
    int v = 0;
    write_in_goroutine(2);
    gort_chan_send(arg, &v);
}

static void by_buffered(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int), 10);
    gort_go(by_buffered_g, c);
    int v;
    gort_chan_recv(c, &v);
    write_in_main(1);
}

static void by_close_g(void *arg) {
    write_in_goroutine(2);
    gort_chan_close(arg);
}

/* TestNoRaceChanAsyncCloseRecv2 and ...SyncCloseRecv: close happens before
 * a receive that finds the channel closed (buffered and not). */
static void by_close_buffered(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int), 10);
    gort_go(by_close_g, c);
    int v;
    CHECK_EQ(gort_chan_recv(c, &v), 0);
    write_in_main(1);
}

static void by_close_unbuffered(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int), 0);
    gort_go(by_close_g, c);
    int v;
    CHECK_EQ(gort_chan_recv(c, &v), 0);
    write_in_main(1);
}

static void by_mutex_g(void *arg) {
    void **a = arg;
    gort_mutex_lock(a[0]);
    write_in_goroutine(2);
    gort_mutex_unlock(a[0]);
    gort_wg_done(a[1]);
}

static void by_mutex(void *arg) {
    (void)arg;
    gort_mutex mu = { 0 };
    gort_waitgroup wg = { 0 };
    void *a[2] = { &mu, &wg };
    gort_wg_add(&wg, 1);
    gort_go(by_mutex_g, a);
    gort_mutex_lock(&mu);
    write_in_main(1);
    gort_mutex_unlock(&mu);
    gort_wg_wait(&wg);
}

static void by_rwmutex_g(void *arg) {
    void **a = arg;
    gort_rwmutex_lock(a[0]);
    write_in_goroutine(2);
    gort_rwmutex_unlock(a[0]);
    gort_wg_done(a[1]);
}

/* A writer, then main as a reader, then main as a writer. */
static void by_rwmutex(void *arg) {
    (void)arg;
    gort_rwmutex rw = { 0 };
    gort_waitgroup wg = { 0 };
    void *a[2] = { &rw, &wg };
    gort_wg_add(&wg, 1);
    gort_go(by_rwmutex_g, a);
    gort_rwmutex_rlock(&rw);
    (void)read_in_main();
    gort_rwmutex_runlock(&rw);
    gort_rwmutex_lock(&rw);
    write_in_main(1);
    gort_rwmutex_unlock(&rw);
    gort_wg_wait(&wg);
}

static void by_waitgroup(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, 1);
    gort_go(racer, &wg);
    gort_wg_wait(&wg);
    write_in_main(1);
}

/* gort_once_do: whoever runs fn writes; both read after. The one that did
 * not run fn acquires what fn did. */
static gort_once once;

static NOINLINE void once_fn(void *arg) {
    (void)arg;
    shared = 42;
}

static void by_once_g(void *arg) {
    gort_once_do(&once, once_fn, NULL);
    CHECK_EQ(shared, 42);
    gort_wg_done(arg);
}

static void by_once(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, 2);
    gort_go(by_once_g, &wg);
    gort_go(by_once_g, &wg);
    gort_once_do(&once, once_fn, NULL);
    CHECK_EQ(read_in_main(), 42);
    gort_wg_wait(&wg);
}

/* gort_cond: the condition written under the mutex, waited for with it. */
static gort_mutex cmu;
static gort_cond cond;
static int ready;

static void by_cond_g(void *arg) {
    (void)arg;
    write_in_goroutine(2);
    gort_mutex_lock(&cmu);
    ready = 1;
    gort_cond_signal(&cond);
    gort_mutex_unlock(&cmu);
}

static void by_cond(void *arg) {
    (void)arg;
    gort_go(by_cond_g, NULL);
    gort_mutex_lock(&cmu);
    while (!ready)
        gort_cond_wait(&cond, &cmu);
    gort_mutex_unlock(&cmu);
    write_in_main(1);
}

/* select: the value arrives through one case of several. */
static void by_select(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(0, 0), *never = test_mkchan(0, 0);
    gort_go(by_channel_g, c);
    gort_case cases[2] = { test_rcase(never, NULL), test_rcase(c, NULL) };
    CHECK_EQ(gort_select(cases, 2, 1), 1);
    write_in_main(1);
}

/* TestNoRaceSelectMutex: a channel of capacity 1 as a mutex, through
 * select on both sides. */
static gort_chan *mtx, *aux;

static void selmutex_acquire(void) {
    gort_case cases[2] = { test_scase(mtx, NULL), test_rcase(aux, NULL) };
    CHECK_EQ(gort_select(cases, 2, 1), 0);
}

static void selmutex_release(void) {
    gort_case cases[2] = { test_rcase(mtx, NULL), test_rcase(aux, NULL) };
    CHECK_EQ(gort_select(cases, 2, 1), 0);
}

static void by_select_mutex_g(void *arg) {
    selmutex_acquire();
    write_in_goroutine(42);
    selmutex_release();
    gort_chan_send(arg, NULL);
}

static void by_select_mutex(void *arg) {
    (void)arg;
    gort_chan *d = test_mkchan(0, 0);
    mtx = test_mkchan(0, 1);
    aux = test_mkchan(0, 0);
    gort_go(by_select_mutex_g, d);
    selmutex_acquire();
    write_in_main(43);
    selmutex_release();
    gort_chan_recv(d, NULL);
}

/* TestNoRaceChanMutex: the same with plain sends and receives, an element
 * of a size that the runtime copies with memcpy. */
typedef struct { char b[24]; } big;

static void by_semaphore_g(void *arg) {
    big t = { { 0 } };
    gort_chan_send(mtx, &t);
    write_in_goroutine(42);
    gort_chan_recv(mtx, &t);
    gort_chan_send(arg, NULL);
}

static void by_semaphore(void *arg) {
    (void)arg;
    big t = { { 0 } };
    gort_chan *d = test_mkchan(0, 0);
    mtx = test_mkchan(sizeof(big), 1);
    gort_go(by_semaphore_g, d);
    gort_chan_send(mtx, &t);
    write_in_main(43);
    gort_chan_recv(mtx, &t);
    gort_chan_recv(d, NULL);
}

/* TestNoRaceChanWaitGroup: a buffered channel as a counting semaphore; the
 * kth receive happens before the (k+cap)th send completes. */
enum { NWG = 10 };
static int data[NWG];

static void chanwg_g(void *arg) {
    int i = (int)(intptr_t)arg;
    data[i] = 42;
    gort_chan_recv(mtx, NULL);
}

static void by_chan_waitgroup(void *arg) {
    (void)arg;
    mtx = test_mkchan(0, NWG / 2);
    for (int i = 0; i < NWG; i++) {
        gort_chan_send(mtx, NULL);
        gort_go(chanwg_g, (void *)(intptr_t)i);
    }
    for (int i = 0; i < NWG / 2; i++)
        gort_chan_send(mtx, NULL);
    for (int i = 0; i < NWG; i++)
        CHECK_EQ(data[i], 42);
}

/* TestNoRaceBlockedSendSync: a sender that blocked on a full channel is
 * received from through the buffer; its value's pointee is its own local. */
static void blocked_sender(void *arg) {
    int *i = malloc(sizeof *i);
    *i = 42;
    gort_chan_send(arg, &i);
}

static void by_blocked_send(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int *), 1);
    int *p = NULL;
    gort_chan_send(c, &p);
    gort_go(blocked_sender, c);
    gort_yield();   /* lets it block, on one P; not needed for the result */
    gort_chan_recv(c, &p);
    gort_chan_recv(c, &p);
    CHECK_EQ(*p, 42);
    free(p);
}

/* Timers: what a timer's starter did happens before its channel's value is
 * received and before its function's goroutine runs (Go's startTimer and
 * runOneTimer). The starter hands the channel over through a relaxed
 * atomic, which orders nothing, so the timer is the only edge. */
static gort_chan *published;

static gort_chan *wait_published(void) {
    gort_chan *c;
    while ((c = __atomic_load_n(&published, __ATOMIC_RELAXED)) == NULL)
        gort_yield();
    return c;
}

static void timer_g(void *arg) {
    gort_timer **t = arg;
    gort_chan *c = test_mkchan(sizeof(int64_t), 1);
    write_in_goroutine(2);
    CHECK_EQ(gort_timer_start(t, 1000, 0, c, NULL, NULL), 0);
    __atomic_store_n(&published, c, __ATOMIC_RELAXED);
}

static void by_timer(void *arg) {
    (void)arg;
    gort_timer *t = NULL;
    gort_go(timer_g, &t);
    gort_chan *c = wait_published();
    gort_chan_recv(c, NULL);
    write_in_main(1);
}

static void after_g(void *arg) {
    (void)arg;
    gort_chan *c;
    write_in_goroutine(2);
    CHECK_EQ(gort_after(&c, 1000), 0);
    __atomic_store_n(&published, c, __ATOMIC_RELAXED);
}

static void by_after(void *arg) {
    (void)arg;
    gort_go(after_g, NULL);
    gort_chan *c = wait_published();
    gort_chan_recv(c, NULL);
    write_in_main(1);
}

static void afterfunc(void *arg) {
    write_in_goroutine(2);
    gort_chan_send(arg, NULL);
}

static void by_timer_func(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(0, 0);
    gort_timer *t;
    write_in_main(1);
    CHECK_EQ(gort_timer_start(&t, 1000, 0, NULL, afterfunc, c), 0);
    gort_chan_recv(c, NULL);
    write_in_main(3);
    gort_timer_free(t);
}

/* gort_run's edges: the thread before it, main, the thread after it. */
static void by_run_main(void *arg) {
    (void)arg;
    CHECK_EQ(shared, 7);
    shared = 8;
}

static void by_run_child(void) {
    shared = 7;
    int r = gort_run(NULL, by_run_main, NULL);
    _exit(r == 0 && shared == 8 ? 0 : 1);
}

#define CORRECT(name)                                      \
    TEST(correct_##name) {                                 \
        runs(name, 1, 10, false, NULL);                    \
        runs(name, 4, 10, false, NULL);                    \
    }

CORRECT(by_channel)
CORRECT(by_channel_rev)
CORRECT(by_buffered)
CORRECT(by_close_buffered)
CORRECT(by_close_unbuffered)
CORRECT(by_mutex)
CORRECT(by_rwmutex)
CORRECT(by_waitgroup)
CORRECT(by_once)
CORRECT(by_cond)
CORRECT(by_select)
CORRECT(by_select_mutex)
CORRECT(by_semaphore)
CORRECT(by_chan_waitgroup)
CORRECT(by_blocked_send)
CORRECT(by_timer)
CORRECT(by_timer_func)
CORRECT(by_after)

TEST(correct_run_edges) {
    for (int i = 0; i < 5; i++) {
        char *err = NULL;
        int status = test_fork_capture(by_run_child, 120, &err);
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0 && err && !strstr(err, "ThreadSanitizer")))
            fprintf(stderr, "status %d; stderr:\n%s\n", status, err ? err : "(none)");
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CHECK(err && !strstr(err, "ThreadSanitizer"));
        free(err);
    }
}

/* ---- races the channels must not hide (Go's "Race" tests) ------------------ */

static void async_rev_g(void *arg) {
    int v = 0;
    gort_chan_send(arg, &v);
    write_in_goroutine(1);
}

/* TestRaceChanAsyncRev: a buffered send does not wait for its receive. */
static void race_async_rev(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int), 10);
    gort_go(async_rev_g, c);
    write_in_main(2);
    int v;
    gort_chan_recv(c, &v);
}

static NOINLINE void write_other_first(void) { other = 1; }
static NOINLINE void write_other_after(void) { other = 3; }

/* The senders stay alive until main has written: libtsan drops a report
 * whose earlier access it cannot restore the stack of, which may happen
 * once that access's goroutine has ended. */
static gort_chan *hold;

static void wrong_send_1(void *arg) {
    write_in_goroutine(1);
    int v = 1;
    gort_chan_send(arg, &v);
    gort_chan_recv(hold, NULL);
}

static void wrong_send_2(void *arg) {
    write_other_first();
    int v = 2;
    gort_chan_send(arg, &v);
    gort_chan_recv(hold, NULL);
}

/* TestRaceChanWrongSend: receiving one goroutine's value orders nothing of
 * the other's. Both must have sent before main receives (Go's test
 * sleeps); the channel's length, read without synchronisation, says so. */
static void race_wrong_send(void *arg) {
    (void)arg;
    gort_chan *c = test_mkchan(sizeof(int), 2);
    hold = test_mkchan(0, 0);
    gort_go(wrong_send_1, c);
    gort_go(wrong_send_2, c);
    while (gort_chan_len(c) < 2)
        gort_yield();
    int v;
    gort_chan_recv(c, &v);
    if (v == 1)
        write_other_after();
    else
        write_in_main(3);
    gort_chan_close(hold);
}

static void sem2_g(void *arg) {
    char b = 1;
    gort_chan_send(mtx, &b);
    write_in_goroutine(42);
    gort_chan_recv(mtx, &b);
    gort_chan_send(arg, NULL);
}

/* TestRaceChanSem: a channel of capacity 2 is no mutex for two. Its
 * elements are not empty: a channel of empty elements has one slot as far
 * as the detector knows, and orders all its operations (as in Go). */
static void race_sem2(void *arg) {
    (void)arg;
    char b = 1;
    gort_chan *d = test_mkchan(0, 0);
    mtx = test_mkchan(1, 2);
    gort_go(sem2_g, d);
    gort_chan_send(mtx, &b);
    write_in_main(43);
    gort_chan_recv(mtx, &b);
    gort_chan_recv(d, NULL);
}

TEST(race_chan_async_rev) {
    runs(race_async_rev, 1, 5, true, main_and_goroutine);
    runs(race_async_rev, 4, 5, true, main_and_goroutine);
}

TEST(race_chan_wrong_send) {
    runs(race_wrong_send, 1, 20, true, NULL);
    runs(race_wrong_send, 4, 20, true, NULL);
}

TEST(race_chan_sem2) {
    runs(race_sem2, 1, 5, true, main_and_goroutine);
    runs(race_sem2, 4, 5, true, main_and_goroutine);
}

/* ---- stack reuse ------------------------------------------------------------- */

/* Many short goroutines, all made before any runs (so nothing orders one
 * after another), each writing locals through a pointer that an
 * instrumented function uses. They run one after another on the same few
 * stacks: without the race flavour's racemalloc, the second goroutine on a
 * stack would be reported against the first. */
static NOINLINE void fill(volatile int *p, int n, int v) {
    for (int i = 0; i < n; i++)
        p[i] = v + i;
}

static NOINLINE int sum(volatile int *p, int n) {
    int s = 0;
    for (int i = 0; i < n; i++)
        s += p[i];
    return s;
}

static void short_g(void *arg) {
    int local[256];
    fill(local, 256, (int)gort_id());
    (void)sum(local, 256);
    gort_wg_done(arg);
}

static void stack_reuse(void *arg) {
    (void)arg;
    for (int round = 0; round < 10; round++) {
        gort_waitgroup wg = { 0 };
        gort_wg_add(&wg, 200);
        for (int i = 0; i < 200; i++)
            CHECK(gort_go(short_g, &wg) > 0);
        gort_wg_wait(&wg);
    }
}

TEST(correct_stack_reuse) {
    runs(stack_reuse, 1, 3, false, NULL);
    runs(stack_reuse, 4, 3, false, NULL);
}
