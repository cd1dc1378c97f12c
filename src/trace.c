/*
 * trace.c: what GORT_DEBUG prints.
 *
 *   schedtrace=MS  every MS milliseconds (from sysmon), a line in the shape
 *                  of Go's GODEBUG=schedtrace:
 *                  SCHED 1004ms: gomaxprocs=2 idleprocs=1 threads=3
 *                  spinningthreads=0 idlethreads=1 runqueue=0 [0 0]
 *   scheddetail=1  with schedtrace: Go's detailed form, a line per P, per M
 *                  and per G after the summary
 *   mtrace=1       one line as each M starts, naming its id, its kernel
 *                  thread and the P it took: Go's M creation path (newm ->
 *                  ... -> mstart1 -> schedule) made visible.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "runtime.h"

/* scheddetail=1: one line per G, as Go's schedtrace(true). Gs are read
 * without their owners' cooperation: a snapshot, as in Go. */
GORT_SNAPSHOT static void gdetail(G *gp, void *arg) {
    (void)arg;
    uint32_t st = readgstatus(gp);
    if (st == Gdead || st == Gidle)
        return;
    M *mp = load_relaxed(&gp->m);
    M *lm = gp->lockedm;
    if (st == Gwaiting)
        fprintf(stderr, "  G%lld: status=%u(%s) m=%lld lockedm=%lld\n", (long long)gp->goid, st,
                gort__waitreason_string(gp->waitreason), mp ? (long long)mp->id : -1LL,
                lm ? (long long)lm->id : -1LL);
    else
        fprintf(stderr, "  G%lld: status=%u() m=%lld lockedm=%lld\n", (long long)gp->goid, st,
                mp ? (long long)mp->id : -1LL, lm ? (long long)lm->id : -1LL);
}

GORT_SNAPSHOT static void schedtrace_detail(void) {
    for (int32_t i = 0; i < gort__gomaxprocs; i++) {
        P *pp = gort__allp[i];
        M *mp = load_relaxed(&pp->m);
        uint32_t h = load_acq(&pp->runqhead), t = load_acq(&pp->runqtail);
        fprintf(stderr,
                "  P%d: status=%u schedtick=%u syscalltick=%u m=%lld runqsize=%u gfreecnt=%d "
                "timerslen=%d\n",
                pp->id, load_relaxed(&pp->status), load_relaxed(&pp->schedtick),
                load_relaxed(&pp->syscalltick), mp ? (long long)mp->id : -1LL, t - h, pp->gfreecnt,
                pp->ntimers);
    }
    for (M *mp = load_acq(&gort__allm); mp; mp = mp->alllink) {
        P *pp = load_relaxed(&mp->p);
        G *gp = load_relaxed(&mp->curg);
        fprintf(stderr,
                "  M%lld: p=%d curg=%lld locks=%d spinning=%s blocked=%s lockedg=%lld\n",
                (long long)mp->id, pp ? pp->id : -1, gp ? (long long)gp->goid : -1LL, mp->locks,
                mp->spinning ? "true" : "false",
                (mp->lockedparked || (!pp && !gp)) ? "true" : "false",
                mp->lockedg ? (long long)mp->lockedg->goid : -1LL);
    }
    gort__forallg(gdetail, NULL);
}

void gort__schedtrace(void) {
    char buf[4096];
    int64_t now = gort__nanotime();
    gort__lock(&gort__sched.lock);
    int n = snprintf(buf, sizeof buf,
                     "SCHED %lldms: gomaxprocs=%d idleprocs=%u threads=%d spinningthreads=%u "
                     "idlethreads=%d runqueue=%d",
                     (long long)((now - gort__sched.starttime) / 1000000), gort__gomaxprocs,
                     load_relaxed(&gort__sched.npidle), gort__sched.mcount,
                     load_relaxed(&gort__sched.nmspinning), gort__sched.nmidle,
                     gort__sched.runqsize);
    if (gort__debug_scheddetail) {
        /* Go's detailed line: the stop-the-world and idle-locked counts
         * instead of the run queue lengths, which the P lines give. */
        snprintf(buf + n, sizeof buf - (size_t)n,
                 " gcwaiting=%s nmidlelocked=%d stopwait=%d sysmonwait=%s\n",
                 load_relaxed(&gort__sched.gcwaiting) ? "true" : "false",
                 gort__sched.nmidlelocked, gort__sched.stopwait,
                 load_relaxed(&gort__sched.sysmonwait) ? "true" : "false");
        fputs(buf, stderr);
        schedtrace_detail();
        gort__unlock(&gort__sched.lock);
        return;
    }
    n += snprintf(buf + n, sizeof buf - (size_t)n, " [");
    for (int32_t i = 0; i < gort__gomaxprocs && n < (int)sizeof buf - 32; i++) {
        P *pp = gort__allp[i];
        uint32_t h = load_acq(&pp->runqhead), t = load_acq(&pp->runqtail);
        n += snprintf(buf + n, sizeof buf - (size_t)n, i ? " %u" : "%u", t - h);
    }
    gort__unlock(&gort__sched.lock);
    snprintf(buf + n, sizeof buf - (size_t)n, "]\n");
    fputs(buf, stderr);
}

void gort__mtrace_started(M *mp) {
    int threads;
    gort__lock(&gort__sched.lock);
    threads = gort__sched.mcount;
    gort__unlock(&gort__sched.lock);
    if (mp->p)
        fprintf(stderr, "gort: M%lld started on thread %d, took P%d (%d threads)\n",
                (long long)mp->id, mp->procid, mp->p->id, threads);
    else
        fprintf(stderr, "gort: M%lld started on thread %d without a P (%d threads)\n",
                (long long)mp->id, mp->procid, threads);
}
