/*
 * Stacks running out: when memory or memory mappings are exhausted,
 * gort_go returns -ENOMEM and the runtime keeps working; it never crashes.
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
 * limit is hit. Then they all run and finish, and more can be started. */
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
    gort_wg_wait(&done);
    /* Everything came back: spawning works again. */
    gort_wg_add(&done, 1000);
    for (int i = 0; i < 1000; i++)
        CHECK(gort_go(parked, NULL) > 0);
    gort_wg_wait(&done);
}

static void exhaust(int64_t limit) {
    gort_config cfg = { .maxprocs = 1 };
    CHECK_EQ(gort_run(&cfg, exhaust_main, &limit), 0);
    CHECK_EQ(refused, 1);
    printf("# %lld goroutines started before -ENOMEM\n", (long long)started);
    fflush(stdout);
}

/* mprotect'd guard pages split the mapping: two mappings per stack, and
 * vm.max_map_count (65,530 by default) runs out near 32,000 stacks. */
static void mappings_child(void) {
    setenv("GORT_NOUFFD", "1", 1);
    exhaust(1000000);
    CHECK(started > 1000 && started < 1000000);
    exit(0);
}

TEST(mappings_run_out_enomem_not_crash) {
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
    struct rlimit rl = { 4UL << 30, 4UL << 30 };
    CHECK_EQ(setrlimit(RLIMIT_AS, &rl), 0);
    exhaust(1000000);
    CHECK(started > 1000 && started < 1000000);
    exit(0);
}

TEST(memory_runs_out_enomem_not_crash) {
    if (test_sanitized())
        return; /* ASan and TSan need far more address space than 4 GiB */
    char *err = NULL;
    int st = test_fork_capture(memory_child, 240, &err);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        fprintf(stderr, "child status %d:\n%s\n", st, err ? err : "");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    free(err);
}
