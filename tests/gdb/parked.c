/*
 * parked: goroutines in every state gdb should show, for tests/gdb/run.sh.
 *
 * Each parked_in_* goroutine blocks in a different way, from a function of
 * its own, so that a backtrace of it names that function. Then one sits
 * in read() on a pipe (syscall), one spins on a P of its own (running) and
 * one is created but never gets a P (runnable, not started), and main
 * calls gort_test_ready(), where gdb has a breakpoint. When it returns,
 * main releases everyone, checks what each got and exits 0: a context
 * gdb looked at but did not restore exactly would crash it or get a
 * wrong answer.
 *
 * It runs on one P while the parkers park: then main, running, knows that
 * a parker that has counted itself in is parked, since a goroutine leaves
 * its P only at a scheduling point and none comes between the count and
 * the park. A second P is added for the spinner.
 */
#include <gort.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static gort_chan *crecv, *csend, *csel1, *csel2;
static gort_mutex mu;
static gort_waitgroup wgblock, done;
static atomic_int parked, spinning, insyscall, stop;
static int pipefd[2];
static int got_recv, got_sel, got_mutex, got_wg, got_syscall, got_ran;

/* gdb's breakpoint: everything is in place when it is called. */
__attribute__((noinline)) void gort_test_ready(void) { __asm__ volatile("" ::: "memory"); }

__attribute__((noinline)) static void parked_in_chan_recv(void *arg) {
    (void)arg;
    int v = 0;
    atomic_fetch_add(&parked, 1);
    if (gort_chan_recv(crecv, &v) == 1)
        got_recv = v;
    gort_wg_done(&done);
}

__attribute__((noinline)) static void parked_in_chan_send(void *arg) {
    (void)arg;
    int v = 7;
    atomic_fetch_add(&parked, 1);
    gort_chan_send(csend, &v);
    gort_wg_done(&done);
}

__attribute__((noinline)) static void parked_in_select(void *arg) {
    (void)arg;
    int v = 0;
    gort_case cases[2] = {
        { .chan = csel1, .op = GORT_RECV, .elem = &v },
        { .chan = csel2, .op = GORT_RECV, .elem = &v },
    };
    atomic_fetch_add(&parked, 1);
    if (gort_select(cases, 2, 1) == 1)
        got_sel = v;
    gort_wg_done(&done);
}

__attribute__((noinline)) static void parked_in_mutex_lock(void *arg) {
    (void)arg;
    atomic_fetch_add(&parked, 1);
    gort_mutex_lock(&mu);
    got_mutex = 1;
    gort_mutex_unlock(&mu);
    gort_wg_done(&done);
}

__attribute__((noinline)) static void parked_in_wg_wait(void *arg) {
    (void)arg;
    atomic_fetch_add(&parked, 1);
    gort_wg_wait(&wgblock);
    got_wg = 1;
    gort_wg_done(&done);
}

/* Never released: abandoned when main returns, as Go abandons it. */
__attribute__((noinline)) static void parked_in_sleep(void *arg) {
    (void)arg;
    atomic_fetch_add(&parked, 1);
    gort_sleep(3600 * (int64_t)1000000000);
    gort_wg_done(&done);
}

__attribute__((noinline)) static void running_spin(void *arg) {
    (void)arg;
    atomic_store(&spinning, 1);
    while (!atomic_load(&stop))
        ;
    gort_wg_done(&done);
}

__attribute__((noinline)) static void in_syscall_read(void *arg) {
    (void)arg;
    char c = 0;
    gort_syscall_enter();
    atomic_store(&insyscall, 1);
    ssize_t n = read(pipefd[0], &c, 1);
    gort_syscall_exit();
    got_syscall = n == 1 ? c : -1;
    gort_wg_done(&done);
}

__attribute__((noinline)) static void never_ran(void *arg) {
    (void)arg;
    got_ran = 1;
    gort_wg_done(&done);
}

static void main_goroutine(void *arg) {
    int *status = arg;
    void (*parkers[])(void *) = {
        parked_in_chan_recv, parked_in_chan_send, parked_in_select,
        parked_in_mutex_lock, parked_in_wg_wait, parked_in_sleep,
    };
    int nparkers = sizeof parkers / sizeof parkers[0];

    gort_mutex_lock(&mu);
    gort_wg_add(&wgblock, 1);
    gort_wg_add(&done, nparkers - 1 + 3);   /* all but the sleeper, and the last three */
    for (int i = 0; i < nparkers; i++)
        gort_go(parkers[i], NULL);
    while (atomic_load(&parked) < nparkers)
        gort_sleep(1000000);

    gort_maxprocs(2);
    gort_go(in_syscall_read, NULL);
    while (!atomic_load(&insyscall))
        gort_sleep(1000000);
    /* Main waits for the spinner without parking: a timer of its own on
     * the spinner's P would never run, as nothing preempts the spinner.
     * Another P steals the spinner from main's runnext. */
    gort_go(running_spin, NULL);
    while (!atomic_load(&spinning))
        ;
    gort_go(never_ran, NULL);   /* both Ps are busy: it waits in main's runnext */

    gort_test_ready();

    atomic_store(&stop, 1);
    if (write(pipefd[1], "s", 1) != 1)
        return;
    int v = 42;
    gort_chan_send(crecv, &v);
    gort_chan_recv(csend, &v);
    int sent = v;
    v = 9;
    gort_chan_send(csel2, &v);
    gort_mutex_unlock(&mu);
    gort_wg_done(&wgblock);
    gort_wg_wait(&done);

    if (got_recv != 42 || sent != 7 || got_sel != 9 || !got_mutex || !got_wg ||
        got_syscall != 's' || !got_ran) {
        printf("parked: FAILED: recv %d send %d select %d mutex %d wg %d syscall %d ran %d\n",
               got_recv, sent, got_sel, got_mutex, got_wg, got_syscall, got_ran);
        return;
    }
    printf("parked: ok\n");
    *status = 0;
}

int main(void) {
    int status = 1;
    gort_config cfg = { .maxprocs = 1 };

    if (pipe(pipefd) < 0 || gort_chan_make(&crecv, sizeof(int), 0) < 0 ||
        gort_chan_make(&csend, sizeof(int), 0) < 0 || gort_chan_make(&csel1, sizeof(int), 0) < 0 ||
        gort_chan_make(&csel2, sizeof(int), 0) < 0)
        return 1;
    int err = gort_run(&cfg, main_goroutine, &status);
    if (err < 0) {
        fprintf(stderr, "parked: gort_run: %s\n", strerror(-err));
        return 1;
    }
    return status;
}
