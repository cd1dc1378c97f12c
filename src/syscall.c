/*
 * syscall.c: entersyscall / exitsyscall, around a blocking call.
 *
 * On entry the G becomes Gsyscall and its P Psyscall: the P stays
 * associated (m->oldp) so that the common short call gets it straight back
 * with one CAS, but it is no longer the M's, so stop-the-world and sysmon
 * (retake, then handoffp) may take it meanwhile. On exit the G gets
 * its old P back, or any idle P, or else goes on the global queue while
 * its M parks (exitsyscall0).
 */
#include "runtime.h"

static void entersyscall(void) {
    M *mp = getm();
    G *gp = mp ? mp->curg : NULL;
    if (gp == NULL || mp->p == NULL)
        return;
    P *pp = mp->p;
    if (gort__traceon())
        gort__traceGoSysCall(pp, gp);
    gort__casgstatus(gp, Grunning, Gsyscall);
    xadd(&gort__sched.in_syscall, 1);
    store_relaxed(&pp->syscalltick, pp->syscalltick + 1);
    store_relaxed(&pp->nsyscall, pp->nsyscall + 1);
    pp->m = NULL;
    mp->oldp = pp;
    mp->p = NULL;
    /* seq_cst, not just release (a retaker's CAS reading it also needs
     * release): a Dekker pair with stoptheworld, which stores gcwaiting
     * (seq_cst), then CASes each Psyscall P; we store Psyscall, then read
     * gcwaiting (seq_cst, below). Either it takes this P or we see
     * gcwaiting and hand it over. With release and acquire both could
     * miss, and the world would wait for the end of this call, which may
     * be waiting for a goroutine that is stopped. An XCHG on x86-64, as
     * Go's atomic.Store of the status. */
    store_sc(&pp->status, Psyscall);
    /* Acquire is enough here, no StoreLoad edge: sysmon sleeps deep only
     * with every P idle or the world stopping (checked under sched.lock),
     * and this P was running: it has left the idle list since, through
     * pidleget, which wakes sysmon under that lock, or the world stopping
     * takes it (gcwaiting, below). */
    if (load_acq(&gort__sched.sysmonwait)) {
        /* sysmon sleeps because every P was idle: it must watch this call. */
        gort__lock(&gort__sched.lock);
        gort__sysmonwake_locked(true);
        gort__unlock(&gort__sched.lock);
    } else if (unlikely(load_relaxed(&gort__sched.sysmondelay) > 1000) &&
               (!gort__runqempty(pp) || load_relaxed(&gort__sched.runqsize) != 0)) {
        /* Goroutines wait (on this P or globally) while this call holds
         * the P, and sysmon, backed off to a slow poll, would take two of
         * its ticks (up to 20 ms) to hand it over. Go leans on preemption
         * here; gort wakes sysmon back to its fast poll, so that a blocking
         * call holds up waiting goroutines for tens of microseconds. Calls
         * with nothing waiting pay nothing. */
        gort__lock(&gort__sched.lock);
        gort__sysmonwake_locked(false);
        gort__unlock(&gort__sched.lock);
    }
    if (load_sc(&gort__sched.gcwaiting)) {   /* seq_cst: see the status store */
        gort__lock(&gort__sched.lock);
        if (gort__sched.stopwait > 0 && cas(&pp->status, Psyscall, Pgcstop)) {
            if (--gort__sched.stopwait == 0)
                gort__notewakeup(&gort__sched.stopnote);
        }
        gort__unlock(&gort__sched.lock);
    }
}

/* Tries to get a P without leaving the G: its old one if nobody took it,
 * else an idle one. */
static bool exitsyscallfast(M *mp, P *oldp) {
    if (oldp && load_relaxed(&oldp->status) == Psyscall && cas(&oldp->status, Psyscall, Pidle)) {
        gort__acquirep(oldp);
        return true;
    }
    if (load_relaxed(&gort__sched.npidle) > 0 && !load_acq(&gort__sched.gcwaiting)) {
        gort__lock(&gort__sched.lock);
        P *pp = gort__pidleget();
        gort__unlock(&gort__sched.lock);
        if (pp) {
            gort__acquirep(pp);
            return true;
        }
    }
    (void)mp;
    return false;
}

/* On g0: no P to be had. Queue the G globally and park the M. */
static G *exitsyscall0(M *mp, G *gp) {
    if (gort__traceon())
        gort__traceGoSysExit(NULL, gp);
    gort__casgstatus(gp, Gsyscall, Grunnable);
    mp->curg = NULL;
    gp->m = NULL;
    gort__lock(&gort__sched.lock);
    P *pp = load_acq(&gort__sched.gcwaiting) ? NULL : gort__pidleget();
    if (pp == NULL)
        gort__globrunqput(gp);
    gort__unlock(&gort__sched.lock);
    if (pp) {
        gort__acquirep(pp);
        return gp;
    }
    if (mp->lockedg == NULL)
        gort__stopm();
    /* else the schedule loop waits in stoplockedm for gp to come back */
    return NULL;
}

static void exitsyscall(void) {
    M *mp = getm();
    G *gp = mp ? mp->curg : NULL;
    if (gp == NULL || readgstatus(gp) != Gsyscall)
        return;
    P *oldp = mp->oldp;
    mp->oldp = NULL;
    xadd(&gort__sched.in_syscall, -1);
    if (exitsyscallfast(mp, oldp)) {
        if (gort__traceon())
            gort__traceGoSysExit(mp->p, gp);
        gort__casgstatus(gp, Gsyscall, Grunning);
        return;
    }
    gort__mcall(exitsyscall0);
    /* Resumed, maybe on another M, with a P and status Grunning. */
}

/* A goroutine between gort_syscall_enter and gort_syscall_exit has given
 * up its P: it may not park, yield or exit (what = the blocking operation
 * or the call), for it would need the P it no longer holds. */
void gort__fatal_insyscall(G *gp, const char *what) {
    gort__fatal("goroutine %lld: %s between gort_syscall_enter and gort_syscall_exit "
                "(a goroutine in a system call may not block on the runtime, yield or "
                "exit: call gort_syscall_exit first)",
                (long long)gp->goid, what);
}

GORT_API void gort_syscall_enter(void) { entersyscall(); }
GORT_API void gort_syscall_exit(void) { exitsyscall(); }
