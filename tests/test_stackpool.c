/*
 * Stacks running out: when memory is exhausted gort_go returns -ENOMEM,
 * fast, and the runtime keeps working and recovers; it never crashes. When
 * the mappings that mprotect'd guard pages need run out, stacks come with
 * canaries instead, and gort_go does not fail.
 * Each case runs in a forked child, since it changes process limits or
 * the guard-page mode.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

static gort_waitgroup done;
static int64_t started, refused;

static void parked(void *arg) {
    (void)arg;
    gort_wg_done(&done);
}

/* With one P and main never yielding, no goroutine runs during the loop:
 * each one only holds its stack credit, and the pool grows for it until the
 * limit is hit. Further attempts fail fast (the time is printed: timing is
 * the benchmarks' business). Then the address-space limit is lifted and as
 * many again start while the first ones are still alive; they all run and
 * finish. */
#define FAILED_ATTEMPTS 2000
static void exhaust_main(void *arg) {
    int64_t limit = *(int64_t *)arg;
    while (started < limit) {
        int64_t id = gort_go(parked, NULL);
        if (id == -ENOMEM) {
            refused++;
            break;
        }
        CHECK(id > 0);
        gort_wg_add(&done, 1);
        started++;
    }
    CHECK_EQ(refused, 1);
    int64_t t0 = gort_now();
    for (int i = 0; i < FAILED_ATTEMPTS; i++)
        CHECK_EQ(gort_go(parked, NULL), -ENOMEM);
    printf("# a failing gort_go took %.1f us\n",
           (double)(gort_now() - t0) / FAILED_ATTEMPTS / 1000.0);
    /* Memory comes back: the pool grows again. */
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_AS, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    CHECK_EQ(setrlimit(RLIMIT_AS, &rl), 0);
    int64_t more = started;
    gort_wg_add(&done, more);
    for (int64_t i = 0; i < more; i++)
        CHECK(gort_go(parked, NULL) > 0);
    gort_wg_wait(&done);
}

static void exhaust(int64_t limit) {
    gort_config cfg = { .maxprocs = 1 };
    CHECK_EQ(gort_run(&cfg, exhaust_main, &limit), 0);
    printf("# %lld goroutines started before -ENOMEM\n", (long long)started);
    fflush(stdout);
}

/* mprotect'd guard pages split the mapping: two mappings per stack, and
 * vm.max_map_count (65,530 by default) would run out near 32,000 stacks.
 * Past its budget of mappings the pool makes canary stacks instead: 40,000
 * goroutines all hold a stack at once, and gort_go never fails. Under
 * Valgrind the budget is its table of segments, about 11,000 stacks, and
 * 15,000 are enough (40,000 would take minutes: every stack switch is
 * looked up in its list of stacks). */
#define MAPPINGS_LIVE (test_valgrind() ? 15000 : 40000)
static gort_chan *release;
static gort_waitgroup parkedwg;

static void park_on_release(void *arg) {
    (void)arg;
    gort_wg_done(&parkedwg);
    char v;
    CHECK_EQ(gort_chan_recv(release, &v), 0);   /* closed */
    gort_wg_done(&done);
}

static void mappings_main(void *arg) {
    (void)arg;
    CHECK_EQ(gort_chan_make(&release, 1, 0), 0);
    gort_wg_add(&parkedwg, MAPPINGS_LIVE);
    gort_wg_add(&done, MAPPINGS_LIVE);
    for (int i = 0; i < MAPPINGS_LIVE; i++)
        CHECK(gort_go(park_on_release, NULL) > 0);
    gort_wg_wait(&parkedwg);   /* every one runs on a stack of its own */
    gort_metrics st;
    CHECK_EQ(gort_read_metrics(&st, sizeof st), 0);
    CHECK_EQ(st.stack_guard, GORT_GUARD_MPROTECT);
    CHECK(st.stacks >= MAPPINGS_LIVE);
    CHECK(st.canary_stacks > 0);
    CHECK(st.stacks - st.canary_stacks > 1000);   /* the budget did guard some */
    printf("# %lld stacks, %lld of them canary stacks\n", (long long)st.stacks,
           (long long)st.canary_stacks);
    fflush(stdout);
    gort_chan_close(release);
    gort_wg_wait(&done);
    gort_chan_free(release);
}

static void mappings_child(void) {
    setenv("GORT_DEBUG", "stackguard=mprotect", 1);
    gort_config cfg = { .maxprocs = 2 };
    CHECK_EQ(gort_run(&cfg, mappings_main, NULL), 0);
    exit(0);
}

TEST(mprotect_budget_spent_canaries_not_enomem) {
    if (test_sanitized())
        return; /* the sanitizers' own mappings change the count; one
                     fiber per goroutine under TSan would be too slow */
    char *err = NULL;
    int st = test_fork_capture(mappings_child, 240, &err);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        fprintf(stderr, "child status %d:\n%s\n", st, err ? err : "");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    free(err);
}

/* Address space capped at 4 GiB: the stack pool's next chunk cannot be
 * mapped long before a million goroutines are reached. */
static void memory_child(void) {
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_AS, &rl), 0);
    rl.rlim_cur = 4UL << 30;   /* the hard limit stays, to lift it again */
    CHECK_EQ(setrlimit(RLIMIT_AS, &rl), 0);
    exhaust(1000000);
    CHECK(started > 1000 && started < 1000000);
    exit(0);
}

TEST(memory_runs_out_enomem_not_crash) {
    if (test_sanitized())
        return; /* ASan and TSan need far more address space than 4 GiB */
    /* qemu-user takes setrlimit(RLIMIT_AS) and ignores it (it keeps the
     * host's limits for its own mappings), so nothing would run out. */
    if (test_emulated() && test_skip("RLIMIT_AS is not applied under qemu-user"))
        return;
    char *err = NULL;
    int st = test_fork_capture(memory_child, 240, &err);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        fprintf(stderr, "child status %d:\n%s\n", st, err ? err : "");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    free(err);
}
