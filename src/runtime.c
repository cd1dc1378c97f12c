/*
 * runtime.c: the runtime's globals, the settings it reads from the
 * environment, and gort_read_stats. Start-up and shutdown are in run.c.
 *
 * The globals are Go's (runtime2.go): sched, the one scheduler state;
 * allm, allp and gomaxprocs live beside the code that owns them (m.c,
 * p.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

schedt   gort__sched;
int32_t  gort__ncpu;
uint32_t gort__rungen;
int32_t  gort__debug_schedtrace;
int32_t  gort__debug_mtrace;
int32_t  gort__debug_stackguard;
int32_t  gort__debug_quitdump;
int32_t  gort__debug_scheddetail;
int32_t  gort__traceback_level = TRACEBACK_ALL;   /* also before gort_run */

/* CPUs this process may run on: the default GOMAXPROCS. */
int32_t gort__getproccount(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    return 1;
}

/* Parses the decimal integer in s[0..n) into *out if it lies in [lo, hi];
 * otherwise warns, naming the setting, and leaves *out alone. */
static void env_int(const char *name, const char *s, size_t n, long lo, long hi, int32_t *out) {
    char buf[32];
    char *end;
    if (n == 0 || n >= sizeof buf)
        goto bad;
    memcpy(buf, s, n);
    buf[n] = 0;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (errno != 0 || *end != 0 || v < lo || v > hi)
        goto bad;
    *out = (int32_t)v;
    return;
bad:
    fprintf(stderr, "gort: %s=%.*s: want an integer from %ld to %ld; ignored\n", name, (int)n, s,
            lo, hi);
}

/* $GORT_NOUFFD=1, from before the tiers had names: the same as
 * GORT_DEBUG=stackguard=mprotect. Unset, empty or 0 changes nothing. */
static bool env_nouffd(void) {
    const char *s = getenv("GORT_NOUFFD");
    int32_t v = 0;
    if (s && *s)
        env_int("GORT_NOUFFD", s, strlen(s), 0, 1, &v);
    return v == 1;
}

/* stackguard=NAME: one of gort_stack_guard_name's names. */
static void env_stackguard(const char *v, size_t n) {
    for (int g = GORT_GUARD_MADVISE; g <= GORT_GUARD_CANARY; g++) {
        const char *name = gort_stack_guard_name(g);
        if (strlen(name) == n && strncmp(v, name, n) == 0) {
            gort__debug_stackguard = g;
            return;
        }
    }
    fprintf(stderr,
            "gort: GORT_DEBUG stackguard=%.*s: want madvise, uffd, uffd-zeropage, mprotect or "
            "canary; ignored\n",
            (int)n, v);
}

/* $GORT_DEBUG: comma-separated settings, as Go's GODEBUG:
 *   schedtrace=MS   a scheduler summary line every MS milliseconds
 *   mtrace=1        a line as each M starts
 *   stackguard=NAME force a stack guard tier (gort_stack_guard_name's names)
 *   scheddetail=1   with schedtrace, Go's per-P, per-M and per-G lines
 *   quitdump=0      leave SIGQUIT to the program (by default it dumps the
 *                   goroutines and exits 2, as Go does)
 * Unknown names and bad values are reported and ignored.
 * Also $GORT_TRACEBACK, as Go's GOTRACEBACK: what a fatal error prints:
 *   none    the message only
 *   all     and every goroutine (the default; "single" means the same)
 *   system  and the runtime's own frames
 *   crash   as system, then abort() instead of exit(2), for a core dump */
void gort__debug_parse(void) {
    gort__debug_schedtrace = 0;
    gort__debug_mtrace = 0;
    gort__debug_quitdump = 1;
    gort__debug_scheddetail = 0;
    gort__traceback_level = TRACEBACK_ALL;
    const char *tb = getenv("GORT_TRACEBACK");
    if (tb && *tb) {
        if (strcmp(tb, "none") == 0 || strcmp(tb, "0") == 0)
            gort__traceback_level = TRACEBACK_NONE;
        else if (strcmp(tb, "all") == 0 || strcmp(tb, "single") == 0 || strcmp(tb, "1") == 0)
            gort__traceback_level = TRACEBACK_ALL;
        else if (strcmp(tb, "system") == 0 || strcmp(tb, "2") == 0)
            gort__traceback_level = TRACEBACK_SYSTEM;
        else if (strcmp(tb, "crash") == 0)
            gort__traceback_level = TRACEBACK_CRASH;
        else
            fprintf(stderr, "gort: GORT_TRACEBACK=%s: want none, all, system or crash; ignored\n",
                    tb);
    }
    gort__debug_stackguard = env_nouffd() ? GORT_GUARD_MPROTECT : 0;
    const char *s = getenv("GORT_DEBUG");
    while (s && *s) {
        size_t len = strcspn(s, ",");
        const char *eq = memchr(s, '=', len);
        size_t klen = eq ? (size_t)(eq - s) : len;
        const char *v = eq ? eq + 1 : s + len;
        size_t vlen = (size_t)(s + len - v);
        if (klen == 10 && strncmp(s, "schedtrace", 10) == 0)
            env_int("GORT_DEBUG schedtrace", v, vlen, 0, 1000000, &gort__debug_schedtrace);
        else if (klen == 6 && strncmp(s, "mtrace", 6) == 0)
            env_int("GORT_DEBUG mtrace", v, vlen, 0, 1, &gort__debug_mtrace);
        else if (klen == 10 && strncmp(s, "stackguard", 10) == 0)
            env_stackguard(v, vlen);
        else if (klen == 11 && strncmp(s, "scheddetail", 11) == 0)
            env_int("GORT_DEBUG scheddetail", v, vlen, 0, 1, &gort__debug_scheddetail);
        else if (klen == 8 && strncmp(s, "quitdump", 8) == 0)
            env_int("GORT_DEBUG quitdump", v, vlen, 0, 1, &gort__debug_quitdump);
        else if (len > 0)
            fprintf(stderr, "gort: GORT_DEBUG: unknown setting '%.*s' ignored\n", (int)len, s);
        s += len;
        if (*s == ',')
            s++;
    }
}

/* $GORT_MAXPROCS, or 0 if unset or not a count (reported). */
int32_t gort__env_maxprocs(void) {
    const char *s = getenv("GORT_MAXPROCS");
    int32_t n = 0;
    if (s && *s)
        env_int("GORT_MAXPROCS", s, strlen(s), 1, 1024, &n);
    return n;
}

GORT_API void gort_read_stats(gort_stats *st) {
    memset(st, 0, sizeof *st);
    /* A goroutine is inside the runtime by definition; a thread that is not
     * one enters like a foreign spawner (run.c). */
    bool foreign = getg() == NULL;
    if (foreign && !gort__foreign_enter())
        return;
    gort__lock(&gort__sched.lock);
    st->threads = gort__sched.mcount;
    st->idle_threads = gort__sched.nmidle;
    st->idle_procs = (int)load_relaxed(&gort__sched.npidle);
    gort__unlock(&gort__sched.lock);
    st->goroutines = gort__gcount();
    st->spinning = (int)load_relaxed(&gort__sched.nmspinning);
    st->procs = load_relaxed(&gort__gomaxprocs);
    st->in_syscall = load_relaxed(&gort__sched.in_syscall);
    st->steals = load_relaxed(&gort__sched.steals);
    if (foreign)
        gort__foreign_exit();
}

GORT_API int gort_read_metrics(gort_metrics *m, size_t size) {
    if (m == NULL)
        return -EINVAL;
    gort_metrics all;
    memset(&all, 0, sizeof all);
    bool foreign = getg() == NULL;
    if (!foreign || gort__foreign_enter()) {
        gort__stackstats(&all);
        /* Destroyed Ps keep their counts: allp entries live until shutdown. */
        int32_t np = load_acq(&gort__nallp);
        all.goroutines_created = load_relaxed(&gort__sched.nforeigncreated);
        for (int32_t i = 0; i < np; i++) {
            P *pp = gort__allp[i];
            all.goroutines_created += load_relaxed(&pp->ncreated);
            all.context_switches += load_relaxed(&pp->nswitch);
            all.syscalls += load_relaxed(&pp->nsyscall);
            for (int r = 0; r < GORT_WAIT_REASONS; r++)
                all.parks[r] += load_relaxed(&pp->nparks[r]);
        }
        all.handoffs = load_relaxed(&gort__sched.nhandoff);
        all.threads_created = load_relaxed(&gort__sched.mnext);
        if (foreign)
            gort__foreign_exit();
    }
    /* What both sides know, then zeros for what only the caller knows. */
    size_t n = size < sizeof all ? size : sizeof all;
    memcpy(m, &all, n);
    if (size > n)
        memset((char *)m + n, 0, size - n);
    return 0;
}
