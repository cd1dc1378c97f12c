/*
 * sysmon.c: the system monitor, an M that runs without a P (Go's sysmon,
 * made by newm(sysmon, NULL) when gort_run starts).
 *
 * Its main job is retake: a P whose goroutine has been in a system call
 * since the previous look (at least 20 us) is taken from it and handed to
 * another M (handoffp), so the other goroutines keep running; the M in
 * the call gets a P back, or parks, when the call returns (exitsyscall).
 * It also prints GORT_DEBUG's schedtrace.
 *
 * It polls at 20 us while it is finding work, backing off to 10 ms; when
 * every P is idle it sleeps on sched.sysmonnote until a goroutine enters a
 * system call (entersyscall wakes it) or the runtime shuts down, so an idle
 * runtime uses no CPU.
 */
#include "runtime.h"

/* Wakes sysmon if it sleeps; deep_only: only from its all-idle sleep.
 * sched.lock must be held. */
void gort__sysmonwake_locked(bool deep_only) {
    if (!gort__sched.sysmonsleeping || (deep_only && !load_relaxed(&gort__sched.sysmonwait)))
        return;
    gort__sched.sysmonsleeping = false;
    store_relaxed(&gort__sched.sysmonwait, 0);
    gort__notewakeup(&gort__sched.sysmonnote);
}

/* Sleeps ns (forever if < 0) unless woken; deep marks the all-idle sleep
 * that entersyscall ends. Returns true if woken. */
static bool sysmonsleep(int64_t ns, bool deep) {
    gort__lock(&gort__sched.lock);
    if (load_relaxed(&gort__sched.shutdown)) {
        gort__unlock(&gort__sched.lock);
        return true;
    }
    if (deep && !(load_relaxed(&gort__sched.gcwaiting) ||
                  load_relaxed(&gort__sched.npidle) == (uint32_t)load_relaxed(&gort__gomaxprocs))) {
        gort__unlock(&gort__sched.lock);
        return false;
    }
    gort__sched.sysmonsleeping = true;
    store_relaxed(&gort__sched.sysmonwait, deep ? 1 : 0);
    gort__unlock(&gort__sched.lock);
    bool woken = gort__notetsleep(&gort__sched.sysmonnote, ns);
    gort__lock(&gort__sched.lock);
    gort__sched.sysmonsleeping = false;
    store_relaxed(&gort__sched.sysmonwait, 0);
    gort__noteclear(&gort__sched.sysmonnote);
    gort__unlock(&gort__sched.lock);
    return woken;
}

/* Hands off pp from a goroutine in a system call (or one that is blocked).
 * Starts an M for it if there is work, or if nobody else is looking for
 * work; otherwise pp goes idle. */
void gort__handoffp(P *pp) {
    /* If it has local work, start it straight away. */
    if (!gort__runqempty(pp) || load_relaxed(&gort__sched.runqsize) != 0) {
        gort__startm(pp, false);
        return;
    }
    /* No local work: if no M spins and no P is idle, our help may be
     * needed for work that appears later. */
    if (load_relaxed(&gort__sched.nmspinning) + load_relaxed(&gort__sched.npidle) == 0 &&
        cas(&gort__sched.nmspinning, 0, 1)) {
        gort__startm(pp, true);
        return;
    }
    gort__lock(&gort__sched.lock);
    if (load_relaxed(&gort__sched.gcwaiting)) {
        store_relaxed(&pp->status, Pgcstop);
        if (--gort__sched.stopwait == 0)
            gort__notewakeup(&gort__sched.stopnote);
        gort__unlock(&gort__sched.lock);
        return;
    }
    if (gort__sched.runqsize != 0) {
        gort__unlock(&gort__sched.lock);
        gort__startm(pp, false);
        return;
    }
    gort__pidleput(pp);
    gort__unlock(&gort__sched.lock);
}

/* Go's forcePreemptNS: the time slice a G (or a runnext chain) may hold. */
#define forcePreemptNS (10 * 1000 * 1000)

/* Takes Ps from goroutines that have been in a system call since sysmon
 * last looked, and ends time slices that have run too long. Returns how
 * many Ps it took. */
static int retake(int64_t now) {
    int n = 0;
    int32_t np = load_acq(&gort__gomaxprocs);
    for (int32_t i = 0; i < np; i++) {
        P *pp = gort__allp[i];
        uint32_t s = load_acq(&pp->status);
        if (s == Prunning) {
            /* A slice that has lasted forcePreemptNS is ended at the P's
             * next scheduling point (endslice in sched.c). */
            uint32_t t = load_relaxed(&pp->schedtick);
            if (pp->sysmontick.schedtick != t) {
                pp->sysmontick.schedtick = t;
                pp->sysmontick.schedwhen = now;
            } else if (pp->sysmontick.schedwhen + forcePreemptNS <= now) {
                store_relaxed(&pp->preempt, 1);
            }
            continue;
        }
        if (s != Psyscall)
            continue;
        /* Retake only after a full sysmon tick in the same call. */
        uint32_t t = load_relaxed(&pp->syscalltick);
        if (pp->sysmontick.syscalltick != t) {
            pp->sysmontick.syscalltick = t;
            pp->sysmontick.syscallwhen = now;
            continue;
        }
        /* Nothing to run and someone to run it: leave the P with its
         * goroutine (a cheap exitsyscall), but not for ever: 10 ms. */
        if (gort__runqempty(pp) &&
            load_relaxed(&gort__sched.nmspinning) + load_relaxed(&gort__sched.npidle) > 0 &&
            pp->sysmontick.syscallwhen + 10 * 1000 * 1000 > now)
            continue;
        gort__incidlelocked(-1);
        if (cas(&pp->status, Psyscall, Pidle)) {
            n++;
            store_relaxed(&pp->syscalltick, t + 1);
            xadd(&gort__sched.nhandoff, 1);
            if (gort__traceon())
                gort__traceHandoff(pp);
            gort__handoffp(pp);
        }
        gort__incidlelocked(1);
    }
    return n;
}

void gort__sysmon(void) {
    int64_t lasttrace = gort__nanotime();
    int idle = 0;           /* rounds in a row that took nothing */
    int64_t delay = 20;     /* us */
    for (;;) {
        if (idle == 0)
            delay = 20;
        else if (idle > 50)
            delay *= 2;
        if (delay > 10 * 1000)
            delay = 10 * 1000;
        store_relaxed(&gort__sched.sysmondelay, (int32_t)delay);
        if (sysmonsleep(delay * 1000, false)) {
            if (load_acq(&gort__sched.shutdown))
                return;
            idle = 0;   /* woken for a system call with work behind it */
        }
        if (gort__debug_schedtrace <= 0 &&
            (load_relaxed(&gort__sched.gcwaiting) ||
             load_relaxed(&gort__sched.npidle) == (uint32_t)load_relaxed(&gort__gomaxprocs))) {
            /* Every P idle: sleep until a P wakes, a goroutine enters a
             * system call or the next timer is due (Go's timeSleepUntil),
             * whichever is first. */
            int64_t next = gort__timesleepuntil();
            int64_t now = gort__nanotime();
            if (next == 0 || next > now) {
                if (sysmonsleep(next == 0 ? -1 : next - now, true)) {
                    if (load_acq(&gort__sched.shutdown))
                        return;
                    idle = 0;
                    delay = 20;
                }
            }
            /* A timer is due and nobody runs it (every M asleep): start
             * one. Normally the M blocked in the poller wakes for it. */
            next = gort__timesleepuntil();
            if (next != 0 && next < gort__nanotime() - 1000 * 1000 &&
                load_relaxed(&gort__sched.npidle) > 0)
                gort__startm(NULL, false);
        }
        if (load_acq(&gort__sched.shutdown))
            return;
        gort__reapm();
        int64_t now = gort__nanotime();
        store_relaxed(&gort__sched.coarsenow, now);   /* goroutine dumps' wait times */
        /* Poll the network if nobody has for 10 ms: every P may be busy
         * with goroutines that keep it for long (Go's sysmon). */
        int64_t lastpoll = load_acq(&gort__sched.lastpoll);
        if (lastpoll != 0 && lastpoll + 10 * 1000 * 1000 < now &&
            load_relaxed(&gort__netpollWaiters) > 0 && cas(&gort__sched.lastpoll, lastpoll, now)) {
            glist list = gort__netpoll(0);
            if (list.n > 0) {
                /* Counted as running meanwhile, so that checkdead does not
                 * see every M idle with goroutines in hand. */
                gort__incidlelocked(-1);
                gort__injectglist(&list);
                gort__incidlelocked(1);
            }
        }
        if (retake(now) != 0)
            idle = 0;
        else
            idle++;
        if (gort__debug_schedtrace > 0 &&
            lasttrace + (int64_t)gort__debug_schedtrace * 1000000 <= now) {
            lasttrace = now;
            gort__schedtrace();
        }
    }
}
