/*
 * g.c: goroutines: creation (newproc), the switch into and out of them
 * (gogo, mcall), exit (goexit), and their reuse (gfget/gfput).
 *
 * A G is created without a stack. Its first execute binds one from the P's
 * stack cache and lays out an initial frame whose return address is
 * gostart; gort__ctx_switch "returns" into it. When the G exits, its stack
 * goes back to the cache and the G struct to the P's free list, so a
 * spawn-heavy program reuses both while they are hot in cache.
 *
 * A running G leaves for g0 only through mcall: it records what g0 should
 * do with it (park it, requeue it, free it) and switches. g0 does that work
 * after the G's registers are saved, so no other M can pick up the G while
 * it is still running on this one (see "How a goroutine blocks" in
 * docs/design.md).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/common_interface_defs.h>
#endif
#include "runtime.h"

enum { goidCacheBatch = 16, gfreeLocalMax = 64, gfreeBatch = 32, gslabSize = 256 };

/* G structs come from slabs so that creating one is a pointer bump; all of
 * them are found again at shutdown through the slab list. */
typedef struct gslab {
    struct gslab *next;
    int           used;
    G             g[gslabSize];
} gslab;

static struct {
    gort_lock lock;
    gslab    *slabs;
} allgs;


__attribute__((noreturn)) static void goexit1(void);

/* The first code a goroutine runs, on its own stack. */
__attribute__((noreturn, used)) static void gostart(void) {
#ifdef __SANITIZE_ADDRESS__
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    G *gp = getg();
    gp->fn(gp->arg);
    goexit1();
}

/* Gives a G that has never run its stack, on the M that will run it, and
 * an initial frame for gort__ctx_switch to pop, which enters gostart with
 * the default floating-point control state and zeroed callee-saved
 * registers, under a frame that ends every unwind (arch/arch.h). */
void gort__gobind(M *mp, G *gp) {
    bool canary;
    gp->stack = gort__stackalloc(mp->p, &canary);
    gp->stackcanary = canary;
    gp->sched.sp = gort__arch_firstframe(gp->stack.hi, gostart);
#ifdef GORT_TSAN_FIBERS
    if (gp->tsan_fiber == NULL)   /* the race flavour made it in ginit */
        gp->tsan_fiber = __tsan_create_fiber(0);
#endif
}

/* ---- goroutine ids and accounting --------------------------------------- */

static int64_t newgoid(P *pp) {
    if (pp->goidcache == pp->goidcacheend) {
        pp->goidcache = (int64_t)xadd(&gort__sched.goidgen, goidCacheBatch) - goidCacheBatch + 1;
        pp->goidcacheend = pp->goidcache + goidCacheBatch;
    }
    return pp->goidcache++;
}

/* Live goroutines: created minus exited, summed over Ps. Exact when nothing
 * is being created or exiting at the moment; approximate otherwise. */
int64_t gort__gcount(void) {
    /* Destroyed Ps keep their counts: allp entries live until shutdown. */
    int64_t n = load_relaxed(&gort__sched.nforeign);
    int32_t np = load_acq(&gort__nallp);
    for (int32_t i = 0; i < np; i++) {
        P *pp = gort__allp[i];
        n += load_relaxed(&pp->ncreated) - load_relaxed(&pp->nexited);
    }
    /* The counts change while they are summed; like Go's gcount, never
     * answer less than the one goroutine that is surely alive (main). */
    return n < 1 ? 1 : n;
}

/* ---- G allocation and free lists ----------------------------------------- */

/* A new G struct, status Gidle, no stack. NULL when memory runs out. */
G *gort__malg(void) {
    gort__lock(&allgs.lock);
    gslab *s = allgs.slabs;
    if (s == NULL || s->used == gslabSize) {
        s = calloc(1, sizeof *s);
        if (s == NULL) {
            gort__unlock(&allgs.lock);
            return NULL;
        }
        s->next = allgs.slabs;
        store_rel(&allgs.slabs, s);   /* release: gort__forallg reads without the lock */
    }
    G *gp = &s->g[s->used];
    store_rel(&s->used, s->used + 1);
    gort__unlock(&allgs.lock);
    store_relaxed(&gp->atomicstatus, Gdead);
    return gp;
}

/* Calls fn on every G ever allocated, without a lock (so a fatal error
 * can, whatever lock its thread holds): slabs and their counts are only
 * ever published after their Gs are initialised. */
void gort__forallg(void (*fn)(G *gp, void *arg), void *arg) {
    for (gslab *s = load_acq(&allgs.slabs); s; s = s->next) {
        int n = load_acq(&s->used);
        for (int i = 0; i < n; i++)
            fn(&s->g[i], arg);
    }
}

/* Frees every G at shutdown, abandoned ones included. */
void gort__allgs_free(void) {
    gslab *s = allgs.slabs;
    while (s) {
        gslab *next = s->next;
#ifdef GORT_TSAN_FIBERS
        for (int i = 0; i < s->used; i++)
            if (s->g[i].tsan_fiber)
                __tsan_destroy_fiber(s->g[i].tsan_fiber);
#endif
        if (raceenabled)
            for (int i = 0; i < s->used; i++)
                free(s->g[i].racectx);   /* goroutines abandoned at shutdown */
        free(s);
        s = next;
    }
    allgs.slabs = NULL;
}

/* Puts a dead G on pp's free list; a long list spills a chain of
 * gfreeBatch to the global one (walking Gs this P just used, so hot), so
 * that Gs freed on one P can be reused by a P that creates them. */
static void gfput(P *pp, G *gp) {
    if (readgstatus(gp) != Gdead)
        gort__throw("gfput: bad status (not Gdead)");
    gp->schedlink = pp->gfree;
    pp->gfree = gp;
    pp->gfreecnt++;
    if (pp->gfreecnt >= gfreeLocalMax) {
        G *head = pp->gfree, *tail = head;
        for (int i = 1; i < gfreeBatch; i++)
            tail = tail->schedlink;
        pp->gfree = tail->schedlink;
        pp->gfreecnt -= gfreeBatch;
        gort__lock(&gort__sched.gflock);
        gort__gqueue_pushchain(&gort__sched.gfree, head, tail, gfreeBatch);
        store_relaxed(&gort__sched.ngfree, gort__sched.gfree.n);
        gort__unlock(&gort__sched.gflock);
    }
}

/* Gets a dead G from pp's free list, refilling it with a whole chain from
 * the global list: O(1) under the lock, no walk. */
static G *gfget(P *pp) {
    if (pp->gfree == NULL && load_relaxed(&gort__sched.ngfree) > 0) {
        int32_t n;
        gort__lock(&gort__sched.gflock);
        G *head = gort__gqueue_popchain(&gort__sched.gfree, &n);
        store_relaxed(&gort__sched.ngfree, gort__sched.gfree.n);
        gort__unlock(&gort__sched.gflock);
        pp->gfree = head;
        pp->gfreecnt = n;
    }
    G *gp = pp->gfree;
    if (gp) {
        pp->gfree = gp->schedlink;
        pp->gfreecnt--;
    }
    return gp;
}

/* A P is being destroyed: its free Gs go to the global list. */
void gort__gfpurge(P *pp) {
    if (pp->gfree == NULL)
        return;
    G *tail = pp->gfree;
    while (tail->schedlink)
        tail = tail->schedlink;
    gort__lock(&gort__sched.gflock);
    gort__gqueue_pushchain(&gort__sched.gfree, pp->gfree, tail, pp->gfreecnt);
    store_relaxed(&gort__sched.ngfree, gort__sched.gfree.n);
    gort__unlock(&gort__sched.gflock);
    pp->gfree = NULL;
    pp->gfreecnt = 0;
}

/* ---- newproc: gort_go ----------------------------------------------------- */

/* Race flavour (Go's racegostart, race.go): the goroutine's fiber is made
 * here, by its creator, so libtsan orders everything the creator did before
 * gort_go before everything the goroutine does, and names the creator's
 * stack in its reports ("created by"). Its race context is a byte of its
 * own on the heap (runtime.h, racewaiter). */
static void racegostart(G *gp, int64_t goid) {
#ifdef GORT_RACE
    char name[32];
    /* The fiber's creation stack ("created by" in a report) is the
     * creator's: give it the frame that called gort_go, which libtsan
     * cannot see through this uninstrumented library. */
    if (gp->gopc)
        __tsan_func_entry((void *)gp->gopc);
    gp->tsan_fiber = __tsan_create_fiber(0);
    if (gp->gopc)
        __tsan_func_exit();
    snprintf(name, sizeof name, "goroutine %lld", (long long)goid);
    __tsan_set_fiber_name(gp->tsan_fiber, name);
    if ((gp->racectx = malloc(1)) == NULL)
        gort__fatal("gort_go: out of memory for the race detector");
#else
    (void)gp, (void)goid;
#endif
}

static void ginit(G *gp, void (*fn)(void *), void *arg, int64_t goid, uintptr_t gopc) {
    G *parent = getg();
    gp->fn = fn;
    gp->arg = arg;
    gp->goid = goid;
    gp->gopc = gopc;
    gp->parentgoid = parent ? parent->goid : 0;
    gp->waitsince = 0;
    gp->waitreason = waitReasonZero;
    gp->param = NULL;
    gp->waiting = NULL;
    gp->m = NULL;
    gp->lockedm = NULL;
    gp->traceflow = 0;
    if (raceenabled)
        racegostart(gp, goid);
    gort__casgstatus(gp, Gdead, Grunnable);
}

/* Creates a G running fn(arg) with pp's resources (a stack credit, a free
 * G, a goroutine id) and puts it in pp's runnext, so it runs as soon as
 * its creator blocks (Go's newproc1 + runqput). pp is held by the caller.
 * Returns the goroutine's id, or a negative errno when no stack or memory
 * is left. *gpp (if not NULL) receives the G; once it is queued another M
 * may steal, run and end it, so the caller reads nothing of it but that
 * the G exists (gort_run, before any other M runs). */
int64_t gort__newproc1(void (*fn)(void *), void *arg, uintptr_t gopc, P *pp, G **gpp) {
    int err;
    if (pp->stackcredit == 0 && (err = gort__stackreserve(pp)) < 0)
        return err;
    G *gp = gfget(pp);
    if (gp == NULL && (gp = gort__malg()) == NULL)
        return -ENOMEM;
    pp->stackcredit--;
    int64_t goid = newgoid(pp);
    ginit(gp, fn, arg, goid, gopc);
    store_relaxed(&pp->ncreated, pp->ncreated + 1);
    if (gpp)
        *gpp = gp;
    if (gort__traceon())
        gort__traceGoCreate(pp, gp);
    gort__runqput(pp, gp, true);
    return goid;
}

/* A goroutine created where there is no P to use: by a thread that is not
 * an M, or by a goroutine between syscall enter and exit. Its resources
 * come from the global pools, it goes on the global queue, and an idle P
 * is woken to run it. */
static int64_t newproc_global(void (*fn)(void *), void *arg, uintptr_t gopc) {
    int err = gort__stackreserve1();
    if (err < 0)
        return err;
    gort__lock(&gort__sched.gflock);
    G *gp = gort__gqueue_pop(&gort__sched.gfree);
    store_relaxed(&gort__sched.ngfree, gort__sched.gfree.n);
    gort__unlock(&gort__sched.gflock);
    if (!gp && !(gp = gort__malg()))
        return -ENOMEM;  /* the credit stays reserved; harmless slack */
    int64_t goid = (int64_t)xadd(&gort__sched.goidgen, 1);
    ginit(gp, fn, arg, goid, gopc);
    /* A trace starting now sees gp, or this sees the trace (exectrace.c,
     * gfnsnap). */
    fence_sc();
    if (gort__traceon())
        gort__traceGoCreateSlow(NULL, gp);
    xadd(&gort__sched.nforeign, 1);
    xadd(&gort__sched.nforeigncreated, 1);
    gort__lock(&gort__sched.lock);
    gort__globrunqput(gp);
    gort__unlock(&gort__sched.lock);
    /* If an M is spinning, wakep leaves it to that M, which looks at the
     * global queue again after it stops spinning (checkRunqsNoP). */
    gort__wakep();
    return goid;
}

/* gort_go. From a running goroutine: its P's runnext, no lock. From a
 * thread that is not an M: only while the runtime is open (it may be
 * starting or shutting down), else -EPERM. */
static int64_t newproc(void (*fn)(void *), void *arg, uintptr_t gopc) {
    M *mp = getm();
    if (mp == NULL) {
        if (!gort__foreign_enter())
            return -EPERM;
        int64_t id = newproc_global(fn, arg, gopc);
        gort__foreign_exit();
        return id;
    }
    P *pp = mp->p;
    if (mp->curg == NULL || pp == NULL || readgstatus(mp->curg) != Grunning)
        return newproc_global(fn, arg, gopc);
    int64_t goid = gort__newproc1(fn, arg, gopc, pp, NULL);
    if (goid > 0 && load_relaxed(&gort__sched.mainstarted))
        gort__wakep();
    return goid;
}

/* ---- goexit --------------------------------------------------------------- */

/* On g0: the G has finished. Its stack returns to the P's cache and the G
 * to the free list. The main goroutine's end starts the shutdown. */
static G *goexit0(M *mp, G *gp) {
    P *pp = mp->p;
    if (gort__traceon())
        gort__traceGoEnd(pp);
    gort__casgstatus(gp, Grunning, Gdead);
    gp->m = NULL;
    mp->curg = NULL;
#ifdef GORT_TSAN_FIBERS
    __tsan_destroy_fiber(gp->tsan_fiber);
    gp->tsan_fiber = NULL;
#endif
    if (raceenabled) {
        free(gp->racectx);   /* and with it every edge through it */
        gp->racectx = NULL;
    }
    gp->asan_fake_stack = NULL;
    gort__stackfree(pp, gp->stack, gp->stackcanary);
    gp->stack = (stack){ 0, 0 };
    gp->stackcanary = 0;
    store_relaxed(&pp->nexited, pp->nexited + 1);
    pp->stackcredit++;
    gort__stackcredit_return(pp);
    bool ismain = gp == gort__sched.maing;
    if (gp->lockedm) {
        /* It exited locked: it may have put the thread in a state that
         * must not reach other goroutines, so the thread exits too (the
         * schedule loop sees lockedexit). m0 is the caller's thread and
         * stays. */
        gp->lockedm = NULL;
        mp->lockedg = NULL;
        mp->lockedext = 0;
        if (mp != &gort__m0)
            mp->lockedexit = true;
    }
    gfput(pp, gp);
    if (ismain)
        gort__shutdown_begin();
    return NULL;
}

__attribute__((noreturn)) static void goexit1(void) {
    M *mp = getm();
    G *gp = mp->curg;
    if (unlikely(readgstatus(gp) == Gsyscall))
        gort__fatal_insyscall(gp, "exit");
    gort__stackcheck(gp);
    if (raceenabled && gp == gort__sched.maing)
        racerelease(&gort__sched.maing);   /* gort_run returns after main's end */
    mp->mcallfn = goexit0;
    mp->mcallg = gp;
#ifdef __SANITIZE_ADDRESS__
    __sanitizer_start_switch_fiber(NULL, (const void *)mp->g0->stack.lo,
                                   mp->g0->stack.hi - mp->g0->stack.lo);
#endif
#ifdef GORT_TSAN_FIBERS
    __tsan_switch_to_fiber(mp->g0->tsan_fiber, GORT_TSAN_SWITCH);
#endif
    gort__ctx_switch(&gp->sched, &mp->g0->sched);
    gort__throw("goexit1: dead goroutine resumed");
}

/* ---- the public goroutine calls -------------------------------------------- */

GORT_API int64_t gort_go(void (*fn)(void *), void *arg) {
    if (fn == NULL)
        return -EINVAL;
    /* Where it was called from, for goroutine dumps ("created by"). */
    return newproc(fn, arg, (uintptr_t)__builtin_return_address(0));
}

GORT_API int64_t gort_id(void) {
    G *gp = getg();
    return gp ? gp->goid : 0;
}

GORT_API void gort_exit(void) {
    if (getg() == NULL)
        gort__fatal("gort_exit called outside a goroutine");
    goexit1();
}

GORT_API int64_t gort_num_goroutines(void) {
    if (getg() != NULL)
        return gort__gcount();
    if (!gort__foreign_enter())
        return 0;
    int64_t n = gort__gcount();
    gort__foreign_exit();
    return n;
}
