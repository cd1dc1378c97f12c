/* Black-box tests of goroutine stacks: their default and configured sizes,
 * their isolation from each other, and the fatal error on overflow. */
#define _GNU_SOURCE
#include <gort.h>
#include "test.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#define KiB 1024

static void run_cfg(size_t stack_size, int maxprocs, void (*fn)(void *), void *arg) {
    gort_config cfg = { .maxprocs = maxprocs, .stack_size = stack_size };
    CHECK_EQ(gort_run(&cfg, fn, arg), 0);
}

/* Touches every byte of a `size`-byte array on the stack, end to end. */
__attribute__((noinline)) static void use_stack_array(size_t size) {
    volatile char buf[size];
    for (size_t i = 0; i < size; i++)
        buf[i] = (char)i;
    for (size_t i = size; i-- > 0;)
        CHECK_EQ(buf[i], (char)i);
}

struct use_arg {
    size_t size;
    gort_waitgroup *wg;
    atomic_int *done;
};

static void use_child(void *arg) {
    struct use_arg *a = arg;
    use_stack_array(a->size);
    atomic_fetch_add(a->done, 1);
    gort_wg_done(a->wg);
}

static void use_main(void *arg) {
    size_t size = *(size_t *)arg;
    gort_waitgroup wg = { 0 };
    atomic_int done = 0;
    struct use_arg a = { size, &wg, &done };
    gort_wg_add(&wg, 10);
    for (int i = 0; i < 10; i++)
        CHECK(gort_go(use_child, &a) > 0);
    gort_wg_wait(&wg);
    CHECK_EQ(atomic_load(&done), 10);
    /* The main goroutine has a goroutine stack of the same size. */
    use_stack_array(size);
}

TEST(stack_default_200k) {
    size_t size = 200 * KiB;
    run_cfg(0, 2, use_main, &size);
}

/* ~1 KiB per frame, used after the call so it is a real recursion. */
__attribute__((noinline)) static int recurse(int depth) {
    volatile char frame[1000];
    frame[0] = (char)depth;
    frame[sizeof frame - 1] = (char)depth;
    if (depth == 0)
        return frame[0];
    int r = recurse(depth - 1);
    return r + frame[sizeof frame - 1] - (char)depth;
}

static void recurse_main(void *arg) {
    int depth = *(int *)arg;
    CHECK_EQ(recurse(depth), 0);
}

static gort_waitgroup recurse_wg;

static void recurse_child(void *arg) {
    int depth = *(int *)arg;
    CHECK_EQ(recurse(depth), 0);
    gort_wg_done(&recurse_wg);
}

static void recurse_many_main(void *arg) {
    gort_wg_add(&recurse_wg, 20);
    for (int i = 0; i < 20; i++)
        CHECK(gort_go(recurse_child, arg) > 0);
    recurse_main(arg);
    gort_wg_wait(&recurse_wg);
    test_wait_until_only_main();
}

TEST(stack_default_deep_recursion) {
    /* ~180 KiB of frames on the default 256 KiB stack. */
    int depth = 170;
    run_cfg(0, 2, recurse_many_main, &depth);
}

TEST(stack_size_1m_allows_900k) {
    size_t size = 900 * KiB;
    run_cfg(1024 * KiB, 2, use_main, &size);
}

TEST(stack_size_4m_deep_recursion) {
    int depth = 3000;
    run_cfg(4096 * KiB, 2, recurse_many_main, &depth);
}

/* Stacks are private: each goroutine fills a large array with its own
 * pattern, lets everyone else run, and finds its pattern intact. */
#define ISO_BYTES (64 * KiB)
static gort_waitgroup iso_filled;
static gort_waitgroup iso_done;

__attribute__((noinline)) static void iso_fill_check(unsigned char tag) {
    volatile unsigned char buf[ISO_BYTES];
    for (size_t i = 0; i < ISO_BYTES; i++)
        buf[i] = (unsigned char)(tag ^ i);
    gort_wg_done(&iso_filled);
    gort_wg_wait(&iso_filled); /* everyone has filled theirs */
    for (int k = 0; k < 10; k++)
        gort_yield();
    for (size_t i = 0; i < ISO_BYTES; i++)
        CHECK_EQ(buf[i], (unsigned char)(tag ^ i));
}

static void iso_child(void *arg) {
    iso_fill_check((unsigned char)(intptr_t)arg);
    gort_wg_done(&iso_done);
}

static void iso_main(void *arg) {
    int n = *(int *)arg;
    gort_wg_add(&iso_filled, n);
    gort_wg_add(&iso_done, n);
    for (int i = 0; i < n; i++)
        CHECK(gort_go(iso_child, (void *)(intptr_t)(i * 37 + 1)) > 0);
    gort_wg_wait(&iso_done);
}

TEST(stacks_are_isolated) {
    int n = (int)test_scale(1000, 500, 200);
    run_cfg(0, 4, iso_main, &n);
}

/* Stacks are reused after goroutines exit; a reused stack still works fully. */
static void reuse_main(void *arg) {
    size_t size = 200 * KiB;
    (void)arg;
    for (int round = 0; round < 20; round++)
        use_main(&size);
}

TEST(stack_reuse_after_exit) { run_cfg(0, 2, reuse_main, NULL); }

/* ---- Overflow ---------------------------------------------------------------- */

static volatile int overflow_sink;

TEST(stack_overflow_fatal) {
    CHECK(test_expect_fatal(NULL, test_overflow_child_main, NULL, "stack overflow"));
    CHECK(test_expect_fatal(NULL, test_overflow_child_main, NULL, "goroutine"));
}

TEST(stack_overflow_fatal_configured_size) {
    gort_config cfg = { .stack_size = 1024 * KiB };
    CHECK(test_expect_fatal(&cfg, test_overflow_child_main, NULL, "stack overflow"));
}

TEST(stack_overflow_fatal_main_goroutine) {
    CHECK(test_expect_fatal(NULL, test_overflow_goroutine, NULL, "stack overflow"));
}

/* One frame larger than the whole stack, touched from the top down as a
 * chain of calls would be: the first write past the stack hits the guard. */
__attribute__((noinline)) static void big_frame(void) {
    volatile char buf[300 * KiB];
    for (size_t i = sizeof buf; i >= 4096; i -= 4096)
        buf[i - 1] = 1;
    overflow_sink = buf[sizeof buf - 1];
}

static void big_frame_main(void *arg) {
    (void)arg;
    big_frame();
}

TEST(stack_overflow_big_frame) {
    CHECK(test_expect_fatal(NULL, big_frame_main, NULL, "stack overflow"));
}
