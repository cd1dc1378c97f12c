/* Black-box tests of gort_mutex, gort_waitgroup and gort_syscall_enter/exit. */
#define _GNU_SOURCE
#include <gort.h>
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

/* ---- Mutex -------------------------------------------------------------- */

static gort_mutex counter_mu; /* zero value: ready to use */
static long counter;          /* guarded by counter_mu; deliberately not atomic */
static atomic_int inside;
static gort_waitgroup counter_wg;

static void counter_worker(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        gort_mutex_lock(&counter_mu);
        CHECK_EQ(atomic_fetch_add(&inside, 1), 0);
        counter++;
        /* Sometimes hold the lock across a reschedule, so others park. */
        if (i % 1024 == 0)
            gort_yield();
        CHECK_EQ(atomic_fetch_sub(&inside, 1), 1);
        gort_mutex_unlock(&counter_mu);
    }
    gort_wg_done(&counter_wg);
}

static void counter_main(void *arg)
{
    long n = *(long *)arg;
    gort_wg_add(&counter_wg, 8);
    for (int i = 0; i < 8; i++)
        CHECK(gort_go(counter_worker, (void *)(intptr_t)n) > 0);
    gort_wg_wait(&counter_wg);
    gort_mutex_lock(&counter_mu);
    CHECK_EQ(counter, 8 * n);
    gort_mutex_unlock(&counter_mu);
}

TEST(mutex_protects_counter)
{
    long n = test_scale(100000, 20000, 10000);
    test_run_with(2, counter_main, &n);
    CHECK_EQ(counter, 8 * n);
}

TEST(mutex_protects_counter_many_procs)
{
    long n = test_scale(50000, 10000, 5000);
    counter = 0;
    test_run_with(4, counter_main, &n);
    CHECK_EQ(counter, 8 * n);
    counter = 0;
    test_run_with(1, counter_main, &n);
    CHECK_EQ(counter, 8 * n);
}

static void trylock_other(void *arg)
{
    gort_mutex *mu = arg;
    CHECK_EQ(gort_mutex_trylock(mu), 0);
}

static void trylock_main(void *arg)
{
    (void)arg;
    gort_mutex mu = {0};
    CHECK_EQ(gort_mutex_trylock(&mu), 1);
    CHECK_EQ(gort_mutex_trylock(&mu), 0);
    gort_mutex_unlock(&mu);
    CHECK_EQ(gort_mutex_trylock(&mu), 1);
    gort_mutex_unlock(&mu);

    gort_mutex_lock(&mu);
    CHECK_EQ(gort_mutex_trylock(&mu), 0);
    /* Held by main: another goroutine can't take it either. */
    int64_t id = gort_go(trylock_other, &mu);
    CHECK(id > 0);
    test_wait_until_only_main();
    gort_mutex_unlock(&mu);
    CHECK_EQ(gort_mutex_trylock(&mu), 1);
    gort_mutex_unlock(&mu);
}

TEST(mutex_trylock)
{
    test_run_with(2, trylock_main, NULL);
}

static gort_mutex handoff_mu;
static atomic_int handoff_state;

static void handoff_locker(void *arg)
{
    /* Blocks until main unlocks, then owns the mutex. */
    atomic_store(&handoff_state, 1);
    gort_mutex_lock(&handoff_mu);
    atomic_store(&handoff_state, 2);
    gort_mutex_unlock(&handoff_mu);
    gort_wg_done(arg);
}

static void handoff_main(void *arg)
{
    (void)arg;
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 1);
    gort_mutex_lock(&handoff_mu);
    CHECK(gort_go(handoff_locker, &wg) > 0);
    while (atomic_load(&handoff_state) == 0)
        gort_yield();
    for (int i = 0; i < 100; i++)
        gort_yield();
    CHECK_EQ(atomic_load(&handoff_state), 1);
    gort_mutex_unlock(&handoff_mu);
    gort_wg_wait(&wg);
    CHECK_EQ(atomic_load(&handoff_state), 2);
}

TEST(mutex_waiter_wakes_on_unlock)
{
    test_run_with(1, handoff_main, NULL);
    atomic_store(&handoff_state, 0);
    test_run_with(2, handoff_main, NULL);
}

/* Many goroutines park on one mutex held by main, then all get it in turn. */
static gort_mutex crowd_mu;
static long crowd_count;

static void crowd_member(void *arg)
{
    gort_mutex_lock(&crowd_mu);
    crowd_count++;
    gort_mutex_unlock(&crowd_mu);
    gort_wg_done(arg);
}

static void crowd_main(void *arg)
{
    int n = *(int *)arg;
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, n);
    gort_mutex_lock(&crowd_mu);
    for (int i = 0; i < n; i++)
        CHECK(gort_go(crowd_member, &wg) > 0);
    for (int i = 0; i < 1000; i++)
        gort_yield();
    CHECK_EQ(crowd_count, 0);
    gort_mutex_unlock(&crowd_mu);
    gort_wg_wait(&wg);
    gort_mutex_lock(&crowd_mu);
    CHECK_EQ(crowd_count, n);
    gort_mutex_unlock(&crowd_mu);
}

TEST(mutex_many_waiters)
{
    int n = (int)test_scale(10000, 5000, 500);
    test_run_with(2, crowd_main, &n);
}

/* ---- WaitGroup ----------------------------------------------------------- */

static void wg_zero_main(void *arg)
{
    (void)arg;
    gort_waitgroup wg = {0};
    gort_wg_wait(&wg); /* counter 0: returns at once */
    gort_wg_wait(&wg);
    gort_wg_add(&wg, 3);
    gort_wg_add(&wg, -3);
    gort_wg_wait(&wg);
    gort_wg_add(&wg, 1);
    gort_wg_done(&wg);
    gort_wg_wait(&wg);
}

TEST(wg_wait_zero_returns)
{
    test_run_with(1, wg_zero_main, NULL);
}

static gort_waitgroup tree_wg;
static atomic_int tree_done;

static void wg_tree(void *arg)
{
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

static void wg_tree_main(void *arg)
{
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

TEST(wg_add_done_from_many_goroutines)
{
    test_run_with(0, wg_tree_main, NULL);
}

static atomic_int round_done;

static void round_child(void *arg)
{
    atomic_fetch_add(&round_done, 1);
    gort_wg_done(arg);
}

static void wg_reuse_main(void *arg)
{
    (void)arg;
    gort_waitgroup wg = {0};
    int rounds = (int)test_scale(1000, 1000, 100);
    for (int round = 1; round <= rounds; round++) {
        gort_wg_add(&wg, 10);
        for (int i = 0; i < 10; i++)
            CHECK(gort_go(round_child, &wg) > 0);
        gort_wg_wait(&wg);
        CHECK_EQ(atomic_load(&round_done), round * 10);
    }
}

TEST(wg_reuse_across_rounds)
{
    test_run_with(2, wg_reuse_main, NULL);
}

static gort_waitgroup multi_wg;
static gort_waitgroup multi_out;
static atomic_int multi_woken;

static void multi_waiter(void *arg)
{
    (void)arg;
    gort_wg_wait(&multi_wg);
    atomic_fetch_add(&multi_woken, 1);
    gort_wg_done(&multi_out);
}

static void wg_multi_main(void *arg)
{
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

TEST(wg_many_waiters)
{
    test_run_with(1, wg_multi_main, NULL);
    test_run_with(4, wg_multi_main, NULL);
}

/* ---- Fatal misuse ------------------------------------------------------------- */

static void negative_wg_main(void *arg)
{
    (void)arg;
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, -1);
}

static void negative_wg_child(void)
{
    gort_run(NULL, negative_wg_main, NULL);
}

TEST(wg_negative_counter_fatal)
{
    CHECK(test_expect_death(negative_wg_child, "negative"));
}

static void extra_done_main(void *arg)
{
    (void)arg;
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 2);
    gort_wg_done(&wg);
    gort_wg_done(&wg);
    gort_wg_done(&wg);
}

static void extra_done_child(void)
{
    gort_run(NULL, extra_done_main, NULL);
}

TEST(wg_extra_done_fatal)
{
    CHECK(test_expect_death(extra_done_child, "negative"));
}

static void unlock_unlocked_main(void *arg)
{
    (void)arg;
    gort_mutex mu = {0};
    gort_mutex_unlock(&mu);
}

static void unlock_unlocked_child(void)
{
    gort_run(NULL, unlock_unlocked_main, NULL);
}

TEST(mutex_unlock_unlocked_fatal)
{
    CHECK(test_expect_death(unlock_unlocked_child, "unlock of unlocked mutex"));
}

static void double_unlock_main(void *arg)
{
    (void)arg;
    gort_mutex mu = {0};
    gort_mutex_lock(&mu);
    gort_mutex_unlock(&mu);
    gort_mutex_unlock(&mu);
}

static void double_unlock_child(void)
{
    gort_run(NULL, double_unlock_main, NULL);
}

TEST(mutex_double_unlock_fatal)
{
    CHECK(test_expect_death(double_unlock_child, "unlock of unlocked mutex"));
}

/* ---- gort_syscall_enter/exit ----------------------------------------------- */

static int sys_pipe[2];
static atomic_int sys_reader_started;
static atomic_int sys_flag;

static void sys_reader(void *arg)
{
    char buf[8] = {0};
    atomic_store(&sys_reader_started, 1);
    gort_syscall_enter();
    ssize_t n = read(sys_pipe[0], buf, sizeof buf);
    gort_syscall_exit();
    CHECK_EQ(n, 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    gort_wg_done(arg);
}

static void sys_flagger(void *arg)
{
    while (!atomic_load(&sys_reader_started))
        gort_yield();
    atomic_store(&sys_flag, 1);
    gort_wg_done(arg);
}

static void sys_writer(void *arg)
{
    /* Another goroutine ran while the reader's thread sat in read(). */
    while (!atomic_load(&sys_flag))
        gort_yield();
    CHECK_EQ(write(sys_pipe[1], "hello", 5), 5);
    gort_wg_done(arg);
}

static void syscall_main(void *arg)
{
    (void)arg;
    gort_waitgroup wg = {0};
    CHECK_EQ(pipe(sys_pipe), 0);
    gort_wg_add(&wg, 3);
    CHECK(gort_go(sys_reader, &wg) > 0);
    CHECK(gort_go(sys_flagger, &wg) > 0);
    CHECK(gort_go(sys_writer, &wg) > 0);
    gort_wg_wait(&wg);
    close(sys_pipe[0]);
    close(sys_pipe[1]);
}

TEST(syscall_blocking_read_lets_others_run)
{
    /* With one P, the others can only run if the reader's P is handed off. */
    test_run_with(1, syscall_main, NULL);
    atomic_store(&sys_reader_started, 0);
    atomic_store(&sys_flag, 0);
    test_run_with(2, syscall_main, NULL);
}

static void syscall_main_blocks_itself(void *arg)
{
    (void)arg;
    /* The main goroutine blocks in read() until a goroutine writes. */
    gort_waitgroup wg = {0};
    char buf[8] = {0};
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

TEST(syscall_in_main_goroutine)
{
    test_run_with(1, syscall_main_blocks_itself, NULL);
}

#define NBLOCKED 8
static int many_pipes[NBLOCKED][2];
static atomic_int many_entered;
static atomic_long many_ticks;
static gort_waitgroup many_readers_done;

static void many_reader(void *arg)
{
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

static void ticker(void *arg)
{
    for (int i = 0; i < 1000; i++) {
        atomic_fetch_add(&many_ticks, 1);
        gort_yield();
    }
    gort_wg_done(arg);
}

static void many_syscalls_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < NBLOCKED; i++)
        CHECK_EQ(pipe(many_pipes[i]), 0);
    gort_wg_add(&many_readers_done, NBLOCKED);
    for (intptr_t i = 0; i < NBLOCKED; i++)
        CHECK(gort_go(many_reader, (void *)i) > 0);
    while (atomic_load(&many_entered) < NBLOCKED)
        gort_yield();
    /* Eight threads sit in read(); the scheduler still runs everyone else. */
    gort_waitgroup wg = {0};
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

TEST(syscall_many_blocked_threads)
{
    test_run_with(2, many_syscalls_main, NULL);
}

static void errno_main(void *arg)
{
    (void)arg;
    char c;
    gort_syscall_enter();
    ssize_t n = read(-1, &c, 1);
    int e = errno; /* read before gort_syscall_exit, as the header says */
    gort_syscall_exit();
    CHECK_EQ(n, -1);
    CHECK_EQ(e, EBADF);
}

TEST(syscall_errno_before_exit)
{
    test_run_with(2, errno_main, NULL);
}

TEST(syscall_outside_goroutine_noop)
{
    gort_syscall_enter();
    gort_syscall_exit();
    int ran = 0;
    test_run_with(1, wg_zero_main, &ran);
    gort_syscall_enter();
    gort_syscall_exit();
}

static atomic_long bounce_rounds;

static void bounce_worker(void *arg)
{
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

static void bounce_main(void *arg)
{
    (void)arg;
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 100);
    for (int i = 0; i < 100; i++)
        CHECK(gort_go(bounce_worker, &wg) > 0);
    gort_wg_wait(&wg);
    CHECK_EQ(atomic_load(&bounce_rounds), 100 * 200);
}

TEST(syscall_enter_exit_many_goroutines)
{
    test_run_with(2, bounce_main, NULL);
}
