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
#include <sys/uio.h>

/* This header's release: gort_version() returns the library's, as
 * "MAJOR.MINOR.PATCH". The shared library's soname changes with MAJOR. */
#define GORT_VERSION_MAJOR 0
#define GORT_VERSION_MINOR 3
#define GORT_VERSION_PATCH 0

#ifdef __cplusplus
extern "C" {
#endif

const char *gort_version(void);   /* "0.3.0": the library's version, as a string */

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
int64_t gort_num_goroutines(void);
/* Go's LockOSThread/UnlockOSThread, counted: the calling goroutine runs
 * only on its current thread, and that thread runs nothing else, until as
 * many unlocks. A goroutine that exits locked takes its thread with it
 * (except the thread that called gort_run). The main goroutine runs on the
 * thread that called gort_run until it first blocks: locking before that
 * keeps it there. New threads are started by a clean template thread, so
 * thread state set while locked (unshare, setns) never spreads.
 * 0, or -EPERM outside a goroutine. */
int gort_lock_thread(void);
int gort_unlock_thread(void);   /* live goroutines, main included */

/* ---- Channels and select ------------------------------------------------ */

/* Go's channels. Send and receive block the goroutine (a thread that is not
 * a goroutine may use them too: it blocks on a futex). A NULL channel is
 * -EINVAL here (in Go it blocks for ever); in select a NULL channel's case
 * is never ready, as a nil channel in Go. */
typedef struct gort_chan gort_chan;
int    gort_chan_make(gort_chan **out, size_t elem_size, size_t cap);  /* 0 or -ENOMEM/-EINVAL; elem_size 0 to 65536 */
int    gort_chan_send(gort_chan *c, const void *elem);  /* 0; -EPIPE if closed, also when closed while blocked */
int    gort_chan_recv(gort_chan *c, void *elem);        /* 1 got a value; 0 closed and drained (elem zeroed); elem may be NULL */
int    gort_chan_trysend(gort_chan *c, const void *elem); /* as send, but -EAGAIN instead of blocking */
int    gort_chan_tryrecv(gort_chan *c, void *elem);     /* as recv, but -EAGAIN instead of blocking */
int    gort_chan_close(gort_chan *c);                   /* 0; -EPIPE if already closed */
size_t gort_chan_len(gort_chan *c);
size_t gort_chan_cap(gort_chan *c);
void   gort_chan_free(gort_chan *c);                    /* once no goroutine can touch it; freeing one
                                                           that goroutines of the running runtime, or
                                                           threads, wait on is fatal (after gort_run
                                                           returns, its goroutines were abandoned: free
                                                           it). docs/API.md says exactly when. */

enum { GORT_SEND = 1, GORT_RECV = 2 };
typedef struct gort_case {
    gort_chan *chan;   /* NULL: the case is never ready, as a nil channel in Go */
    int        op;     /* GORT_SEND or GORT_RECV */
    void      *elem;   /* value to send, or where to store the received one (may be NULL) */
    int        ok;     /* set for a done receive: 1 value, 0 closed */
} gort_case;

/* Index of the case that proceeded, chosen uniformly among the ready ones;
 * with block == 0 and none ready: -EAGAIN. A send case chosen on a closed
 * channel: -EPIPE. No cases (or only NULL channels) and block: blocks for
 * ever, as Go's empty select. -EPERM outside a goroutine. */
int gort_select(gort_case *cases, int n, int block);

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

/* Go's sync.RWMutex: a blocked writer keeps new readers out. */
typedef struct gort_rwmutex {
    gort_mutex w;            /* held while writers are pending */
    uint32_t   writerSem;    /* writers wait here for readers to leave */
    uint32_t   readerSem;    /* readers wait here for the writer to finish */
    int32_t    readerCount;  /* readers inside or pending; negative: a writer waits */
    int32_t    readerWait;   /* readers the pending writer still waits for */
} gort_rwmutex;

/* Go's sync.Once. */
typedef struct gort_once {
    uint32_t   done;
    gort_mutex m;
} gort_once;

/* Go's sync.Cond, used with any gort_mutex. */
typedef struct gort_cond {
    uint32_t wait;           /* next ticket to hand out */
    uint32_t notify;         /* next ticket to notify */
    uint32_t lock;           /* runtime lock over the waiter list */
    void    *head, *tail;    /* waiters */
} gort_cond;

void gort_mutex_lock(gort_mutex *m);
void gort_mutex_unlock(gort_mutex *m);       /* unlocking an unlocked mutex is fatal */
int  gort_mutex_trylock(gort_mutex *m);      /* 1 taken, 0 not */
void gort_wg_add(gort_waitgroup *wg, int64_t delta);
void gort_wg_done(gort_waitgroup *wg);
void gort_wg_wait(gort_waitgroup *wg);
void gort_rwmutex_lock(gort_rwmutex *rw);
void gort_rwmutex_unlock(gort_rwmutex *rw);   /* unlocking an unlocked rwmutex is fatal */
int  gort_rwmutex_trylock(gort_rwmutex *rw);  /* 1 taken, 0 not */
void gort_rwmutex_rlock(gort_rwmutex *rw);
void gort_rwmutex_runlock(gort_rwmutex *rw);
int  gort_rwmutex_tryrlock(gort_rwmutex *rw);
void gort_once_do(gort_once *o, void (*fn)(void *), void *arg); /* fn(arg) exactly once */
void gort_cond_wait(gort_cond *c, gort_mutex *m);  /* m held on entry and on return */
void gort_cond_signal(gort_cond *c);
void gort_cond_broadcast(gort_cond *c);

/* ---- Time --------------------------------------------------------------- */

int64_t gort_now(void);              /* monotonic nanoseconds */

/* Parks the goroutine (not the thread) for at least ns nanoseconds; ns <= 0
 * yields. On a thread that is not a goroutine it sleeps the thread. */
void gort_sleep(int64_t ns);

/* *out receives a channel of one int64_t that, ns from now, is sent
 * gort_now(). The channel frees itself once that value has been received;
 * one never received stays until gort_run returns (for a timeout that may
 * be abandoned, use a gort_timer and stop it). 0 or a negative errno. */
int gort_after(gort_chan **out, int64_t ns);

/* A timer (Go's time.Timer, time.Ticker and time.AfterFunc in one): fires
 * ns from now, then every period ns if period > 0. Each firing sends
 * gort_now() on ch without blocking (a full channel drops the tick, as in
 * Go), or, with ch NULL, runs fn(arg) on a new goroutine. ch must have
 * elem_size sizeof(int64_t). A timer never fires early. */
typedef struct gort_timer gort_timer;
int  gort_timer_start(gort_timer **out, int64_t ns, int64_t period, gort_chan *ch,
                      void (*fn)(void *), void *arg);
/* Stop: 1 if it stopped the timer, 0 if it had already expired or been
 * stopped. After it returns no firing begins; a channel timer's send in
 * progress has completed, a function may still be running. */
int  gort_timer_stop(gort_timer *t);
/* Reset: re-arms for ns (then every period); 1 if it was active. */
int  gort_timer_reset(gort_timer *t, int64_t ns, int64_t period);
void gort_timer_free(gort_timer *t);   /* stops it, then frees it */

/* ---- I/O that parks the goroutine, not the thread ------------------------- */

/* Sockets, pipes, FIFOs, ttys and eventfds wait in the netpoller: the
 * goroutine parks and its thread runs others. A descriptor is made
 * non-blocking when gort first uses it. Other files (regular files) run
 * the call between syscall enter and exit. EINTR is retried; a result is
 * the count, 0 at end of file, or a negative errno (-ETIMEDOUT after a
 * deadline, -EBADF for a call waiting when gort_close begins). gort's threads block
 * SIGPIPE and socket writes use MSG_NOSIGNAL: a write to a closed peer
 * returns -EPIPE and the process lives. On a thread that is not a
 * goroutine the calls block that thread (poll(2)). */
enum { GORT_READ = 1, GORT_WRITE = 2 };

ssize_t gort_read(int fd, void *buf, size_t n);
ssize_t gort_write(int fd, const void *buf, size_t n);   /* all n bytes, or an error */
ssize_t gort_readv(int fd, const struct iovec *iov, int iovcnt);
ssize_t gort_writev(int fd, const struct iovec *iov, int iovcnt);   /* every byte */
ssize_t gort_recv(int fd, void *buf, size_t n, int flags);
ssize_t gort_send(int fd, const void *buf, size_t n, int flags);    /* all n bytes */
ssize_t gort_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
                      socklen_t *addrlen);
ssize_t gort_sendto(int fd, const void *buf, size_t n, int flags,
                    const struct sockaddr *addr, socklen_t addrlen);
/* The accepted descriptor is non-blocking and close-on-exec. */
int     gort_accept(int fd, struct sockaddr *addr, socklen_t *len);
/* Waits for an in-progress connect; its failure is returned (-ECONNREFUSED). */
int     gort_connect(int fd, const struct sockaddr *addr, socklen_t len);
/* Wakes every goroutine waiting on fd with -EBADF, then closes it. */
int     gort_close(int fd);
/* For libraries with their own non-blocking I/O (OpenSSL, libpq, libcurl):
 * parks until fd is ready for events (GORT_READ, GORT_WRITE or both), the
 * absolute deadline (gort_now() ns; 0: none) passes (-ETIMEDOUT) or fd is
 * closed with gort_close (-EBADF). Returns the events that are ready. */
int     gort_fd_wait(int fd, int events, int64_t deadline);
/* Go's SetReadDeadline/SetWriteDeadline: calls on fd for events fail with
 * -ETIMEDOUT once gort_now() passes when (0 clears); a deadline in the past
 * fails the next call at once; a waiting call follows a moved deadline. */
int     gort_fd_set_deadline(int fd, int events, int64_t when);

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

/* How goroutine stacks are guarded against overflow, chosen once when
 * gort_run starts: the best the kernel offers, or the one named by
 * GORT_DEBUG=stackguard=NAME. Every tier catches an overflow and ends the
 * process with "gort: goroutine N stack overflow (...)"; the guard-page
 * tiers catch it at the faulting write, the canary when the goroutine next
 * switches away or exits. */
typedef enum gort_stack_guard {
    GORT_GUARD_MADVISE = 1,  /* "madvise": MADV_GUARD_INSTALL guard regions (Linux 6.13+) */
    GORT_GUARD_UFFD,         /* "uffd": userfaultfd write-protected guard pages (6.4+) */
    GORT_GUARD_UFFD_ZEROPAGE,/* "uffd-zeropage": the same, on a zero page mapped first (5.7+) */
    GORT_GUARD_MPROTECT,     /* "mprotect": PROT_NONE guard pages, two mappings per stack,
                                then canaries once vm.max_map_count's budget is spent */
    GORT_GUARD_CANARY,       /* "canary": no guard page; a never-written line below each
                                stack, checked at every switch */
} gort_stack_guard;

/* Writes every goroutine to fd: its id, state (Go's words: "chan receive",
 * "running"...), how long it has waited, its M and P, a backtrace, and
 * where it was created; goroutines alike are grouped. SIGQUIT prints the
 * same and exits 2 (GORT_DEBUG=quitdump=0 leaves SIGQUIT alone), and so
 * does every fatal error. From any thread. 0; -EBADF for a bad fd or a
 * failed write's negative errno; -ESRCH when no runtime runs. */
int gort_dump(int fd);

/* The name of a gort_stack_guard ("madvise", ...), or "?" for another value. */
const char *gort_stack_guard_name(int guard);

/* Metrics that grow from version to version without breaking callers built
 * against older headers: the caller passes sizeof its struct, and the
 * library fills what both know and zeroes what only the caller knows.
 *     gort_metrics m;
 *     gort_read_metrics(&m, sizeof m);
 * Returns 0, or -EINVAL for a NULL m. All zero when no runtime runs. */
#define GORT_WAIT_REASONS 16
typedef struct gort_metrics {
    /* Stacks (0.3.0). */
    int     stack_guard;    /* how stacks are guarded: a gort_stack_guard */
    int64_t stacks;         /* stacks carved so far (each used by some goroutine) */
    int64_t canary_stacks;  /* of those, stacks with a canary instead of a guard page */
    /* Scheduler counters since gort_run started (0.3.0): kept per P, summed
     * here, so a reading taken while goroutines run is a close snapshot. */
    int64_t goroutines_created;
    int64_t context_switches;  /* goroutines switched to by the schedulers */
    int64_t syscalls;          /* gort_syscall_enter brackets entered */
    int64_t handoffs;          /* Ps sysmon took from a blocked system call and handed on */
    int64_t threads_created;   /* Ms, the caller's thread and sysmon included */
    int64_t parks[GORT_WAIT_REASONS]; /* goroutine parks by reason: gort_wait_reason_name(i) */
} gort_metrics;
int gort_read_metrics(gort_metrics *m, size_t size);

/* The words Go uses for wait reason i of gort_metrics.parks ("chan receive",
 * "sync.Mutex.Lock", ...); NULL for an index no reason has. */
const char *gort_wait_reason_name(int i);

/* The execution trace (0.3.0): every goroutine's run slices on a track per
 * P, with creations, blocks (and why), who readied whom, steals, system
 * calls and hand-offs, threads started and parked, timers and network
 * polls, written as Chrome Trace Event JSON to path, which Perfetto
 * (ui.perfetto.dev) and chrome://tracing open. GORT_TRACE=path traces a
 * whole gort_run. From a goroutine: 0; -EBUSY if a trace is being written
 * already; -EPERM from a thread that is not running a goroutine; the
 * negative errno of opening path. gort_trace_stop ends it and returns when
 * the file is complete: 0, -ESRCH if no trace runs, or the negative errno
 * of a failed write. A trace still running when gort_run returns is ended
 * there. */
int gort_trace_start(const char *path);
int gort_trace_stop(void);

/* Fills st with a snapshot (all zero when no runtime runs).
 * GORT_DEBUG=schedtrace=MS prints a line in the shape of Go's
 * GODEBUG=schedtrace every MS milliseconds to stderr. */
void gort_read_stats(gort_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* GORT_H */
