/* Black-box tests of gort_syscall_enter/exit: a goroutine blocked in a
 * system call lets the others run, on other threads if need be. */
#define _GNU_SOURCE
#include <gort.h>
#include "test.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static int sys_pipe[2];
static atomic_int sys_reader_started;
static atomic_int sys_flag;

static void sys_reader(void *arg) {
    char buf[8] = { 0 };
    atomic_store(&sys_reader_started, 1);
    gort_syscall_enter();
    ssize_t n = read(sys_pipe[0], buf, sizeof buf);
    gort_syscall_exit();
    CHECK_EQ(n, 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    gort_wg_done(arg);
}

static void sys_flagger(void *arg) {
    while (!atomic_load(&sys_reader_started))
        gort_yield();
    atomic_store(&sys_flag, 1);
    gort_wg_done(arg);
}

static void sys_writer(void *arg) {
    /* Another goroutine ran while the reader's thread sat in read(). */
    while (!atomic_load(&sys_flag))
        gort_yield();
    CHECK_EQ(write(sys_pipe[1], "hello", 5), 5);
    gort_wg_done(arg);
}

static void syscall_main(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    CHECK_EQ(pipe(sys_pipe), 0);
    gort_wg_add(&wg, 3);
    CHECK(gort_go(sys_reader, &wg) > 0);
    CHECK(gort_go(sys_flagger, &wg) > 0);
    CHECK(gort_go(sys_writer, &wg) > 0);
    gort_wg_wait(&wg);
    close(sys_pipe[0]);
    close(sys_pipe[1]);
}

TEST(syscall_blocking_read_lets_others_run) {
    /* With one P, the others can only run if the reader's P is handed off. */
    test_run_with(1, syscall_main, NULL);
    atomic_store(&sys_reader_started, 0);
    atomic_store(&sys_flag, 0);
    test_run_with(2, syscall_main, NULL);
}

static void syscall_main_blocks_itself(void *arg) {
    (void)arg;
    /* The main goroutine blocks in read() until a goroutine writes. */
    gort_waitgroup wg = { 0 };
    char buf[8] = { 0 };
    CHECK_EQ(pipe(sys_pipe), 0);
    gort_wg_add(&wg, 2);
    CHECK(gort_go(sys_flagger, &wg) > 0);
    CHECK(gort_go(sys_writer, &wg) > 0);
    atomic_store(&sys_reader_started, 1);
    gort_syscall_enter();
    ssize_t n = read(sys_pipe[0], buf, sizeof buf);
    gort_syscall_exit();
    CHECK_EQ(n, 5);
    gort_wg_wait(&wg);
    close(sys_pipe[0]);
    close(sys_pipe[1]);
}

TEST(syscall_in_main_goroutine) { test_run_with(1, syscall_main_blocks_itself, NULL); }

#define NBLOCKED 8
static int many_pipes[NBLOCKED][2];
static atomic_int many_entered;
static atomic_long many_ticks;
static gort_waitgroup many_readers_done;

static void many_reader(void *arg) {
    intptr_t i = (intptr_t)arg;
    char c = 0;
    atomic_fetch_add(&many_entered, 1);
    gort_syscall_enter();
    ssize_t n = read(many_pipes[i][0], &c, 1);
    gort_syscall_exit();
    CHECK_EQ(n, 1);
    CHECK_EQ(c, (char)('a' + i));
    gort_wg_done(&many_readers_done);
}

static void ticker(void *arg) {
    for (int i = 0; i < 1000; i++) {
        atomic_fetch_add(&many_ticks, 1);
        gort_yield();
    }
    gort_wg_done(arg);
}

static void many_syscalls_main(void *arg) {
    (void)arg;
    for (int i = 0; i < NBLOCKED; i++)
        CHECK_EQ(pipe(many_pipes[i]), 0);
    gort_wg_add(&many_readers_done, NBLOCKED);
    for (intptr_t i = 0; i < NBLOCKED; i++)
        CHECK(gort_go(many_reader, (void *)i) > 0);
    while (atomic_load(&many_entered) < NBLOCKED)
        gort_yield();
    /* Eight threads sit in read(); the scheduler still runs everyone else. */
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, 10);
    for (int i = 0; i < 10; i++)
        CHECK(gort_go(ticker, &wg) > 0);
    gort_wg_wait(&wg);
    CHECK_EQ(atomic_load(&many_ticks), 10 * 1000);
    for (int i = 0; i < NBLOCKED; i++) {
        char c = (char)('a' + i);
        CHECK_EQ(write(many_pipes[i][1], &c, 1), 1);
    }
    gort_wg_wait(&many_readers_done);
    test_wait_until_only_main();
    for (int i = 0; i < NBLOCKED; i++) {
        close(many_pipes[i][0]);
        close(many_pipes[i][1]);
    }
}

TEST(syscall_many_blocked_threads) { test_run_with(2, many_syscalls_main, NULL); }

static void errno_main(void *arg) {
    (void)arg;
    char c;
    gort_syscall_enter();
    ssize_t n = read(-1, &c, 1);
    int e = errno; /* read before gort_syscall_exit, as the header says */
    gort_syscall_exit();
    CHECK_EQ(n, -1);
    CHECK_EQ(e, EBADF);
}

TEST(syscall_errno_before_exit) { test_run_with(2, errno_main, NULL); }

/* Any main that uses the runtime: a wait group's add, done and wait. */
static void wg_zero_main(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    gort_wg_wait(&wg);
    gort_wg_add(&wg, 1);
    gort_wg_done(&wg);
    gort_wg_wait(&wg);
}

TEST(syscall_outside_goroutine_noop) {
    gort_syscall_enter();
    gort_syscall_exit();
    int ran = 0;
    test_run_with(1, wg_zero_main, &ran);
    gort_syscall_enter();
    gort_syscall_exit();
}

static atomic_long bounce_rounds;

static void bounce_worker(void *arg) {
    int64_t me = gort_id();
    for (int i = 0; i < 200; i++) {
        gort_syscall_enter();
        /* A real (brief) system call in the middle. */
        (void)getppid();
        gort_syscall_exit();
        CHECK_EQ(gort_id(), me);
        gort_yield();
        CHECK_EQ(gort_id(), me);
        atomic_fetch_add(&bounce_rounds, 1);
    }
    gort_wg_done(arg);
}

static void bounce_main(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, 100);
    for (int i = 0; i < 100; i++)
        CHECK(gort_go(bounce_worker, &wg) > 0);
    gort_wg_wait(&wg);
    CHECK_EQ(atomic_load(&bounce_rounds), 100 * 200);
}

TEST(syscall_enter_exit_many_goroutines) { test_run_with(2, bounce_main, NULL); }
