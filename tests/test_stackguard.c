/*
 * Stack guard tiers: each one, forced with GORT_DEBUG=stackguard=NAME, is
 * the one gort_read_metrics reports (unless this kernel lacks it, which the
 * test finds out for itself) and catches an overflow; canary stacks catch
 * even a small one when the goroutine switches away; and a hundred thousand
 * goroutines hold a stack each at the default size.
 *
 * Every test runs in a process of its own (the harness forks), so setenv
 * here changes only that test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "test.h"

#define KiB 1024

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif

/* ---- what this kernel offers, found out independently of gort ---------- */

static bool have_madvise_guard(void) {
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    bool ok = madvise(p, 4096, MADV_GUARD_INSTALL) == 0;
    /* And it guards: an emulator (qemu-user) may answer 0 and do nothing.
     * A system call reading the page fails with EFAULT. */
    int fds[2];
    CHECK(pipe(fds) == 0);
    ok = ok && write(fds[1], p, 1) < 0 && errno == EFAULT;
    close(fds[0]);
    close(fds[1]);
    munmap(p, 8192);
    return ok;
}

/* A userfaultfd that takes these features (user-mode faults only, or not). */
static bool have_uffd(uint64_t features) {
    for (int flags = 1; flags >= 0; flags--) {
        int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | flags);
        if (fd < 0)
            continue;
        struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_SIGBUS | features };
        bool ok = ioctl(fd, UFFDIO_API, &api) == 0 && (api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP);
        close(fd);
        if (ok)
            return true;
    }
    return false;
}

static bool available(int guard) {
    switch (guard) {
    case GORT_GUARD_MADVISE: return have_madvise_guard();
    case GORT_GUARD_UFFD: return have_uffd(UFFD_FEATURE_WP_UNPOPULATED);
    case GORT_GUARD_UFFD_ZEROPAGE: return have_uffd(0);
    default: return true;
    }
}

static void force(int guard) {
    char v[64];
    snprintf(v, sizeof v, "stackguard=%s", gort_stack_guard_name(guard));
    CHECK_EQ(setenv("GORT_DEBUG", v, 1), 0);
}

/* ---- the tier reported --------------------------------------------------- */

static int reported;

static void read_guard(void *arg) {
    (void)arg;
    gort_metrics st;
    CHECK_EQ(gort_read_metrics(&st, sizeof st), 0);
    reported = st.stack_guard;
    CHECK(st.stacks >= 1);   /* this goroutine's */
}

static void check_reported(int guard) {
    force(guard);
    CHECK_EQ(gort_run(NULL, read_guard, NULL), 0);
    if (available(guard)) {
        CHECK_EQ(reported, guard);
    } else {
        /* The next one down that is there. */
        CHECK(reported > guard);
        printf("# %s: not offered by this kernel; gort used %s\n", gort_stack_guard_name(guard),
               gort_stack_guard_name(reported));
    }
}

TEST(madvise_reported) { check_reported(GORT_GUARD_MADVISE); }
TEST(uffd_reported) { check_reported(GORT_GUARD_UFFD); }
TEST(uffd_zeropage_reported) { check_reported(GORT_GUARD_UFFD_ZEROPAGE); }
TEST(mprotect_reported) { check_reported(GORT_GUARD_MPROTECT); }
TEST(canary_reported) { check_reported(GORT_GUARD_CANARY); }

/* gort_read_metrics fills what the caller's struct has room for, and
 * zeroes what the library does not know. */
static void metrics_sizes(void *arg) {
    (void)arg;
    CHECK_EQ(gort_read_metrics(NULL, sizeof(gort_metrics)), -EINVAL);
    struct {
        gort_metrics m;
        int64_t later[4];   /* fields of a future version */
    } big;
    memset(&big, 0xAB, sizeof big);
    CHECK_EQ(gort_read_metrics(&big.m, sizeof big), 0);
    CHECK(big.m.stack_guard >= GORT_GUARD_MADVISE && big.m.stack_guard <= GORT_GUARD_CANARY);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(big.later[i], 0);
    gort_metrics small;
    memset(&small, 0xAB, sizeof small);
    CHECK_EQ(gort_read_metrics(&small, sizeof(int)), 0);   /* an older caller's */
    CHECK_EQ(small.stack_guard, big.m.stack_guard);
    unsigned char *rest = (unsigned char *)&small + sizeof(int);
    for (size_t i = 0; i < sizeof small - sizeof(int); i++)
        CHECK_EQ(rest[i], 0xAB);   /* untouched */
}

TEST(metrics_by_size) { CHECK_EQ(gort_run(NULL, metrics_sizes, NULL), 0); }

/* The scheduler counters move as the program does. */
static gort_chan *cnt_ch;
static void cnt_recv(void *arg) {
    (void)arg;
    gort_chan_recv(cnt_ch, NULL);
}

static void counters_main(void *arg) {
    (void)arg;
    gort_metrics a, b;
    CHECK_EQ(gort_read_metrics(&a, sizeof a), 0);
    CHECK_EQ(gort_chan_make(&cnt_ch, 0, 0), 0);
    for (int i = 0; i < 100; i++)
        CHECK(gort_go(cnt_recv, NULL) > 0);
    /* Let them run: finding nothing to receive, they park. */
    test_yield_n(1000);
    for (int i = 0; i < 100; i++)
        CHECK_EQ(gort_chan_send(cnt_ch, NULL), 0);
    gort_syscall_enter();
    gort_syscall_exit();
    gort_mutex mu = { 0 };
    gort_mutex_lock(&mu);
    gort_mutex_unlock(&mu);
    CHECK_EQ(gort_read_metrics(&b, sizeof b), 0);
    CHECK(b.goroutines_created - a.goroutines_created >= 100);
    CHECK(b.context_switches - a.context_switches >= 100);
    CHECK(b.syscalls - a.syscalls >= 1);
    CHECK(b.threads_created >= 2);
    int recv = -1;
    for (int r = 0; gort_wait_reason_name(r); r++)
        if (strcmp(gort_wait_reason_name(r), "chan receive") == 0)
            recv = r;
    CHECK(recv >= 0 && recv < GORT_WAIT_REASONS);
    CHECK(b.parks[recv] - a.parks[recv] >= 1);
    CHECK(gort_wait_reason_name(GORT_WAIT_REASONS) == NULL);
    CHECK(gort_wait_reason_name(-1) == NULL);
    gort_chan_free(cnt_ch);
}

TEST(metrics_scheduler_counters) {
    gort_config cfg = { .maxprocs = 2 };
    CHECK_EQ(gort_run(&cfg, counters_main, NULL), 0);
}

/* Outside a runtime: all zero. */
TEST(metrics_without_runtime) {
    gort_metrics m;
    memset(&m, 0xAB, sizeof m);
    CHECK_EQ(gort_read_metrics(&m, sizeof m), 0);
    CHECK_EQ(m.stack_guard, 0);
    CHECK_EQ(m.stacks, 0);
}

/* Unforced, the best one offered. */
TEST(best_tier_chosen) {
    unsetenv("GORT_DEBUG");
    unsetenv("GORT_NOUFFD");
    CHECK_EQ(gort_run(NULL, read_guard, NULL), 0);
    int best = GORT_GUARD_MADVISE;
    while (!available(best))
        best++;
    printf("# best here: %s\n", gort_stack_guard_name(best));
    CHECK_EQ(reported, best);
}

/* ---- overflows caught ------------------------------------------------------ */

static volatile int overflow_stop; /* a sink for the reads below */

/* test_overflow_child_main overflows in a goroutine other than main: under
 * the canary tier, main's stack is the first in its chunk, which has a real
 * guard page below it. */
static void check_overflow(int guard) {
    force(guard);
    CHECK(test_expect_fatal(NULL, test_overflow_child_main, NULL, "stack overflow"));
    CHECK(test_expect_fatal(NULL, test_overflow_goroutine, NULL, "stack overflow"));
}

TEST(madvise_overflow_caught) { check_overflow(GORT_GUARD_MADVISE); }
TEST(uffd_overflow_caught) { check_overflow(GORT_GUARD_UFFD); }
TEST(uffd_zeropage_overflow_caught) { check_overflow(GORT_GUARD_UFFD_ZEROPAGE); }
TEST(mprotect_overflow_caught) { check_overflow(GORT_GUARD_MPROTECT); }
TEST(canary_overflow_caught) { check_overflow(GORT_GUARD_CANARY); }

/* A guard region also catches a read (the write-protecting tiers do not). */
static void read_below(void *arg) {
    (void)arg;
    volatile char here = 0;
    uintptr_t hi = ((uintptr_t)&here + 4095) & ~(uintptr_t)4095;
    volatile char *below = (volatile char *)(hi - 64 * KiB - 1);
    overflow_stop = *below + here;
}

TEST(madvise_read_caught) {
    if (!have_madvise_guard())
        return;
    force(GORT_GUARD_MADVISE);
    gort_config cfg = { .stack_size = 64 * KiB };
    CHECK(test_expect_fatal(&cfg, read_below, NULL, "stack overflow"));
}

/* ---- a small overflow on a canary stack ---------------------------------- */

/* Goes down the 64 KiB stack until a few hundred bytes are left, then
 * writes a 2 KiB frame: it ends below the stack, in the never-written page
 * beneath, and returns normally. No fault; the canary sees it when the
 * goroutine next yields. */
__attribute__((noinline)) static void overstep(void) {
    volatile char buf[2048];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (char)(i | 1);
    overflow_stop = buf[0];
}

__attribute__((noinline)) static int descend(int depth, uintptr_t lo) {
    volatile char frame[256];
    frame[0] = (char)depth;
    if ((uintptr_t)frame > lo + 1024) {
        int r = descend(depth + 1, lo);
        return r + frame[0];
    }
    overstep();
    return frame[0];
}

static void small_overflow(void *arg) {
    (void)arg;
    volatile char here = 0;
    uintptr_t hi = ((uintptr_t)&here + 4095) & ~(uintptr_t)4095;
    overflow_stop = descend(0, hi - 64 * KiB) + here;
    gort_yield(); /* the switch away checks the canary */
    printf("not caught\n");
}

static void small_overflow_main(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    gort_wg_add(&wg, 1);
    CHECK(gort_go(small_overflow, NULL) > 0);
    gort_wg_wait(&wg); /* never done */
}

TEST(canary_small_overflow_caught_at_switch) {
    if (test_sanitized())
        return; /* the sanitizers lay out frames their own way */
    force(GORT_GUARD_CANARY);
    gort_config cfg = { .maxprocs = 1, .stack_size = 64 * KiB };
    CHECK(test_expect_fatal(&cfg, small_overflow_main, NULL, "found by its canary"));
}

/* The same goroutine, its overflow left out, runs clean: no false alarm. */
static void deep_but_inside(void *arg) {
    (void)arg;
    volatile char here = 0;
    uintptr_t hi = ((uintptr_t)&here + 4095) & ~(uintptr_t)4095;
    /* Stop a page short of the end. */
    overflow_stop = descend(0, hi - 64 * KiB + 4096) * 0 + here;
    gort_yield();
}

static gort_waitgroup deepwg;
static void deep_child(void *arg) {
    deep_but_inside(arg);
    gort_wg_done(&deepwg);
}

static void deep_rounds(void *arg) {
    (void)arg;
    for (int round = 0; round < 5; round++) {
        gort_wg_add(&deepwg, 50);
        for (int i = 0; i < 50; i++)
            CHECK(gort_go(deep_child, NULL) > 0);
        gort_wg_wait(&deepwg);
    }
    gort_metrics st;
    CHECK_EQ(gort_read_metrics(&st, sizeof st), 0);
    CHECK(st.canary_stacks > 0);
}

TEST(canary_no_false_alarm) {
    if (test_sanitized())
        return;
    force(GORT_GUARD_CANARY);
    gort_config cfg = { .maxprocs = 2, .stack_size = 64 * KiB };
    CHECK_EQ(gort_run(&cfg, deep_rounds, NULL), 0);
}

/* ---- a hundred thousand stacks at once ------------------------------------- */

static gort_chan *release;
static gort_waitgroup parked, finished;

static void park(void *arg) {
    (void)arg;
    gort_wg_done(&parked);
    CHECK_EQ(gort_chan_recv(release, NULL), 0);   /* closed */
    gort_wg_done(&finished);
}

static void many_main(void *arg) {
    int64_t n = *(int64_t *)arg;
    CHECK_EQ(gort_chan_make(&release, 0, 0), 0);
    gort_wg_add(&parked, n);
    gort_wg_add(&finished, n);
    for (int64_t i = 0; i < n; i++)
        CHECK(gort_go(park, NULL) > 0);
    gort_wg_wait(&parked);
    gort_metrics st;
    CHECK_EQ(gort_read_metrics(&st, sizeof st), 0);
    CHECK(st.stacks >= n);
    CHECK_EQ(gort_num_goroutines(), n + 1);
    printf("# %lld goroutines parked on stacks guarded by %s (%lld canary stacks)\n",
           (long long)n, gort_stack_guard_name(st.stack_guard), (long long)st.canary_stacks);
    CHECK_EQ(gort_chan_close(release), 0);
    gort_wg_wait(&finished);
    gort_chan_free(release);
}

TEST(hundred_thousand_live_stacks) {
    int64_t n = test_scale(100000, 20000, 2000);
    CHECK_EQ(gort_run(NULL, many_main, &n), 0);
}

TEST(hundred_thousand_live_stacks_mprotect) {
    if (test_sanitized())
        return; /* the sanitizers' own mappings change the budget */
    if (test_valgrind() && test_skip("100,000 live stacks take 7 minutes under Valgrind: it looks "
                                     "every stack switch up in its list of stacks"))
        return;
    force(GORT_GUARD_MPROTECT);
    int64_t n = 100000;
    CHECK_EQ(gort_run(NULL, many_main, &n), 0);
}
