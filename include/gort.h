/*
 * gort: Go's goroutine runtime (the G/M/P scheduler) as a C library for Linux.
 *
 * This is the whole public interface. Every call that can fail returns a
 * negative errno value (-EINVAL, -ENOMEM, ...) and leaves errno alone: a
 * goroutine may resume on another OS thread after any call that can block,
 * and compilers cache the address of errno (and of every __thread variable)
 * across calls, so errno read after such a call may belong to another thread.
 * Calls that only make sense on a goroutine return -EPERM elsewhere.
 */
#ifndef GORT_H
#define GORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Runtime ------------------------------------------------------------ */

typedef struct gort_config {
    int    maxprocs;     /* Ps; 0: $GORT_MAXPROCS, else the CPUs this process may use */
    size_t stack_size;   /* bytes of each goroutine stack; 0: the default (256 KiB) */
    int    max_threads;  /* limit on Ms, like Go's SetMaxThreads; 0: 10000. At least 2
                            (m0 and sysmon); exceeding it is fatal, as in Go */
} gort_config;

/* Makes the calling thread m0, runs main_fn(arg) as the main goroutine and
 * returns 0 once main_fn has returned and the runtime has shut down: every M
 * stopped and joined, every stack and structure released. Goroutines still
 * alive when main_fn returns are abandoned, as in Go; goroutines running at
 * that moment are waited for until they reach a scheduling point. cfg may be
 * NULL. gort_run may be called again after it returns.
 * Errors: -EBUSY while a runtime is running, -EINVAL for a bad config,
 * -EAGAIN/-ENOMEM when threads or memory cannot be had. */
int gort_run(const gort_config *cfg, void (*main_fn)(void *), void *arg);

/* ---- Goroutines --------------------------------------------------------- */

/* Starts fn(arg) as a new goroutine; returns its id (> 0) or a negative errno:
 * -EINVAL for a NULL fn, -EPERM when no runtime is running, -ENOMEM when no
 * stack can be had (memory or memory mappings exhausted). Callable from any
 * thread while the runtime runs; a thread that is not an M queues the new
 * goroutine on the global run queue. */
int64_t gort_go(void (*fn)(void *), void *arg);
void    gort_yield(void);            /* runtime.Gosched */
void    gort_exit(void);             /* runtime.Goexit: never returns */
int64_t gort_id(void);               /* current goroutine's id; 0 on a thread running none */
int     gort_maxprocs(int n);        /* GOMAXPROCS: n > 0 sets; returns the previous value */
int64_t gort_num_goroutines(void);   /* live goroutines, main included */

/* ---- Sync (the zero value of each type is ready to use) ----------------- */

/* Go's sync.Mutex: normal mode with a short spin, and starvation mode where a
 * waiter that has waited over 1 ms is handed the lock directly. */
typedef struct gort_mutex {
    int32_t  state;   /* locked | woken | starving bits, waiter count above */
    uint32_t sema;    /* runtime semaphore the waiters park on */
} gort_mutex;

/* Go's sync.WaitGroup. A negative counter, or Add racing a Wait that has
 * started with the counter at zero, ends the process with a clear message. */
typedef struct gort_waitgroup {
    uint64_t state;   /* counter in the high 32 bits, waiters in the low 32 */
    uint32_t sema;
} gort_waitgroup;

void gort_mutex_lock(gort_mutex *m);
void gort_mutex_unlock(gort_mutex *m);       /* unlocking an unlocked mutex is fatal */
int  gort_mutex_trylock(gort_mutex *m);      /* 1 taken, 0 not */
void gort_wg_add(gort_waitgroup *wg, int64_t delta);
void gort_wg_done(gort_waitgroup *wg);
void gort_wg_wait(gort_waitgroup *wg);

/* ---- Time --------------------------------------------------------------- */

int64_t gort_now(void);              /* monotonic nanoseconds */

/* ---- Blocking system calls ---------------------------------------------- */

/* Bracket a blocking call of your own (a database client, getaddrinfo,
 * waitpid). Read the call's errno before gort_syscall_exit(), which may move
 * the goroutine to another thread. Outside a goroutine both do nothing. */
void gort_syscall_enter(void);       /* entersyscall */
void gort_syscall_exit(void);        /* exitsyscall */

/* ---- Introspection ------------------------------------------------------ */

typedef struct gort_stats {
    int64_t goroutines;     /* live Gs */
    int     threads;        /* Ms created and not exited (len(allm)) */
    int     idle_threads;   /* Ms parked in stopm */
    int     spinning;       /* Ms spinning for work */
    int     procs;          /* Ps (GOMAXPROCS) */
    int     idle_procs;     /* Ps on the idle list */
    int     in_syscall;     /* Ms in a system call */
    int64_t steals;         /* successful run-queue steals so far */
} gort_stats;

/* Fills st with a snapshot (all zero when no runtime runs).
 * GORT_DEBUG=schedtrace=MS prints a line in the shape of Go's
 * GODEBUG=schedtrace every MS milliseconds to stderr. */
void gort_read_stats(gort_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* GORT_H */
