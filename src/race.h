/*
 * race.h: the race flavour's annotations (libgort-tsan), after Go's
 * race.go.
 *
 * libgort-tsan is this library compiled WITHOUT -fsanitize=thread and with
 * GORT_RACE defined, for programs that are compiled with
 * -fsanitize=thread. ThreadSanitizer then sees only the user's code: the
 * scheduler's atomics, run queues, free lists and futexes are invisible to
 * it, so they cannot order two goroutines by accident, as they did when the
 * runtime itself was instrumented. Goroutines are TSan fibers switched
 * without synchronisation (__tsan_switch_to_fiber_no_sync), and the edges a
 * gort program may rely on are stated here, as Go's runtime states them to
 * its race detector: channels (chan.go's racesync and racenotify), close,
 * select, the sync types, goroutine creation, timers. docs/design.md, "The
 * race flavour", lists them.
 *
 * The __tsan_* and Annotate* functions are libtsan's: they resolve against
 * the runtime the user's -fsanitize=thread links in. Every one acts on the
 * fiber running now; there is no "on behalf of another goroutine" as in
 * Go's raceacquireg, so a goroutine parked on one side of a hand-off states
 * its half itself: it releases before it parks and acquires once woken
 * (racepark, raceunpark).
 *
 * Without GORT_RACE every function here is an empty inline and
 * raceenabled is 0: the annotations compile to nothing.
 */
#ifndef GORT_RACE_H
#define GORT_RACE_H

#ifdef GORT_RACE

#include <stdlib.h>
#include <sanitizer/tsan_interface.h>

/* libtsan's dynamic annotations (tsan_interface_ann): per fiber, nesting
 * counters. IgnoreSync drops this fiber's acquires and releases, including
 * those of intercepted calls (pthread_create, epoll_wait, read, ...);
 * IgnoreWrites (with IgnoreReads, the same counter) drops its memory
 * accesses, and makes an mmap reset the shadow of the new mapping instead
 * of recording a write to it. */
void __tsan_func_entry(void *pc);
void __tsan_func_exit(void);
void __tsan_read_range(void *addr, unsigned long size);
void __tsan_write_range(void *addr, unsigned long size);
void AnnotateIgnoreSyncBegin(const char *file, int line);
void AnnotateIgnoreSyncEnd(const char *file, int line);
void AnnotateIgnoreWritesBegin(const char *file, int line);
void AnnotateIgnoreWritesEnd(const char *file, int line);

#define raceenabled 1

/* Acquire what every release on addr made visible; release into addr.
 * libtsan's C interface releases by merging (Go's racereleasemerge): an
 * address keeps the union of its releasers' clocks, so where Go stores
 * (racerelease, racereleaseacquire on a channel slot) gort orders more
 * than Go does, never less. */
static inline void raceacquire(void *addr) { __tsan_acquire(addr); }
static inline void racerelease(void *addr) { __tsan_release(addr); }

/* Go's raceacquireg and racereleaseg: for a goroutine that is parked and
 * dequeued, by its waker. libtsan keeps clocks per fiber and lets any
 * thread make any fiber current, so the waker makes the parked one's fiber
 * current for the one call, in place (no stack changes hands), then its
 * own again; nothing else can run the parked goroutine meanwhile. */
static inline void raceacquireg(void *fiber, void *addr) {
    void *self = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(fiber, __tsan_switch_to_fiber_no_sync);
    __tsan_acquire(addr);
    __tsan_switch_to_fiber(self, __tsan_switch_to_fiber_no_sync);
}

/* Go's racenotify for the parked goroutine: acquire, then release. */
static inline void racenotifyg(void *fiber, void *addr) {
    void *self = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(fiber, __tsan_switch_to_fiber_no_sync);
    __tsan_acquire(addr);
    __tsan_release(addr);
    __tsan_switch_to_fiber(self, __tsan_switch_to_fiber_no_sync);
}

/* What the user's compiled code would read or write if the operation were
 * a language statement, as Go's compiler instruments `c <- v` and
 * `v = <-c`: the value sent, read by the sender; the value received,
 * written by the receiver. (The runtime's own copies are invisible,
 * raceignorebegin.) */
static inline void racereadrange(const void *p, size_t n) {
    if (p && n)
        __tsan_read_range((void *)p, n);
}

static inline void racewriterange(void *p, size_t n) {
    if (p && n)
        __tsan_write_range(p, n);
}

/* Memory accesses the current fiber makes are not recorded until the end:
 * the runtime's copies of channel elements, which are ordered by the
 * channel's edges, not by what the copy happens to be. */
static inline void raceignorebegin(void) { AnnotateIgnoreWritesBegin(__FILE__, __LINE__); }
static inline void raceignoreend(void) { AnnotateIgnoreWritesEnd(__FILE__, __LINE__); }

/* The current fiber stops (begin) or starts again (end) taking part in
 * synchronisation. */
static inline void raceignoresyncbegin(void) { AnnotateIgnoreSyncBegin(__FILE__, __LINE__); }
static inline void raceignoresyncend(void) { AnnotateIgnoreSyncEnd(__FILE__, __LINE__); }

/* An M's g0 runs the scheduler and nothing else: from mstart to the end of
 * the thread it ignores every synchronisation and memory access, so what
 * its intercepted calls acquire (epoll_wait, the netpoll break's read,
 * pthread_join) never reaches a goroutine through it. */
static inline void raceg0begin(void) {
    AnnotateIgnoreSyncBegin(__FILE__, __LINE__);
    AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
}

static inline void raceg0end(void) {
    AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
    AnnotateIgnoreSyncEnd(__FILE__, __LINE__);
}

/* A timer's function runs on g0 with synchronisation on, having acquired
 * what its starter released (gort_timer_start, _reset, gort_after): g0 is
 * then the timer context Go keeps per P (time.go, runOneTimer's
 * timerRaceCtx), and the channel send or the new goroutine of the timer
 * carries the starter's past. */
static inline void racetimerbegin(void *t) {
    AnnotateIgnoreSyncEnd(__FILE__, __LINE__);
    __tsan_acquire(t);
}

static inline void racetimerend(void) { AnnotateIgnoreSyncBegin(__FILE__, __LINE__); }

/* The runtime's own heap is invisible too. libtsan's allocator records an
 * allocation as a write by the fiber that made it and a free as one by the
 * fiber that frees it; for the runtime's structures (timer heaps, Ms, G
 * slabs, channels) those are different goroutines and threads that only
 * the runtime orders, so every malloc, calloc, realloc and free of the
 * runtime goes through these, which ignore the memory accesses: the
 * allocator then clears the block's shadow instead. (Freeing still drops
 * the block's synchronisation objects: a freed channel's edges go with
 * it.) <stdlib.h> is included first, so its declarations are not renamed. */
static inline void *gort__race_malloc(size_t n) {
    AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
    void *p = malloc(n);
    AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
    return p;
}

static inline void *gort__race_calloc(size_t n, size_t size) {
    AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
    void *p = calloc(n, size);
    AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
    return p;
}

static inline void *gort__race_realloc(void *old, size_t n) {
    AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
    void *p = realloc(old, n);
    AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
    return p;
}

static inline void gort__race_free(void *p) {
    AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
    free(p);
    AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
}

#define malloc(n)       gort__race_malloc(n)
#define calloc(n, size) gort__race_calloc(n, size)
#define realloc(p, n)   gort__race_realloc(p, n)
#define free(p)         gort__race_free(p)

#else /* !GORT_RACE */

#include <stddef.h>

#define raceenabled 0

static inline void raceacquire(void *addr) { (void)addr; }
static inline void racerelease(void *addr) { (void)addr; }
static inline void raceignoresyncbegin(void) {}
static inline void raceignoresyncend(void) {}
static inline void raceg0begin(void) {}
static inline void raceg0end(void) {}
static inline void racetimerbegin(void *t) { (void)t; }
static inline void racetimerend(void) {}
static inline void raceacquireg(void *fiber, void *addr) { (void)fiber, (void)addr; }
static inline void racenotifyg(void *fiber, void *addr) { (void)fiber, (void)addr; }
static inline void racereadrange(const void *p, size_t n) { (void)p, (void)n; }
static inline void racewriterange(void *p, size_t n) { (void)p, (void)n; }
static inline void raceignorebegin(void) {}
static inline void raceignoreend(void) {}

#endif /* GORT_RACE */

#endif /* GORT_RACE_H */
