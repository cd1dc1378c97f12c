/* Black-box tests of gort_waitgroup (Go's sync.WaitGroup). */
#define _GNU_SOURCE
#include <gort.h>
#include "test.h"

#include <stdatomic.h>
#include <stdint.h>

static void wg_zero_main(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    gort_wg_wait(&wg); /* counter 0: returns at once */
    gort_wg_wait(&wg);
    gort_wg_add(&wg, 3);
    gort_wg_add(&wg, -3);
    gort_wg_wait(&wg);
    gort_wg_add(&wg, 1);
    gort_wg_done(&wg);
    gort_wg_wait(&wg);
}

TEST(wg_wait_zero_returns) { test_run_with(1, wg_zero_main, NULL); }

static gort_waitgroup tree_wg;
static atomic_int tree_done;

static void wg_tree(void *arg) {
    intptr_t depth = (intptr_t)arg;
    if (depth > 0) {
        /* Add from many goroutines, before each spawn. */
        for (int i = 0; i < 3; i++) {
            gort_wg_add(&tree_wg, 1);
            CHECK(gort_go(wg_tree, (void *)(depth - 1)) > 0);
        }
    }
    atomic_fetch_add(&tree_done, 1);
    gort_wg_done(&tree_wg);
}

static void wg_tree_main(void *arg) {
    (void)arg;
    gort_wg_add(&tree_wg, 1);
    /* 1 + 3 + ... + 3^depth goroutines */
    intptr_t depth = test_scale(7, 7, 5);
    int64_t total = 1, pow = 1;
    for (int i = 0; i < depth; i++)
        total += pow *= 3;
    CHECK(gort_go(wg_tree, (void *)depth) > 0);
    gort_wg_wait(&tree_wg);
    CHECK_EQ(atomic_load(&tree_done), total);
}

TEST(wg_add_done_from_many_goroutines) { test_run_with(0, wg_tree_main, NULL); }

static atomic_int round_done;

static void round_child(void *arg) {
    atomic_fetch_add(&round_done, 1);
    gort_wg_done(arg);
}

static void wg_reuse_main(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    int rounds = (int)test_scale(1000, 1000, 100);
    for (int round = 1; round <= rounds; round++) {
        gort_wg_add(&wg, 10);
        for (int i = 0; i < 10; i++)
            CHECK(gort_go(round_child, &wg) > 0);
        gort_wg_wait(&wg);
        CHECK_EQ(atomic_load(&round_done), round * 10);
    }
}

TEST(wg_reuse_across_rounds) { test_run_with(2, wg_reuse_main, NULL); }

static gort_waitgroup multi_wg;
static gort_waitgroup multi_out;
static atomic_int multi_woken;

static void multi_waiter(void *arg) {
    (void)arg;
    gort_wg_wait(&multi_wg);
    atomic_fetch_add(&multi_woken, 1);
    gort_wg_done(&multi_out);
}

static void wg_multi_main(void *arg) {
    (void)arg;
    int rounds = (int)test_scale(20, 20, 4);
    for (int round = 0; round < rounds; round++) {
        atomic_store(&multi_woken, 0);
        gort_wg_add(&multi_wg, 1);
        gort_wg_add(&multi_out, 100);
        for (int i = 0; i < 100; i++)
            CHECK(gort_go(multi_waiter, NULL) > 0);
        for (int i = 0; i < 100; i++)
            gort_yield();
        CHECK_EQ(atomic_load(&multi_woken), 0);
        gort_wg_done(&multi_wg); /* releases every waiter */
        gort_wg_wait(&multi_out);
        CHECK_EQ(atomic_load(&multi_woken), 100);
    }
}

TEST(wg_many_waiters) {
    test_run_with(1, wg_multi_main, NULL);
    test_run_with(4, wg_multi_main, NULL);
}

/* ---- Fatal misuse ------------------------------------------------------------- */

static void negative_wg_main(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, -1);
}

TEST(wg_negative_counter_fatal) {
    CHECK(test_expect_fatal(NULL, negative_wg_main, NULL, "negative"));
}

static void extra_done_main(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, 2);
    gort_wg_done(&wg);
    gort_wg_done(&wg);
    gort_wg_done(&wg);
}

TEST(wg_extra_done_fatal) { CHECK(test_expect_fatal(NULL, extra_done_main, NULL, "negative")); }
