/*
 * run.c: gort_run, the runtime's start and its shutdown (Go's schedinit,
 * main and exit, in proc.go).
 *
 * gort_run turns the calling thread into m0: it sets up the scheduler and
 * the Ps, queues the main goroutine on P0 and enters m0's scheduler loop
 * through the same mstart0/mstart1 path every other M takes. When the main
 * goroutine returns, shutdown begins (gort__shutdown_begin): idle Ms are
 * woken and leave their loops, busy ones leave at their next scheduling
 * point, m0 joins them all and frees every G, stack and P. Goroutines
 * still alive at that point are abandoned, as in Go.
 *
 * Threads that are not Ms (gort_go, gort_read_stats, gort_maxprocs, or a
 * channel waking a goroutine, from a plain thread) enter the runtime only
 * while it is open: from the moment it is fully set up until shutdown
 * begins. gort_run closes it, then waits for those inside to leave before
 * it tears anything down. Both sides are sequentially consistent (Dekker):
 * the entrant counts itself in, then reads open; gort_run clears open,
 * then reads the count.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "runtime.h"

#define DEFAULT_STACK (256 * 1024)
#define MIN_STACK     (16 * 1024)
#define MAX_STACK     ((size_t)1 << 30)

static uint32_t running;            /* atomic: a gort_run is in progress */
static uint32_t foreign_open;       /* atomic: foreign threads may enter */
static uint32_t foreign_inflight;   /* atomic: foreign threads inside */
static G m0g0;

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
    gort__wakelockedms_locked();
    gort__unlock(&gort__sched.lock);
    gort__template_shutdown();
    gort__netpollBreak();   /* the M blocked in the poller leaves too */
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
        *nprocs = gort__env_maxprocs();
    if (*nprocs == 0)
        *nprocs = gort__getproccount();
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
    gort__trace_shutdown();   /* every M is gone: no stream is being written */
    xadd(&gort__rungen, 1);   /* even: every goroutine of this run is gone */
    gort__sema_reset();
    gort__template_reset();
    gort__allgs_free();
    gort__pfree_all();
    gort__afterchans_free();
    gort__netpollclose();
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
    if (!cas(&running, 0, 1))
        return -EBUSY;
    if (getm() != NULL) {   /* a thread that already is an M */
        store_rel(&running, 0);
        return -EBUSY;
    }

    memset(&gort__sched, 0, sizeof gort__sched);
    xadd(&gort__rungen, 1);   /* odd: running */
    gort__sched.maxmcount = maxm;
    gort__sched.starttime = gort__nanotime();
    gort__sched.coarsenow = gort__sched.starttime;
    gort__ncpu = gort__getproccount();
    gort__debug_parse();
    gort__stackpool_init(stacksize);
    gort__signal_install();
    if ((err = gort__netpollinit()) < 0) {
        gort__signal_uninstall();
        gort__stackpool_destroy();
        store_rel(&running, 0);
        return err;
    }
    gort__sched.lastpoll = gort__nanotime();
    /* m0 runs with SIGPIPE blocked, as every other M (fd.c says why). */
    sigset_t pipeset, oldmask;
    sigemptyset(&pipeset);
    sigaddset(&pipeset, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipeset, &oldmask);

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
    if (err == 0)
        gort__trace_runstart();   /* GORT_TRACE */

    /* The main goroutine, id 1, in P0's runnext. */
    G *gp = NULL;
    if (err == 0) {
        int64_t goid = gort__newproc1(main_fn, arg, (uintptr_t)__builtin_return_address(0), m0->p, &gp);
        if (goid < 0)
            err = (int)goid;
    }
    if (err < 0) {
        gort__mexit_all();
        teardown();
        pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
        store_rel(&running, 0);
        return err;
    }
    gort__sched.maing = gp;
    store_rel(&gort__sched.mainstarted, true);

    /* sysmon: an M without a P, counted apart by checkdead. */
    gort__lock(&gort__sched.lock);
    gort__sched.nmsys++;
    gort__unlock(&gort__sched.lock);
    gort__newm(gort__sysmon, NULL, -1);
    __atomic_store_n(&foreign_open, 1, __ATOMIC_SEQ_CST);

    gort__mstart0();   /* m0's scheduler loop; returns at shutdown */
    raceacquire(&gort__sched.maing);   /* what main did (goexit1) is before our return */

    /* sched.shutdown is set, so no foreign thread enters any more; close
     * the door for good and wait for those inside, then for every M. Only
     * then is the runtime gone, and another gort_run may start. */
    __atomic_store_n(&foreign_open, 0, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&foreign_inflight, __ATOMIC_SEQ_CST) != 0)
        gort__osyield();
    gort__mexit_all();
    teardown();
    pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
    store_rel(&running, 0);
    return 0;
}

/* A thread that is not an M calls into the runtime: counted, so that
 * shutdown does not free the scheduler under it. Returns false if there is
 * no runtime to use (not yet, or no longer, open). */
bool gort__foreign_enter(void) {
    xadd(&foreign_inflight, 1);
    if (__atomic_load_n(&foreign_open, __ATOMIC_SEQ_CST) && !load_acq(&gort__sched.shutdown))
        return true;
    xadd(&foreign_inflight, -1);
    return false;
}

void gort__foreign_exit(void) { xadd(&foreign_inflight, -1); }
