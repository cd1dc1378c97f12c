/*
 * The test harness, in the manner of libuv's: TEST(name) defines a test and
 * registers it; the runner (harness.c) forks each test in its own process so
 * a crash or a hang names one test and the others still run.
 *
 *   ./test_sync            run every test, one child process each
 *   ./test_sync name       run one test in this process (for gdb)
 *
 * GORT_TEST_TIMEOUT=SECONDS sets the per-test timeout (default 300).
 * GORT_TEST_BT=1 prints every thread's backtrace (gdb) of a test that timed out.
 */
#ifndef GORT_TEST_H
#define GORT_TEST_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef void (*test_fn)(void);

void test_register(const char *name, test_fn fn);

/* Defines test_<name> and registers it before main runs. */
#define TEST(name)                                                        \
    static void test_##name(void);                                        \
    __attribute__((constructor)) static void test_register_##name(void) { \
        test_register(#name, test_##name);                                \
    }                                                                     \
    static void test_##name(void)

/* Both print one line and abort(): usable on any goroutine or thread. */
void test_check_failed(const char *file, int line, const char *expr);
void test_check_eq_failed(const char *file, int line, const char *a_expr, const char *b_expr,
                          int64_t a, int64_t b);

#define CHECK(cond)                                       \
    do {                                                  \
        if (!(cond))                                      \
            test_check_failed(__FILE__, __LINE__, #cond); \
    } while (0)

#define CHECK_EQ(a, b)                                                            \
    do {                                                                          \
        int64_t check_a_ = (int64_t)(a), check_b_ = (int64_t)(b);                 \
        if (check_a_ != check_b_)                                                 \
            test_check_eq_failed(__FILE__, __LINE__, #a, #b, check_a_, check_b_); \
    } while (0)

/* 1 when built with AddressSanitizer or ThreadSanitizer, so heavy tests can
 * scale down; test_tsan() for ThreadSanitizer alone (a goroutine is a TSan
 * fiber there: keep ~10,000 alive at once at most). */
int test_sanitized(void);
int test_tsan(void);

/* 1 when running under Valgrind (the harness was built with its header). */
int test_valgrind(void);

/* Says why a test does not run here ("# skipped: why") and returns 1:
 *   if (test_valgrind() && test_skip("...")) return; */
int test_skip(const char *why);

/* 1 when the tests run under an emulator (qemu-user, in a cross build:
 * ctest sets GORT_TEST_EMULATED=1 there), which runs code several times
 * slower than the hardware would. */
int test_emulated(void);

/* full without sanitizers, asan under ASan and under an emulator, tsan
 * under TSan and Valgrind. */
int64_t test_scale(int64_t full, int64_t asan, int64_t tsan);

/* Runs fn in a forked child with its stderr captured. Returns the child's
 * wait status, or -1 if it had not ended after `seconds` (it is killed).
 * *err receives the captured stderr, NUL-terminated (free it). */
int test_fork_capture(void (*fn)(void), int seconds, char **err);

/* For tests of fatal errors: runs fn in a forked child and returns 1 if the
 * child died (by a signal such as SIGABRT, or a non-zero exit status) and
 * its stderr contains expected_substring. Otherwise it prints how the child
 * ended and what it wrote, and returns 0. Call it outside gort_run. */
int test_expect_death(void (*fn)(void), const char *expected_substring);

/* Helpers shared by the black-box tests. */
#include <gort.h>

/* For tests of fatal errors, the usual case: runs gort_run(cfg, main_fn, arg)
 * (cfg may be NULL) in a forked child and returns 1 if the child died with
 * expected_substring on its stderr, as test_expect_death does. A gort_run
 * that returns instead is reported, and counts as no death. Call it
 * outside gort_run. */
int test_expect_fatal(const gort_config *cfg, void (*main_fn)(void *), void *arg,
                      const char *expected_substring);

/* Yields until *ctr reaches n, or fails after 10^8 yields. On one P (there
 * is no preemption), a goroutine that bumps a counter right before a
 * blocking call has parked in it by the time the counter is seen. */
void test_yield_until(atomic_int *ctr, int n);

/* gort_yield, n times. */
void test_yield_n(int n);

/* A goroutine body that overflows its stack: a real recursion of 512-byte
 * frames that never ends (the overflow ends the process). */
void test_overflow_goroutine(void *arg);
/* A main goroutine that starts test_overflow_goroutine and waits for it:
 * the overflow is in a goroutine other than main. */
void test_overflow_child_main(void *arg);

/* Select cases: receive into elem, or send from elem; ok preset to -1. */
gort_case test_rcase(gort_chan *c, void *elem);
gort_case test_scase(gort_chan *c, void *elem);

/* gort_run(fn, arg) with maxprocs Ps; the run must succeed. */
void test_run_with(int maxprocs, void (*fn)(void *), void *arg);

/* A goroutine calls wg_done before it has fully exited: yield until only
 * main is left, bounded by a generous minute (not a timing assertion: a
 * leaked goroutine fails here, naming the count, instead of hanging). */
void test_wait_until_only_main(void);

/* Parks until a one-shot timer of ns has fired (a gort_timer on a channel):
 * the "this much time has passed" signal of tests that need one. */
void test_wait_timer(int64_t ns);

/* A channel that must be made: elem_size elem, capacity cap, empty. */
gort_chan *test_mkchan(size_t elem, size_t cap);

#endif /* GORT_TEST_H */
