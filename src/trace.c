/*
 * trace.c: what GORT_DEBUG prints.
 *
 *   schedtrace=MS  every MS milliseconds (from sysmon), a line in the shape
 *                  of Go's GODEBUG=schedtrace:
 *                  SCHED 1004ms: gomaxprocs=2 idleprocs=1 threads=3
 *                  spinningthreads=0 idlethreads=1 runqueue=0 [0 0]
 *   mtrace=1       one line as each M starts, naming its id, its kernel
 *                  thread and the P it took: Go's M creation path (newm ->
 *                  ... -> mstart1 -> schedule) made visible.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "runtime.h"

void gort__schedtrace(void) {
    char buf[4096];
    int64_t now = gort__nanotime();
    gort__lock(&gort__sched.lock);
    int n = snprintf(buf, sizeof buf,
                     "SCHED %lldms: gomaxprocs=%d idleprocs=%u threads=%d spinningthreads=%u "
                     "idlethreads=%d runqueue=%d [",
                     (long long)((now - gort__sched.starttime) / 1000000), gort__gomaxprocs,
                     load_relaxed(&gort__sched.npidle), gort__sched.mcount,
                     load_relaxed(&gort__sched.nmspinning), gort__sched.nmidle,
                     gort__sched.runqsize);
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
