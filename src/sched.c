/*
 * sched.c: the scheduler loop, as in Go's proc.go: schedule, findrunnable,
 * execute, and the ways a goroutine leaves the CPU (gopark, gosched) and
 * comes back (goready).
 *
 * The loop runs on each M's g0, the OS thread's own stack. It finds a G,
 * switches to it (execute), and regains control when the G switches back
 * through mcall; then it runs the G's request (park it, requeue it, free
 * it) and goes round again. schedule() returns only at shutdown.
 *
 * Spinning: an M with a P and no work "spins" (nmspinning counts them)
 * looking for work to steal before it parks. At most half the busy Ps'
 * worth of Ms spin at once. Whoever makes a G runnable calls wakep(), which
 * starts a new spinning M only if there is an idle P and no M spinning
 * already; a spinning M that finds work calls wakep() in turn
 * (resetspinning). An M that stops spinning decrements nmspinning and
 * then looks at every run queue once more, so a G submitted while it was
 * going idle is never stranded: either the submitter sees nmspinning == 0
 * and wakes an M, or the M sees the G. See docs/design.md, "Spinning".
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"


enum { stealTries = 4 };

/* ---- fastrand and the random steal order ----------------------------------- */

uint32_t gort__fastrand(void) {
    M *mp = getm();
    /* xorshift64*: a few cycles, good enough to pick victims. */
    uint64_t x = mp->fastrand;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    mp->fastrand = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

/* Victims are visited in the order pos, pos+inc, pos+2*inc, ... (mod n),
 * with inc coprime to n so every P is visited once (Go's randomOrder). */
static struct {
    uint32_t count;
    uint32_t coprimes[1024];
    uint32_t ncoprimes;
} stealOrder;

static uint32_t gcd(uint32_t a, uint32_t b) {
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* World stopped or runtime starting. */
void gort__stealorder_init(int32_t nprocs) {
    stealOrder.count = (uint32_t)nprocs;
    stealOrder.ncoprimes = 0;
    for (uint32_t i = 1; i <= (uint32_t)nprocs; i++)
        if (gcd(i, (uint32_t)nprocs) == 1)
            stealOrder.coprimes[stealOrder.ncoprimes++] = i;
}

/* ---- wakep and spinning -------------------------------------------------------- */

/* Tries to add one more P to execute Gs: called when a G is made runnable.
 * Does nothing if no P is idle or an M is already spinning (it will find
 * the G, and wake another if it finds more). */
void gort__wakep(void) {
    /* seq_cst loads: the submitter's side of the spinning protocol is
     * "publish the G with a seq_cst write (runqput's runnext CAS,
     * globrunqput's runqsize, addtimer's timer0when), then read npidle
     * and nmspinning" (StoreLoad); acquire loads would not order the
     * read after the write. The spinner's side: findrunnable. */
    if (__atomic_load_n(&gort__sched.npidle, __ATOMIC_SEQ_CST) == 0)
        return;
    if (__atomic_load_n(&gort__sched.nmspinning, __ATOMIC_SEQ_CST) != 0 ||
        !cas(&gort__sched.nmspinning, 0, 1))
        return;
    gort__startm(NULL, true);
}

/* A spinning M found work: it stops spinning, and if it was the last
 * spinner, starts another so that further work is not left waiting. */
static void resetspinning(M *mp) {
    if (!mp->spinning)
        gort__throw("resetspinning: not a spinning m");
    mp->spinning = false;
    int32_t n = (int32_t)xadd(&gort__sched.nmspinning, -1);
    if (n < 0)
        gort__throw("findrunnable: negative nmspinning");
    gort__wakep();
}

/* ---- findrunnable ------------------------------------------------------------- */

/* Runs pp's timers if any is due (Go's checkTimers). *now is read lazily
 * (0: not yet) and kept for the caller. Returns pp's next when (0: none)
 * and sets *ran if a timer ran. */
static int64_t checkTimers(P *pp, int64_t *now, bool *ran) {
    int64_t next = load_acq(&pp->timer0when);
    if (next == 0)
        return 0;
    if (*now == 0)
        *now = gort__nanotime();
    if (next > *now)
        return next;
    if (ran)
        *ran = true;
    return gort__runtimers(pp, *now);
}

/* Tries to steal a batch of Gs (or runnext, on the last round) from other
 * Ps, visiting them in a random order. On the last round it also runs the
 * timers that are due on Ps whose owners are busy elsewhere (Go's
 * stealWork), which may ready goroutines onto this P; *pollUntil learns
 * the earliest timer seen. */
static G *stealWork(M *mp, bool *inheritTime, int64_t *now, int64_t *pollUntil) {
    P *pp = mp->p;
    uint32_t n = stealOrder.count;
    for (int i = 0; i < stealTries; i++) {
        bool stealTimersOrRunNextG = i == stealTries - 1;
        uint32_t pos = gort__fastrand() % n;
        uint32_t inc = stealOrder.coprimes[gort__fastrand() % stealOrder.ncoprimes];
        for (uint32_t k = 0; k < n; k++, pos = (pos + inc) % n) {
            if (load_relaxed(&gort__sched.gcwaiting) || load_relaxed(&gort__sched.shutdown))
                return NULL;
            P *p2 = gort__allp[pos];
            if (p2 == pp)
                continue;
            if (stealTimersOrRunNextG) {
                bool ran = false;
                int64_t w = checkTimers(p2, now, &ran);
                if (w != 0 && (*pollUntil == 0 || w < *pollUntil))
                    *pollUntil = w;
                G *gp;
                if (ran && (gp = gort__runqget(pp, inheritTime)) != NULL)
                    return gp;
            }
            G *gp = gort__runqsteal(pp, p2, stealTimersOrRunNextG);
            if (gp) {
                xadd(&gort__sched.steals, 1);
                if (gort__traceon())
                    gort__traceSteal(pp, p2);
                *inheritTime = false;
                return gp;
            }
        }
    }
    return NULL;
}

/* ---- the poller and timers, seen from the scheduler ------------------------------- */

/* Starts up to n idle Ps for goroutines just queued globally. */
static void startIdle(int32_t n) {
    for (; n > 0 && load_relaxed(&gort__sched.npidle) > 0; n--)
        gort__startm(NULL, false);
}

/* Makes the Gs of list (parked, from netpoll) runnable: as many as there
 * are idle Ps go on the global queue with a P started for each, the rest
 * on this M's P (Go's injectglist). */
void gort__injectglist(glist *list) {
    if (list->n == 0)
        return;
    for (G *gp = list->head; gp; gp = gp->schedlink)
        gort__casgstatus(gp, Gwaiting, Grunnable);
    M *mp = getm();
    P *pp = mp ? mp->p : NULL;
    if (gort__traceon())
        for (G *gp = list->head; gp; gp = gp->schedlink)
            gort__traceGoUnpark(pp, gp);
    int32_t nglob = pp ? (int32_t)load_relaxed(&gort__sched.npidle) : list->n;
    if (nglob > list->n)
        nglob = list->n;
    G *gp = list->head;
    if (nglob > 0) {
        gort__lock(&gort__sched.lock);
        for (int32_t i = 0; i < nglob; i++) {
            G *next = gp->schedlink;
            gort__globrunqput(gp);
            gp = next;
        }
        gort__unlock(&gort__sched.lock);
        startIdle(nglob);
    }
    while (gp) {
        G *next = gp->schedlink;
        gort__runqput(pp, gp, false);
        gp = next;
    }
    list->head = list->tail = NULL;
    list->n = 0;
}

/* A timer was added that fires at when: the M blocked in the poller must
 * wake if it sleeps past when; if no M is there, one is started so that
 * the timer is looked after (Go's wakeNetPoller). */
void gort__wakenetpoller(int64_t when) {
    /* seq_cst: read after addtimer's seq_cst timer0when (StoreLoad), as
     * wakep's loads are. */
    if (load_sc(&gort__sched.lastpoll) == 0) {
        int64_t pu = load_acq(&gort__sched.pollUntil);
        if (pu == 0 || pu > when)
            gort__netpollBreak();
    } else {
        gort__wakep();
    }
}

/* Takes the first G of a netpoll list to run here; the rest are injected. */
static G *netpollfirst(glist *list) {
    G *gp = gort__gqueue_pop(list);
    if (gort__traceon())
        gort__traceGoUnpark(getm()->p, gp);
    gort__injectglist(list);
    gort__casgstatus(gp, Gwaiting, Grunnable);
    return gp;
}

/* After giving up its P, a formerly spinning M checks every P's queue and
 * the global queue once more. Returns an idle P to run with, or NULL. */
static P *checkRunqsNoP(void) {
    int32_t np = load_acq(&gort__gomaxprocs);
    bool work = load_relaxed(&gort__sched.runqsize) != 0;
    for (int32_t i = 0; !work && i < np; i++)
        work = !gort__runqempty(gort__allp[i]);
    if (!work)
        return NULL;
    gort__lock(&gort__sched.lock);
    P *pp = gort__pidleget();
    gort__unlock(&gort__sched.lock);
    return pp;
}

/* Finds a runnable goroutine to execute: from the local run queue, the
 * global queue, or another P. If there is none, gives up the P and parks
 * the M until there is. Returns NULL only at shutdown. */
static G *findrunnable(M *mp, bool *inheritTime) {
    G *gp;
    /* The scheduler looks further than the local queue: a slice that ended
     * is stamped now, not when the next one starts (exectrace.c). */
    if (gort__traceon() && mp->p)
        gort__traceStamp(mp->p);
top:
    if (load_acq(&gort__sched.shutdown))
        return NULL;
    if (load_acq(&gort__sched.gcwaiting)) {
        gort__gcstopm();
        goto top;
    }
    P *pp = mp->p;
    if (pp == NULL) {
        /* Woken at shutdown, or by a start-the-world that found no P. */
        gort__stopm();
        goto top;
    }

    int64_t now = 0;
    int64_t pollUntil = checkTimers(pp, &now, NULL);

    /* local runq */
    if ((gp = gort__runqget(pp, inheritTime)) != NULL)
        return gp;

    /* global runq */
    if (load_relaxed(&gort__sched.runqsize) != 0) {
        gort__lock(&gort__sched.lock);
        gp = gort__globrunqget(pp, 0);
        gort__unlock(&gort__sched.lock);
        if (gp) {
            gort__runqputlist(pp, gp->schedlink);
            gp->schedlink = NULL;
            *inheritTime = false;
            return gp;
        }
    }

    /* The network, without blocking, if anyone waits on it and no M is
     * blocked in it already (that one will deliver). */
    if (load_relaxed(&gort__netpollWaiters) > 0 && load_relaxed(&gort__sched.lastpoll) != 0) {
        glist list = gort__netpoll(0);
        if (list.n > 0) {
            *inheritTime = false;
            return netpollfirst(&list);
        }
    }

    /* Steal, but limit the number of spinning Ms to half the busy Ps: a
     * burst of spinners burns CPU when GOMAXPROCS >> 1 and parallelism is
     * low. */
    int32_t procs = load_relaxed(&gort__gomaxprocs);
    if (mp->spinning ||
        2 * (int32_t)load_relaxed(&gort__sched.nmspinning) <
            procs - (int32_t)load_relaxed(&gort__sched.npidle)) {
        if (!mp->spinning) {
            mp->spinning = true;
            xadd(&gort__sched.nmspinning, 1);
        }
        if ((gp = stealWork(mp, inheritTime, &now, &pollUntil)) != NULL)
            return gp;
    }

    /* Nothing to do: give up the P, unless the global queue got work. */
    gort__lock(&gort__sched.lock);
    if (load_relaxed(&gort__sched.gcwaiting) || load_relaxed(&gort__sched.shutdown)) {
        gort__unlock(&gort__sched.lock);
        goto top;
    }
    if (gort__sched.runqsize != 0) {
        gp = gort__globrunqget(pp, 0);
        gort__unlock(&gort__sched.lock);
        gort__runqputlist(pp, gp->schedlink);
        gp->schedlink = NULL;
        *inheritTime = false;
        return gp;
    }
    if (gort__releasep() != pp)
        gort__throw("findrunnable: wrong p");
    gort__pidleput(pp);
    gort__unlock(&gort__sched.lock);

    /* Delicate dance: a G may have been submitted between the checks above
     * and the P going idle, by a submitter that saw this M spinning and so
     * did not wake anyone. Drop spinning first (pidleput's npidle and this
     * nmspinning decrement are seq_cst RMWs), then fence_sc, then look
     * again. The submitter writes its G with a seq_cst write, then reads
     * npidle and nmspinning with seq_cst loads (wakep): so either it sees
     * the decrement or the rescan sees the G. The fence (not the xadd) is
     * what orders the rescan's plain acquire loads after the decrement.
     * Every M going idle passes it, spinning or not: the timer heaps read
     * below (timesleepuntil1) pair the same way with addtimer's seq_cst
     * timer0when and with netpollBreak's wakesig (see netpoll.c). */
    bool wasspinning = mp->spinning;
    if (wasspinning) {
        mp->spinning = false;
        if ((int32_t)xadd(&gort__sched.nmspinning, -1) < 0)
            gort__throw("findrunnable: negative nmspinning");
    }
    fence_sc();
    if (wasspinning) {
        if ((pp = checkRunqsNoP()) != NULL) {
            gort__acquirep(pp);
            mp->spinning = true;
            xadd(&gort__sched.nmspinning, 1);
            goto top;
        }
    }

    /* The timers of every P that nobody runs bound the sleep (Go's
     * checkTimersNoP; see timesleepuntil1 for why running Ps are left
     * out). */
    int64_t tw = gort__timesleepuntil1(true);
    if (tw != 0 && (pollUntil == 0 || tw < pollUntil))
        pollUntil = tw;

    /* Block in the poller until the next timer, if anyone waits on the
     * network or on a timer and no other M is blocked there already. */
    if ((load_acq(&gort__netpollWaiters) > 0 || pollUntil != 0) &&
        xchg(&gort__sched.lastpoll, 0) != 0) {
        store_rel(&gort__sched.pollUntil, pollUntil);
        int64_t delay = -1;
        if (pollUntil != 0) {
            now = gort__nanotime();
            delay = pollUntil - now;
            if (delay < 0)
                delay = 0;
        }
        glist list = gort__netpoll(delay);
        store_rel(&gort__sched.pollUntil, 0);
        __atomic_store_n(&gort__sched.lastpoll, gort__nanotime(), __ATOMIC_SEQ_CST);
        gort__lock(&gort__sched.lock);
        pp = load_relaxed(&gort__sched.shutdown) ? NULL : gort__pidleget();
        gort__unlock(&gort__sched.lock);
        if (pp == NULL) {
            gort__injectglist(&list);
        } else {
            gort__acquirep(pp);
            if (list.n > 0) {
                *inheritTime = false;
                return netpollfirst(&list);
            }
            goto top;   /* a timer is due, or a new one was added */
        }
    } else if (pollUntil != 0) {
        /* Another M is in the poller: wake it if it sleeps too long. */
        int64_t pu = load_acq(&gort__sched.pollUntil);
        if (pu == 0 || pu > pollUntil)
            gort__netpollBreak();
    }
    gort__stopm();
    goto top;
}

/* ---- schedule and execute ------------------------------------------------------ */

/* Runs gp on the current M: it takes the M's time slice (unless it
 * inherits the one in progress, as runnext does) and the switch happens.
 * Returns on g0 when gp gives the M back through mcall. */
static void execute(M *mp, G *gp, bool inheritTime) {
    mp->curg = gp;
    gp->m = mp;
    gort__casgstatus(gp, Grunnable, Grunning);
    P *pp = mp->p;
    if (!inheritTime)
        store_relaxed(&pp->schedtick, pp->schedtick + 1);
    store_relaxed(&pp->nswitch, pp->nswitch + 1);
    if (gort__traceon())
        gort__traceGoStart(pp, gp);
    gort__gogo(mp, gp);
}

/* The time slice of pp has lasted longer than forcePreemptNS (sysmon saw
 * schedtick stand still). Go would preempt the running G; gort cannot, but
 * a slice only outlives its G through runnext: a chain of Gs that ready
 * each other (a ping-pong pair) inherits it for ever, and nothing else on
 * the P, not even the global queue, would run again. So at this scheduling
 * point the chain loses its place: runnext goes to the tail of the local
 * queue and the next G starts a new slice, the 61st-tick look at the global
 * queue included. The pair still runs, after what was queued before it. */
static void endslice(P *pp) {
    store_relaxed(&pp->preempt, 0);
    G *next = load_relaxed(&pp->runnext);
    if (next && cas(&pp->runnext, next, NULL))
        gort__runqput(pp, next, false);
    store_relaxed(&pp->schedtick, pp->schedtick + 1);
    if (pp->schedtick % 61 != 0)
        store_relaxed(&pp->schedtick, pp->schedtick + 61 - pp->schedtick % 61);
}

/* One round of the scheduler: find a runnable G and execute it. Every
 * 61st tick the global queue is checked first, so a P busy with its own
 * queue cannot starve it. */
static G *schedule1(M *mp, bool *inheritTime) {
    G *gp = NULL;
    *inheritTime = false;
    if (load_acq(&gort__sched.gcwaiting) || load_acq(&gort__sched.shutdown) || mp->p == NULL)
        return findrunnable(mp, inheritTime);
    P *pp = mp->p;
    if (unlikely(load_relaxed(&pp->timer0when) != 0)) {
        int64_t now = 0;
        checkTimers(pp, &now, NULL);
    }
    if (unlikely(load_relaxed(&pp->preempt)))
        endslice(pp);
    if (pp->schedtick % 61 == 0 && load_relaxed(&gort__sched.runqsize) > 0) {
        gort__lock(&gort__sched.lock);
        gp = gort__globrunqget(pp, 1);
        gort__unlock(&gort__sched.lock);
    }
    if (gp == NULL)
        gp = gort__runqget(pp, inheritTime);
    if (gp == NULL)
        gp = findrunnable(mp, inheritTime);
    return gp;
}

/* The scheduler loop of one M, on its g0. Returns at shutdown. */
void gort__schedule(void) {
    M *mp = getm();
    if (mp->locks)
        gort__throw("schedule: holding locks");
    G *gp = NULL;
    bool inheritTime = false;
    for (;;) {
        if (unlikely(mp->lockedexit)) {
            /* Its locked goroutine exited: the thread goes with it. The
             * flag stays set meanwhile, so that a thread this hand-off
             * starts is made by the template thread (newm), not here. */
            if (mp->p)
                gort__handoffp(gort__releasep());
            mp->lockedexit = false;
            return;
        }
        if (gp == NULL && unlikely(mp->lockedg != NULL)) {
            /* Locked to a goroutine that is not running: wait for it
             * (lockosthread.c). */
            if (!gort__stoplockedm(mp))
                return;   /* shutdown */
            gp = mp->lockedg;
            inheritTime = false;
        }
        if (gp == NULL) {
            gp = schedule1(mp, &inheritTime);
            if (gp == NULL)
                return;
            if (unlikely(gp->lockedm != NULL) && gp->lockedm != mp) {
                /* Hand our P to the M it is locked to, and go idle. */
                gort__startlockedm(mp, gp);
                gp = NULL;
                continue;
            }
            /* This M is going to run a G: if it was spinning, it no longer
             * is, and another spinner may be needed for further work. */
            if (mp->spinning)
                resetspinning(mp);
        }
        execute(mp, gp, inheritTime);
        /* Back on g0: the G that just ran asked for something. */
        gp = mp->mcallfn(mp, mp->mcallg);
        mp->mcallfn = NULL;
        mp->mcallg = NULL;
        inheritTime = true;
    }
}

/* ---- gopark / goready / gosched ----------------------------------------------- */

/* On g0: the G is parked. If unlockf refuses (the condition it waited for
 * is already met), the G runs again at once. */
static G *park_m(M *mp, G *gp) {
    if (gort__traceon())
        gort__traceGoPark(mp->p, gp->waitreason);
    gort__casgstatus(gp, Grunning, Gwaiting);
    mp->curg = NULL;
    gp->m = NULL;
    bool (*fn)(G *, void *) = mp->waitunlockf;
    if (fn) {
        bool ok = fn(gp, mp->waitlock);
        mp->waitunlockf = NULL;
        mp->waitlock = NULL;
        if (!ok) {
            gort__casgstatus(gp, Gwaiting, Grunnable);
            return gp;
        }
    }
    return NULL;
}

/* Puts the current goroutine into a waiting state and calls unlockf(gp,
 * lock) on g0, after the G's context is saved. If unlockf returns false,
 * the goroutine is resumed. unlockf must not access this G's stack, which
 * another M may already be running on once unlockf has released the lock.
 * The G comes back when someone calls goready(gp). */
void gort__gopark(bool (*unlockf)(G *, void *), void *lock, waitReason reason) {
    M *mp = getm();
    G *gp = mp->curg;
    if (unlikely(readgstatus(gp) != Grunning)) {
        if (readgstatus(gp) == Gsyscall) {
            char what[64];
            snprintf(what, sizeof what, "blocking %s", gort__waitreason_string(reason));
            gort__fatal_insyscall(gp, what);
        }
        gort__throw("gopark: bad g status");
    }
    if (mp->locks)
        gort__throw("gopark: holding locks");
    mp->waitlock = lock;
    mp->waitunlockf = unlockf;
    gp->waitreason = (uint8_t)reason;
    /* sysmon's clock, not a clock read: parking stays as cheap as it was
     * (a rdtsc here cost a tenth of a channel round trip). It lags by up
     * to sysmon's delay, which dumps round away. */
    gp->waitsince = load_relaxed(&gort__sched.coarsenow);
    store_relaxed(&mp->p->nparks[reason], mp->p->nparks[reason] + 1);
    gort__mcall(park_m);
}

static bool parkunlock_c(G *gp, void *lock) {
    (void)gp;
    gort__unlock(lock);
    return true;
}

/* Puts the current goroutine into a waiting state and unlocks the lock. */
void gort__goparkunlock(gort_lock *lock, waitReason reason) {
    gort__gopark(parkunlock_c, lock, reason);
}

/* Makes gp runnable: it goes in the readying P's runnext, so it runs as
 * soon as the current G blocks (producer-consumer pairs stay on one P),
 * and an idle P is woken to pick up any other work. A timer's function
 * readies onto the P whose scheduler runs it. From a thread that is not an
 * M, or an M without a P, it goes on the global queue. */
void gort__goready(G *gp) {
    M *mp = getm();
    if (gort__traceon())
        gort__traceGoUnpark(mp ? mp->p : NULL, gp);
    gort__casgstatus(gp, Gwaiting, Grunnable);
    if (mp && mp->p) {
        gort__runqput(mp->p, gp, true);
    } else {
        gort__lock(&gort__sched.lock);
        gort__globrunqput(gp);
        gort__unlock(&gort__sched.lock);
    }
    gort__wakep();
}

/* On g0: the yielding G goes to the tail of the local queue (Go's
 * goyield), or, if goroutines wait on the global queue, behind them
 * (Go's Gosched). */
static G *gosched_m(M *mp, G *gp) {
    if (gort__traceon() && mp->p)
        gort__traceGoPark(mp->p, traceEndYield);
    gort__casgstatus(gp, Grunning, Grunnable);
    mp->curg = NULL;
    gp->m = NULL;
    /* Go's Gosched queues the yielder globally, behind whatever waits
     * there. gort does that only when something does wait there (one
     * relaxed load): goroutines queued globally (made runnable by other
     * threads, or coming back from system calls) then run before the
     * yielder again, instead of once every 61 ticks. Otherwise the local
     * tail does the same for no lock. */
    if (mp->p == NULL || load_relaxed(&gort__sched.runqsize) != 0) {
        gort__lock(&gort__sched.lock);
        gort__globrunqput(gp);
        gort__unlock(&gort__sched.lock);
        return NULL;
    }
    /* A slice that ends here ends before the yielder queues itself: what
     * it readied (runnext) still runs before it, as a yield promises. */
    if (unlikely(load_relaxed(&mp->p->preempt)))
        endslice(mp->p);
    gort__runqput(mp->p, gp, false);
    return NULL;
}

GORT_API void gort_yield(void) {
    M *mp = getm();
    if (mp == NULL || mp->curg == NULL)
        return;
    if (unlikely(readgstatus(mp->curg) == Gsyscall))
        gort__fatal_insyscall(mp->curg, "gort_yield");
    gort__mcall(gosched_m);
}

/* ---- checkdead ------------------------------------------------------------------ */

/* Threads in this process, from /proc/self/stat (field 20), or -1. */
static int proc_threads(void) {
    char buf[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *s = strrchr(buf, ')');   /* the command name may hold anything */
    for (int field = 2; s && field < 20; field++)
        s = strchr(s + 1, ' ');
    int nt = s ? atoi(s + 1) : -1;
    /* The reader is a thread, so 0 is no answer: qemu-user makes up this
     * file and leaves most fields 0, which would have every program with
     * foreign threads declared deadlocked. Unknown: no verdict. */
    return nt > 0 ? nt : -1;
}

/* Called with sched.lock held when an M goes idle: if every M is idle and
 * nothing can ever wake a goroutine, the program is deadlocked. A thread
 * that is not an M could still create a goroutine or release a waiter, so
 * the verdict is only given when the process has no threads but the Ms
 * (Go, for the same reason, never gives it in its c-archive builds). */
void gort__checkdead(void) {
    if (load_relaxed(&gort__sched.shutdown))
        return;
    int32_t run = gort__sched.mcount - gort__sched.nmidle - gort__sched.nmidlelocked -
                  gort__sched.nmsys;
    if (run > 0)
        return;
    if (run < 0)
        gort__throw("checkdead: inconsistent counts");
    int nthreads = proc_threads();
    /* The trace's writer is a thread of the runtime's that makes and
     * readies no goroutine. */
    if (nthreads > 0)
        nthreads -= (int)load_acq(&gort__tracewriters);
    if (nthreads < 0 || nthreads > gort__sched.mcount)
        return;
    /* A timer will wake someone; a goroutine waits on a descriptor. */
    if (gort__timesleepuntil() != 0 || load_acq(&gort__netpollWaiters) > 0)
        return;
    if (gort__sched.runqsize != 0)
        gort__throw("checkdead: runnable g on the global queue");
    for (int32_t i = 0; i < gort__gomaxprocs; i++)
        if (!gort__runqempty(gort__allp[i]))
            gort__throw("checkdead: runnable g on a local queue");
    G *maing = gort__sched.maing;
    const char *why = gort__waitreason_string((waitReason)maing->waitreason);
    gort__fatal("all goroutines are asleep - deadlock! (%lld goroutines; main goroutine: %s)",
                (long long)gort__gcount(), why);
}

/* sysmon brackets a hand-off with incidlelocked(-1) ... (+1): while it
 * holds a P it took from a system call, that P is nowhere (not running,
 * not idle), and the M that left the call may park; counting sysmon as
 * running then keeps checkdead from calling that a deadlock. */
void gort__incidlelocked(int32_t v) {
    gort__lock(&gort__sched.lock);
    gort__sched.nmidlelocked += v;
    if (v > 0)
        gort__checkdead();
    gort__unlock(&gort__sched.lock);
}

GORT_API const char *gort_wait_reason_name(int i) {
    return i >= 0 && i < waitReasonCount ? gort__waitreason_string(i) : NULL;
}

const char *gort__waitreason_string(int r) {
    static const char *const s[waitReasonCount] = {
#define WAITREASON_STRING(name, str) [waitReason##name] = str,
        WAITREASONS(WAITREASON_STRING)
#undef WAITREASON_STRING
    };
    return r >= 0 && r < waitReasonCount ? s[r] : "waiting";
}
