/*
 * Goroutine dumps: gort_dump, SIGQUIT, and the dump after a fatal error.
 * The output is parsed: each goroutine's header (id, state in Go's words,
 * M and P, locked to thread), the function it is parked in and its
 * callers, where it was created, and how alike goroutines are grouped.
 *
 * The functions goroutines park in are noinline and do something after the
 * call, so that no tail call takes their frame out of the chain.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

static volatile int sink;

/* The dump, read back from a memfd. */
static char *dump_to_string(void) {
    int fd = memfd_create("dump", 0);
    CHECK(fd >= 0);
    CHECK_EQ(gort_dump(fd), 0);
    off_t n = lseek(fd, 0, SEEK_CUR);
    char *s = malloc((size_t)n + 1);
    CHECK(s != NULL);
    CHECK_EQ(pread(fd, s, (size_t)n, 0), n);
    s[n] = 0;
    close(fd);
    return s;
}

/* The block of the dump that starts with "goroutine ID [". */
static char *block_of(const char *dump, int64_t id) {
    char head[64];
    snprintf(head, sizeof head, "\ngoroutine %lld [", (long long)id);
    const char *p = strstr(dump, head);
    if (p == NULL)
        return NULL;
    p++;
    const char *end = strstr(p, "\n\n");
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char *b = malloc(len + 1);
    memcpy(b, p, len);
    b[len] = 0;
    return b;
}

static void expect_in(const char *block, const char *what) {
    if (block == NULL || strstr(block, what) == NULL) {
        fprintf(stderr, "wanted \"%s\" in:\n%s\n", what, block ? block : "(no such goroutine)");
        CHECK(0);
    }
}

/* ---- goroutines parked in every way -------------------------------------- */

static gort_chan *never, *full;
static gort_mutex held;
static gort_waitgroup never_done, parked;
static int64_t id_recv, id_send, id_select, id_mutex, id_wg, id_sleep, id_locked, id_nocase;

__attribute__((noinline)) static void parked_in_recv(void) {
    gort_wg_done(&parked);
    sink = gort_chan_recv(never, NULL);
}
static void g_recv(void *arg) {
    (void)arg;
    parked_in_recv();
    sink++;
}

__attribute__((noinline)) static void parked_in_send(void) {
    char v = 1;
    gort_wg_done(&parked);
    sink = gort_chan_send(full, &v);
}
static void g_send(void *arg) {
    (void)arg;
    parked_in_send();
    sink++;
}

__attribute__((noinline)) static void parked_in_select(void) {
    gort_case cases[2] = { { .chan = never, .op = GORT_RECV }, { .chan = never, .op = GORT_RECV } };
    gort_wg_done(&parked);
    sink = gort_select(cases, 2, 1);
}
static void g_select(void *arg) {
    (void)arg;
    parked_in_select();
    sink++;
}

__attribute__((noinline)) static void parked_in_nocase(void) {
    gort_wg_done(&parked);
    sink = gort_select(NULL, 0, 1);
}
static void g_nocase(void *arg) {
    (void)arg;
    parked_in_nocase();
    sink++;
}

__attribute__((noinline)) static void parked_in_lock(void) {
    gort_wg_done(&parked);
    gort_mutex_lock(&held);
    sink++;
}
static void g_mutex(void *arg) {
    (void)arg;
    parked_in_lock();
    sink++;
}

__attribute__((noinline)) static void parked_in_wait(void) {
    gort_wg_done(&parked);
    gort_wg_wait(&never_done);
    sink++;
}
static void g_wg(void *arg) {
    (void)arg;
    parked_in_wait();
    sink++;
}

__attribute__((noinline)) static void parked_in_sleep(void) {
    gort_wg_done(&parked);
    gort_sleep(3600LL * 1000000000LL);
    sink++;
}
static void g_sleep(void *arg) {
    (void)arg;
    parked_in_sleep();
    sink++;
}

static void g_locked(void *arg) {
    (void)arg;
    gort_lock_thread();
    parked_in_recv();
    sink++;
}

#define NALIKE 100

static bool with_sleeper = true;   /* a timer keeps checkdead from calling it a deadlock */

static void start_all(void) {
    CHECK_EQ(gort_chan_make(&never, 1, 0), 0);
    CHECK_EQ(gort_chan_make(&full, 1, 0), 0);
    gort_mutex_lock(&held);
    gort_wg_add(&never_done, 1);
    gort_wg_add(&parked, 7 + NALIKE - !with_sleeper);
    CHECK((id_send = gort_go(g_send, NULL)) > 0);
    CHECK((id_select = gort_go(g_select, NULL)) > 0);
    CHECK((id_nocase = gort_go(g_nocase, NULL)) > 0);
    CHECK((id_mutex = gort_go(g_mutex, NULL)) > 0);
    CHECK((id_wg = gort_go(g_wg, NULL)) > 0);
    if (with_sleeper)
        CHECK((id_sleep = gort_go(g_sleep, NULL)) > 0);
    CHECK((id_locked = gort_go(g_locked, NULL)) > 0);
    for (int i = 0; i < NALIKE; i++) {   /* alike: one group */
        int64_t id = gort_go(g_recv, NULL);
        CHECK(id > 0);
        if (i == 0)
            id_recv = id;
    }
    gort_wg_wait(&parked);
    /* Each has counted itself and is about to park, or has: wait until
     * the scheduler has nothing left to run but this goroutine. */
    for (int i = 0; i < 1000; i++)
        gort_yield();
}

/* Whether every goroutine but the one dumping is parked in the dump d. */
static bool all_parked(const char *d) {
    for (const char *p = strstr(d, "goroutine "); p != NULL; p = strstr(p + 1, "\ngoroutine ")) {
        if (*p == '\n')
            p++;
        char state[16] = "";
        long long id = 0;
        if (sscanf(p, "goroutine %lld [%15[a-z]", &id, state) == 2 && id != 1 &&
            (strcmp(state, "running") == 0 || strcmp(state, "runnable") == 0))
            return false;
    }
    return true;
}

/* start_all's goroutines have counted themselves before parking, and the
 * yields there usually see them parked, but one on the other P may not be
 * there yet (a locked goroutine hands its P off first): dump until all are.
 * From a goroutine (yield: it may share a P with them) or a thread. */
static char *dump_all_parked(bool yield) {
    char *d = dump_to_string();
    for (int tries = 0; tries < 100000 && !all_parked(d); tries++) {
        free(d);
        if (yield)
            test_yield_n(10);
        sched_yield();
        d = dump_to_string();
    }
    return d;
}

__attribute__((noinline)) static void dump_here(char **out) {
    *out = dump_all_parked(true);
    sink++;
}

static void dump_main(void *arg) {
    (void)arg;
    start_all();
    char *d;
    dump_here(&d);
    char *b;

    b = block_of(d, 1);
    expect_in(b, "goroutine 1 [running, M");
    expect_in(b, "gort_dump+");
    expect_in(b, "dump_here+");
    expect_in(b, "dump_main+");
    expect_in(b, "the main goroutine, started by gort_run");
    free(b);

    b = block_of(d, id_recv);
    expect_in(b, "[chan receive");
    expect_in(b, "parked_in_recv+");   /* gort_chan_recv's frame may be a tail call's */
    expect_in(b, "g_recv+");
    expect_in(b, "created by start_all in goroutine 1");
    CHECK(strstr(b, "gostart") == NULL);   /* the runtime's frames are hidden */
    CHECK(strstr(b, "chanwait") == NULL);
    /* Alike goroutines are one entry; the count is at most the others. */
    const char *more = strstr(b, "...and ");
    CHECK(more != NULL && atoi(more + 7) >= NALIKE / 2 && atoi(more + 7) < NALIKE);
    free(b);

    struct { int64_t id; const char *state, *fn; } want[] = {
        { id_send, "[chan send", "parked_in_send+" },
        { id_select, "[select]", "parked_in_select+" },
        { id_nocase, "[select (no cases)", "parked_in_nocase+" },
        { id_mutex, "[sync.Mutex.Lock", "parked_in_lock+" },
        { id_wg, "[sync.WaitGroup.Wait", "parked_in_wait+" },
        { id_sleep, "[sleep", "parked_in_sleep+" },
        { id_locked, "[chan receive", "g_locked+" },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        b = block_of(d, want[i].id);
        expect_in(b, want[i].state);
        expect_in(b, want[i].fn);
        free(b);
    }
    b = block_of(d, id_locked);
    expect_in(b, ", locked to thread]");
    free(b);
    free(d);
    exit(0);   /* the goroutines are left parked: end here */
}

TEST(dump_every_state) {
    gort_config cfg = { .maxprocs = 2 };
    CHECK_EQ(gort_run(&cfg, dump_main, NULL), 0);
}

/* ---- from a thread that is not a goroutine; errors ----------------------- */

static atomic_int main_in_syscall;

static void *thread_dump(void *arg) {
    while (!atomic_load(&main_in_syscall))
        sched_yield();
    *(char **)arg = dump_all_parked(false);
    return NULL;
}

static void foreign_main(void *arg) {
    (void)arg;
    start_all();
    pthread_t t;
    char *d = NULL;
    CHECK_EQ(pthread_create(&t, NULL, thread_dump, &d), 0);
    /* Park (not spin) until the thread is done, so that the dump sees this
     * goroutine parked too. */
    gort_syscall_enter();
    atomic_store(&main_in_syscall, 1);
    CHECK_EQ(pthread_join(t, NULL), 0);
    gort_syscall_exit();
    expect_in(d, "(dumped from a thread that is not a goroutine)");
    char *b = block_of(d, id_wg);
    expect_in(b, "parked_in_wait+");
    free(b);
    b = block_of(d, 1);
    expect_in(b, "goroutine 1 [syscall");
    free(b);
    free(d);
    exit(0);
}

TEST(dump_from_thread) { CHECK_EQ(gort_run(NULL, foreign_main, NULL), 0); }

TEST(dump_errors) {
    CHECK_EQ(gort_dump(-1), -EBADF);
    CHECK_EQ(gort_dump(1), -ESRCH);   /* no runtime */
}

/* ---- a million alike goroutines are one entry ---------------------------- */

static void many_main(void *arg) {
    int64_t n = *(int64_t *)arg;
    CHECK_EQ(gort_chan_make(&never, 1, 0), 0);
    gort_wg_add(&parked, n);
    for (int64_t i = 0; i < n; i++)
        CHECK(gort_go(g_recv, NULL) > 0);
    gort_wg_wait(&parked);
    /* Each has counted itself and is about to park, or has: the last few
     * may still be on the other P. Dump until all are in the one group. */
    char line[128];
    snprintf(line, sizeof line, "...and %lld more goroutines in the same state", (long long)(n - 1));
    char *d = NULL;
    for (int tries = 0; tries < 100; tries++) {
        free(d);
        test_yield_n(100);
        d = dump_to_string();
        if (strstr(d, line))
            break;
    }
    expect_in(d, line);
    CHECK(strlen(d) < 4096);   /* two goroutines' worth, not n */
    free(d);
    exit(0);
}

TEST(dump_groups_alike) {
    int64_t n = test_scale(100000, 20000, 2000);
    CHECK_EQ(gort_run(NULL, many_main, &n), 0);
}

/* ---- fatal errors and SIGQUIT -------------------------------------------- */

static char *errout;

static int run_child(void (*fn)(void)) {
    free(errout);
    errout = NULL;
    int st = test_fork_capture(fn, 120, &errout);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 2))
        fprintf(stderr, "child status %#x, stderr:\n%s\n", st, errout ? errout : "");
    return st;
}

/* Whether checkdead can give a verdict in this run; the test returns if
 * not. */
static bool checkdead_rules(void) {
    if (test_tsan())
        return false; /* TSan's own threads keep checkdead from ruling (sched.c) */
    if (test_emulated() && test_skip("qemu-user's /proc/self/stat has no thread count, so checkdead gives no verdict"))
        return false;
    return true;
}

/* The trace's writer is a thread that is not an M; it must not keep
 * checkdead from ruling: with this set, deadlock_main traces itself. */
static bool deadlock_traced;

static void deadlock_main(void *arg) {
    (void)arg;
    if (deadlock_traced) {
        char path[64];
        snprintf(path, sizeof path, "/tmp/gort-test-deadlock-%d.json", (int)getpid());
        if (gort_trace_start(path) != 0)
            _exit(98);
        unlink(path);   /* the trace keeps it open; the process ends without stopping it */
    }
    start_all();
    gort_mutex_unlock(&held);   /* the locker may go on; everything else is stuck */
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, 1);
    gort_wg_wait(&wg);
}
static void deadlock_child(void) {
    with_sleeper = false;
    unsetenv("GORT_TRACEBACK");
    gort_run(NULL, deadlock_main, NULL);
    _exit(99);
}

TEST(fatal_deadlock_dumps_and_exits_2) {
    if (!checkdead_rules())
        return;
    int st = run_child(deadlock_child);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    expect_in(errout, "all goroutines are asleep - deadlock!");
    char *b = block_of(errout, 1);
    expect_in(b, "[sync.WaitGroup.Wait");
    expect_in(b, "deadlock_main+");
    free(b);
    /* The ids were the child's: look for the functions. */
    expect_in(errout, "parked_in_recv+");
    expect_in(errout, "[chan receive");
}

static void traced_deadlock_child(void) {
    deadlock_traced = true;
    deadlock_child();
}

TEST(fatal_deadlock_while_tracing) {
    if (!checkdead_rules())
        return;
    int st = run_child(traced_deadlock_child);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    expect_in(errout, "all goroutines are asleep - deadlock!");
}

static void traceback_none_child(void) {
    with_sleeper = false;
    setenv("GORT_TRACEBACK", "none", 1);
    gort_run(NULL, deadlock_main, NULL);
    _exit(99);
}

TEST(fatal_traceback_none) {
    if (!checkdead_rules())
        return;
    int st = run_child(traceback_none_child);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    expect_in(errout, "deadlock!");
    CHECK(strstr(errout, "goroutine 1 [") == NULL);
}

static void traceback_crash_child(void) {
    with_sleeper = false;
    setenv("GORT_TRACEBACK", "crash", 1);
    struct rlimit no = { 0, 0 };   /* no core file wanted */
    setrlimit(RLIMIT_CORE, &no);
    gort_run(NULL, deadlock_main, NULL);
    _exit(99);
}

TEST(fatal_traceback_crash_aborts) {
    if (!checkdead_rules())
        return;
    int st = run_child(traceback_crash_child);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    expect_in(errout, "deadlock!");
    char *b = block_of(errout, 1);
    expect_in(b, "gort_wg_wait+");
    CHECK(strstr(errout, "chanwait+") != NULL);   /* system: the runtime's frames too */
    free(b);
}

static void quit_main(void *arg) {
    (void)arg;
    start_all();
    kill(getpid(), SIGQUIT);
    for (;;)
        gort_yield();   /* the handler ends the process */
}
static void quit_child(void) {
    unsetenv("GORT_DEBUG");
    gort_run(NULL, quit_main, NULL);
    _exit(99);
}

TEST(sigquit_dumps_and_exits_2) {
    int st = run_child(quit_child);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    expect_in(errout, "SIGQUIT: quit");
    expect_in(errout, "parked_in_sleep+");
    expect_in(errout, "[sleep");
}

static void quit_off_child(void) {
    setenv("GORT_DEBUG", "quitdump=0", 1);
    gort_run(NULL, quit_main, NULL);
    _exit(99);
}

TEST(sigquit_left_alone_with_quitdump_0) {
    int st = run_child(quit_off_child);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGQUIT);
    CHECK(strstr(errout, "goroutine ") == NULL);
}

static void overflow_child(void) {
    unsetenv("GORT_TRACEBACK");
    gort_run(NULL, test_overflow_goroutine, NULL);
    _exit(99);
}

TEST(stack_overflow_dumps_the_faulting_goroutine) {
    int st = run_child(overflow_child);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    expect_in(errout, "stack overflow");
    char *b = block_of(errout, 1);
    expect_in(b, "overflow+");
    expect_in(b, "...additional frames elided...");
    free(b);
}
