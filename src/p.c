/*
 * p.c: Ps, the processors: GOMAXPROCS of them, each the right to run
 * goroutines, with its own run queue and caches. An M must hold a P to run
 * a G (acquirep/releasep); idle Ps wait on sched.pidle.
 *
 * gort_maxprocs changes their number the way Go's GOMAXPROCS does: stop the
 * world, procresize, start the world. gort has no preemption, so stopping
 * the world waits for each running goroutine to reach a scheduling point
 * (a channel operation, a lock, a yield, an exit).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

#define MAXPROCS_LIMIT 1024

/* allp never moves: Ps are allocated once and kept (destroyed Ps are Pdead)
 * until gort_run returns, so anyone may index it up to gort__nallp. */
static P *allp_storage[MAXPROCS_LIMIT];
P      **gort__allp = allp_storage;
int32_t  gort__nallp;
int32_t  gort__gomaxprocs;

static uint32_t worldsema = 1;   /* serialises stop-the-world callers */

/* ---- acquirep / releasep -------------------------------------------------- */

/* Associates pp with the current M. */
void gort__acquirep(P *pp) {
    M *mp = getm();
    if (mp->p)
        gort__throw("wirep: already holding a p");
    if (pp->m != NULL || load_relaxed(&pp->status) != Pidle)
        gort__throw("wirep: invalid p state");
    mp->p = pp;
    pp->m = mp;
    store_relaxed(&pp->status, Prunning);
    store_relaxed(&pp->handed, 0);
}

/* Disassociates the current M from its P and returns the P. */
P *gort__releasep(void) {
    M *mp = getm();
    P *pp = mp->p;
    if (pp == NULL || pp->m != mp || load_relaxed(&pp->status) != Prunning)
        gort__throw(pp ? "releasep: invalid p state" : "releasep: no p");
    if (gort__traceon())
        gort__traceStamp(pp);
    pp->m = NULL;
    mp->p = NULL;
    store_relaxed(&pp->status, Pidle);
    return pp;
}

/* ---- the idle list; sched.lock must be held -------------------------------- */

void gort__pidleput(P *pp) {
    if (!gort__runqempty(pp))
        gort__throw("pidleput: P has non-empty run queue");
    pp->link = gort__sched.pidle;
    gort__sched.pidle = pp;
    xadd(&gort__sched.npidle, 1);
}

/* A P leaving the idle list is about to run goroutines: if sysmon sleeps
 * because every P was idle, it is woken to watch this one's time slices
 * and system calls (Go wakes it on exitsyscall and starttheworld; here
 * every way out of idleness passes through this function). */
P *gort__pidleget(void) {
    P *pp = gort__sched.pidle;
    if (pp) {
        gort__sched.pidle = pp->link;
        xadd(&gort__sched.npidle, -1);
        store_relaxed(&pp->handed, 1);   /* on its way to an M (timesleepuntil1) */
        if (load_relaxed(&gort__sched.sysmonwait)) {
            /* sysmon's clock stopped while it slept; goroutines about to
             * park read it (waitsince), so bring it up to date now rather
             * than when sysmon gets to run. */
            store_relaxed(&gort__sched.coarsenow, gort__nanotime());
            gort__sysmonwake_locked(true);
        }
    }
    return pp;
}

/* ---- procresize ------------------------------------------------------------ */

static void pdestroy(P *pp) {
    /* Move all runnable goroutines to the global queue, keeping order.
     * Atomics, though the world is stopped: an M that gave up its P before
     * the stop may still be rescanning every queue (checkRunqsNoP). */
    uint32_t head = load_relaxed(&pp->runqhead);
    for (uint32_t t = load_relaxed(&pp->runqtail); t != head;) {
        t--;
        store_relaxed(&pp->runqtail, t);
        gort__globrunqputhead(load_relaxed(&pp->runq[t % RUNQ_SIZE]));
    }
    G *next = load_relaxed(&pp->runnext);
    if (next) {
        gort__globrunqputhead(next);
        store_relaxed(&pp->runnext, NULL);
    }
    gort__gfpurge(pp);
    gort__stackcache_flush(pp);
    gort__movetimers(getm()->p, pp);
    store_relaxed(&pp->status, Pdead);
}

/* Changes the number of Ps. sched.lock must be held and the world stopped
 * (or the runtime starting). The current M keeps its P if it survives,
 * else takes allp[0]. Returns the Ps with local work (each with an idle M
 * in p->m, or NULL for one to be created), linked through p->link, or sets
 * *err. */
P *gort__procresize(int32_t nprocs, int *err) {
    int32_t old = gort__gomaxprocs;
    *err = 0;
    if (nprocs <= 0 || nprocs > MAXPROCS_LIMIT)
        gort__throw("procresize: invalid arg");

    for (int32_t i = gort__nallp; i < nprocs; i++) {
        P *pp = aligned_alloc(64, sizeof(P));
        if (pp == NULL) {
            *err = -ENOMEM;
            nprocs = i;
            break;
        }
        memset(pp, 0, sizeof *pp);
        pp->id = i;
        pp->status = Pgcstop;
        allp_storage[i] = pp;
        store_rel(&gort__nallp, i + 1);  /* release: readers index allp up to nallp */
    }
    if (nprocs == 0)
        return NULL;
    for (int32_t i = old; i < nprocs; i++)
        store_relaxed(&gort__allp[i]->status, Pgcstop);

    M *mp = getm();
    if (mp->p && mp->p->id < nprocs) {
        store_relaxed(&mp->p->status, Prunning);
    } else {
        if (mp->p)
            mp->p->m = NULL;
        mp->p = NULL;
        P *pp = gort__allp[0];
        pp->m = NULL;
        store_relaxed(&pp->status, Pidle);
        gort__acquirep(pp);
    }

    for (int32_t i = nprocs; i < old; i++)
        pdestroy(gort__allp[i]);

    P *runnable = NULL;
    for (int32_t i = nprocs - 1; i >= 0; i--) {
        P *pp = gort__allp[i];
        if (mp->p == pp)
            continue;
        store_relaxed(&pp->status, Pidle);
        if (gort__runqempty(pp)) {
            gort__pidleput(pp);
        } else {
            pp->m = gort__mget();
            pp->link = runnable;
            runnable = pp;
        }
    }
    gort__stealorder_init(nprocs);
    store_rel(&gort__gomaxprocs, nprocs);
    if (gort__stackpool_fit() < 0 && *err == 0)
        *err = -ENOMEM;
    return runnable;
}

/* ---- stop the world ----------------------------------------------------------- */

/* Shutdown began while the caller wanted to stop the world: Ms leave at
 * their next scheduling point instead of stopping, so the world would
 * never stop, and shutdown (which waits for every M to leave) would wait
 * for this one. The caller is abandoned like every other live goroutine:
 * it parks for good and its M goes back to the scheduler, which exits. */
__attribute__((noreturn)) static void stw_abandon(void) {
    gort__gopark(NULL, NULL, waitReasonZero);
    gort__throw("stoptheworld: abandoned goroutine resumed");
}

/* Called by shutdown (sched.lock held): a stop-the-world in progress stops
 * waiting (see stw_abandon). stopwait is zeroed so that no later stop can
 * wake the note a second time. */
void gort__shutdown_stw(void) {
    if (load_relaxed(&gort__sched.gcwaiting) && gort__sched.stopwait > 0) {
        gort__sched.stopwait = 0;
        gort__notewakeup(&gort__sched.stopnote);
    }
}

/* Stops every P but the caller's: idle ones and ones in system calls are
 * taken at once, running ones stop at their next scheduling point
 * (gcstopm). Called on a goroutine. */
void gort__stoptheworld(void) {
    gort__semacquire(&worldsema, false, waitReasonZero);
    M *mp = getm();
    gort__lock(&gort__sched.lock);
    if (load_relaxed(&gort__sched.shutdown)) {
        gort__unlock(&gort__sched.lock);
        stw_abandon();
    }
    mp->locks++;
    gort__sched.stopwait = gort__gomaxprocs;
    /* seq_cst: a Dekker pair with entersyscall (its seq_cst Psyscall
     * store, then its seq_cst load of gcwaiting); our read is the CAS of
     * each P's status below. */
    store_sc(&gort__sched.gcwaiting, 1);
    store_relaxed(&mp->p->status, Pgcstop);
    gort__sched.stopwait--;
    for (int32_t i = 0; i < gort__gomaxprocs; i++) {
        P *pp = gort__allp[i];
        if (cas(&pp->status, Psyscall, Pgcstop)) {
            store_relaxed(&pp->syscalltick, pp->syscalltick + 1);
            gort__sched.stopwait--;
        }
    }
    P *pp;
    while ((pp = gort__pidleget()) != NULL) {
        store_relaxed(&pp->status, Pgcstop);
        gort__sched.stopwait--;
    }
    bool wait = gort__sched.stopwait > 0;
    gort__unlock(&gort__sched.lock);
    if (wait) {
        gort__notesleep(&gort__sched.stopnote);
        gort__noteclear(&gort__sched.stopnote);
    }
    if (load_acq(&gort__sched.shutdown)) {
        /* Woken by shutdown_stw: the Ps still running will never stop. */
        mp->locks--;
        stw_abandon();
    }
    if (gort__sched.stopwait != 0)
        gort__throw("stoptheworld: not stopped");
    for (int32_t i = 0; i < gort__gomaxprocs; i++)
        if (load_relaxed(&gort__allp[i]->status) != Pgcstop)
            gort__throw("stoptheworld: not stopped");
}

/* Restarts the world with newprocs Ps (0: unchanged). */
void gort__starttheworld(int32_t newprocs) {
    M *mp = getm();
    int err;
    gort__lock(&gort__sched.lock);
    P *runnable = gort__procresize(newprocs > 0 ? newprocs : gort__gomaxprocs, &err);
    store_rel(&gort__sched.gcwaiting, 0);
    gort__unlock(&gort__sched.lock);
    if (err < 0)
        gort__fatal("gort_maxprocs: out of memory for %d Ps", newprocs);

    while (runnable) {
        P *pp = runnable;
        runnable = pp->link;
        M *nmp = pp->m;
        pp->m = NULL;
        if (nmp) {
            if (nmp->nextp)
                gort__throw("starttheworld: inconsistent m->nextp");
            nmp->nextp = pp;
            gort__notewakeup(&nmp->park);
        } else {
            gort__newm(NULL, pp, -1);
        }
    }
    gort__wakep();
    mp->locks--;
    gort__semrelease(&worldsema, false);
}

/* Stops the current M for stop-the-world: gives up its P and sleeps. */
void gort__gcstopm(void) {
    M *mp = getm();
    if (!load_acq(&gort__sched.gcwaiting))
        gort__throw("gcstopm: not waiting for gc");
    if (mp->spinning) {
        mp->spinning = false;
        if ((int32_t)xadd(&gort__sched.nmspinning, -1) < 0)
            gort__throw("gcstopm: negative nmspinning");
    }
    P *pp = gort__releasep();
    gort__lock(&gort__sched.lock);
    store_relaxed(&pp->status, Pgcstop);
    if (--gort__sched.stopwait == 0)
        gort__notewakeup(&gort__sched.stopnote);
    gort__unlock(&gort__sched.lock);
    gort__stopm();
}

/* Frees every P at shutdown. */
void gort__pfree_all(void) {
    for (int32_t i = 0; i < gort__nallp; i++) {
        gort__timers_free(allp_storage[i]);
        free(allp_storage[i]);
        allp_storage[i] = NULL;
    }
    store_rel(&gort__nallp, 0);
    gort__gomaxprocs = 0;
    worldsema = 1;
}

/* ---- gort_maxprocs ------------------------------------------------------------ */

GORT_API int gort_maxprocs(int n) {
    if (getg() == NULL) {
        /* Reading is fine from any thread; stopping the world needs a
         * goroutine (it parks while the Ps stop). */
        if (!gort__foreign_enter())
            return n > 0 ? -EPERM : 0;
        int prev = load_acq(&gort__gomaxprocs);
        gort__foreign_exit();
        return n > 0 && n != prev ? -EPERM : prev;
    }
    int prev = load_acq(&gort__gomaxprocs);
    if (n <= 0 || n == prev)
        return prev;
    if (n > MAXPROCS_LIMIT)
        n = MAXPROCS_LIMIT;
    gort__stoptheworld();
    prev = gort__gomaxprocs;
    gort__starttheworld(n);
    return prev;
}
