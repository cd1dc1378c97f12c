/*
 * The test runner: see test.h. Every test runs in its own forked child with a
 * timeout, so one crash or hang names one test and the rest still run. The
 * output is TAP-like:
 *
 *   1..3
 *   ok 1 - run_null_cfg
 *   not ok 2 - run_twice (signal SIGABRT)
 *   ok 3 - run_loop
 *   2 passed, 1 failed
 */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TESTS 256

static struct {
    const char *name;
    test_fn fn;
} tests[MAX_TESTS];
static int ntests;

void test_register(const char *name, test_fn fn) {
    if (ntests == MAX_TESTS) {
        fprintf(stderr, "harness: more than %d tests in one file\n", MAX_TESTS);
        abort();
    }
    tests[ntests].name = name;
    tests[ntests].fn = fn;
    ntests++;
}

/* One write(2) per message, so lines from several threads don't interleave. */
static void say(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 1)
        n = sizeof buf - 1;
    if (n > 0 && write(STDERR_FILENO, buf, (size_t)n) < 0)
        return;
}

void test_check_failed(const char *file, int line, const char *expr) {
    say("%s:%d: CHECK failed: %s\n", file, line, expr);
    abort();
}

void test_check_eq_failed(const char *file, int line, const char *a_expr, const char *b_expr,
                          int64_t a, int64_t b) {
    say("%s:%d: CHECK failed: %s == %s (%lld vs %lld)\n", file, line, a_expr, b_expr, (long long)a,
        (long long)b);
    abort();
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(__SANITIZE_ADDRESS__)
#define __SANITIZE_ADDRESS__ 1
#endif
#if __has_feature(thread_sanitizer) && !defined(__SANITIZE_THREAD__)
#define __SANITIZE_THREAD__ 1
#endif
#endif

int test_sanitized(void) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return 1;
#else
    return 0;
#endif
}

int test_tsan(void) {
#if defined(__SANITIZE_THREAD__)
    return 1;
#else
    return 0;
#endif
}

/* Valgrind's header is looked for here, not by the build: the harness is
 * also built outside it (scripts/install-test.sh). */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND 1
#endif
#endif

int test_valgrind(void) {
#ifdef HAVE_VALGRIND
    return RUNNING_ON_VALGRIND != 0;
#else
    return 0;
#endif
}

int test_emulated(void) {
    const char *s = getenv("GORT_TEST_EMULATED");
    return s != NULL && s[0] != 0 && strcmp(s, "0") != 0;
}

int test_skip(const char *why) {
    printf("# skipped: %s\n", why);
    fflush(stdout);
    return 1;
}

int64_t test_scale(int64_t full, int64_t asan, int64_t tsan) {
    if (test_tsan() || test_valgrind())   /* Valgrind runs one thread at a time, slowly */
        return tsan;
    if (test_sanitized() || test_emulated())
        return asan;
    return full;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int timeout_s(void) {
    const char *s = getenv("GORT_TEST_TIMEOUT");
    int t = s ? atoi(s) : 0;
    return t > 0 ? t : 300;
}

static void describe_status(int status, char *buf, size_t n) {
    if (status == -1) {
        snprintf(buf, n, "timeout");
    } else if (WIFEXITED(status)) {
        snprintf(buf, n, "exit code %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        const char *abbrev = sigabbrev_np(WTERMSIG(status));
        if (abbrev)
            snprintf(buf, n, "signal SIG%s", abbrev);
        else
            snprintf(buf, n, "signal %d", WTERMSIG(status));
    } else {
        snprintf(buf, n, "status %#x", status);
    }
}

/* waitpid with a deadline (now_s() time); -1 and the child killed past it. */
static int wait_deadline(pid_t pid, double deadline, int kill_group) {
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0 && errno != EINTR)
            return -1;
        if (now_s() >= deadline) {
            if (kill_group)
                kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            return -1;
        }
        struct timespec ts = { 0, 2 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

int test_fork_capture(void (*fn)(void), int seconds, char **err) {
    int fds[2];
    if (pipe(fds) < 0) {
        perror("harness: pipe");
        abort();
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("harness: fork");
        abort();
    }
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        close(fds[1]);
        fn();
        fflush(stdout);
        fflush(stderr);
        _exit(0);
    }
    close(fds[1]);

    double deadline = now_s() + seconds;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    for (;;) {
        int left_ms = (int)((deadline - now_s()) * 1000);
        if (left_ms <= 0)
            break;
        struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
        int r = poll(&pfd, 1, left_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (cap - len < 1024) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf)
                abort();
        }
        ssize_t n = read(fds[0], buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fds[0]);
    buf[len] = '\0';
    *err = buf;
    return wait_deadline(pid, deadline, 0);
}

int test_expect_death(void (*fn)(void), const char *expected_substring) {
    char *err = NULL;
    int secs = timeout_s() / 2;
    int status = test_fork_capture(fn, secs > 0 ? secs : 1, &err);
    int died = status != -1 &&
               (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0));
    int ok = died && strstr(err, expected_substring) != NULL;
    if (!ok) {
        char how[64];
        describe_status(status, how, sizeof how);
        say("test_expect_death: wanted a death with \"%s\"; the child ended "
            "with %s and wrote:\n",
            expected_substring, how);
        size_t len = strlen(err);
        if (len && write(STDERR_FILENO, err, len) < 0)
            ok = 0;
        say("---- end of child's stderr\n");
    }
    free(err);
    return ok;
}

static void backtrace_of(pid_t pid) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "gdb -p %d -batch -ex 'thread apply all bt' </dev/null 1>&2",
             (int)pid);
    if (system(cmd) != 0)
        say("harness: gdb failed\n");
}

static int run_one(int i) {
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);

    fflush(stdout);
    fflush(stderr);
    double start = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        perror("harness: fork");
        exit(2);
    }
    if (pid == 0) {
        setpgid(0, 0);
        sigprocmask(SIG_SETMASK, &old, NULL);
        tests[i].fn();
        fflush(stdout);
        fflush(stderr);
        exit(0);
    }
    setpgid(pid, pid);

    double deadline = start + timeout_s();
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        double left = deadline - now_s();
        if (left <= 0) {
            if (getenv("GORT_TEST_BT"))
                backtrace_of(pid);
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            status = -1;
            break;
        }
        struct timespec ts = { (time_t)left, (long)((left - (time_t)left) * 1e9) };
        sigtimedwait(&chld, NULL, &ts);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);

    int passed = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    char times[32] = "";
    if (getenv("GORT_TEST_TIMES"))
        snprintf(times, sizeof times, " # %.2f s", now_s() - start);
    if (passed) {
        printf("ok %d - %s%s\n", i + 1, tests[i].name, times);
    } else {
        char how[64];
        describe_status(status, how, sizeof how);
        printf("not ok %d - %s (%s)%s\n", i + 1, tests[i].name, how, times);
    }
    fflush(stdout);
    return passed;
}

int main(int argc, char **argv) {
    if (argc > 1) {
        for (int i = 0; i < ntests; i++) {
            if (strcmp(tests[i].name, argv[1]) == 0) {
                tests[i].fn();
                printf("ok - %s\n", tests[i].name);
                return 0;
            }
        }
        fprintf(stderr, "%s: no test named %s; the tests are:\n", argv[0], argv[1]);
        for (int i = 0; i < ntests; i++)
            fprintf(stderr, "  %s\n", tests[i].name);
        return 2;
    }

    int passed = 0, failed = 0;
    printf("1..%d\n", ntests);
    if (test_emulated())
        printf("# emulated (GORT_TEST_EMULATED): heavy tests scaled down\n");
    for (int i = 0; i < ntests; i++) {
        if (run_one(i))
            passed++;
        else
            failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

/* ---- helpers shared by the black-box tests --------------------------------- */

void test_run_with(int maxprocs, void (*fn)(void *), void *arg) {
    gort_config cfg = { .maxprocs = maxprocs };
    CHECK_EQ(gort_run(&cfg, fn, arg), 0);
}

void test_wait_timer(int64_t ns) {
    gort_chan *c = test_mkchan(sizeof(int64_t), 1);
    gort_timer *t;
    CHECK_EQ(gort_timer_start(&t, ns, 0, c, NULL, NULL), 0);
    CHECK_EQ(gort_chan_recv(c, NULL), 1);
    gort_timer_free(t);
    gort_chan_free(c);
}

void test_wait_until_only_main(void) {
    int64_t give_up = gort_now() + 60LL * 1000 * 1000 * 1000;
    while (gort_num_goroutines() != 1 && gort_now() < give_up)
        gort_yield();
    CHECK_EQ(gort_num_goroutines(), 1);
}

gort_chan *test_mkchan(size_t elem, size_t cap) {
    gort_chan *c = NULL;
    CHECK_EQ(gort_chan_make(&c, elem, cap), 0);
    CHECK(c != NULL);
    CHECK_EQ(gort_chan_cap(c), cap);
    CHECK_EQ(gort_chan_len(c), 0);
    return c;
}

/* The run a test_expect_fatal child makes: set before the fork. */
static struct {
    gort_config cfg;
    int has_cfg;
    void (*main_fn)(void *);
    void *arg;
} fatal_run;

static void fatal_child(void) {
    int r = gort_run(fatal_run.has_cfg ? &fatal_run.cfg : NULL, fatal_run.main_fn, fatal_run.arg);
    say("test_expect_fatal: gort_run returned %d: no fatal error\n", r);
}

int test_expect_fatal(const gort_config *cfg, void (*main_fn)(void *), void *arg,
                      const char *expected_substring) {
    fatal_run.has_cfg = cfg != NULL;
    if (cfg)
        fatal_run.cfg = *cfg;
    fatal_run.main_fn = main_fn;
    fatal_run.arg = arg;
    return test_expect_death(fatal_child, expected_substring);
}

void test_yield_until(atomic_int *ctr, int n) {
    for (long i = 0; i < 100000000L && atomic_load(ctr) < n; i++)
        gort_yield();
    CHECK(atomic_load(ctr) >= n);
}

void test_yield_n(int n) {
    for (int i = 0; i < n; i++)
        gort_yield();
}

gort_case test_rcase(gort_chan *c, void *elem) {
    return (gort_case){ .chan = c, .op = GORT_RECV, .elem = elem, .ok = -1 };
}

gort_case test_scase(gort_chan *c, void *elem) {
    return (gort_case){ .chan = c, .op = GORT_SEND, .elem = elem, .ok = -1 };
}

/* ---- stack overflows ------------------------------------------------------- */

static volatile int overflow_stop; /* never set: keeps gcc from calling it infinite */

__attribute__((noinline)) static int test_overflow(int depth) {
    volatile char frame[512];
    frame[0] = (char)depth;
    if (overflow_stop)
        return 0;
    int r = test_overflow(depth + 1);
    /* Using the frame after the call keeps this a real recursion. */
    return r + frame[0] + frame[depth % 512];
}

void test_overflow_goroutine(void *arg) {
    (void)arg;
    overflow_stop = test_overflow(0);
}

void test_overflow_child_main(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, 1);
    CHECK(gort_go(test_overflow_goroutine, NULL) > 0);
    gort_wg_wait(&wg); /* never done: the overflow ends the process */
}
