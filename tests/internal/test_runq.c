/*
 * White-box tests of the run queues (runq.c), driven directly on P and G
 * structs with no runtime running: put/get order, runnext, overflow to the
 * global queue, steal-half, and a concurrent owner-versus-thieves stress
 * that checks every G is taken exactly once.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "test.h"

static P *newp(int32_t id) {
    P *pp = aligned_alloc(64, sizeof(P));
    CHECK(pp != NULL);
    memset(pp, 0, sizeof *pp);
    pp->id = id;
    pp->status = Prunning;
    return pp;
}

static G *newgs(int n) {
    G *gs = calloc((size_t)n, sizeof(G));
    CHECK(gs != NULL);
    for (int i = 0; i < n; i++)
        gs[i].goid = i;
    return gs;
}

static int queued(P *pp) { return (int)(pp->runqtail - pp->runqhead); }

static void reset_global(void) {
    memset(&gort__sched, 0, sizeof gort__sched);
    gort__gomaxprocs = 1;
}

TEST(put_get_fifo) {
    reset_global();
    P *pp = newp(0);
    G *gs = newgs(10);
    bool inherit = true;
    CHECK(gort__runqempty(pp));
    for (int i = 0; i < 10; i++)
        gort__runqput(pp, &gs[i], false);
    CHECK(!gort__runqempty(pp));
    CHECK_EQ(queued(pp), 10);
    for (int i = 0; i < 10; i++) {
        G *gp = gort__runqget(pp, &inherit);
        CHECK(gp == &gs[i]);
        CHECK(!inherit);
    }
    CHECK(gort__runqget(pp, &inherit) == NULL);
    CHECK(gort__runqempty(pp));
    free(gs);
    free(pp);
}

TEST(runnext_runs_first_and_inherits_time) {
    reset_global();
    P *pp = newp(0);
    G *gs = newgs(3);
    bool inherit = false;
    gort__runqput(pp, &gs[0], false);
    gort__runqput(pp, &gs[1], false);
    gort__runqput(pp, &gs[2], true);
    CHECK(gort__runqget(pp, &inherit) == &gs[2]);
    CHECK(inherit);
    CHECK(gort__runqget(pp, &inherit) == &gs[0]);
    CHECK(!inherit);
    CHECK(gort__runqget(pp, &inherit) == &gs[1]);
    free(gs);
    free(pp);
}

TEST(runnext_kicks_previous_to_tail) {
    reset_global();
    P *pp = newp(0);
    G *gs = newgs(3);
    bool inherit;
    gort__runqput(pp, &gs[0], true);
    gort__runqput(pp, &gs[1], true); /* gs[0] goes to the queue */
    gort__runqput(pp, &gs[2], false);
    CHECK(pp->runnext == &gs[1]);
    CHECK_EQ(queued(pp), 2);
    CHECK(gort__runqget(pp, &inherit) == &gs[1]);
    CHECK(gort__runqget(pp, &inherit) == &gs[0]);
    CHECK(gort__runqget(pp, &inherit) == &gs[2]);
    free(gs);
    free(pp);
}

TEST(overflow_moves_half_to_global_queue) {
    reset_global();
    P *pp = newp(0);
    G *gs = newgs(RUNQ_SIZE + 1);
    for (int i = 0; i <= RUNQ_SIZE; i++)
        gort__runqput(pp, &gs[i], false);
    /* The full ring gave its older half, plus the new G, to the global queue. */
    CHECK_EQ(queued(pp), RUNQ_SIZE / 2);
    CHECK_EQ(gort__sched.runq.n, RUNQ_SIZE / 2 + 1);
    CHECK_EQ(gort__sched.runqsize, RUNQ_SIZE / 2 + 1);
    G *gp = gort__sched.runq.head;
    for (int i = 0; i < RUNQ_SIZE / 2; i++, gp = gp->schedlink)
        CHECK(gp == &gs[i]);
    CHECK(gp == &gs[RUNQ_SIZE]);
    CHECK(gp->schedlink == NULL);
    /* The local queue keeps the newer half, in order. */
    bool inherit;
    for (int i = RUNQ_SIZE / 2; i < RUNQ_SIZE; i++)
        CHECK(gort__runqget(pp, &inherit) == &gs[i]);
    free(gs);
    free(pp);
}

TEST(globrunqget_takes_a_chain_or_one) {
    reset_global();
    gort__gomaxprocs = 2;
    P *pp = newp(0), *other = newp(1);
    G *gs = newgs(RUNQ_SIZE + 1 + 3);
    /* A full local queue overflows as one chain of 129... */
    for (int i = 0; i <= RUNQ_SIZE; i++)
        gort__runqput(other, &gs[i], false);
    /* ...and single Gs are chains of one. */
    for (int i = RUNQ_SIZE + 1; i < RUNQ_SIZE + 4; i++)
        gort__globrunqput(&gs[i]);
    CHECK_EQ(gort__sched.runqsize, RUNQ_SIZE / 2 + 1 + 3);

    /* max 1 (the 61st-tick check) takes one G and leaves the chain whole. */
    G *gp = gort__globrunqget(pp, 1);
    CHECK(gp == &gs[0]);
    CHECK(gp->schedlink == NULL);
    CHECK_EQ(gort__sched.runqsize, RUNQ_SIZE / 2 + 3);

    /* Otherwise the first chain comes off whole; its tail ends in NULL. */
    gp = gort__globrunqget(pp, 0);
    CHECK(gp == &gs[1]);
    gort__runqputlist(pp, gp->schedlink);
    CHECK_EQ(queued(pp), RUNQ_SIZE / 2 - 1);
    CHECK_EQ(gort__sched.runqsize, 3);
    bool inherit;
    for (int i = 2; i < RUNQ_SIZE / 2; i++)
        CHECK(gort__runqget(pp, &inherit) == &gs[i]);
    CHECK(gort__runqget(pp, &inherit) == &gs[RUNQ_SIZE]);
    CHECK(gort__runqget(pp, &inherit) == NULL);

    /* Then the singles, one per call, in order. */
    for (int i = RUNQ_SIZE + 1; i < RUNQ_SIZE + 4; i++) {
        gp = gort__globrunqget(pp, 0);
        CHECK(gp == &gs[i]);
        CHECK(gp->schedlink == NULL);
    }
    CHECK(gort__globrunqget(pp, 0) == NULL);
    CHECK_EQ(gort__sched.runqsize, 0);
    free(gs);
    free(pp);
    free(other);
}

TEST(steal_takes_half) {
    reset_global();
    P *victim = newp(0), *thief = newp(1);
    G *gs = newgs(10);
    for (int i = 0; i < 10; i++)
        gort__runqput(victim, &gs[i], false);
    G *gp = gort__runqsteal(thief, victim, false);
    /* Half (n - n/2 = 5) taken from the head: one returned, four queued. */
    CHECK(gp == &gs[4]);
    CHECK_EQ(queued(thief), 4);
    CHECK_EQ(queued(victim), 5);
    bool inherit;
    for (int i = 0; i < 4; i++)
        CHECK(gort__runqget(thief, &inherit) == &gs[i]);
    for (int i = 5; i < 10; i++)
        CHECK(gort__runqget(victim, &inherit) == &gs[i]);
    free(gs);
    free(victim);
    free(thief);
}

TEST(steal_runnext_only_when_asked) {
    reset_global();
    P *victim = newp(0), *thief = newp(1);
    victim->status = Pidle; /* no 3 us back-off */
    G *gs = newgs(1);
    gort__runqput(victim, &gs[0], true);
    CHECK(gort__runqsteal(thief, victim, false) == NULL);
    CHECK(victim->runnext == &gs[0]);
    CHECK(gort__runqsteal(thief, victim, true) == &gs[0]);
    CHECK(victim->runnext == NULL);
    CHECK(gort__runqempty(victim));
    free(gs);
    free(victim);
    free(thief);
}

/* Concurrent: the owner keeps putting and getting while thieves steal;
 * every G must be taken exactly once (none lost, none doubled). */
#define NTHIEVES 2
static P *stress_victim;
static P *stress_thieves[NTHIEVES];
static atomic_int *taken;
static atomic_int stress_done;
static atomic_long stress_count;

static void take(G *gp) {
    CHECK_EQ(atomic_fetch_add(&taken[gp->goid], 1), 0);
    atomic_fetch_add(&stress_count, 1);
}

static void *thief_main(void *arg) {
    P *me = arg;
    bool inherit;
    for (;;) {
        bool done = atomic_load(&stress_done);
        G *gp = gort__runqsteal(me, stress_victim, true);
        if (gp) {
            take(gp);
            while ((gp = gort__runqget(me, &inherit)) != NULL)
                take(gp);
        } else if (done) {
            return NULL;
        }
    }
}

TEST(concurrent_owner_and_thieves_lose_nothing) {
    reset_global();
    gort__gomaxprocs = 1 + NTHIEVES; /* with one P the owner assumes no thieves */
    int n = (int)test_scale(2000000, 300000, 50000);
    G *gs = newgs(n);
    taken = calloc((size_t)n, sizeof *taken);
    stress_victim = newp(0);
    pthread_t th[NTHIEVES];
    for (int i = 0; i < NTHIEVES; i++) {
        stress_thieves[i] = newp(i + 1);
        CHECK_EQ(pthread_create(&th[i], NULL, thief_main, stress_thieves[i]), 0);
    }
    bool inherit;
    for (int i = 0; i < n; i++) {
        gort__runqput(stress_victim, &gs[i], (i % 7) == 0);
        if (i % 3 == 0) {
            G *gp = gort__runqget(stress_victim, &inherit);
            if (gp)
                take(gp);
        }
    }
    G *gp;
    while ((gp = gort__runqget(stress_victim, &inherit)) != NULL)
        take(gp);
    atomic_store(&stress_done, 1);
    for (int i = 0; i < NTHIEVES; i++)
        pthread_join(th[i], NULL);
    /* Overflow went to the global queue. */
    while ((gp = gort__gqueue_pop(&gort__sched.runq)) != NULL)
        take(gp);
    CHECK_EQ(atomic_load(&stress_count), n);
    for (int i = 0; i < n; i++)
        CHECK_EQ(atomic_load(&taken[i]), 1);
    free(taken);
    free(gs);
    free(stress_victim);
    for (int i = 0; i < NTHIEVES; i++)
        free(stress_thieves[i]);
}
