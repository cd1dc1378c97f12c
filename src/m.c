/*
 * m.c: the life of an M, an OS thread that runs goroutines.
 *
 * This is Go's M creation path (proc.go), under Go's names:
 *
 *   newm(fn, p, id)      allocate an M that will acquire p, start its thread
 *     allocm             the M struct, mstartfn = fn, mcommoninit, g0
 *       mcommoninit      id from mReserveID (thread limit), mpreinit
 *                        (signal stack), push on allm
 *     newm1 -> newosproc pthread_create with every signal blocked
 *   mstart               the thread's entry
 *     mstart0            mstart1, then mexit when it returns (shutdown)
 *       mstart1          record g0, minit, run mstartfn, acquirep(nextp)
 *                        unless m0, enter schedule()
 *   mexit                off allm, onto sched.freem; m0 joins and frees it
 *
 * Idle Ms sleep in stopm on their own futex (m->park) and are handed a P by
 * startm, which reuses an idle M or calls newm. Go's runtime makes its
 * threads with a raw clone; gort calls pthread_create (which issues clone
 * with the same flags plus CLONE_SETTLS) because the runtime and the
 * goroutines call libc, and libc needs its per-thread state set up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "runtime.h"

static void mput(M *mp);
static void mspinning(void);

__thread M *gort__tls_m __attribute__((tls_model("initial-exec")));
M  gort__m0;
M *gort__allm;

/* ---- ids and the thread limit --------------------------------------------- */

/* Returns the next M id, enforcing the thread limit (Go's checkmcount).
 * sched.lock must be held. Exceeding the limit is fatal, as in Go: the
 * program asked for more threads than it said it would ever need. */
static int64_t mReserveID(void) {
    int64_t id = gort__sched.mnext++;
    if (gort__sched.mnext - gort__sched.nmfreed > gort__sched.maxmcount) {
        gort__fatal("program exceeds %d-thread limit (gort_config.max_threads); "
                    "thread exhaustion", gort__sched.maxmcount);
    }
    return id;
}

/* ---- creation: newm -> allocm -> mcommoninit -> newm1 -> newosproc ------- */

/* Pre-allocated ID may be passed as id, or omitted by passing -1. Gives the
 * M its id, its PRNG seed and its signal stack, and pushes it on allm. */
void gort__mcommoninit(M *mp, int64_t id) {
    gort__lock(&gort__sched.lock);
    mp->id = id >= 0 ? id : mReserveID();
    gort__unlock(&gort__sched.lock);

    mp->fastrand = (uint64_t)gort__nanotime() ^ ((uint64_t)mp->id * 0x9E3779B97F4A7C15ULL);
    if (mp->fastrand == 0)
        mp->fastrand = 1;

    if (gort__mpreinit(mp) < 0)
        gort__fatal("mcommoninit: cannot allocate a signal stack for M%lld", (long long)mp->id);

    gort__lock(&gort__sched.lock);
    mp->alllink = gort__allm;
    store_rel(&gort__allm, mp);   /* release: readers walk allm without the lock */
    gort__sched.mcount++;
    gort__unlock(&gort__sched.lock);
}

/* Allocates a new M not yet associated with any thread. Its g0 runs on the
 * thread's own stack, which pthread_create makes (Go's cgo path): g0 has
 * no stack of ours, only a context to switch back to. */
static M *allocm(P *pp, void (*fn)(void), int64_t id) {
    (void)pp;
    M *mp = calloc(1, sizeof *mp);
    G *g0 = calloc(1, sizeof *g0);
    if (!mp || !g0)
        gort__fatal("allocm: out of memory");
    mp->mstartfn = fn;
    gort__mcommoninit(mp, id);
    mp->g0 = g0;
    g0->m = mp;
    g0->goid = 0;
    store_relaxed(&g0->atomicstatus, Grunning);
    return mp;
}

static void *mstart(void *arg);

/* Starts the OS thread. Every signal is blocked while pthread_create runs,
 * so none is delivered to the new thread before it has set up its signal
 * stack; mstart restores the creator's mask. */
static void newosproc(M *mp) {
    sigset_t all, old;
    pthread_attr_t attr;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_init(&attr);
    mp->sigmask_saved = old;
    raceignoresyncbegin();   /* a goroutine's past must not reach the new g0 */
    int err = pthread_create(&mp->thread, &attr, mstart, mp);
    raceignoresyncend();
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0)
        gort__fatal("newosproc: cannot create thread M%lld: %s (%d threads exist)",
                    (long long)mp->id, strerror(err), gort__sched.mcount);
}

void gort__newm1(M *mp) { newosproc(mp); }

/* Creates a new M. It will start with a call to fn (if not NULL), then
 * acquire pp (if not NULL) and enter the scheduler. id is a pre-reserved
 * M id, or -1. */
void gort__newm(void (*fn)(void), P *pp, int64_t id) {
    M *mp = allocm(pp, fn, id);
    mp->nextp = pp;
    if (gort__traceon())
        gort__traceNewM(mp);
    /* A locked M's thread may carry state its goroutine gave it; the new
     * thread is made by the clean template thread (lockosthread.c). */
    M *cur = getm();
    if (cur && (cur->lockedg || cur->lockedexit) && gort__newm_handoff(mp))
        return;
    gort__newm1(mp);
}

/* ---- mstart -> mstart0 -> mstart1 -> schedule ----------------------------- */

static void mstart1(void) {
    M *mp = getm();
    if (getg() != NULL)
        gort__throw("mstart1: not on g0");

    /* Record g0: the thread's stack bounds (the sanitizers need them at
     * every switch) and, under TSan, the fiber it already runs on. */
    pthread_attr_t attr;
    void *addr;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &addr, &size);
        mp->g0->stack = (stack){ (uintptr_t)addr, (uintptr_t)addr + size };
        pthread_attr_destroy(&attr);
    }
#ifdef GORT_TSAN_FIBERS
    mp->g0->tsan_fiber = __tsan_get_current_fiber();
#endif
    if (gort__minit(mp) < 0)
        gort__fatal("mstart1: sigaltstack failed on M%lld", (long long)mp->id);
    mp->timerslack = prctl(PR_GET_TIMERSLACK, 0UL, 0UL, 0UL, 0UL);   /* see netpoll */

    bool withp = mp == &gort__m0 || mp->nextp != NULL;
    if (gort__debug_mtrace && !withp)
        gort__mtrace_started(mp);   /* sysmon's mstartfn returns only at shutdown */

    if (mp->mstartfn)
        mp->mstartfn();

    if (mp != &gort__m0 && mp->nextp) {
        gort__acquirep(mp->nextp);
        mp->nextp = NULL;
    }
    if (!withp)
        return;   /* sysmon, at shutdown */
    if (gort__debug_mtrace)
        gort__mtrace_started(mp);
    gort__schedule();
}

/* Thread exit at shutdown: the M leaves allm for sched.freem, where m0
 * joins its thread and frees it (a thread cannot free the stack it runs
 * on, and gort_run must not return before every thread is gone). */
static void mexit(M *mp) {
    gort__unminit(mp);
    gort__lock(&gort__sched.lock);
    M **pp;
    for (pp = &gort__allm; *pp != mp; pp = &(*pp)->alllink)
        if (*pp == NULL)
            gort__throw("mexit: M not on allm");
    *pp = mp->alllink;
    gort__sched.mcount--;
    mp->schedlink = gort__sched.freem;
    store_relaxed(&gort__sched.freem, mp);   /* relaxed: sysmon peeks (reapm) */
    if (!load_relaxed(&gort__sched.shutdown))
        gort__sched.nmfreed++;   /* a locked goroutine took its thread */
    /* The last to leave wakes m0, if it waits: only m0 waits, and only
     * after it has left its own loop, so no M is created after this (see
     * mexit_all); until then mcount may touch 1 and rise again (m0 starting
     * an M in the middle of shutdown), and nobody is woken for that. */
    bool wake = gort__sched.mcount == 1 && gort__sched.mexitwait;
    if (wake)
        gort__sched.mexitwait = false;
    gort__unlock(&gort__sched.lock);
    if (wake)
        gort__notewakeup(&gort__sched.mexitnote);
}

/* mstart0 runs mstart1, which returns only when the runtime shuts down. */
void gort__mstart0(void) {
    raceg0begin();
    mstart1();
    raceg0end();
    M *mp = getm();
    if (mp != &gort__m0)
        mexit(mp);
}

static void *mstart(void *arg) {
    M *mp = arg;
    /* The creator's mask, and SIGPIPE blocked: a write to a closed pipe or
     * socket returns EPIPE to the goroutine instead of ending the process
     * (fd.c consumes the pending signal). */
    sigaddset(&mp->sigmask_saved, SIGPIPE);
    pthread_sigmask(SIG_SETMASK, &mp->sigmask_saved, NULL);
    gort__tls_m = mp;
    gort__mstart0();
    gort__tls_m = NULL;
    return NULL;
}

/* Joins and frees the Ms on sched.freem: threads that have left (or are
 * about to: mexit is their last step). */
static void reapm_list(void) {
    gort__lock(&gort__sched.lock);
    M *list = gort__sched.freem;
    store_relaxed(&gort__sched.freem, NULL);
    gort__unlock(&gort__sched.lock);
    while (list) {
        M *mp = list;
        list = mp->schedlink;
        pthread_join(mp->thread, NULL);
        gort__mfreesignal(mp);
        free(mp->g0);
        free(mp);
    }
}

/* sysmon, while the runtime runs: the threads that goroutines exiting
 * locked took with them are joined now rather than at shutdown, so a
 * program that locks and exits goroutines by the thousand does not keep
 * their stacks. */
void gort__reapm(void) {
    if (load_relaxed(&gort__sched.freem) != NULL && !load_acq(&gort__sched.shutdown))
        reapm_list();
}

/* m0 waits for every other M to leave (see mexit), joins the threads and
 * frees them. Called on m0 once its own schedule() has returned. */
void gort__mexit_all(void) {
    gort__lock(&gort__sched.lock);
    bool wait = gort__sched.mcount > 1;
    gort__sched.mexitwait = wait;
    gort__unlock(&gort__sched.lock);
    if (wait)
        gort__notesleep(&gort__sched.mexitnote);

    reapm_list();
    M *m0 = &gort__m0;
    gort__unminit(m0);
    gort__mfreesignal(m0);
    store_rel(&gort__allm, NULL);
    gort__sched.mcount = 0;
}

/* ---- idle Ms: stopm, startm ---------------------------------------------- */

/* Puts mp on the idle list. sched.lock must be held. */
static void mput(M *mp) {
    mp->schedlink = gort__sched.midle;
    gort__sched.midle = mp;
    gort__sched.nmidle++;
    gort__checkdead();
}

/* Takes an M off the idle list. sched.lock must be held. */
M *gort__mget(void) {
    M *mp = gort__sched.midle;
    if (mp) {
        gort__sched.midle = mp->schedlink;
        gort__sched.nmidle--;
    }
    return mp;
}

/* Stops execution of the current M until new work is available; returns
 * holding the P the waker handed over (none at shutdown). */
void gort__stopm(void) {
    M *mp = getm();
    if (mp->locks)
        gort__throw("stopm: holding locks");
    if (mp->p)
        gort__throw("stopm: holding p");
    if (mp->spinning)
        gort__throw("stopm: spinning");

    gort__lock(&gort__sched.lock);
    if (load_relaxed(&gort__sched.shutdown)) {
        gort__unlock(&gort__sched.lock);
        return;
    }
    mput(mp);
    if (gort__traceon())
        gort__traceMPark(mp);   /* under sched.lock, as a trace's start looks at midle */
    gort__unlock(&gort__sched.lock);
    gort__notesleep(&mp->park);
    gort__noteclear(&mp->park);
    if (unlikely(load_relaxed(&mp->traceidlegen) != 0))
        gort__traceMUnpark(mp);
    if (mp->nextp) {
        gort__acquirep(mp->nextp);
        mp->nextp = NULL;
    }
}

/* mstartfn for an M started spinning by wakep. */
static void mspinning(void) { getm()->spinning = true; }

static void startm1(P *pp, bool spinning);

/* Schedules some M to run pp (creating one if needed). With pp NULL, tries
 * to get an idle P; if there is none, does nothing. spinning means the
 * caller incremented nmspinning and the new M must be marked spinning
 * (or, if no M is started, the count is given back). */
void gort__startm(P *pp, bool spinning) {
    /* A thread that is not an M (readying a goroutine through a channel or
     * a mutex) may get here while the runtime shuts down: it enters like a
     * foreign spawner, so that gort_run waits for the M it may create. */
    bool foreign = getm() == NULL;
    if (foreign && !gort__foreign_enter()) {
        if (spinning)
            xadd(&gort__sched.nmspinning, -1);
        return;
    }
    startm1(pp, spinning);
    if (foreign)
        gort__foreign_exit();
}

static void startm1(P *pp, bool spinning) {
    gort__lock(&gort__sched.lock);
    if (load_relaxed(&gort__sched.shutdown)) {
        gort__unlock(&gort__sched.lock);
        if (spinning)
            xadd(&gort__sched.nmspinning, -1);
        return;
    }
    if (pp == NULL) {
        pp = gort__pidleget();
        if (pp == NULL) {
            gort__unlock(&gort__sched.lock);
            if (spinning && (int32_t)xadd(&gort__sched.nmspinning, -1) < 0)
                gort__throw("startm: negative nmspinning");
            return;
        }
    }
    M *nmp = gort__mget();
    if (nmp == NULL) {
        int64_t id = mReserveID();
        gort__unlock(&gort__sched.lock);
        gort__newm(spinning ? mspinning : NULL, pp, id);
        return;
    }
    gort__unlock(&gort__sched.lock);
    if (nmp->spinning)
        gort__throw("startm: m is spinning");
    if (nmp->nextp)
        gort__throw("startm: m has p");
    if (spinning && !gort__runqempty(pp))
        gort__throw("startm: p has runnable gs");
    nmp->spinning = spinning;
    nmp->nextp = pp;
    gort__notewakeup(&nmp->park);
}
