/*
 * runtime.c: gort_run, the runtime's start and its shutdown.
 *
 * gort_run turns the calling thread into m0: it sets up the scheduler and
 * the Ps, queues the main goroutine on P0 and enters m0's scheduler loop
 * through the same mstart0/mstart1 path every other M takes. When the main
 * goroutine returns, shutdown begins (gort__shutdown_begin): idle Ms are
 * woken and leave their loops, busy ones leave at their next scheduling
 * point, m0 joins them all and frees every G, stack and P. Goroutines
 * still alive at that point are abandoned, as in Go.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

#define DEFAULT_STACK (256 * 1024)
#define MIN_STACK     (16 * 1024)
#define MAX_STACK     ((size_t)1 << 30)

schedt   gort__sched;
int32_t  gort__ncpu;
uint32_t gort__running;
uint32_t gort__rungen;
int32_t  gort__debug_schedtrace;
int32_t  gort__debug_mtrace;

static G m0g0;

/* Threads that are not Ms (gort_go, gort_read_stats, gort_maxprocs from a
 * plain thread) enter the runtime only while it is open: from the moment
 * it is fully set up until shutdown begins. gort_run closes it, then waits
 * for those inside to leave before it tears anything down. Both sides are
 * sequentially consistent (Dekker): the entrant counts itself in, then
 * reads open; gort_run clears open, then reads the count. */
static uint32_t foreign_open;
static uint32_t foreign_inflight;

static int32_t getproccount(void) {
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

/* $GORT_DEBUG: comma-separated settings, as Go's GODEBUG:
 *   schedtrace=MS   a scheduler summary line every MS milliseconds
 *   mtrace=1        a line as each M starts
 * Unknown names and bad values are reported and ignored. */
void gort__debug_parse(void) {
    gort__debug_schedtrace = 0;
    gort__debug_mtrace = 0;
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
        else if (len > 0)
            fprintf(stderr, "gort: GORT_DEBUG: unknown setting '%.*s' ignored\n", (int)len, s);
        s += len;
        if (*s == ',')
            s++;
    }
}

/* $GORT_MAXPROCS, or 0 if unset or not a count (reported). */
static int32_t env_maxprocs(void) {
    const char *s = getenv("GORT_MAXPROCS");
    int32_t n = 0;
    if (s && *s)
        env_int("GORT_MAXPROCS", s, strlen(s), 1, 1024, &n);
    return n;
}

/* $GORT_NOUFFD=1 turns userfaultfd guard pages off (the mprotect fallback);
 * unset, empty or 0 leaves them on. */
bool gort__env_nouffd(void) {
    const char *s = getenv("GORT_NOUFFD");
    int32_t v = 0;
    if (s && *s)
        env_int("GORT_NOUFFD", s, strlen(s), 0, 1, &v);
    return v == 1;
}

/* Main goroutine has returned: stop accepting work and wake every idle M
 * so it can leave its scheduler loop. Called on g0. */
void gort__shutdown_begin(void) {
    gort__lock(&gort__sched.lock);
    store_rel(&gort__sched.shutdown, 1);
    M *mp;
    while ((mp = gort__mget()) != NULL) {
        mp->nextp = NULL;
        gort__notewakeup(&mp->park);
    }
    gort__sysmonwake_locked(false);
    gort__shutdown_stw();
    gort__unlock(&gort__sched.lock);
}

static int config(const gort_config *cfg, int32_t *nprocs, size_t *stacksize, int32_t *maxm) {
    gort_config c = { 0, 0, 0 };
    if (cfg)
        c = *cfg;
    if (c.maxprocs < 0 || c.max_threads < 0 || c.max_threads == 1)
        return -EINVAL;
    if (c.stack_size > MAX_STACK)
        return -EINVAL;
    *nprocs = c.maxprocs;
    if (*nprocs == 0)
        *nprocs = env_maxprocs();
    if (*nprocs == 0)
        *nprocs = getproccount();
    if (*nprocs > 1024)
        *nprocs = 1024;
    size_t ss = c.stack_size ? c.stack_size : DEFAULT_STACK;
    if (ss < MIN_STACK)
        ss = MIN_STACK;
    *stacksize = (ss + 4095) & ~(size_t)4095;
    *maxm = c.max_threads ? c.max_threads : 10000;
    return 0;
}

static void teardown(void) {
    xadd(&gort__rungen, 1);   /* even: every goroutine of this run is gone */
    gort__sema_reset();
    gort__allgs_free();
    gort__pfree_all();
    gort__stackpool_destroy();
    gort__signal_uninstall();
    gort__tls_m = NULL;
    memset(&gort__sched, 0, sizeof gort__sched);
    memset(&gort__m0, 0, sizeof gort__m0);
    memset(&m0g0, 0, sizeof m0g0);
}

GORT_API int gort_run(const gort_config *cfg, void (*main_fn)(void *), void *arg) {
    int32_t nprocs, maxm;
    size_t stacksize;
    if (main_fn == NULL)
        return -EINVAL;
    int err = config(cfg, &nprocs, &stacksize, &maxm);
    if (err < 0)
        return err;
    if (!cas(&gort__running, 0, 1))
        return -EBUSY;
    if (getm() != NULL) {   /* a thread that already is an M */
        store_rel(&gort__running, 0);
        return -EBUSY;
    }

    memset(&gort__sched, 0, sizeof gort__sched);
    xadd(&gort__rungen, 1);   /* odd: running */
    gort__sched.maxmcount = maxm;
    gort__sched.starttime = gort__nanotime();
    gort__ncpu = getproccount();
    gort__debug_parse();
    gort__stackpool_init(stacksize);
    gort__signal_install();

    /* m0: the calling thread. */
    M *m0 = &gort__m0;
    memset(m0, 0, sizeof *m0);
    memset(&m0g0, 0, sizeof m0g0);
    m0->g0 = &m0g0;
    m0g0.m = m0;
    store_relaxed(&m0g0.atomicstatus, Grunning);
    m0->thread = pthread_self();
    gort__tls_m = m0;
    gort__mcommoninit(m0, -1);

    gort__lock(&gort__sched.lock);
    P *runnable = gort__procresize(nprocs, &err);
    gort__unlock(&gort__sched.lock);
    (void)runnable;   /* no P has work yet */

    /* The main goroutine, id 1, in P0's runnext. */
    P *pp = m0->p;
    G *gp = NULL;
    if (err == 0 && (err = gort__stackreserve(pp)) == 0 && (gp = gort__malg()) == NULL)
        err = -ENOMEM;
    if (err < 0) {
        gort__mexit_all();
        teardown();
        store_rel(&gort__running, 0);
        return err;
    }
    pp->stackcredit--;
    gp->fn = main_fn;
    gp->arg = arg;
    gp->goid = (int64_t)xadd(&gort__sched.goidgen, 1);
    gort__casgstatus(gp, Gdead, Grunnable);
    store_relaxed(&pp->ncreated, pp->ncreated + 1);
    gort__sched.maing = gp;
    gort__runqput(pp, gp, true);
    store_rel(&gort__sched.mainstarted, true);

    /* sysmon: an M without a P, counted apart by checkdead. */
    gort__lock(&gort__sched.lock);
    gort__sched.nmsys++;
    gort__unlock(&gort__sched.lock);
    gort__newm(gort__sysmon, NULL, -1);
    __atomic_store_n(&foreign_open, 1, __ATOMIC_SEQ_CST);

    gort__mstart0();   /* m0's scheduler loop; returns at shutdown */

    /* sched.shutdown is set, so no foreign thread enters any more; close
     * the door for good and wait for those inside, then for every M. Only
     * then is the runtime gone, and another gort_run may start. */
    __atomic_store_n(&foreign_open, 0, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&foreign_inflight, __ATOMIC_SEQ_CST) != 0)
        gort__osyield();
    gort__mexit_all();
    teardown();
    store_rel(&gort__running, 0);
    return 0;
}

/* A thread that is not running a goroutine calls into the runtime (to
 * create a goroutine, read stats): counted, so that shutdown does not free
 * the scheduler under it. Returns false if there is no runtime to use. */
bool gort__foreign_enter(void) {
    xadd(&foreign_inflight, 1);
    if (__atomic_load_n(&foreign_open, __ATOMIC_SEQ_CST) && !load_acq(&gort__sched.shutdown))
        return true;
    xadd(&foreign_inflight, -1);
    return false;
}

void gort__foreign_exit(void) { xadd(&foreign_inflight, -1); }

int64_t gort__go_foreign(void (*fn)(void *), void *arg) {
    if (!gort__foreign_enter())
        return -EPERM;
    int64_t r = gort__newproc(fn, arg);
    gort__foreign_exit();
    return r;
}

GORT_API void gort_read_stats(gort_stats *st) {
    memset(st, 0, sizeof *st);
    bool foreign = getg() == NULL;
    if (foreign ? !gort__foreign_enter() : !load_acq(&gort__running))
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
