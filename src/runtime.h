/*
 * runtime.h: gort's internal types and functions, shared by src/ and by the
 * white-box tests. Read docs/design.md first: it explains G, M, P, who owns
 * what, and the lock order.
 *
 * Names follow Go's runtime (proc.go, runtime2.go) so a reader can hold the
 * two side by side. What is used across files carries the gort__ prefix
 * (gort__newm, gort__schedule, ...); what one file uses alone is static
 * there, under Go's bare name (mput, execute, handoffp, ...).
 */
#ifndef GORT_RUNTIME_H
#define GORT_RUNTIME_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gort.h"
#include "arch/arch.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/common_interface_defs.h>
#endif
#include "race.h"

/* Goroutines are ThreadSanitizer fibers in the TSan build (the runtime
 * itself instrumented: every switch synchronises, as the runtime's own
 * hand-offs do) and in the race flavour (race.h: the runtime invisible,
 * so a switch must order nothing). */
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define GORT_TSAN_FIBERS 1
#define GORT_TSAN_SWITCH 0
#elif defined(GORT_RACE)
#define GORT_TSAN_FIBERS 1
#define GORT_TSAN_SWITCH __tsan_switch_to_fiber_no_sync
#endif

#define GORT_API __attribute__((visibility("default")))
/* Readers of another thread's Gs, Ms and Ps that take a snapshot on
 * purpose (goroutine dumps, scheddetail), as Go's do: the fields are
 * written without atomics on the hot path, and the snapshot may be torn,
 * so ThreadSanitizer is told not to watch these functions. */
#define GORT_SNAPSHOT __attribute__((no_sanitize_thread, noinline))

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Atomic helpers on plain fields, with C11's orders (docs/design.md,
 * "Memory ordering"). Every use says which side it synchronises with.
 *
 * - relaxed: atomicity only (counters, hints, racy snapshots).
 * - acq/rel: message passing: a load-acquire that reads a store-release
 *   sees everything written before the store.
 * - sc (sequentially consistent): the Dekker pattern, "I write X then read
 *   Y; you write Y then read X; one of us must see the other's write"
 *   (a StoreLoad edge). Acquire and release never give that, on any
 *   architecture: both sides' write and read must be seq_cst operations,
 *   or a read may be preceded by fence_sc() (C11's rule for a seq_cst
 *   fence before a read that misses a seq_cst write). xadd, xchg and cas
 *   are seq_cst, as all of Go's atomics are. Cost: load_sc is a plain load
 *   on x86-64 and the same LDAR as load_acq on arm64; store_sc is an XCHG
 *   on x86-64 (store_rel is a MOV) and the same STLR on arm64. */
#define load_relaxed(p)       __atomic_load_n((p), __ATOMIC_RELAXED)
#define load_acq(p)           __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define load_sc(p)            __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define store_relaxed(p, v)   __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define store_rel(p, v)       __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define store_sc(p, v)        __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define fence_sc()            __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define xadd(p, v)            __atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST)
#define xchg(p, v)            __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)
#define cas(p, old, new)      gort__cas_impl((p), (old), (new))
#define gort__cas_impl(p, old, new) ({                                        \
        __typeof__(*(p)) _o = (old);                                          \
        __atomic_compare_exchange_n((p), &_o, (new), false,                   \
                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); })

typedef struct g G;
typedef struct m M;
typedef struct p P;
typedef struct sudog sudog;

/* ---- futex.c: OS-thread sleeping, runtime locks and notes --------------- */

/* A runtime lock (Go's lock_futex.go): 0 unlocked, 1 locked, 2 locked with
 * sleepers. Held only for short critical sections on g0 or in a goroutine
 * that does not park while holding it. */
typedef struct gort_lock { uint32_t key; } gort_lock;

/* A one-shot wakeup of one sleeping OS thread (Go's note). */
typedef struct note { uint32_t key; } note;

void gort__lock_slow(gort_lock *l, uint32_t v);
void gort__unlock_slow(gort_lock *l, uint32_t v);

/* The uncontended cases inline: one atomic exchange each. The lock's
 * exchange is an acquire, the unlock's a release: what one holder wrote is
 * seen by the next, which is all a lock promises. Neither is a StoreLoad
 * barrier for code around it (a seq_cst exchange would not be one either,
 * in C11): an argument that needs one says so with its own sc operations. */
static inline void gort__lock(gort_lock *l) {
    uint32_t v = __atomic_exchange_n(&l->key, 1, __ATOMIC_ACQUIRE);
    if (__builtin_expect(v != 0, 0))
        gort__lock_slow(l, v);
}

static inline void gort__unlock(gort_lock *l) {
    uint32_t v = __atomic_exchange_n(&l->key, 0, __ATOMIC_RELEASE);
    if (__builtin_expect(v != 1, 0))
        gort__unlock_slow(l, v);
}
void gort__noteclear(note *n);
void gort__notewakeup(note *n);
void gort__notesleep(note *n);
bool gort__notetsleep(note *n, int64_t ns);     /* true: woken; false: timed out */
void gort__procyield(int cycles);
void gort__osyield(void);
void gort__usleep(int64_t us);

/* ---- arch/: the context switch ------------------------------------------ */

/* A saved context is only a stack pointer: gort__ctx_switch pushes the
 * callee-saved registers and the floating-point control state (MXCSR and
 * the x87 control word; FPCR) on the old stack, stores the stack pointer,
 * loads the new one and pops the same set (arch/amd64.S, arch/arm64.S). */
typedef struct gobuf { void *sp; } gobuf;

void gort__ctx_switch(gobuf *from, gobuf *to);

/* ---- G ------------------------------------------------------------------ */

/* Go's G status values (runtime2.go). */
enum {
    Gidle,      /* just allocated, not yet initialised */
    Grunnable,  /* on a run queue; not executing; the stack is not owned */
    Grunning,   /* executing user code on an M that holds a P */
    Gsyscall,   /* in a system call; owns its stack; may have lost its P */
    Gwaiting,   /* parked (gopark): on some wait queue, ready() puts it back */
    Gdead,      /* unused: on a free list, or just exited */
};

/* Why a G is waiting (Go's waitReason), for messages and traces. */
/* Each reason with the words Go prints for it, in one list so that the
 * enum and the strings (sched.c) cannot drift apart. */
#define WAITREASONS(X)                                                           \
    X(Zero, "waiting") X(Semacquire, "semacquire") X(SyncMutexLock, "sync.Mutex.Lock")  \
    X(SyncWaitGroupWait, "sync.WaitGroup.Wait") X(ChanReceive, "chan receive")       \
    X(ChanSend, "chan send") X(Select, "select") X(SelectNoCases, "select (no cases)") \
    X(Sleep, "sleep") X(IOWait, "IO wait") X(SyncCondWait, "sync.Cond.Wait")           \
    X(SyncRWMutexLock, "sync.RWMutex.Lock") X(SyncRWMutexRLock, "sync.RWMutex.RLock")

typedef enum {
#define WAITREASON_ENUM(name, str) waitReason##name,
    WAITREASONS(WAITREASON_ENUM)
#undef WAITREASON_ENUM
    waitReasonCount
} waitReason;
_Static_assert(waitReasonCount <= GORT_WAIT_REASONS, "gort.h: GORT_WAIT_REASONS too small");


typedef struct stack {
    uintptr_t lo;   /* lowest usable byte; the guard page lies just below */
    uintptr_t hi;   /* one past the highest usable byte */
} stack;

struct g {
    /* First cache line: what creating, queueing and switching touch. */
    gobuf      sched;        /* saved context while not running */
    stack      stack;        /* zero until the G first runs (stacks bind lazily) */
    G         *schedlink;    /* next on a run queue or free list */
    M         *m;            /* the M running it, while Grunning or Gsyscall */
    void     (*fn)(void *);  /* entry point, for a G that has not started */
    void      *arg;
    uint32_t   atomicstatus; /* G status; read by other Ms through readgstatus */
    uint8_t    waitreason;   /* waitReason while Gwaiting */
    uint8_t    stackcanary;  /* the stack has a canary, not a guard page (stack.c) */
    uint16_t   traceflow;    /* execution trace (exectrace.c): the flow its next
                                start ends: 0 none, TRACE_FLOWCREATE, an unpark
                                event's code, or TRACE_FLOWREF | the readying P */
    /* Second line: identity and waiting. */
    int64_t    goid;
    uint32_t   selectdone;   /* CAS'd to 1 by the select case that wins (chan.c) */
    /* On the head G of a chain in a gqueue: the chain's length and last G. */
    int32_t    chainn;
    sudog     *waiting;      /* sudogs this G waits on (select), owned by it */
    void      *param;        /* passed by the waker: the sudog that fired */
    void      *tsan_fiber;   /* ThreadSanitizer fiber, when built with it */
    void      *asan_fake_stack; /* AddressSanitizer fake-stack handle */
    G         *chaintail;
    uint64_t   tracefrom;    /* TRACE_FLOWREF: the start of the slice that
                                readied it, on that P (written with param) */
    /* Third line. */
    M         *lockedm;      /* gort_lock_thread: the only M that runs this G */
    /* For goroutine dumps (traceback.c). */
    uintptr_t  gopc;         /* return address of the gort_go that created it */
    int64_t    parentgoid;   /* the goroutine that did; 0 for a thread */
    int64_t    waitsince;    /* sched.coarsenow when it last parked */
    /* Execution trace (exectrace.c), with traceflow and tracefrom above. */
    uint16_t   traceseq;     /* its unpark events, for their codes */
    void      *racectx;      /* race flavour: what its wakers synchronise through (race.h) */
} __attribute__((aligned(GORT_CACHELINE)));
/* A start writes the G's first line only, as execute does anyway, and an
 * unpark the first two, as goready and the channel's hand-off do: a traced
 * goroutine started on another P than its creator's costs no more cache
 * lines than an untraced one. */
_Static_assert(offsetof(G, traceflow) < 64 && offsetof(G, tracefrom) / 64 == offsetof(G, param) / 64,
               "G: the trace's fields left the lines the scheduler touches");

/* ---- M ------------------------------------------------------------------ */

typedef G *(*mcallfn)(M *mp, G *gp);

struct m {
    G         *g0;           /* scheduling context: the OS thread's own stack */
    G         *curg;         /* G running on this M, or NULL on g0 */
    P         *p;            /* P held while running Go code; NULL otherwise */
    P         *nextp;        /* P to acquire when started or woken */
    P         *oldp;         /* P held before a system call */
    void     (*mstartfn)(void); /* run by mstart1 before schedule() */
    int64_t    id;
    M         *alllink;      /* on allm */
    M         *schedlink;    /* on sched.midle or sched.freem */
    bool       spinning;     /* looking for work; counted in sched.nmspinning */
    int32_t    locks;        /* >0: do not hand off or yield (Go's m.locks) */
    G         *lockedg;      /* gort_lock_thread: the only G this M runs */
    uint32_t   lockedext;    /* gort_lock_thread nesting */
    bool       lockedparked; /* asleep in stoplockedm (sched.lock) */
    bool       lockedexit;   /* its locked G exited: the thread goes too */
    note       park;         /* stopm sleeps here; startm wakes */
    uint64_t   fastrand;     /* per-M PRNG state */
    pthread_t  thread;
    int32_t    procid;       /* kernel thread id */
    int        timerslack;   /* the thread's timer slack (ns), restored after a poll */
    void      *gsignal;      /* signal stack (mpreinit) */
    size_t     gsignalsize;
    /* mcall: the function g0 runs for the G that just switched to it. */
    mcallfn    mcallfn;
    G         *mcallg;
    /* gopark's arguments, consumed by park_m on g0. */
    bool     (*waitunlockf)(G *gp, void *arg);
    void      *waitlock;
    sigset_t   sigmask_saved; /* the creator's signal mask, restored by mstart */
    uint32_t   traceidlegen; /* the trace whose "idle" slice on this M is open
                                (exectrace.c); written under sched.lock */
};

/* ---- timers (timer.c) --------------------------------------------------- */

/* A timer in a P's heap. Its function runs on the scheduler, with no lock
 * held, and must not block. */
typedef struct timer {
    P        *pp;        /* atomic: the P whose heap holds it; NULL: in none */
    int32_t   idx;       /* its index in pp->timers (pp->timerslock) */
    bool      waitable;  /* its owner waits for a running f (firing) */
    uint32_t  firing;    /* atomic: how many runs of f are in progress (waitable
                            timers only; a periodic one can be run again by
                            another M before the last run has returned) */
    int64_t   when;      /* gort__nanotime() at which it fires */
    int64_t   period;    /* > 0: fires again every period ns */
    void    (*f)(void *arg, uintptr_t seq);
    void     *arg;
    uintptr_t seq;
} timer;

/* ---- P ------------------------------------------------------------------ */

enum {
    Pidle,      /* not running user code; on the idle list (or being handed) */
    Prunning,   /* owned by an M running user code or the scheduler */
    Psyscall,   /* owner M is in a system call; may be retaken */
    Pgcstop,    /* stopped for stop-the-world (gort_maxprocs) */
    Pdead,      /* no longer used (GOMAXPROCS shrank) */
};

#define RUNQ_SIZE 256

/* Stack credits and caches move between a P and the global pools in
 * batches of STACK_BATCH (see stack.c). */
#define STACK_BATCH 32

struct p {
    int32_t    id;
    uint32_t   status;       /* P status; CAS'd by syscall exit and STW */
    P         *link;         /* on sched.pidle */
    uint32_t   schedtick;    /* a new time slice began (relaxed: sysmon reads it) */
    uint32_t   preempt;      /* atomic; the slice is over (set by sysmon, see schedule1) */
    uint32_t   handed;       /* atomic; off the idle list, not yet acquired */
    uint32_t   syscalltick;  /* incremented on every system call */
    M         *m;            /* back-link to the M holding it */

    /* Local run queue. Read and written lock-free: head is advanced by
     * any thief (CAS), tail only by the owner. */
    uint32_t   runqhead;
    uint32_t   runqtail;
    G         *runq[RUNQ_SIZE];
    /* A G readied by the running G, run next in place of the queue's head,
     * inheriting the time slice (see runqput). CAS'd by thieves. */
    G         *runnext;

    /* Dead Gs for reuse (gfget/gfput). Owner only. */
    G         *gfree;
    int32_t    gfreecnt;

    /* Free stacks and stack credits (stack.c). Owner only. */
    void      *stackcache;   /* singly linked through each stack's top word */
    int32_t    stackcachecnt;
    int32_t    stackcredit;

    /* Timers (timer.c): a 4-ary heap by when, under timerslock; timer0when
     * is its earliest when (0: empty), read lock-free by other Ms. */
    gort_lock  timerslock;
    timer    **timers;
    int32_t    ntimers;
    int32_t    timerscap;
    int64_t    timer0when;

    /* goroutine id batch (Go's goidcache). */
    int64_t    goidcache;
    int64_t    goidcacheend;

    /* Per-P goroutine accounting; summed by gort_num_goroutines. Written by
     * the owner with relaxed stores, read by anyone with relaxed loads. */
    int64_t    ncreated;
    int64_t    nexited;
    /* Counters for gort_read_metrics; owner-written, read relaxed. */
    int64_t    nswitch;
    int64_t    nsyscall;
    int64_t    nparks[GORT_WAIT_REASONS];

    /* Execution trace (exectrace.c): the P's event buffer, written only
     * by the M holding the P, so the event path takes no lock. */
    uint64_t  *tracepos;     /* next free word of tracebuf; NULL: none */
    uint64_t  *tracelim;     /* one past its last word */
    struct tracebuf *tracebuf;
    uint8_t    tracepend;    /* a slice ended here, for this reason + 1, and
                                the next event on the P writes its end */
    uint8_t    tracelazy;    /* unstamped events since the last clock read */
    uint64_t   tracets;      /* when that slice ended; 0: not read yet */
    uint64_t   traceslice;   /* when the slice running here started; 0:
                                none (the scheduler runs) */
    uintptr_t  tracelastfn;  /* the start function of the last creation in
                                tracebuf (0: none yet): the next one of the
                                same function leaves it out */

    /* What sysmon saw last time it looked (sysmon only). */
    struct {
        uint32_t schedtick;
        int64_t  schedwhen;
        uint32_t syscalltick;
        int64_t  syscallwhen;
    } sysmontick;

} __attribute__((aligned(GORT_CACHELINE)));

/* ---- sched -------------------------------------------------------------- */

/* A queue of Gs linked through schedlink, made of chains: runs of Gs that
 * were queued together (runqputslow's half of a run queue, gfput's batch of
 * dead Gs), whose head G records the chain's tail and length. A whole chain
 * comes off in O(1), touching two Gs, so the lock holder never walks a
 * hundred cold G structs; the Gs of the chain are walked after the lock is
 * dropped. Protected by its owner's lock. */
typedef struct gqueue { G *head, *tail; int32_t n; } gqueue;

typedef struct schedt {
    gort_lock  lock;         /* protects everything below unless said */

    uint64_t   goidgen;      /* atomic */

    M         *midle;        /* idle Ms waiting in stopm */
    int32_t    nmidle;
    int32_t    nmidlelocked; /* <0: sysmon is handing off a P (see retake) */
    int32_t    nmsys;        /* Ms that never run goroutines (sysmon) */
    int64_t    mnext;        /* next M id (mReserveID); also Ms created */
    int64_t    nmfreed;      /* Ms that exited before shutdown (locked Gs' threads) */
    int32_t    maxmcount;    /* thread limit (gort_config.max_threads) */
    int32_t    mcount;       /* Ms on allm, m0 included */
    M         *freem;        /* Ms that have exited, waiting for join */

    P         *pidle;        /* idle Ps */
    uint32_t   npidle;       /* atomic; written under lock */
    uint32_t   nmspinning;   /* atomic */

    gqueue     runq;         /* global run queue */
    int32_t    runqsize;     /* = runq.n; atomic for lock-free emptiness checks */

    gort_lock  gflock;       /* protects gfree */
    gqueue     gfree;        /* dead Gs, global pool, in chains of gfreeBatch */
    int32_t    ngfree;       /* = gfree.n; atomic for lock-free emptiness checks */

    uint32_t   gcwaiting;    /* atomic; stop-the-world requested */
    int32_t    stopwait;
    note       stopnote;

    uint32_t   shutdown;     /* atomic; set when main returns */
    note       mexitnote;    /* m0 waits here for the last M to exit */
    bool       mexitwait;    /* m0 sleeps on mexitnote */
    note       sysmonnote;   /* sysmon sleeps here */
    bool       sysmonsleeping; /* sysmon is asleep on sysmonnote */
    uint32_t   sysmonwait;   /* atomic; ... in its all-Ps-idle sleep */
    int32_t    sysmondelay;  /* atomic; sysmon's current poll interval (us) */

    int64_t    nforeign;     /* atomic; goroutines created by threads that are not Ms */
    int64_t    lastpoll;     /* atomic; when the network was last polled; 0: an M is
                                blocked in netpoll now */
    int64_t    pollUntil;    /* atomic; when that M's poll ends (0: no deadline) */
    int32_t    in_syscall;   /* atomic; Gs between syscall enter and exit */
    int64_t    steals;       /* atomic */
    int64_t    nhandoff;     /* atomic; Ps retaken from system calls and handed off */
    int64_t    nforeigncreated; /* atomic; goroutines made where there was no P */
    int64_t    starttime;    /* gort_now() when gort_run started */
    int64_t    coarsenow;    /* atomic; nanotime at sysmon's last round */
    bool       mainstarted;  /* atomic */
    G         *maing;
} schedt;

extern schedt   gort__sched;
extern M       *gort__allm;       /* atomic pointer; pushed by mcommoninit */
extern M        gort__m0;
extern P      **gort__allp;       /* [gort__nallp] */
extern int32_t  gort__nallp;      /* Ps allocated (>= gomaxprocs) */
extern int32_t  gort__gomaxprocs; /* atomic */
extern int32_t  gort__ncpu;
/* Run generation: odd while a runtime runs (set before the first goroutine
 * exists), even once gort_run has torn it down; a new run makes it odd
 * again. Lets a channel tell waiters of an ended run from live ones. */
extern uint32_t gort__rungen;     /* atomic */

/* Debug settings from $GORT_DEBUG. */
extern int32_t  gort__debug_schedtrace;   /* ms; 0 off */
extern int32_t  gort__debug_mtrace;       /* print each M as it starts */
extern int32_t  gort__debug_stackguard;   /* a gort_stack_guard to force; 0 the best */
extern int32_t  gort__debug_quitdump;     /* SIGQUIT dumps goroutines and exits (default 1) */
extern int32_t  gort__debug_scheddetail;  /* schedtrace with Go's per-P/M/G lines */
/* $GORT_TRACEBACK, as Go's GOTRACEBACK: what a fatal error prints. */
enum { TRACEBACK_NONE, TRACEBACK_ALL, TRACEBACK_SYSTEM, TRACEBACK_CRASH };
extern int32_t  gort__traceback_level;

/* ---- TLS: the current M ------------------------------------------------- */

extern __thread M *gort__tls_m __attribute__((tls_model("initial-exec")));

/* The current M. A goroutine may resume on another thread after any call
 * that can park, and gcc caches thread-local addresses across calls (the
 * thread pointer, %fs or TPIDR_EL0, is taken to be constant for a
 * function's whole body), so the M is read through an asm volatile load
 * from the thread pointer (arch/arch.h) that the compiler can neither
 * cache nor move across a context switch: volatile keeps two reads apart,
 * the memory clobber keeps each after the call before it. */
static inline M *getm(void) { return (M *)gort__arch_getm(); }

/* The running goroutine, or NULL on g0 or a thread that is not an M. */
static inline G *getg(void) {
    M *mp = getm();
    return mp ? mp->curg : NULL;
}

/* ---- status ------------------------------------------------------------- */

/* Moves gp from status oldval to newval. Every transition is made by the
 * G's current owner (the M running it, or the one that took it off a queue
 * or a wait list), and no one else scans Gs (there is no garbage collector),
 * so a checked store-release does the job Go needs a CAS for, without a
 * locked instruction on the switch path. */

/* Prints "gort: fatal error: <msg>" and aborts (signal.c). */
__attribute__((noreturn)) void gort__throw(const char *msg);
static inline uint32_t readgstatus(G *gp) { return load_acq(&gp->atomicstatus); }
static inline void gort__casgstatus(G *gp, uint32_t oldval, uint32_t newval) {
    if (unlikely(load_relaxed(&gp->atomicstatus) != oldval))
        gort__throw("casgstatus: bad incoming values");
    store_rel(&gp->atomicstatus, newval);   /* release: pairs with readgstatus */
}

/* ---- switching (the scheduler's hot path, so inline) --------------------- */

/* Switches from the context of G from to that of G to (either may be a
 * g0). AddressSanitizer and ThreadSanitizer each keep per-stack state and
 * must be told before every switch; with neither, this is one call. */
static inline void gort__gswitch(G *from, G *to) {
#ifdef __SANITIZE_ADDRESS__
    __sanitizer_start_switch_fiber(&from->asan_fake_stack, (const void *)to->stack.lo,
                                   to->stack.hi - to->stack.lo);
#endif
#ifdef GORT_TSAN_FIBERS
    __tsan_switch_to_fiber(to->tsan_fiber, GORT_TSAN_SWITCH);
#endif
    gort__ctx_switch(&from->sched, &to->sched);
#ifdef __SANITIZE_ADDRESS__
    __sanitizer_finish_switch_fiber(from->asan_fake_stack, NULL, NULL);
#endif
}

void gort__gobind(M *mp, G *gp);
void gort__forallg(void (*fn)(G *gp, void *arg), void *arg);

/* Switches from g0 to gp; a G that has never run gets its stack first. */
static inline void gort__gogo(M *mp, G *gp) {
    if (unlikely(gp->stack.lo == 0))
        gort__gobind(mp, gp);
    gort__gswitch(mp->g0, gp);
}

/* Switches from the running G to g0, which then calls fn(m, gp). Returns
 * when gp is next scheduled, possibly on another M: callers re-read getm(). */
void gort__stackcanary_check(G *gp);   /* stack.c */

/* A stack without a guard page is checked as its goroutine switches away
 * and when it exits (stack.c, "canaries"): one flag test otherwise. */
static inline void gort__stackcheck(G *gp) {
    if (unlikely(gp->stackcanary))
        gort__stackcanary_check(gp);
}

static inline void gort__mcall(mcallfn fn) {
    M *mp = getm();
    G *gp = mp->curg;
    gort__stackcheck(gp);
    mp->mcallfn = fn;
    mp->mcallg = gp;
    gort__gswitch(gp, mp->g0);
}

/* ---- fatal errors (signal.c) -------------------------------------------- */

/* gort__throw (declared above) prints "gort: fatal error: <msg>" and
 * aborts: for broken invariants, in Go's throw("function: invariant") form. */
/* Prints "gort: <formatted>" and aborts: user-facing fatal errors. */
__attribute__((noreturn, format(printf, 1, 2))) void gort__fatal(const char *fmt, ...);
void gort__signal_install(void);
/* traceback.c: every goroutine, with its state and frames, to fd; why (if
 * not NULL) first; sigctx is the ucontext of a fault in the current
 * goroutine, or NULL. 0 or a negative errno. */
int  gort__dumpall(int fd, const char *why, const void *sigctx);
const char *gort__waitreason_string(int r);   /* sched.c: Go's words */
/* traceback.c: a symbol table for another thread than the dumper's. */
typedef struct symtab symtab;
symtab     *gort__symtab_open(void);
const char *gort__symtab_name(symtab *tab, uintptr_t pc);
void        gort__symtab_close(symtab *tab);
void gort__signal_uninstall(void);
int  gort__minit(M *mp);     /* per-thread signal setup on the M's own thread */
void gort__unminit(M *mp);
int  gort__mpreinit(M *mp);  /* allocate the signal stack */
void gort__mfreesignal(M *mp);

/* ---- stack.c ------------------------------------------------------------ */

extern size_t gort__stacksize;   /* usable bytes per stack */

int  gort__stackpool_init(size_t size);
void gort__stackpool_destroy(void);
int  gort__stackreserve(P *pp);                 /* refill pp->stackcredit */
int  gort__stackreserve1(void);                 /* one credit, for foreign threads */
int  gort__stackpool_fit(void);                 /* capacity for the Ps that exist */
void gort__stackcredit_return(P *pp);           /* trim pp->stackcredit */
stack gort__stackalloc(P *pp, bool *canary);    /* cannot fail: backed by a credit */
void gort__stackfree(P *pp, stack st, bool canary);
void gort__stackstats(gort_metrics *m);
void gort__stackcache_flush(P *pp);             /* P destroyed: give everything back */
bool gort__stack_guard_hit(uintptr_t addr);      /* addr is in some guard page */

/* ---- runq.c ------------------------------------------------------------- */

void gort__runqput(P *pp, G *gp, bool next);
G   *gort__runqget(P *pp, bool *inheritTime);
G   *gort__runqsteal(P *pp, P *p2, bool stealRunNextG);
bool gort__runqempty(P *pp);
void gort__globrunqput(G *gp);
void gort__globrunqputhead(G *gp);
G   *gort__globrunqget(P *pp, int32_t max);
void gort__gqueue_pushchain(gqueue *q, G *head, G *tail, int32_t n);
G   *gort__gqueue_pop(gqueue *q);
G   *gort__gqueue_popchain(gqueue *q, int32_t *n);
void gort__runqputlist(P *pp, G *list);

/* ---- g.c ---------------------------------------------------------------- */

G   *gort__malg(void);
void gort__gfpurge(P *pp);
void gort__allgs_free(void);
int64_t gort__newproc1(void (*fn)(void *), void *arg, uintptr_t gopc, P *pp, G **gpp);
int64_t gort__gcount(void);

/* ---- m.c ---------------------------------------------------------------- */

void gort__newm(void (*fn)(void), P *pp, int64_t id);
void gort__newm1(M *mp);
void gort__reapm(void);
void gort__handoffp(P *pp);

/* ---- lockosthread.c ------------------------------------------------------- */

bool gort__newm_handoff(M *mp);
bool gort__stoplockedm(M *mp);
void gort__startlockedm(M *mp, G *gp);
void gort__wakelockedms_locked(void);
void gort__template_shutdown(void);
void gort__template_reset(void);
void gort__mstart0(void);
void gort__stopm(void);
void gort__startm(P *pp, bool spinning);
M   *gort__mget(void);
void gort__mcommoninit(M *mp, int64_t id);
void gort__mexit_all(void);
void gort__shutdown_begin(void);
bool gort__foreign_enter(void);
void gort__foreign_exit(void);

/* ---- p.c ---------------------------------------------------------------- */

P   *gort__procresize(int32_t nprocs, int *err);   /* sched.lock held, world stopped */
void gort__acquirep(P *pp);
P   *gort__releasep(void);
void gort__pidleput(P *pp);
P   *gort__pidleget(void);
void gort__shutdown_stw(void);
void gort__stoptheworld(void);
void gort__starttheworld(int32_t newprocs);
void gort__gcstopm(void);
void gort__pfree_all(void);

/* ---- sched.c ------------------------------------------------------------ */

void gort__schedule(void);
void gort__gopark(bool (*unlockf)(G *, void *), void *lock, waitReason reason);
void gort__goparkunlock(gort_lock *lock, waitReason reason);
void gort__goready(G *gp);
void gort__wakep(void);
void gort__checkdead(void);
void gort__incidlelocked(int32_t v);
uint32_t gort__fastrand(void);
void gort__stealorder_init(int32_t nprocs);

/* ---- sema.c ------------------------------------------------------------- */

/* A goroutine waiting on something (Go's sudog). Lives on the waiting
 * goroutine's (or thread's) stack; owned by the waiter until it is
 * dequeued by the waker under the lock of the queue it is on. */
struct sudog {
    G         *g;
    sudog     *next, *prev;  /* on a wait queue */
    void      *elem;         /* data element (chan.c) */
    void      *c;            /* channel, for select */
    sudog     *waitlink;     /* g->waiting list (select) */
    uintptr_t  addr;         /* semaphore address (sema.c) */
    uint32_t   ticket;       /* sema: 1 = handed off directly */
    bool       isSelect;
    bool       success;      /* chan: woken by a value (true) or close (false) */
    bool       freechan;     /* chan: the value came from gort_after: free the channel */
    note      *osnote;       /* set when the waiter is a thread, not a G */
};

/* Race flavour: a parked waiter and its waker synchronise through the
 * waiter's goroutine's race context (a heap byte of its own, freed when it
 * exits, so no edge outlives it), or a thread waiter's sudog. The waiter
 * releases before it parks (racepark) and acquires once woken
 * (raceunpark); the waker acquires before it hands over and releases
 * after. Together, Go's racesync (chan.go). */
static inline void *racewaiter(sudog *sg) { return sg->g ? sg->g->racectx : (void *)sg; }
static inline void racepark(sudog *sg) {
    if (raceenabled)
        racerelease(racewaiter(sg));
}
static inline void raceunpark(sudog *sg) {
    if (raceenabled)
        raceacquire(racewaiter(sg));
}

void gort__semacquire(uint32_t *addr, bool lifo, waitReason reason);
void gort__semrelease(uint32_t *addr, bool handoff);
bool gort__sync_canspin(int iter);
void gort__sema_reset(void);

/* ---- timer.c ------------------------------------------------------------ */

int     gort__addtimer(timer *t);
bool    gort__deltimer(timer *t);
void    gort__timer_waitfire(timer *t);
int64_t gort__runtimers(P *pp, int64_t now);
int64_t gort__timesleepuntil(void);
int64_t gort__timesleepuntil1(bool notrunning);
void    gort__movetimers(P *pp, P *from);
void    gort__timers_free(P *pp);

/* ---- netpoll.c, fd.c ------------------------------------------------------ */

/* Descriptors up to this number are polled; larger ones are used with
 * blocking calls between syscall enter and exit. */
#define PD_MAXFD (1 << 20)

/* Go's pollDesc: one per descriptor number, made on first use, kept until
 * shutdown (netpoll.c explains rg/wg and fdseq). */
typedef struct pollDesc {
    uintptr_t  rg, wg;       /* atomic: pdNil, pdReady, pdWait or the waiting G */
    gort_lock  lock;         /* protects the deadline state and registration */
    int32_t    fd;
    uint32_t   fdseq;        /* atomic; generation of the file behind fd */
    uint32_t   closing;      /* atomic; gort_close in progress */
    uint32_t   issock;       /* atomic; the file is a socket (use MSG_DONTWAIT) */
    uint32_t   rwany;        /* atomic; rg's waiter also wants write events */
    uint32_t   refs;         /* atomic; calls in progress (gort_close waits) */
    int64_t    rd, wd;       /* atomic; deadlines: 0 none, -1 passed, else when */
    uint32_t   rseq, wseq;   /* deadline generations (lock) */
    timer      rt, wt;       /* deadline timers */
} pollDesc;

/* A list of Gs through schedlink (Go's gList), as netpoll returns them:
 * a gqueue of one-G chains. */
typedef gqueue glist;

extern uint32_t gort__netpollWaiters;   /* atomic; Gs parked in the poller */

int       gort__netpollinit(void);
void      gort__netpollclose(void);
glist     gort__netpoll(int64_t delay);
void      gort__netpollBreak(void);
pollDesc *gort__pd_get(int fd);
int       gort__pd_arm(pollDesc *pd);
int       gort__netpollcheckerr(pollDesc *pd, int mode, uint32_t seq);
bool      gort__netpollblock(pollDesc *pd, int mode, uint32_t seq);
G        *gort__netpollunblock(pollDesc *pd, int mode, bool ioready);
void      gort__netpollgoready(G *gp);
void      gort__pd_setdeadline(pollDesc *pd, int modes, int64_t when);
void      gort__pd_closing(pollDesc *pd);
void      gort__pd_closed(pollDesc *pd);
void      gort__pd_unregister(pollDesc *pd);

/* sched.c: readies a netpoll list; wakes the poller for an earlier timer. */
void gort__injectglist(glist *list);
void gort__wakenetpoller(int64_t when);

/* ---- exectrace.c: the execution trace (Go's trace.go) ------------------ */

/* The generation of the trace being recorded (1, 2, ...), 0 when none;
 * each hook below is one relaxed load and a branch predicted not taken
 * when it is 0. */
extern uint32_t gort__tracing;

/* The trace's writer threads alive (0 or 1): threads that are not Ms,
 * which checkdead does not count as able to make or ready a goroutine. */
extern int32_t gort__tracewriters;

#ifndef GORT_NOTRACE
static inline bool gort__traceon(void) { return unlikely(load_relaxed(&gort__tracing) != 0); }
#else
/* A build without the hooks, to measure what they cost when off
 * (bench/traceoverhead.sh); gort_trace_start still works but records
 * nothing. */
static inline bool gort__traceon(void) { return false; }
#endif

/* Why a slice of a P's track ended, beyond the wait reasons. */
enum {
    traceEndExit = 64,    /* the goroutine returned */
    traceEndYield,        /* gort_yield */
    traceEndSyscall,      /* gort_syscall_enter */
    traceEndStop,         /* the trace stopped while it ran */
};

/* The events, each called where Go's trace.go has its namesake. pp is the
 * P the current M holds (NULL: none, and the event goes through the
 * locked buffer of P-less events). */
void gort__traceGoCreateSlow(P *pp, G *newg);
void gort__traceGoUnparkSlow(P *pp, G *gp);

/* The events of the switch path are inline; exectrace.c has the others,
 * the buffers and the format. An event is a word (gort__traceword), the
 * clock (gort__cputicks; not in the Lazy types), then the words its type
 * has. The switch path is the most frequent of all, so it writes one
 * event: a start, two words, one more for the slice that readied the
 * goroutine (TRACE_FLOWREF). A goroutine readied from a
 * running slice writes nothing: it notes in the G the slice's P and start
 * time, and its next start carries them, so that the writer draws a flow
 * arrow from that slice to this one. Other flows (a creation, an unpark
 * from the scheduler or from no P) are known by the goroutine's id and a
 * code their event and the start both carry: TRACE_FLOWCREATE, or 2 + the
 * goroutine's unpark count modulo 2^13. */
enum { traceEvGoStart = 1, traceEvGoCreateLazy = 16 };
#define TRACE_LAZY 16   /* creations and unparks per clock read */
#define TRACE_FLOWCREATE 1
#define TRACE_FLOWREF 0x4000   /* | the P: the start's third word is the slice's */

/* type (5 bits) | aux (8 bits: a slice's end reason + 1, ...) | 1 bit
 * (unused) | flow code (15 bits) | arg (35 bits: a goroutine id, a P, an
 * M, a count). */
static inline uint64_t gort__traceword(int type, unsigned aux, unsigned flow, uint64_t arg) {
    return (uint64_t)type | (uint64_t)(aux & 0xff) << 5 | (uint64_t)flow << 14 | arg << 29;
}

/* The flow code of gp's next unpark event. */
static inline uint16_t gort__traceflownext(G *gp) {
    return (uint16_t)(2 + (++gp->traceseq & 0x1fff));
}

uint64_t *gort__traceevslow(P *pp, int need);   /* pp's buffer is full */

/* gort__cputicks, the clock: arch/arch.h. */

/* Room for need words in pp's buffer, which only the M holding pp writes. */
static inline uint64_t *gort__traceev(P *pp, int need) {
    uint64_t *w = pp->tracepos;
    if (likely(w != NULL && w + need <= pp->tracelim)) {
        pp->tracepos = w + need;
        return w;
    }
    return gort__traceevslow(pp, need);
}

/* execute: gp's slice begins on pp, and ends the one noted by GoPark or
 * GoEnd, at the time GoPark read (else now). With TRACE_FLOWREF a third
 * word is the readying slice's start; room for it is taken and given
 * back when unused, so that the event has no branch. The start function
 * is not written: gp's creation has it, or the trace's first events
 * (the goroutines that were alive when it started, exectrace.c). */
static inline void gort__traceGoStart(P *pp, G *gp) {
    uint64_t ref = gp->traceflow / TRACE_FLOWREF;   /* the flow code is under 2 * FLOWREF */
    uint64_t *w = gort__traceev(pp, 3);
    uint64_t ts = pp->tracets ? pp->tracets : gort__cputicks();
    pp->tracets = 0;
    w[0] = gort__traceword(traceEvGoStart, pp->tracepend, gp->traceflow, (uint64_t)gp->goid);
    w[1] = ts;
    w[2] = gp->tracefrom;
    pp->tracepos = w + 2 + ref;
    pp->traceslice = ts;
    gp->traceflow = 0;
    pp->tracepend = 0;
}

/* park_m, gosched_m, first thing on g0: the slice ends now. The clock is
 * read here and the end written by the next event (exectrace.c says why
 * here). */
static inline void gort__traceGoPark(P *pp, int reason) {
    pp->tracepend = (uint8_t)(reason + 1);
    pp->tracets = gort__cputicks();
}

/* goexit0: the slice ended; the next event reads the clock for its end. A
 * goroutine's last act is often an atomic on data another P shares (a
 * wait group's count), which a clock read just after it would wait for. */
static inline void gort__traceGoEnd(P *pp) {
    pp->tracepend = traceEndExit + 1;
}

/* newproc1: newg made on pp, by the goroutine running there. The
 * creation carries the start function, which newg's starts leave out; a
 * P's creations of one function in a row (a server's accept loop, a
 * fan-out) carry it once per buffer. Most creations are not stamped
 * (TRACE_LAZY); the writer places them just after the stamp before them,
 * inside the creating slice. */
static inline void gort__traceGoCreate(P *pp, G *newg) {
    if (unlikely(pp->tracepend != 0 || ++pp->tracelazy >= TRACE_LAZY)) {
        gort__traceGoCreateSlow(pp, newg);
        return;
    }
    uint64_t *w = gort__traceev(pp, 2);
    uintptr_t fn = (uintptr_t)newg->fn;
    uint64_t same = fn == pp->tracelastfn;   /* after traceev: a new buffer has none */
    w[0] = gort__traceword(traceEvGoCreateLazy, (unsigned)same, TRACE_FLOWCREATE,
                           (uint64_t)newg->goid);
    w[1] = fn;
    pp->tracepos = w + 2 - same;
    pp->tracelastfn = fn;
    newg->traceflow = TRACE_FLOWCREATE;
}

/* goready: gp readied on pp. From a running slice, the common case, gp
 * notes the slice and nothing is written; from the scheduler or from no
 * P, exectrace.c writes an unpark event. */
static inline void gort__traceGoUnpark(P *pp, G *gp) {
    if (unlikely(pp == NULL || pp->tracepend != 0 || pp->traceslice == 0)) {
        gort__traceGoUnparkSlow(pp, gp);
        return;
    }
    gp->traceflow = (uint16_t)(TRACE_FLOWREF | pp->id);
    gp->tracefrom = pp->traceslice;
}
void gort__traceGoSysCall(P *pp, G *gp);
void gort__traceGoSysExit(P *pp, G *gp);     /* pp NULL: the G lost its P */
void gort__traceSteal(P *pp, P *victim);
void gort__traceTimer(P *pp, void *fn);
void gort__traceNetpoll(P *pp, int32_t n);
void gort__traceHandoff(P *pp);
void gort__traceStamp(P *pp);       /* stamps a pending slice end now */
void gort__traceMPark(M *mp);     /* sched.lock held: mp joined sched.midle */
void gort__traceMUnpark(M *mp);   /* mp, woken, on its own thread */
void gort__traceNewM(M *mp);
void gort__trace_runstart(void);   /* gort_run: GORT_TRACE */
void gort__trace_shutdown(void);   /* gort_run's teardown: every M gone */

/* ---- syscall.c, time.c, trace.c ----------------------------------------- */

__attribute__((noreturn)) void gort__fatal_insyscall(G *gp, const char *what);
int64_t gort__nanotime(void);
void gort__schedtrace(void);
void gort__sysmon(void);
void gort__sysmonwake_locked(bool deep_only);
void gort__debug_parse(void);
int32_t gort__env_maxprocs(void);
int32_t gort__getproccount(void);
void gort__mtrace_started(M *mp);

#endif /* GORT_RUNTIME_H */
