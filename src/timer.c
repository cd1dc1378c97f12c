/*
 * timer.c: timers, as in Go's time.go since 1.14: each P keeps its own
 * 4-ary heap of timers, ordered by when, and the P's scheduler runs the
 * ones that are due (checktimers, from schedule and findrunnable; an idle
 * M steals the running of other Ps' timers, as it steals their work). The
 * earliest when of all heaps bounds how long the M that waits in the
 * netpoller may sleep, so an idle runtime wakes exactly when a timer is
 * due, with nanosecond precision (netpoll.c).
 *
 * Go marks a timer's state with atomic status words so that a stop or a
 * reset never takes the heap's lock; gort keeps it simpler: a timer in a
 * heap records which P's heap (t->pp) and where (t->idx), and every change
 * is made under that P's timerslock. A stop removes the timer from the
 * heap at once (O(log n)) instead of marking it deleted.
 *
 * A timer's function runs on the scheduler (g0) with no lock held, and must
 * not block: it readies a goroutine (gort_sleep, deadlines), sends without
 * blocking on a channel (gort_after, channel timers) or starts a goroutine
 * (function timers).
 *
 * Lock order: a P's timerslock is taken before a channel's lock and before
 * sched.lock; timer functions run with it released.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "runtime.h"

/* ---- the 4-ary heap; pp->timerslock held -------------------------------- */

static inline void heapset(timer **h, int32_t i, timer *t) {
    h[i] = t;
    t->idx = i;
}

static void siftup(timer **h, int32_t i) {
    timer *t = h[i];
    int64_t when = t->when;
    while (i > 0) {
        int32_t p = (i - 1) / 4;
        if (when >= h[p]->when)
            break;
        heapset(h, i, h[p]);
        i = p;
    }
    heapset(h, i, t);
}

static void siftdown(timer **h, int32_t n, int32_t i) {
    timer *t = h[i];
    int64_t when = t->when;
    for (;;) {
        int32_t c = i * 4 + 1;
        if (c >= n)
            break;
        int32_t best = c;
        int32_t end = c + 4 < n ? c + 4 : n;
        for (int32_t k = c + 1; k < end; k++)
            if (h[k]->when < h[best]->when)
                best = k;
        if (h[best]->when >= when)
            break;
        heapset(h, i, h[best]);
        i = best;
    }
    heapset(h, i, t);
}

/* Publishes the heap's earliest when (0: empty) for lock-free readers. */
static void updatetimer0(P *pp) {
    store_rel(&pp->timer0when, pp->ntimers ? pp->timers[0]->when : 0);
}

static int heappush(P *pp, timer *t) {
    if (pp->ntimers == pp->timerscap) {
        int32_t cap = pp->timerscap ? pp->timerscap * 2 : 64;
        timer **h = realloc(pp->timers, (size_t)cap * sizeof *h);
        if (h == NULL)
            return -ENOMEM;
        pp->timers = h;
        pp->timerscap = cap;
    }
    pp->timers[pp->ntimers] = t;
    siftup(pp->timers, pp->ntimers++);
    store_rel(&t->pp, pp);
    /* seq_cst: an added timer is new work, and this is the submitter's
     * write of the spinning protocol; addtimer then reads lastpoll, npidle
     * and nmspinning with seq_cst loads (wakenetpoller, wakep), while an
     * M going idle decrements, fences, then reads timer0when
     * (findrunnable; docs/design.md, "Memory ordering"). */
    store_sc(&pp->timer0when, pp->timers[0]->when);
    return 0;
}

static void heapremove(P *pp, timer *t) {
    int32_t i = t->idx, last = --pp->ntimers;
    if (i != last) {
        heapset(pp->timers, i, pp->timers[last]);
        siftdown(pp->timers, last, i);
        siftup(pp->timers, pp->timers[i]->idx);
    }
    pp->timers[last] = NULL;
    store_rel(&t->pp, NULL);
    updatetimer0(pp);
}

/* ---- adding, deleting, modifying ----------------------------------------- */

/* The P whose heap a new timer joins: the caller's, or P0 for a thread
 * that is not running goroutines (P0 is never destroyed). */
static P *timerp(void) {
    M *mp = getm();
    if (mp && mp->p)
        return mp->p;
    return gort__allp[0];
}

/* Adds t, which is in no heap, to the current P's heap. */
int gort__addtimer(timer *t) {
    if (t->when <= 0)
        t->when = 1;
    P *pp = timerp();
    int64_t when = t->when;   /* once unlocked, t may fire and be gone */
    gort__lock(&pp->timerslock);
    int err = heappush(pp, t);
    gort__unlock(&pp->timerslock);
    if (err == 0)
        gort__wakenetpoller(when);
    return err;
}

/* Removes t from whichever heap holds it. Returns whether it was in one
 * (false: it had fired, is firing, or was never added). */
bool gort__deltimer(timer *t) {
    for (;;) {
        P *pp = load_acq(&t->pp);
        if (pp == NULL)
            return false;
        gort__lock(&pp->timerslock);
        if (load_relaxed(&t->pp) == pp) {
            heapremove(pp, t);
            gort__unlock(&pp->timerslock);
            return true;
        }
        gort__unlock(&pp->timerslock);   /* moved meanwhile: look again */
    }
}

/* Waits until t's function, if it is running, has returned (the caller
 * has taken t out of its heap, so it cannot start again). The function
 * runs on some M's g0 and never blocks (a send that does not wait, a
 * gort__newproc1), so it ends soon: spin, then give the CPU to the OS, as
 * Go's deltimer does for a timerRunning timer. Never gort_yield: callers
 * hold the timer's runtime lock, and a goroutine parked in the run queue
 * holding it while others sleep on it, each keeping its P, can leave no P
 * to run it. */
void gort__timer_waitfire(timer *t) {
    for (int i = 0; load_acq(&t->firing); i++) {
        if (i < 100)
            gort__procyield(10);
        else
            gort__osyield();
    }
}

/* ---- running timers ---------------------------------------------------------- */

/* Runs every timer of pp that is due at now. Called with no lock held, on
 * g0, by pp's owner or by an M that found pp's owner busy elsewhere (the
 * thief readies the goroutines on its own P). Returns the next when of
 * pp's heap (0: none). */
int64_t gort__runtimers(P *pp, int64_t now) {
    int64_t next = load_acq(&pp->timer0when);
    if (next == 0 || next > now)
        return next;
    gort__lock(&pp->timerslock);
    while (pp->ntimers > 0) {
        timer *t = pp->timers[0];
        if (t->when > now)
            break;
        void (*f)(void *, uintptr_t) = t->f;
        void *arg = t->arg;
        uintptr_t seq = t->seq;
        /* Only a timer whose owner waits for its function to finish
         * (gort_timer_stop and _free) is touched once the function has
         * run: any other may be gone by then (gort_after's channel frees
         * itself, timer and all, once its value is received). firing is
         * set before heapremove's release store of t->pp, so a stopper
         * that sees the timer out of its heap sees it firing. */
        bool waitable = t->waitable;
        if (waitable)   /* a count: a periodic timer may fire again on another M */
            xadd(&t->firing, 1);   /* before f has returned from the last time */
        if (t->period > 0) {
            /* Periodic: the next tick, skipping the ones already missed
             * (as Go's runOneTimer). */
            int64_t delta = now - t->when;
            t->when += t->period * (1 + delta / t->period);
            if (t->when <= 0)
                t->when = INT64_MAX;
            siftdown(pp->timers, pp->ntimers, 0);
            updatetimer0(pp);
        } else {
            heapremove(pp, t);
        }
        gort__unlock(&pp->timerslock);
        if (gort__traceon())
            gort__traceTimer(getm()->p, (void *)f);
        racetimerbegin(t);   /* race.h: the starter's past, for f's send or goroutine */
        f(arg, seq);
        racetimerend();
        if (waitable)
            __atomic_sub_fetch(&t->firing, 1, __ATOMIC_RELEASE);
        gort__lock(&pp->timerslock);
    }
    gort__unlock(&pp->timerslock);
    return load_acq(&pp->timer0when);
}

/* The earliest when over every P's heap, 0 if none (Go's timeSleepUntil).
 * With notrunning, the heaps of Ps that have an M are left out, running
 * or on their way to one (taken off the idle list by startm and the like,
 * not yet acquired): that M runs them at its next scheduling point, so an
 * M about to wait in the poller need not wake for them. If it did, an
 * overdue timer there would make it poll with a zero timeout again and
 * again, holding the CPU that the M the P was handed to waits for. */
int64_t gort__timesleepuntil1(bool notrunning) {
    int64_t next = 0;
    int32_t np = load_acq(&gort__gomaxprocs);
    for (int32_t i = 0; i < np; i++) {
        P *pp = gort__allp[i];
        if (notrunning && (load_relaxed(&pp->status) == Prunning || load_relaxed(&pp->handed)))
            continue;
        int64_t w = load_acq(&pp->timer0when);
        if (w != 0 && (next == 0 || w < next))
            next = w;
    }
    return next;
}

int64_t gort__timesleepuntil(void) { return gort__timesleepuntil1(false); }

/* A P is being destroyed (world stopped): its timers join pp's heap. */
void gort__movetimers(P *pp, P *from) {
    gort__lock(&from->timerslock);
    gort__lock(&pp->timerslock);
    for (int32_t i = 0; i < from->ntimers; i++)
        if (heappush(pp, from->timers[i]) < 0)
            gort__throw("movetimers: out of memory");
    from->ntimers = 0;
    updatetimer0(from);
    gort__unlock(&pp->timerslock);
    gort__unlock(&from->timerslock);
}

/* Frees a P's heap at shutdown. The timers still in it are not touched:
 * they belonged to abandoned goroutines (on freed stacks), to gort_after
 * channels (freed with their list, chan.c), or to the user, whose
 * gort_timer knows by its generation that its run is over. */
void gort__timers_free(P *pp) {
    free(pp->timers);
    pp->timers = NULL;
    pp->ntimers = pp->timerscap = 0;
}

/* ---- gort_sleep ---------------------------------------------------------------- */

static void goroutineReady(void *arg, uintptr_t seq) {
    (void)seq;
    gort__goready(arg);
}

static bool sleepcommit(G *gp, void *arg) {
    (void)gp;
    /* Parked: only now may the timer fire and ready us. */
    return gort__addtimer(arg) == 0;
}

GORT_API void gort_sleep(int64_t ns) {
    G *gp = getg();
    if (ns <= 0) {
        gort_yield();
        return;
    }
    if (gp == NULL) {   /* a thread that is not a goroutine sleeps itself */
        struct timespec ts = { ns / 1000000000, ns % 1000000000 };
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        return;
    }
    timer t;
    memset(&t, 0, sizeof t);
    int64_t now = gort__nanotime();
    t.when = ns > INT64_MAX - now ? INT64_MAX : now + ns;
    t.f = goroutineReady;
    t.arg = gp;
    gort__gopark(sleepcommit, &t, waitReasonSleep);
}

/* ---- timers on channels and functions ------------------------------------------ */

struct gort_timer {
    timer      t;
    gort_lock  lock;     /* serialises stop, reset and free of this timer */
    gort_chan *ch;       /* receives gort_now() (an int64_t) at each firing */
    void     (*fn)(void *);
    void      *fnarg;
    uint32_t   gen;      /* gort__rungen when started: a later run owns no heap of it */
    bool       autofree; /* gort_after: the channel frees itself after its receive */
};

/* Sends the time without blocking (Go's sendTime): a channel that is full
 * keeps its value and the tick is dropped. */
static void sendTime(void *arg, uintptr_t seq) {
    (void)seq;
    gort_timer *gt = arg;
    int64_t now = gort__nanotime();
    gort_chan_trysend(gt->ch, &now);
}

/* Runs the function on a new goroutine (Go's goFunc), on this P. */
static void goFunc(void *arg, uintptr_t seq) {
    (void)seq;
    gort_timer *gt = arg;
    M *mp = getm();
    if (mp->p == NULL || gort__newproc1(gt->fn, gt->fnarg, 0, mp->p, NULL) < 0)
        gort_go(gt->fn, gt->fnarg);   /* no P (or no stack): the global path */
    gort__wakep();
}

/* Runtime entry for the timer calls: goroutines are inside by definition,
 * other threads enter like foreign spawners. */
static bool tenter(bool *foreign) {
    *foreign = getg() == NULL;
    return !*foreign || gort__foreign_enter();
}

static void texit(bool foreign) {
    if (foreign)
        gort__foreign_exit();
}

static bool timer_live(gort_timer *gt) {
    return gt->gen == load_acq(&gort__rungen);
}

GORT_API int gort_timer_start(gort_timer **out, int64_t ns, int64_t period, gort_chan *ch,
                              void (*fn)(void *), void *arg) {
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (period < 0 || (ch == NULL) == (fn == NULL) || (ch && ch->elemsize != sizeof(int64_t)))
        return -EINVAL;
    bool foreign;
    if (!tenter(&foreign))
        return -EPERM;
    gort_timer *gt = calloc(1, sizeof *gt);
    if (gt == NULL) {
        texit(foreign);
        return -ENOMEM;
    }
    gt->ch = ch;
    gt->fn = fn;
    gt->fnarg = arg;
    gt->gen = load_acq(&gort__rungen);
    gt->t.f = ch ? sendTime : goFunc;
    gt->t.arg = gt;
    gt->t.waitable = true;
    int64_t now = gort__nanotime();
    gt->t.when = ns <= 0 ? now : (ns > INT64_MAX - now ? INT64_MAX : now + ns);
    gt->t.period = period;
    /* *out is set before the timer can fire: its function may run at once
     * and look at the variable (a function timer that stops itself). */
    *out = gt;
    racerelease(&gt->t);   /* race flavour: for the firing (Go's startTimer) */
    int err = gort__addtimer(&gt->t);
    texit(foreign);
    if (err < 0) {
        *out = NULL;
        free(gt);
        return err;
    }
    return 0;
}

/* Go's Stop: 1 if the call stopped the timer, 0 if it had already fired
 * (a one-shot), been stopped, or belongs to a run that has ended. A
 * function timer's function may still be running when it returns 0; once
 * it returns, no further firing begins. */
GORT_API int gort_timer_stop(gort_timer *gt) {
    if (gt == NULL)
        return -EINVAL;
    bool foreign;
    if (!tenter(&foreign))
        return 0;
    int r = 0;
    gort__lock(&gt->lock);
    if (timer_live(gt)) {
        r = gort__deltimer(&gt->t);
        if (gt->ch)   /* a sendTime in flight must finish before the caller frees ch */
            gort__timer_waitfire(&gt->t);
    }
    gort__unlock(&gt->lock);
    texit(foreign);
    return r;
}

/* Go's Reset: the timer fires after ns (then every period if > 0) whether
 * or not it was active; returns 1 if it was, 0 if it had expired or been
 * stopped. As in Go, a channel timer should be stopped and its channel
 * drained first, or a value from the old schedule may still be received. */
GORT_API int gort_timer_reset(gort_timer *gt, int64_t ns, int64_t period) {
    if (gt == NULL || period < 0)
        return -EINVAL;
    bool foreign;
    if (!tenter(&foreign))
        return -EPERM;
    gort__lock(&gt->lock);
    int r = timer_live(gt) ? gort__deltimer(&gt->t) : 0;
    gort__timer_waitfire(&gt->t);
    gt->gen = load_acq(&gort__rungen);
    int64_t now = gort__nanotime();
    gt->t.when = ns <= 0 ? now : (ns > INT64_MAX - now ? INT64_MAX : now + ns);
    gt->t.period = period;
    racerelease(&gt->t);   /* Go's resetTimer */
    int err = gort__addtimer(&gt->t);
    gort__unlock(&gt->lock);
    texit(foreign);
    return err < 0 ? err : r;
}

GORT_API void gort_timer_free(gort_timer *gt) {
    if (gt == NULL)
        return;
    bool foreign;
    if (tenter(&foreign)) {
        gort__lock(&gt->lock);
        if (timer_live(gt)) {
            gort__deltimer(&gt->t);
            gort__timer_waitfire(&gt->t);
        }
        gort__unlock(&gt->lock);
        texit(foreign);
    }
    free(gt);
}

/* gort_after: a channel of one int64_t that receives gort_now() after ns.
 * The channel frees itself, with its timer, once that value has been
 * received (see chan.c's autofree). */
static void afterTime(void *arg, uintptr_t seq) {
    (void)seq;
    gort__chan_after_fire(arg, gort__nanotime());
}

GORT_API int gort_after(gort_chan **out, int64_t ns) {
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    bool foreign;
    if (!tenter(&foreign))
        return -EPERM;
    gort_chan *c;
    int err = gort__chan_make_after(&c);
    if (err == 0) {
        timer *t = gort__chan_timer(c);
        int64_t now = gort__nanotime();
        t->when = ns <= 0 ? now : (ns > INT64_MAX - now ? INT64_MAX : now + ns);
        t->f = afterTime;
        t->arg = c;
        *out = c;
        racerelease(t);
        err = gort__addtimer(t);
        if (err < 0) {
            *out = NULL;
            gort_chan_free(c);
        }
    }
    texit(foreign);
    return err;
}
