/*
 * exectrace.c: the execution trace (Go's trace.go), written as Chrome Trace
 * Event JSON for Perfetto and chrome://tracing.
 *
 * What it shows. Process 1 has a track per P: each slice is a goroutine
 * running there, named by its start function, with its id and why the
 * slice ended (a wait reason in Go's words, "exit", "yield", "syscall").
 * Instants on the same track mark goroutine creations, steals, timers that
 * fired and network polls; flow arrows go from the slice that created or
 * readied a goroutine to the slice where it next ran. Process 2 has a track
 * per M: "syscall" slices while a goroutine is in a system call there,
 * "idle" slices while the M is parked in stopm, and an instant when it is
 * created (newm). Hand-offs of a P taken from a system call are instants on
 * the P's track.
 *
 * Recording. Each P has a buffer that only the M holding the P writes, so
 * the event path takes no lock and no locked instruction, as Go's per-P
 * traceBuf. Events made where no P is held (an M parking, sysmon handing a
 * P off, a system call's slow exit, a thread that is not an M readying a
 * goroutine) go to one more buffer under trace.lock, as Go's trace.buf
 * does when there is no P. A full buffer goes on a queue for the writer
 * thread and a free one is taken (under trace.lock: once per 64 KiB).
 *
 * The writer thread (not an M: it never runs goroutines) appends full
 * buffers as they are, in binary, to an unnamed temporary file beside the
 * trace, as Go writes its binary trace: a write of 64 KiB per buffer keeps
 * up with any event rate, where JSON would not (a million goroutines make
 * half a gigabyte of it). The JSON is made from that file when the trace
 * stops, and gort_trace_stop returns when it is complete. Memory stays
 * bounded: at most TRACE_MAXBUFS buffers exist, and an M that needs one
 * more waits for the writer to free one rather than lose events.
 *
 * An event is a word (type, aux, flow code, arg: gort__traceword in
 * runtime.h), the cycle counter (rdtsc, converted to ns at the end by the
 * rate measured against CLOCK_MONOTONIC over the whole trace), then what
 * its type needs. A channel round trip writes little: a start per switch,
 * three words, and nothing for the unparks, which the starts carry
 * (TRACE_FLOWREF, runtime.h); a goroutine created and run, a creation
 * of one word and a start of two. A program that switches twenty million
 * times a second makes half a gigabyte a second of them even so, which
 * the writer must copy out while sharing the CPUs with the program.
 *
 * Cost. With no trace running each hook is one relaxed load and a branch
 * that is not taken. With one, reading the clock is most of an event's
 * cost, so a switch reads it once. A goroutine that parks or yields reads
 * it where its slice ends (GoPark, first thing on g0); one that exits
 * leaves it to the next event (GoEnd). The end is not written there: the
 * P notes it (P.tracepend, P.tracets) and its next event writes it, which
 * is the next goroutine's start when the scheduler goes straight to one;
 * that start takes the same time. A channel round trip thus reads the
 * clock twice instead of six times (an unpark from a slice reads none;
 * creations and the scheduler's unparks read it once in 16, see lazy()).
 * When the scheduler looks further (findrunnable) or gives up the P, the
 * end is written there.
 *
 * Where the read is matters as much as how many there are. rdtsc is not
 * ordered with other instructions on paper, but on the x86 machines gort
 * is measured on it waits for the locked instructions before it to
 * finish: a rdtsc just after an atomic exchange cost 15 ns where one
 * after plain work cost 4. The scheduler's way from g0 to the next
 * goroutine is a row of them (the channel's unlock, the CAS that takes
 * runnext): reading the clock in execute, after them, made a traced
 * round trip about 29 ns slower than an untraced one, and at the top of
 * park_m about 21. An exit is the other way round: a goroutine's last act
 * is often an atomic on a line another P shares (a wait group's count),
 * and a read at the top of goexit0 made the spawn benchmark a tenth
 * slower than one in execute. The events of the switch path are inline
 * (runtime.h); the rest are here.
 *
 * Starting and stopping. A trace started by gort_trace_start stops the
 * world (p.c) so that no P is writing while the buffers are set up, and so
 * does gort_trace_stop, which then hands every buffer to the writer and
 * waits for it to finish the file. GORT_TRACE starts one in gort_run before
 * any goroutine runs; one still running when gort_run returns is ended
 * after the last M is gone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"

#define TRACEBUF_BYTES  (64 << 10)
#define TRACEBUF_WORDS  ((TRACEBUF_BYTES - 32) / 8)
#define TRACE_MAXBUFS   256             /* 16 MiB of events at most */
#define TRACE_WRITEPERIOD (10 * 1000 * 1000)   /* ns between the writer's rounds */

/* A buffer; what follows link is written to the temporary file as is. */
typedef struct tracebuf {
    struct tracebuf *link;
    int32_t  pid;        /* the P whose events these are; -1: the P-less stream */
    uint32_t n;          /* words written, set when the buffer is queued */
    uint64_t lost;       /* event words lost just before these (no memory) */
    uint64_t ev[TRACEBUF_WORDS];
} tracebuf;

#define TRACEBUF_HDR (offsetof(tracebuf, ev) - offsetof(tracebuf, pid))

/* Event types. P: made on a P's stream; G: on the P-less stream, whose
 * events also carry the M (-1: a thread that is not an M). An event is
 * the word gort__traceword(type, aux, flow, arg), the clock (but for the
 * Lazy types), then the words listed. The flow code is the goroutine's
 * (runtime.h). */
enum {
    evGoStart = 1,   /* P  arg goid, aux end reason + 1 of the slice before (0: none),
                           flow: the flow it ends (0: none); the readying slice's
                           start if TRACE_FLOWREF (the function is in the
                           goroutine's evGoCreate or evGoFn) */
    evGoEnd,         /* P  aux reason: the running slice ended */
    evGoUnpark,      /* PG arg goid, flow; [m] */
    evGoCreate,      /* PG arg goid, flow TRACE_FLOWCREATE; fn [, m] */
    evGoSysCall,     /* P  arg goid; m: the slice ends, the M's syscall begins */
    evGoSysExit,     /* PG arg goid; m [, fn on P: the goroutine runs on] */
    evSteal,         /* P  arg victim P */
    evTimer,         /* PG fn [, m] */
    evNetpoll,       /* PG arg goroutines readied [; m] */
    evHandoff,       /* G  arg P; m */
    evMPark,         /* G  arg m */
    evMUnpark,       /* G  arg m */
    evNewM,          /* G  arg new m; creator m */
    evMSysCall,      /* G  arg goid; m: in a system call when the trace started */
    evGoUnparkLazy,  /* P  evGoUnpark without its clock word */
    evGoCreateLazy,  /* P  evGoCreate without its clock word; aux 1: and without
                           fn, which is that of the creation before it in the
                           buffer */
    evGoFn,          /* G  arg goid; fn: a goroutine alive when the trace started
                           (no clock: it only names the goroutine's slices) */
};

#define cputicks gort__cputicks
#define evp gort__traceev
_Static_assert((int)evGoStart == (int)traceEvGoStart &&
                   (int)evGoCreateLazy == (int)traceEvGoCreateLazy,
               "runtime.h's inline events and exectrace.c's format differ");

static inline uint64_t evword(int type, int aux, uint64_t arg) {
    return gort__traceword(type, (unsigned)aux, 0, arg);
}

uint32_t gort__tracing;
int32_t gort__tracewriters;

enum { traceIdle, traceStarting, traceOn, traceStopping };

static struct {
    gort_lock  lock;       /* protects everything below but the writer's own state */
    int        state;      /* traceIdle; traceStarting (gort_trace_start is stopping
                              the world); traceOn; traceStopping (stop is waiting
                              for the writer); changed under lock */
    int        fd;         /* the JSON */
    int        tmpfd;      /* the binary events, until the trace stops */
    tracebuf  *full, *fulltail;   /* queued for the writer, oldest first */
    int        nfull;
    tracebuf  *free;
    int        nbufs;
    bool       stopping;   /* the writer drains the queue and ends the file */
    bool       asleep;     /* the writer sleeps on wake */
    note       wake;
    /* The P-less stream. */
    uint64_t  *gpos, *glim;
    tracebuf  *gbuf;
    uint64_t   ticks0, ticks1;   /* the clock at start and stop */
    int64_t    ns0, ns1;
    pthread_t  writer;
    uint32_t   gen;        /* trace generation: 1, 2, ... (never 0) */
    int        err;        /* the writer's first failed write (negative errno) */
    uint64_t   lost;       /* event words lost for want of memory */
} trace;

/* A buffer scribbled on when there is no memory for a real one: what is
 * written there is counted lost. The writer never reads it. */
static tracebuf sinkbuf;

/* ---- buffers ----------------------------------------------------------------- */

/* Queues a full buffer for the writer. The writer is not woken for each:
 * waking a sleeping thread costs the waker a system call and, on a
 * virtual machine, the wake-up of an idle CPU, which made tracing a
 * channel round trip a fifth slower; it comes round every
 * TRACE_WRITEPERIOD by itself, and is woken early only when a quarter of
 * the buffers wait. */
static void enqueue_locked(tracebuf *b) {
    b->link = NULL;
    if (trace.fulltail)
        trace.fulltail->link = b;
    else
        trace.full = b;
    trace.fulltail = b;
    if (++trace.nfull >= TRACE_MAXBUFS / 4 && trace.asleep) {
        trace.asleep = false;
        gort__notewakeup(&trace.wake);
    }
}

/* The stream's buffer is full (or there is none): queue it and take
 * another, waiting for the writer to free one if TRACE_MAXBUFS exist.
 * Returns where the next need words go, or NULL if the trace stopped
 * while this waited (only the P-less stream can see that: a P's stream
 * stops only when its P is stopped). trace.lock held. */
static uint64_t *bufnext_locked(uint64_t **pos, uint64_t **lim, tracebuf **bufp, int32_t pid,
                                int need) {
    tracebuf *old = *bufp;
    uint64_t lost = 0;
    if (old == &sinkbuf)
        lost = (uint64_t)(*pos - old->ev);
    else if (old) {
        old->n = (uint32_t)(*pos - old->ev);
        enqueue_locked(old);
    }
    *bufp = NULL;
    *pos = *lim = NULL;
    tracebuf *b;
    for (;;) {
        if ((b = trace.free) != NULL) {
            trace.free = b->link;
            break;
        }
        if (trace.nbufs < TRACE_MAXBUFS) {
            if ((b = malloc(sizeof *b)) != NULL)
                trace.nbufs++;
            else
                b = &sinkbuf;   /* no memory: lose events rather than stop */
            break;
        }
        gort__unlock(&trace.lock);
        gort__usleep(50);
        gort__lock(&trace.lock);
        if (trace.state != traceOn) {
            trace.lost += lost;
            return NULL;
        }
    }
    if (b == &sinkbuf)
        trace.lost += lost;
    b->link = NULL;
    b->pid = pid;
    b->n = 0;
    b->lost = b == &sinkbuf ? 0 : lost;
    *bufp = b;
    *pos = b->ev + need;
    *lim = b->ev + TRACEBUF_WORDS;
    return b->ev;
}

/* pp's buffer is full (or there is none): the slow path of gort__traceev. */
uint64_t *gort__traceevslow(P *pp, int need) {
    uint64_t *w;
    gort__lock(&trace.lock);
    w = bufnext_locked(&pp->tracepos, &pp->tracelim, &pp->tracebuf, pp->id, need);
    gort__unlock(&trace.lock);
    pp->tracelastfn = 0;   /* each buffer names the function of its first creation */
    if (unlikely(w == NULL))
        w = sinkbuf.ev;
    return w;
}

/* Room for need words on the P-less stream, with trace.lock held; NULL
 * (and the lock released) if the trace has stopped meanwhile. */
static uint64_t *evg_lock(int need) {
    gort__lock(&trace.lock);
    if (trace.state != traceOn || !load_relaxed(&gort__tracing)) {
        gort__unlock(&trace.lock);
        return NULL;
    }
    uint64_t *w = trace.gpos;
    if (w != NULL && w + need <= trace.glim) {
        trace.gpos = w + need;
        return w;
    }
    w = bufnext_locked(&trace.gpos, &trace.glim, &trace.gbuf, -1, need);
    if (w == NULL)
        gort__unlock(&trace.lock);
    return w;
}

static int64_t curmid(void) {
    M *mp = getm();
    return mp ? mp->id : -1;
}

/* Whether a creation or an unpark goes without a stamp (the Lazy event
 * types, with no clock word): TRACE_LAZY - 1 in a row do, then one is
 * stamped. Reading the clock costs 4 to 15 ns (see the top of the file),
 * up to a tenth of a channel round trip; the unparked goroutine is stamped
 * when it starts, and the slice the unpark happened in at both ends, so
 * the writer places the unpark just after the stamp before it (wlazy),
 * inside the right slice. The count bounds how many wait for a stamp. */
static inline bool lazy(P *pp) {
    if (likely(++pp->tracelazy < TRACE_LAZY))
        return true;
    pp->tracelazy = 0;
    return false;
}

/* A slice ended on pp without a stamp: stamp it now, before another event
 * of pp's stream. */
static inline void flushpend(P *pp) {
    if (pp->tracepend) {
        uint64_t *w = evp(pp, 2);
        w[0] = evword(evGoEnd, pp->tracepend - 1, 0);
        w[1] = pp->tracets ? pp->tracets : cputicks();
        pp->tracets = 0;
        pp->tracepend = 0;
        pp->traceslice = 0;
    }
}

/* ---- the events ------------------------------------------------------------------ */

/* The creations runtime.h does not do inline: the stamped one in
 * TRACE_LAZY, one made while a slice's end waits to be written (from the
 * scheduler), and one from no P. Each carries the function. */
void gort__traceGoCreateSlow(P *pp, G *newg) {
    uint64_t word = gort__traceword(evGoCreate, 0, TRACE_FLOWCREATE, (uint64_t)newg->goid);
    if (pp) {
        flushpend(pp);
        uint64_t *w;
        if (lazy(pp)) {
            w = evp(pp, 2);
            w[0] = word - evGoCreate + evGoCreateLazy;
        } else {
            w = evp(pp, 3);
            w[0] = word;
            *++w = cputicks();
        }
        w[1] = pp->tracelastfn = (uintptr_t)newg->fn;
        newg->traceflow = TRACE_FLOWCREATE;
        return;
    }
    uint64_t *w = evg_lock(4);
    if (w == NULL)
        return;
    w[0] = word;
    w[1] = cputicks();
    w[2] = (uint64_t)(uintptr_t)newg->fn;
    w[3] = (uint64_t)curmid();
    newg->traceflow = TRACE_FLOWCREATE;
    gort__unlock(&trace.lock);
}

/* findrunnable, releasep: no slice runs on pp from here until the next
 * start. */
void gort__traceStamp(P *pp) {
    flushpend(pp);
    pp->traceslice = 0;
}

/* The unpark runtime.h does not do inline: from no P, or from the
 * scheduler (no slice running, or one that ended and is yet to be
 * written), as an event of its own. */
void gort__traceGoUnparkSlow(P *pp, G *gp) {
    if (pp) {
        flushpend(pp);
        uint16_t flow = gp->traceflow = gort__traceflownext(gp);
        if (lazy(pp)) {
            uint64_t *w = evp(pp, 1);
            w[0] = gort__traceword(evGoUnparkLazy, 0, flow, (uint64_t)gp->goid);
        } else {
            uint64_t *w = evp(pp, 2);
            w[0] = gort__traceword(evGoUnpark, 0, flow, (uint64_t)gp->goid);
            w[1] = cputicks();
        }
        return;
    }
    uint64_t *w = evg_lock(3);
    if (w == NULL)
        return;
    uint16_t flow = gp->traceflow = gort__traceflownext(gp);
    w[0] = gort__traceword(evGoUnpark, 0, flow, (uint64_t)gp->goid);
    w[1] = cputicks();
    w[2] = (uint64_t)curmid();
    gort__unlock(&trace.lock);
}

void gort__traceGoSysCall(P *pp, G *gp) {
    pp->traceslice = 0;
    uint64_t *w = evp(pp, 3);
    w[0] = evword(evGoSysCall, 0, (uint64_t)gp->goid);
    w[1] = cputicks();
    w[2] = (uint64_t)curmid();
}

void gort__traceGoSysExit(P *pp, G *gp) {
    if (pp) {
        flushpend(pp);
        uint64_t *w = evp(pp, 4);
        w[0] = evword(evGoSysExit, 0, (uint64_t)gp->goid);
        w[1] = pp->traceslice = cputicks();
        w[2] = (uint64_t)curmid();
        w[3] = (uint64_t)(uintptr_t)gp->fn;
        return;
    }
    uint64_t *w = evg_lock(3);
    if (w == NULL)
        return;
    w[0] = evword(evGoSysExit, 0, (uint64_t)gp->goid);
    w[1] = cputicks();
    w[2] = (uint64_t)curmid();
    gort__unlock(&trace.lock);
}

void gort__traceSteal(P *pp, P *victim) {
    flushpend(pp);
    uint64_t *w = evp(pp, 2);
    w[0] = evword(evSteal, 0, (uint64_t)victim->id);
    w[1] = cputicks();
}

void gort__traceTimer(P *pp, void *fn) {
    if (pp) {
        flushpend(pp);
        uint64_t *w = evp(pp, 3);
        w[0] = evword(evTimer, 0, 0);
        w[1] = cputicks();
        w[2] = (uint64_t)(uintptr_t)fn;
        return;
    }
    uint64_t *w = evg_lock(4);
    if (w == NULL)
        return;
    w[0] = evword(evTimer, 0, 0);
    w[1] = cputicks();
    w[2] = (uint64_t)(uintptr_t)fn;
    w[3] = (uint64_t)curmid();
    gort__unlock(&trace.lock);
}

void gort__traceNetpoll(P *pp, int32_t n) {
    if (pp) {
        flushpend(pp);
        uint64_t *w = evp(pp, 2);
        w[0] = evword(evNetpoll, 0, (uint64_t)n);
        w[1] = cputicks();
        return;
    }
    uint64_t *w = evg_lock(3);
    if (w == NULL)
        return;
    w[0] = evword(evNetpoll, 0, (uint64_t)n);
    w[1] = cputicks();
    w[2] = (uint64_t)curmid();
    gort__unlock(&trace.lock);
}

void gort__traceHandoff(P *pp) {
    uint64_t *w = evg_lock(3);
    if (w == NULL)
        return;
    w[0] = evword(evHandoff, 0, (uint64_t)pp->id);
    w[1] = cputicks();
    w[2] = (uint64_t)curmid();
    gort__unlock(&trace.lock);
}

/* An M's "idle" slice is ended only in the trace that began it: one that
 * started while the M slept began it for the M (tracemstates), and one
 * that stopped meanwhile must not get an end without a beginning in the
 * next. M.traceidlegen says which trace began it (0: none). */
void gort__traceMPark(M *mp) {
    uint64_t *w = evg_lock(2);
    if (w == NULL)
        return;
    w[0] = evword(evMPark, 0, (uint64_t)mp->id);
    w[1] = cputicks();
    store_relaxed(&mp->traceidlegen, trace.gen);
    gort__unlock(&trace.lock);
}

void gort__traceMUnpark(M *mp) {
    uint32_t gen = load_relaxed(&mp->traceidlegen);
    store_relaxed(&mp->traceidlegen, 0);
    uint64_t *w = evg_lock(2);
    if (w == NULL)
        return;
    if (gen == trace.gen) {
        w[0] = evword(evMUnpark, 0, (uint64_t)mp->id);
        w[1] = cputicks();
    } else {
        trace.gpos -= 2;   /* another trace's: nothing to end */
    }
    gort__unlock(&trace.lock);
}

void gort__traceNewM(M *mp) {
    uint64_t *w = evg_lock(3);
    if (w == NULL)
        return;
    w[0] = evword(evNewM, 0, (uint64_t)mp->id);
    w[1] = cputicks();
    w[2] = (uint64_t)curmid();
    gort__unlock(&trace.lock);
}

/* ---- the writer: buffers to JSON ----------------------------------------------- */

typedef struct wstream {
    bool     open;       /* a goroutine slice is open */
    bool     seen;
    uint64_t start;      /* its start, in ticks */
    int64_t  goid;
    uintptr_t fn;
    uint64_t laststamp;  /* the last stamped event's ticks */
    int      nlazy;      /* unstamped events waiting for the next stamp */
    uint64_t lazy[TRACE_LAZY][2];   /* the Lazy types: two words at most */
} wstream;

typedef struct namecache {
    uintptr_t pc;
    char      name[80];
} namecache;

#define NAMECACHE 1024
#define MAXMTRACK 4096

static struct {
    char      out[1 << 16];
    size_t    n;
    bool      first;
    double    nspertick;
    uint64_t  tickspernsec;   /* ticks in a nanosecond, rounded up: the JSON's resolution */
    symtab   *syms;
    namecache names[NAMECACHE];
    wstream   ps[1024];      /* by P id (gort's limit on Ps) */
    uint8_t   mseen[MAXMTRACK];
    uint64_t  lost;           /* event words lost before the buffers read */
    int64_t   maxm;
    uint64_t  nrefs;          /* flow arrows drawn from TRACE_FLOWREF */
    /* Each goroutine's start function, from the first pass over the events
     * (starts leave it out; the goroutine's creation or evGoFn has it, and
     * may be in a buffer written after one with its starts): open
     * addressing by goid. */
    struct gfnent { int64_t goid; uintptr_t fn; } *gfns;
    size_t    ngfns, gfncap;  /* gfncap: a power of two, or 0 */
} w;

static size_t gfnslot(int64_t goid) {
    return (size_t)((uint64_t)goid * 0x9e3779b97f4a7c15ull >> 20) & (w.gfncap - 1);
}

static void gfnput(int64_t goid, uintptr_t fn) {
    if (2 * (w.ngfns + 1) > w.gfncap) {
        size_t ncap = w.gfncap ? 2 * w.gfncap : 1024;
        struct gfnent *old = w.gfns, *nt = calloc(ncap, sizeof *nt);
        if (nt == NULL)
            return;   /* the slice is then named "?" */
        size_t ocap = w.gfncap;
        w.gfns = nt;
        w.gfncap = ncap;
        for (size_t i = 0; i < ocap; i++) {
            if (old[i].goid == 0)
                continue;
            size_t j = gfnslot(old[i].goid);
            while (nt[j].goid != 0)
                j = (j + 1) & (ncap - 1);
            nt[j] = old[i];
        }
        free(old);
    }
    size_t j = gfnslot(goid);
    while (w.gfns[j].goid != 0 && w.gfns[j].goid != goid)
        j = (j + 1) & (w.gfncap - 1);
    if (w.gfns[j].goid == 0)
        w.ngfns++;
    w.gfns[j].goid = goid;
    w.gfns[j].fn = fn;
}

static uintptr_t gfn(int64_t goid) {
    if (w.gfncap == 0 || goid == 0)
        return 0;
    for (size_t j = gfnslot(goid); w.gfns[j].goid != 0; j = (j + 1) & (w.gfncap - 1))
        if (w.gfns[j].goid == goid)
            return w.gfns[j].fn;
    return 0;
}

static void wflush(void) {
    size_t off = 0;
    while (off < w.n) {
        ssize_t k = write(trace.fd, w.out + off, w.n - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (trace.err == 0)
                trace.err = k < 0 ? -errno : -EIO;
            break;
        }
        off += (size_t)k;
    }
    w.n = 0;
}

static void wputs(const char *s) {
    size_t len = strlen(s);
    if (w.n + len > sizeof w.out)
        wflush();
    if (len > sizeof w.out)
        len = sizeof w.out;
    memcpy(w.out + w.n, s, len);
    w.n += len;
}

__attribute__((format(printf, 1, 2))) static void wprintf(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    wputs(buf);
}

/* Appenders for the hot part of the JSON: a trace is tens of millions of
 * events, and printf made the end of a trace take three times as long. */
static inline void wneed(size_t n) {
    if (w.n + n > sizeof w.out)
        wflush();
}

static inline void wlit(const char *s, size_t len) {   /* len < 256 */
    wneed(len);
    memcpy(w.out + w.n, s, len);
    w.n += len;
}
#define WLIT(s) wlit(s, sizeof(s) - 1)

static void wuint(uint64_t v) {
    char buf[24];
    int i = sizeof buf;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    wlit(buf + i, sizeof buf - (size_t)i);
}

static void wint(int64_t v) {
    if (v < 0) {
        WLIT("-");
        wuint((uint64_t)0 - (uint64_t)v);
    } else {
        wuint((uint64_t)v);
    }
}

/* ns as microseconds with three decimals. */
static void wmicros(uint64_t ns) {
    wuint(ns / 1000);
    char buf[4] = { '.', (char)('0' + ns / 100 % 10), (char)('0' + ns / 10 % 10),
                    (char)('0' + ns % 10) };
    wlit(buf, 4);
}

static inline uint64_t tickns(uint64_t ts) {
    return ts > trace.ticks0 ? (uint64_t)((double)(ts - trace.ticks0) * w.nspertick) : 0;
}

/* Starts an event object: a separator and the common fields. ts in ticks. */
static void wbegin(const char *ph, int pid, int64_t tid, uint64_t ts) {
    if (w.first)
        WLIT("\n{\"ph\":\"");
    else
        WLIT(",\n{\"ph\":\"");
    w.first = false;
    wputs(ph);
    WLIT("\",\"pid\":");
    wint(pid);
    WLIT(",\"tid\":");
    wint(tid);
    WLIT(",\"ts\":");
    wmicros(tickns(ts));
    if (pid == 2 && tid >= 0 && tid < MAXMTRACK)
        w.mseen[tid] = 1;
}

/* A function's name for a JSON string: no quote or backslash survives. */
static const char *fname(uintptr_t pc) {
    if (pc == 0)
        return "?";
    namecache *c = &w.names[(pc >> 4) % NAMECACHE];
    if (c->pc == pc)
        return c->name;
    const char *s = w.syms ? gort__symtab_name(w.syms, pc) : NULL;
    c->pc = pc;
    if (s)
        snprintf(c->name, sizeof c->name, "%s", s);
    else
        snprintf(c->name, sizeof c->name, "%#" PRIxPTR, pc);
    for (char *p = c->name; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            *p = '?';
    return c->name;
}

static const char *endreason(int r) {
    switch (r) {
    case traceEndExit:    return "exit";
    case traceEndYield:   return "yield";
    case traceEndSyscall: return "syscall";
    case traceEndStop:    return "trace stopped";
    default:              return gort__waitreason_string(r);
    }
}

static void slice_end(int32_t pid, wstream *s, uint64_t ts, int reason) {
    if (!s->open)
        return;
    s->open = false;
    uint64_t a = tickns(s->start), b = tickns(ts);
    wbegin("X", 1, pid, s->start);
    WLIT(",\"dur\":");
    wmicros(b > a ? b - a : 0);
    WLIT(",\"name\":\"");
    wputs(fname(s->fn));
    WLIT("\",\"args\":{\"goid\":");
    wint(s->goid);
    WLIT(",\"end\":\"");
    wputs(endreason(reason));
    WLIT("\"}}");
}

static void slice_start(wstream *s, uint64_t ts, int64_t goid, uintptr_t fn) {
    s->open = true;
    s->start = ts;
    s->goid = goid;
    s->fn = fn;
}

/* A flow arrow's end. An arrow with an event at each end has the id
 * goid << 15 | code (runtime.h); one drawn from a start's TRACE_FLOWREF
 * alone gets an id of the writer's, above those. */
static void flowid(const char *ph, int pid, int64_t tid, uint64_t ts, uint64_t id, bool create) {
    wbegin(ph, pid, tid, ts);
    WLIT(",\"id\":");
    wuint(id);
    if (create)
        WLIT(",\"cat\":\"sched\",\"name\":\"go create\"");
    else
        WLIT(",\"cat\":\"sched\",\"name\":\"go unpark\"");
    if (ph[0] == 'f')
        WLIT(",\"bp\":\"e\"}");
    else
        WLIT("}");
}

static void flow(const char *ph, int pid, int64_t tid, uint64_t ts, int64_t goid, unsigned code) {
    flowid(ph, pid, tid, ts, (uint64_t)goid << 15 | code, code == TRACE_FLOWCREATE);
}

static void instant(int pid, int64_t tid, uint64_t ts, const char *name) {
    wbegin("i", pid, tid, ts);
    WLIT(",\"s\":\"t\",\"name\":\"");
    wputs(name);
    WLIT("\"");
}

/* An event's first word, taken apart (gort__traceword). */
static inline int evtype(uint64_t e0) { return (int)(e0 & 0x1f); }
static inline int evaux(uint64_t e0) { return (int)(e0 >> 5 & 0xff); }
static inline unsigned evflow(uint64_t e0) { return (unsigned)(e0 >> 14 & 0x7fff); }
static inline int64_t evarg(uint64_t e0) { return (int64_t)(e0 >> 29); }

/* How many words the event that begins with e0 has, on a P's stream or
 * the P-less one; 0 for a type that does not exist (a corrupt stream). */
static int evlen(uint64_t e0, bool onp) {
    switch (evtype(e0)) {
    case evGoStart:
        return onp ? 2 + !!(evflow(e0) & TRACE_FLOWREF) : 0;
    case evGoEnd:     return 2;
    case evGoUnpark:  return onp ? 2 : 3;
    case evGoCreate:  return onp ? 3 : 4;
    case evGoSysCall: return 3;
    case evGoSysExit: return onp ? 4 : 3;
    case evSteal:     return 2;
    case evTimer:     return onp ? 3 : 4;
    case evNetpoll:   return onp ? 2 : 3;
    case evHandoff:   return 3;
    case evMPark:     return 2;
    case evMUnpark:   return 2;
    case evNewM:      return 3;
    case evMSysCall:  return 3;
    case evGoUnparkLazy: return onp ? 1 : 0;
    case evGoCreateLazy: return onp ? 2 - (evaux(e0) & 1) : 0;
    case evGoFn:      return onp ? 0 : 2;
    default:          return 0;
    }
}

/* One event as JSON, at ts (ticks). s is the P's stream state, or NULL
 * for the P-less stream. */
static void wevent(int32_t pid, wstream *s, const uint64_t *e, uint64_t ts) {
    int type = evtype(e[0]);
    int aux = evaux(e[0]);
    unsigned code = evflow(e[0]);
    int64_t arg = evarg(e[0]);
    const uint64_t *x = e + 2;
    if (type == evGoUnparkLazy || type == evGoCreateLazy) {
        type = type == evGoUnparkLazy ? evGoUnpark : evGoCreate;
        x = e + 1;
    }
    int64_t mid;
    switch (type) {
    case evGoStart:
        if (!s)
            break;
        slice_end(pid, s, ts, aux ? aux - 1 : 0);
        slice_start(s, ts, arg, gfn(arg));
        /* Flow ends go a nanosecond in: inside this slice, not the one
         * ending. One from a readying slice starts a nanosecond into that
         * one: the writer knows no closer when it readied, and a slice on
         * another P may have started before it ended. */
        if (code & TRACE_FLOWREF) {
            uint64_t id = (uint64_t)1 << 62 | w.nrefs++;
            flowid("s", 1, code & ~TRACE_FLOWREF, x[0] + w.tickspernsec, id, false);
            flowid("f", 1, pid, ts + w.tickspernsec, id, false);
        } else if (code) {
            flow("f", 1, pid, ts + w.tickspernsec, arg, code);
        }
        break;
    case evGoEnd:
        if (s)
            slice_end(pid, s, ts, aux);
        break;
    case evGoUnpark:
        if (s)
            flow("s", 1, pid, ts, arg, code);
        else
            flow("s", 2, (int64_t)x[0], ts, arg, code);
        break;
    case evGoCreate:
        mid = s ? pid : (int64_t)x[1];
        instant(s ? 1 : 2, mid, ts, "go create");
        WLIT(",\"args\":{\"goid\":");
        wint(arg);
        WLIT(",\"fn\":\"");
        wputs(fname((uintptr_t)x[0]));
        WLIT("\"}}");
        flow("s", s ? 1 : 2, mid, ts, arg, code);
        break;
    case evGoSysCall:
        if (s)
            slice_end(pid, s, ts, traceEndSyscall);
        wbegin("B", 2, (int64_t)x[0], ts);
        wprintf(",\"name\":\"syscall\",\"args\":{\"goid\":%" PRId64 "}}", arg);
        break;
    case evGoSysExit:
        wbegin("E", 2, (int64_t)x[0], ts);
        wputs("}");
        if (s) {
            slice_end(pid, s, ts, 0);
            slice_start(s, ts, arg, (uintptr_t)x[1]);
        }
        break;
    case evSteal:
        if (s) {
            instant(1, pid, ts, "steal");
            wprintf(",\"args\":{\"from\":\"P%" PRId64 "\"}}", arg);
        }
        break;
    case evTimer:
        instant(s ? 1 : 2, s ? pid : (int64_t)x[1], ts, "timer");
        wprintf(",\"args\":{\"fn\":\"%s\"}}", fname((uintptr_t)x[0]));
        break;
    case evNetpoll:
        instant(s ? 1 : 2, s ? pid : (int64_t)x[0], ts, "netpoll");
        wprintf(",\"args\":{\"ready\":%" PRId64 "}}", arg);
        break;
    case evHandoff:
        instant(1, arg, ts, "handoff");
        wprintf(",\"args\":{\"by\":\"M%" PRId64 "\"}}", (int64_t)x[0]);
        if (arg >= 0 && arg < 1024)
            w.ps[arg].seen = true;
        break;
    case evMPark:
        wbegin("B", 2, arg, ts);
        wputs(",\"name\":\"idle\"}");
        break;
    case evMUnpark:
        wbegin("E", 2, arg, ts);
        wputs("}");
        break;
    case evMSysCall:
        wbegin("B", 2, (int64_t)x[0], ts);
        wprintf(",\"name\":\"syscall\",\"args\":{\"goid\":%" PRId64 "}}", arg);
        break;
    case evNewM:
        instant(2, arg, ts, "newm");
        if ((int64_t)x[0] >= 0)
            wprintf(",\"args\":{\"by\":\"M%" PRId64 "\"}}", (int64_t)x[0]);
        else
            wputs("}");
        break;
    }
}

/* Writes a P's unstamped events (lazyticks) now that the next stamp, ts,
 * is known. Each goes a tick after the stamp before it: inside the slice
 * (or scheduler work) it happened in, and never later than it happened,
 * so the arrow from an unpark to the goroutine's start never points back
 * in time, even when another P started the goroutine long before this
 * slice ended. */
static void wlazy(int32_t pid, wstream *s, uint64_t ts) {
    uint64_t from = s->laststamp ? s->laststamp : trace.ticks0;
    for (int i = 0; i < s->nlazy; i++) {
        uint64_t t = from + (uint64_t)(i + 1) * w.tickspernsec;
        wevent(pid, s, s->lazy[i], t < ts ? t : ts);
    }
    s->nlazy = 0;
}

/* The function a creation event of a buffer names. A one-word
 * evGoCreateLazy names that of the creation before it in the buffer,
 * which *lastfn (0 at the buffer's start) follows. */
static uintptr_t creationfn(const uint64_t *e, int len, uintptr_t *lastfn) {
    if (evtype(e[0]) == evGoCreate)
        *lastfn = (uintptr_t)e[2];
    else if (len == 2)
        *lastfn = (uintptr_t)e[1];
    return *lastfn;
}

/* The first pass: the start functions one buffer's events carry. */
static void gfnscan(const tracebuf *b) {
    bool onp = b->pid >= 0 && b->pid < 1024;
    const uint64_t *e = b->ev, *end = b->ev + b->n;
    uintptr_t lastfn = 0;
    while (e < end) {
        int len = evlen(e[0], onp);
        if (len == 0 || e + len > end)
            break;
        switch (evtype(e[0])) {
        case evGoFn:
            gfnput(evarg(e[0]), (uintptr_t)e[1]);
            break;
        case evGoCreate:
        case evGoCreateLazy:
            gfnput(evarg(e[0]), creationfn(e, len, &lastfn));
            break;
        case evGoSysExit:
            if (onp)
                gfnput(evarg(e[0]), (uintptr_t)e[3]);
            break;
        }
        e += len;
    }
}

/* Turns one buffer's events into JSON. */
static void wbuffer(tracebuf *b) {
    int32_t pid = b->pid;
    wstream *s = pid >= 0 && pid < 1024 ? &w.ps[pid] : NULL;
    if (s)
        s->seen = true;
    if (b->lost) {
        w.lost += b->lost;
        if (s)
            s->open = false;   /* its end is among the lost */
    }
    const uint64_t *e = b->ev, *end = b->ev + b->n;
    uintptr_t lastfn = 0;   /* the function of the buffer's last creation */
    uint64_t full[2];
    while (e < end) {
        int type = evtype(e[0]);
        int len = evlen(e[0], s != NULL);
        if (len == 0 || e + len > end)
            break;   /* cannot happen: a corrupt stream; drop the rest */
        const uint64_t *ev = e;
        if (type == evGoFn) {   /* gfnscan's only */
            e += len;
            continue;
        }
        if (type == evGoCreate) {
            creationfn(e, len, &lastfn);
        } else if (type == evGoCreateLazy) {
            /* The event as it would be with its function, 2 words. */
            full[1] = creationfn(e, len, &lastfn);
            full[0] = e[0] & ~((uint64_t)0xff << 5);
            ev = full;
        }
        bool unstamped = type == evGoUnparkLazy || type == evGoCreateLazy;
        if (unstamped && s->nlazy < TRACE_LAZY) {
            memcpy(s->lazy[s->nlazy++], ev, (size_t)evlen(ev[0], true) * sizeof(uint64_t));
        } else {
            uint64_t ts = !unstamped ? e[1] : s->laststamp ? s->laststamp : trace.ticks0;
            if (s) {
                wlazy(pid, s, ts);
                s->laststamp = ts;
            }
            wevent(pid, s, ev, ts);
        }
        e += len;
    }
}

static void wheader(void) {
    w.first = true;
    wputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[");
}

static void wfooter(void) {
    uint64_t endts = trace.ticks1;
    for (int32_t i = 0; i < 1024; i++) {
        wstream *s = &w.ps[i];
        wlazy(i, s, endts);
        slice_end(i, s, endts, traceEndStop);
        if (!s->seen)
            continue;
        wbegin("M", 1, i, trace.ticks0);
        wprintf(",\"name\":\"thread_name\",\"args\":{\"name\":\"P%d\"}}", i);
        wbegin("M", 1, i, trace.ticks0);
        wprintf(",\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":%d}}", i);
    }
    for (int i = 0; i < MAXMTRACK; i++) {
        if (!w.mseen[i])
            continue;
        wbegin("M", 2, i, trace.ticks0);
        wprintf(",\"name\":\"thread_name\",\"args\":{\"name\":\"M%d\"}}", i);
        wbegin("M", 2, i, trace.ticks0);
        wprintf(",\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":%d}}", i);
    }
    wbegin("M", 1, 0, trace.ticks0);
    wputs(",\"name\":\"process_name\",\"args\":{\"name\":\"gort: Ps (goroutines)\"}}");
    wbegin("M", 2, 0, trace.ticks0);
    wputs(",\"name\":\"process_name\",\"args\":{\"name\":\"gort: Ms (threads)\"}}");
    gort__lock(&trace.lock);
    trace.lost += w.lost;
    uint64_t lost = trace.lost;
    gort__unlock(&trace.lock);
    wprintf("\n],\"otherData\":{\"runtime\":\"gort %s\",\"lost_event_words\":%" PRIu64 "}}\n",
            gort_version(), lost);
    wflush();
}

/* Appends b to the temporary file. */
static void rawwrite(tracebuf *b) {
    const char *p = (const char *)&b->pid;
    size_t len = TRACEBUF_HDR + (size_t)b->n * sizeof(uint64_t), off = 0;
    while (off < len && trace.err == 0) {
        ssize_t k = write(trace.tmpfd, p + off, len - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            trace.err = k < 0 ? -errno : -EIO;
        else
            off += (size_t)k;
    }
}

static bool readfull(int fd, void *buf, size_t len) {
    size_t off = 0;
    while (off < len) {
        ssize_t k = read(fd, (char *)buf + off, len - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        off += (size_t)k;
    }
    return true;
}

/* Makes the JSON from the temporary file. */
static void convert(void) {
    w.syms = gort__symtab_open();
    w.nspertick = trace.ticks1 > trace.ticks0
                      ? (double)(trace.ns1 - trace.ns0) / (double)(trace.ticks1 - trace.ticks0)
                      : 1.0;
    w.tickspernsec = w.nspertick > 0 && w.nspertick < 1 ? (uint64_t)(1 / w.nspertick) + 1 : 1;
    wheader();
    static tracebuf b;
    for (int pass = 1; pass <= 2; pass++) {
        if (trace.err != 0 || lseek(trace.tmpfd, 0, SEEK_SET) != 0)
            break;
        while (readfull(trace.tmpfd, &b.pid, TRACEBUF_HDR)) {
            if (b.n > TRACEBUF_WORDS || !readfull(trace.tmpfd, b.ev, (size_t)b.n * sizeof(uint64_t)))
                break;
            if (pass == 1)
                gfnscan(&b);
            else
                wbuffer(&b);
        }
    }
    wfooter();
    free(w.gfns);
    w.gfns = NULL;
    w.ngfns = w.gfncap = 0;
    gort__symtab_close(w.syms);
    w.syms = NULL;
}

/* The writer thread: full buffers to the temporary file while the trace
 * runs, then the JSON. */
static void *writer(void *arg) {
    (void)arg;
    for (;;) {
        gort__lock(&trace.lock);
        while (!trace.stopping && trace.full == NULL) {
            trace.asleep = true;
            gort__noteclear(&trace.wake);
            gort__unlock(&trace.lock);
            gort__notetsleep(&trace.wake, TRACE_WRITEPERIOD);
            gort__lock(&trace.lock);
            trace.asleep = false;
        }
        bool stop = trace.stopping;
        tracebuf *list = trace.full;
        trace.full = trace.fulltail = NULL;
        trace.nfull = 0;
        gort__unlock(&trace.lock);
        while (list) {
            tracebuf *b = list;
            list = b->link;
            rawwrite(b);
            gort__lock(&trace.lock);
            b->link = trace.free;
            trace.free = b;
            gort__unlock(&trace.lock);
        }
        if (stop)
            break;
    }
    convert();
    return NULL;
}

/* ---- start and stop ------------------------------------------------------------ */

/* An unnamed file for the binary events: in the trace's own directory
 * (the disk the user chose for it), else in $TMPDIR or /tmp. */
static int opentmp(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    const char *tmpdir = getenv("TMPDIR");
    const char *dirs[] = { dir, tmpdir && tmpdir[0] ? tmpdir : "/tmp", "/tmp" };
    int err = ENOENT;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        int fd = open(dirs[i], O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd >= 0)
            return fd;
        char tmpl[4200];
        snprintf(tmpl, sizeof tmpl, "%s/.gort-trace-XXXXXX", dirs[i]);
        fd = mkostemp(tmpl, O_CLOEXEC);
        if (fd >= 0) {
            unlink(tmpl);
            return fd;
        }
        err = errno;
    }
    return -err;
}

/* The goroutines alive when a trace starts, each with its start function,
 * which their starts do not carry (runtime.h), as Go's StartTrace writes
 * a GoCreate for each. A thread that is not an M may be making one
 * meanwhile (newproc_global): it publishes the G (its status, release),
 * then looks at gort__tracing; this has published gort__tracing and then
 * looks at the statuses. With a seq_cst fence between the two steps on
 * both sides, at least one sees the other's, so the goroutine is in the
 * trace by its creation event or by this one (or both). The same pass
 * clears a flow an earlier trace gave the goroutine, which must not end
 * in this one (a dead G's is cleared when it is reused, by ginit). Each
 * G is visited once, so a million goroutines cost one walk over their
 * Gs. trace.lock held. */
static void gfnsnap(G *gp, void *arg) {
    (void)arg;
    uint32_t st = readgstatus(gp);
    if (st == Gidle || st == Gdead)
        return;
    gp->traceflow = 0;
    gp->tracefrom = 0;
    uint64_t *w = trace.gpos;
    if (w != NULL && w + 2 <= trace.glim)
        trace.gpos = w + 2;
    else if ((w = bufnext_locked(&trace.gpos, &trace.glim, &trace.gbuf, -1, 2)) == NULL)
        return;
    w[0] = evword(evGoFn, 0, (uint64_t)gp->goid);
    w[1] = (uint64_t)(uintptr_t)gp->fn;
}

/* Starts a trace into path. The world is stopped, or not yet running. */
static int tracestart(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int tmpfd = opentmp(path);
    if (tmpfd < 0) {
        close(fd);
        return tmpfd;
    }
    memset(&w, 0, sizeof w);
    gort__lock(&trace.lock);
    trace.fd = fd;
    trace.tmpfd = tmpfd;
    trace.err = 0;
    trace.lost = 0;
    trace.stopping = false;
    trace.asleep = false;
    trace.nfull = 0;
    trace.gpos = trace.glim = NULL;
    trace.gbuf = NULL;
    gort__noteclear(&trace.wake);
    for (int32_t i = 0; i < load_acq(&gort__nallp); i++) {
        P *pp = gort__allp[i];
        pp->tracepos = pp->tracelim = NULL;
        pp->tracebuf = NULL;
        pp->tracepend = 0;
        pp->tracets = 0;
        pp->traceslice = 0;
    }
    if (++trace.gen == 0)
        trace.gen = 1;
    trace.ticks0 = cputicks();
    trace.ns0 = gort__nanotime();
    /* The writer is not an M and takes no signal meant for the program. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    xadd(&gort__tracewriters, 1);
    int err = pthread_create(&trace.writer, NULL, writer, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        xadd(&gort__tracewriters, -1);
        gort__unlock(&trace.lock);
        close(fd);
        close(tmpfd);
        return -err;
    }
    trace.state = traceOn;
    store_rel(&gort__tracing, trace.gen);
    fence_sc();   /* see gfnsnap */
    gort__forallg(gfnsnap, NULL);
    gort__unlock(&trace.lock);
    return 0;
}

/* Ends recording: every stream's buffer goes to the writer. No P may be
 * writing: the world is stopped, or every M is gone. */
static void tracestop(void) {
    gort__lock(&trace.lock);
    store_rel(&gort__tracing, 0);
    trace.ticks1 = cputicks();
    trace.ns1 = gort__nanotime();
    for (int32_t i = 0; i < load_acq(&gort__nallp); i++) {
        P *pp = gort__allp[i];
        tracebuf *b = pp->tracebuf;
        if (pp->tracepend && b && b != &sinkbuf && pp->tracepos + 2 <= pp->tracelim) {
            pp->tracepos[0] = evword(evGoEnd, pp->tracepend - 1, 0);
            pp->tracepos[1] = pp->tracets ? pp->tracets : trace.ticks1;
            pp->tracepos += 2;
        }
        if (b == &sinkbuf)
            trace.lost += (uint64_t)(pp->tracepos - b->ev);
        else if (b) {
            b->n = (uint32_t)(pp->tracepos - b->ev);
            enqueue_locked(b);
        }
        pp->tracepos = pp->tracelim = NULL;
        pp->tracebuf = NULL;
        pp->tracepend = 0;
        pp->tracets = 0;
    }
    if (trace.gbuf == &sinkbuf)
        trace.lost += (uint64_t)(trace.gpos - trace.gbuf->ev);
    else if (trace.gbuf) {
        trace.gbuf->n = (uint32_t)(trace.gpos - trace.gbuf->ev);
        enqueue_locked(trace.gbuf);
    }
    trace.gbuf = NULL;
    trace.gpos = trace.glim = NULL;
    trace.stopping = true;
    trace.state = traceStopping;
    if (trace.asleep) {
        trace.asleep = false;
        gort__notewakeup(&trace.wake);
    }
    gort__unlock(&trace.lock);
}

/* Waits for the writer to finish the file, and frees the buffers. */
static int tracefinish(void) {
    pthread_join(trace.writer, NULL);
    xadd(&gort__tracewriters, -1);
    gort__lock(&trace.lock);
    tracebuf *b = trace.free;
    trace.free = NULL;
    trace.nbufs = 0;
    int err = trace.err;
    if (close(trace.fd) < 0 && err == 0)
        err = -errno;
    close(trace.tmpfd);
    trace.fd = trace.tmpfd = -1;
    if (trace.lost)
        fprintf(stderr, "gort: execution trace: out of memory for buffers: %" PRIu64
                        " words of events lost\n", trace.lost);
    trace.state = traceIdle;
    gort__unlock(&trace.lock);
    while (b) {
        tracebuf *next = b->link;
        free(b);
        b = next;
    }
    return err;
}

/* A trace started while the program runs: the Ms already parked, or in a
 * system call, get the start of their slice, so that every end has one.
 * The world is stopped; an M in a system call does not touch its curg
 * until it is back, but it is another thread's field (GORT_SNAPSHOT). */
GORT_SNAPSHOT static void tracemstates(void) {
    gort__lock(&gort__sched.lock);
    for (M *mp = gort__sched.midle; mp; mp = mp->schedlink)
        if (mp->traceidlegen != trace.gen)
            gort__traceMPark(mp);
    gort__unlock(&gort__sched.lock);
    for (M *mp = load_acq(&gort__allm); mp; mp = mp->alllink) {
        G *gp = mp->curg;
        if (gp == NULL || readgstatus(gp) != Gsyscall)
            continue;
        uint64_t *w = evg_lock(3);
        if (w == NULL)
            return;
        w[0] = evword(evMSysCall, 0, (uint64_t)gp->goid);
        w[1] = cputicks();
        w[2] = (uint64_t)mp->id;
        gort__unlock(&trace.lock);
    }
}

GORT_API int gort_trace_start(const char *path) {
    M *mp = getm();
    if (mp == NULL || mp->curg == NULL || readgstatus(mp->curg) != Grunning)
        return -EPERM;
    if (path == NULL)
        return -EINVAL;
    gort__lock(&trace.lock);
    bool busy = trace.state != traceIdle;
    if (!busy)
        trace.state = traceStarting;   /* another start sees busy */
    gort__unlock(&trace.lock);
    if (busy)
        return -EBUSY;
    gort__stoptheworld();
    mp = getm();
    int err = tracestart(path);
    if (err == 0) {
        tracemstates();
        gort__traceGoStart(mp->p, mp->curg);   /* the caller's slice */
    } else {
        gort__lock(&trace.lock);
        trace.state = traceIdle;
        gort__unlock(&trace.lock);
    }
    gort__starttheworld(0);
    return err;
}

GORT_API int gort_trace_stop(void) {
    M *mp = getm();
    if (mp == NULL || mp->curg == NULL || readgstatus(mp->curg) != Grunning)
        return -EPERM;
    gort__lock(&trace.lock);
    bool on = trace.state == traceOn;
    gort__unlock(&trace.lock);
    if (!on)
        return -ESRCH;
    gort__stoptheworld();
    gort__lock(&trace.lock);
    on = trace.state == traceOn;   /* a concurrent stop may have won */
    gort__unlock(&trace.lock);
    if (on)
        tracestop();
    gort__starttheworld(0);
    if (!on)
        return -ESRCH;
    /* The writer may take a while: the P is not held meanwhile. */
    gort_syscall_enter();
    int err = tracefinish();
    gort_syscall_exit();
    return err;
}

void gort__trace_runstart(void) {
    const char *path = getenv("GORT_TRACE");
    if (path == NULL || path[0] == 0)
        return;
    gort__lock(&trace.lock);
    bool busy = trace.state != traceIdle;
    gort__unlock(&trace.lock);
    if (busy)
        return;
    int err = tracestart(path);
    if (err < 0)
        fprintf(stderr, "gort: GORT_TRACE=%s: %s\n", path, strerror(-err));
}

void gort__trace_shutdown(void) {
    gort__lock(&trace.lock);
    bool on = trace.state == traceOn;
    if (trace.state == traceStarting)
        trace.state = traceIdle;   /* its goroutine was abandoned by the shutdown */
    gort__unlock(&trace.lock);
    if (!on)
        return;
    tracestop();
    int err = tracefinish();
    if (err < 0)
        fprintf(stderr, "gort: execution trace: %s\n", strerror(-err));
}
