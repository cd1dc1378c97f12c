/*
 * netpoll.c: the network poller, as in Go's netpoll.go and
 * netpoll_epoll.go: one epoll instance, every descriptor registered once
 * for its life, edge-triggered, for reading and writing at once; an
 * eventfd to break a blocking wait; a poll descriptor (Go's pollDesc) per
 * descriptor number, whose rg and wg words hold the goroutine waiting to
 * read or write.
 *
 * rg and wg take the values pdNil, pdReady (an event came and nobody was
 * waiting: the next wait returns at once), pdWait (a goroutine is about to
 * park) or the parked G itself. A waiter moves pdNil -> pdWait, parks, and
 * in its commit (on g0, once parked) moves pdWait -> G; the poller, a
 * deadline or a close moves whatever is there to pdReady or pdNil and
 * readies the G if there was one. A wake-up that comes between the waiter's
 * check and its park finds pdWait and leaves pdReady: the commit's CAS
 * then fails and the waiter does not park. So no edge is lost.
 *
 * Descriptor numbers are reused: a program may close(2) a descriptor that
 * gort polls and get the same number back from socket(2), accept(2) or
 * open(2). epoll forgets a registration when its file is closed, so gort
 * checks the registration where it matters (see fd.c and docs/design.md,
 * "Descriptors that come back"): EPOLL_CTL_ADD answers EEXIST for a file
 * it knows and succeeds for a new one. Every registration carries the
 * descriptor's generation (fdseq) in its event data beside the number, so
 * an event of an older file is dropped and a waiter of an older file is
 * woken with -EBADF, never with another file's readiness.
 *
 * The M that waits in epoll when there is nothing to run sleeps until the
 * next timer with nanosecond precision: epoll_pwait2 where the kernel has
 * it, else a timerfd armed for the deadline (Go rounds up to 1 ms).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

#define pdNil   ((uintptr_t)0)
#define pdReady ((uintptr_t)1)
#define pdWait  ((uintptr_t)2)

/* Event data of the two descriptors that are not pollDescs. */
#define BREAK_DATA   UINT64_MAX
#define TIMERFD_DATA (UINT64_MAX - 1)

enum { pdChunk = 1024, pdChunks = PD_MAXFD / pdChunk };

static struct {
    int       epfd;
    int       breakfd;        /* eventfd: netpollBreak writes, netpoll reads */
    int       timerfd;        /* -1 with epoll_pwait2 */
    uint32_t  wakesig;        /* atomic: a break is pending (Go's netpollWakeSig) */
    gort_lock chunklock;
    pollDesc *chunks[pdChunks];   /* atomic pointers; never freed until shutdown */
} np = { .epfd = -1, .breakfd = -1, .timerfd = -1 };

uint32_t gort__netpollWaiters;

/* ---- init and teardown -------------------------------------------------------- */

static int pwait2(int epfd, struct epoll_event *ev, int n, const struct timespec *ts) {
    return (int)syscall(SYS_epoll_pwait2, epfd, ev, n, ts, NULL, (size_t)8);
}

int gort__netpollinit(void) {
    np.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (np.epfd < 0)
        return -errno;
    np.breakfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (np.breakfd < 0) {
        int e = -errno;
        close(np.epfd);
        np.epfd = -1;
        return e;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = BREAK_DATA };
    epoll_ctl(np.epfd, EPOLL_CTL_ADD, np.breakfd, &ev);
    struct timespec zero = { 0, 0 };
    struct epoll_event dummy;
    np.timerfd = -1;
    if (pwait2(np.epfd, &dummy, 1, &zero) < 0 && errno == ENOSYS) {
        np.timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = TIMERFD_DATA };
        if (np.timerfd >= 0)
            epoll_ctl(np.epfd, EPOLL_CTL_ADD, np.timerfd, &ev);
    }
    store_relaxed(&np.wakesig, 0);
    store_relaxed(&gort__netpollWaiters, 0);
    return 0;
}

/* Shutdown: every descriptor of the poller closed, every pollDesc freed.
 * Their deadline timers may still sit in P heaps, which are freed without
 * touching them. */
void gort__netpollclose(void) {
    for (int i = 0; i < pdChunks; i++) {
        free(np.chunks[i]);
        np.chunks[i] = NULL;
    }
    if (np.timerfd >= 0)
        close(np.timerfd);
    if (np.breakfd >= 0)
        close(np.breakfd);
    if (np.epfd >= 0)
        close(np.epfd);
    np.epfd = np.breakfd = np.timerfd = -1;
}

/* ---- pollDescs by descriptor number -------------------------------------------- */

/* The pollDesc of fd, made on first use; NULL for a number beyond the
 * table (such a descriptor is used without the poller). */
pollDesc *gort__pd_get(int fd) {
    if (fd < 0 || fd >= PD_MAXFD)
        return NULL;
    pollDesc **slot = &np.chunks[fd / pdChunk];
    pollDesc *c = load_acq(slot);
    if (c == NULL) {
        gort__lock(&np.chunklock);
        c = *slot;
        if (c == NULL) {
            c = calloc(pdChunk, sizeof *c);
            if (c == NULL) {
                gort__unlock(&np.chunklock);
                return NULL;
            }
            for (int i = 0; i < pdChunk; i++)
                c[i].fd = fd / pdChunk * pdChunk + i;
            store_rel(slot, c);   /* release: the fds above are set */
        }
        gort__unlock(&np.chunklock);
    }
    return &c[fd % pdChunk];
}

/* Readies the Gs taken out of a pollDesc (either may be NULL). */
static void readyboth(G *a, G *b) {
    if (a)
        gort__netpollgoready(a);
    if (b)
        gort__netpollgoready(b);
}

/* Clears both deadlines (pd->lock held): a new file, or gort_close. */
static void cleardeadlines(pollDesc *pd) {
    gort__deltimer(&pd->rt);
    gort__deltimer(&pd->wt);
    pd->rseq++;
    pd->wseq++;
    store_rel(&pd->rd, 0);
    store_rel(&pd->wd, 0);
}

/* Makes sure fd's current file is registered. Returns 0 if it already was
 * (EEXIST), 1 if this call registered it (a new file behind the number:
 * made non-blocking, generation advanced, waiters of the old file woken),
 * -EPERM if epoll refuses it (a regular file: use it without the poller),
 * another negative errno if fd is not open. */
int gort__pd_arm(pollDesc *pd) {
    gort__lock(&pd->lock);
    uint32_t seq = pd->fdseq + 1;
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.u64 = (uint64_t)seq << 32 | (uint32_t)pd->fd,
    };
    if (epoll_ctl(np.epfd, EPOLL_CTL_ADD, pd->fd, &ev) < 0) {
        int e = errno;
        gort__unlock(&pd->lock);
        return e == EEXIST ? 0 : -e;
    }
    /* A new file: events tagged seq are accepted from now on, and the
     * caller retries its call before it parks, so an edge that came
     * between the registration and this store is not lost. seq_cst: the
     * unblocks below read rg and wg after it (netpollblock). */
    store_sc(&pd->fdseq, seq);
    int fl = fcntl(pd->fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK))
        fcntl(pd->fd, F_SETFL, fl | O_NONBLOCK);
    struct stat st;
    store_relaxed(&pd->issock, fstat(pd->fd, &st) == 0 && S_ISSOCK(st.st_mode));
    cleardeadlines(pd);   /* they belonged to the old file */
    /* Goroutines still parked on the old file: it is gone (closed behind
     * gort's back), so they are woken and see the generation change. */
    G *rg = gort__netpollunblock(pd, 'r', false);
    G *wg = gort__netpollunblock(pd, 'w', false);
    gort__unlock(&pd->lock);
    readyboth(rg, wg);
    return 1;
}

/* ---- blocking and unblocking ----------------------------------------------------- */

static uintptr_t *pdslot(pollDesc *pd, int mode) { return mode == 'r' ? &pd->rg : &pd->wg; }

/* An error that ends a wait: the descriptor is being closed, its file was
 * replaced, or the deadline for mode has passed. seq_cst loads: in
 * netpollblock they follow the CAS to pdWait (see there). */
int gort__netpollcheckerr(pollDesc *pd, int mode, uint32_t seq) {
    if (load_sc(&pd->closing) || load_sc(&pd->fdseq) != seq)
        return -EBADF;
    int64_t d = load_sc(mode == 'r' ? &pd->rd : &pd->wd);
    if (d < 0)
        return -ETIMEDOUT;
    return 0;
}

static bool netpollblockcommit(G *gp, void *arg) {
    if (cas((uintptr_t *)arg, pdWait, (uintptr_t)gp)) {
        /* Counted so that findrunnable knows the poller has waiters and
         * checkdead knows goroutines wait on descriptors. */
        xadd(&gort__netpollWaiters, 1);
        return true;
    }
    return false;
}

/* Returns true if IO is ready, false if the wait was ended otherwise
 * (deadline, close, replaced file). Go's netpollblock. */
bool gort__netpollblock(pollDesc *pd, int mode, uint32_t seq) {
    uintptr_t *gpp = pdslot(pd, mode);
    for (;;) {
        if (cas(gpp, pdReady, pdNil))
            return true;
        if (cas(gpp, pdNil, pdWait))
            break;
        uintptr_t v = load_acq(gpp);
        if (v != pdReady && v != pdNil)
            gort__fatal("two goroutines wait to %s descriptor %d at once",
                        mode == 'r' ? "read" : "write", pd->fd);
    }
    /* Re-check for errors after pdWait is set: a deadline or close that
     * came in between unblocks pdWait to pdNil, and the commit then fails.
     * A Dekker pair: here the seq_cst CAS to pdWait, then seq_cst loads of
     * closing, fdseq and rd/wd; there (pd_closing, deadlinefire,
     * setdeadline, pd_arm) a seq_cst store of one of those, then
     * netpollunblock's seq_cst load of the word. Either this check sees the
     * error or the unblock sees pdWait (Go's atomics, seq_cst, do the
     * same: publishInfo's store, netpollcheckerr's load). */
    if (gort__netpollcheckerr(pd, mode, seq) == 0)
        gort__gopark(netpollblockcommit, gpp, waitReasonIOWait);
    /* Whoever woke us (or made the commit fail) left pdReady or pdNil.
     * Go exchanges the word back to pdNil; gort consumes only pdReady,
     * because a goroutine of an older file, woken when the number came
     * back as a new file, finds the word already belonging to a waiter of
     * the new file and must leave it alone. */
    return cas(gpp, pdReady, pdNil);
}

/* Moves mode's word to pdReady (ioready) or pdNil and returns the G that
 * was parked there, if any; the caller readies it. Go's netpollunblock. */
G *gort__netpollunblock(pollDesc *pd, int mode, bool ioready) {
    uintptr_t *gpp = pdslot(pd, mode);
    for (;;) {
        /* seq_cst: reads pdWait after the caller's seq_cst store of an
         * error (netpollblock says why); acquire could miss it. */
        uintptr_t old = load_sc(gpp);
        if (old == pdReady)
            return NULL;
        if (old == pdNil && !ioready)
            return NULL;   /* only an IO notification sets pdReady */
        uintptr_t nv = ioready ? pdReady : pdNil;
        if (cas(gpp, old, nv)) {
            if (old == pdWait)
                old = pdNil;
            return (G *)old;
        }
    }
}

/* Readies a G taken out of a pollDesc. */
void gort__netpollgoready(G *gp) {
    xadd(&gort__netpollWaiters, -1);
    gort__goready(gp);
}

/* ---- the poller ------------------------------------------------------------------ */

/* Wakes the M blocked in netpoll, if one is (Go's netpollBreak). A break
 * already pending stands for this one: the poller clears wakesig (seq_cst)
 * before it looks at the timers again (after findrunnable's fence_sc), and
 * our caller wrote what the poller must see (a timer0when, seq_cst) before
 * this seq_cst load and CAS. So either we see 0 and write, or the poller
 * sees our timer. */
void gort__netpollBreak(void) {
    if (load_sc(&np.wakesig) != 0 || !cas(&np.wakesig, 0, 1))
        return;
    uint64_t one = 1;
    while (write(np.breakfd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/* Checks for ready descriptors, waiting up to delay ns (< 0: for ever,
 * 0: not at all). Returns the goroutines that became runnable, still
 * Gwaiting (injectglist makes them runnable). */
glist gort__netpoll(int64_t delay) {
    glist list = { NULL, NULL, 0 };
    if (np.epfd < 0)
        return list;
    struct epoll_event events[128];
    int n;
retry:
    if (np.timerfd < 0) {
        struct timespec ts, *tsp = NULL;
        if (delay >= 0) {
            ts.tv_sec = delay / 1000000000;
            ts.tv_nsec = delay % 1000000000;
            tsp = &ts;
        }
        /* The kernel lets a timeout run late by the thread's timer slack
         * (50 us by default) to batch wake-ups. For a short wait that is
         * most of it, so the M asks for none while it waits; only then,
         * since elsewhere the slack is what spinning heuristics such as
         * runqsteal's 3 us nap were tuned with (as in Go). */
        M *mp = getm();
        bool precise = delay > 0 && delay < 2 * 1000 * 1000 && mp && mp->timerslack > 1;
        if (precise)
            prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
        n = pwait2(np.epfd, events, 128, tsp);
        if (precise) {
            int e = errno;
            prctl(PR_SET_TIMERSLACK, (unsigned long)mp->timerslack, 0UL, 0UL, 0UL);
            errno = e;
        }
    } else {
        int ms = delay < 0 ? -1 : 0;
        if (delay > 0) {
            struct itimerspec its = { { 0, 0 }, { delay / 1000000000, delay % 1000000000 } };
            timerfd_settime(np.timerfd, 0, &its, NULL);
            ms = -1;
        }
        n = epoll_wait(np.epfd, events, 128, ms);
    }
    if (n < 0) {
        if (errno != EINTR)
            gort__fatal("netpoll: epoll_wait on fd %d failed: %s", np.epfd, strerror(errno));
        /* A timed wait that was interrupted returns, so that the caller
         * can recompute how long to wait (as Go's netpoll). */
        if (delay > 0)
            return list;
        goto retry;
    }
    bool timerfired = false;
    for (int i = 0; i < n; i++) {
        struct epoll_event *ev = &events[i];
        if (ev->data.u64 == BREAK_DATA) {
            if (delay != 0) {
                /* Only a blocking poll consumes the break, so that a
                 * non-blocking one cannot swallow the wake-up meant for
                 * the poll that sleeps. */
                uint64_t v;
                while (read(np.breakfd, &v, sizeof v) < 0 && errno == EINTR)
                    ;
                store_sc(&np.wakesig, 0);   /* seq_cst: see netpollBreak */
            }
            continue;
        }
        if (ev->data.u64 == TIMERFD_DATA) {
            uint64_t v;
            (void)!read(np.timerfd, &v, sizeof v);
            timerfired = true;
            continue;
        }
        int fd = (int)(uint32_t)ev->data.u64;
        uint32_t seq = (uint32_t)(ev->data.u64 >> 32);
        pollDesc *pd = gort__pd_get(fd);
        if (pd == NULL || load_acq(&pd->fdseq) != seq)
            continue;   /* an event of a file that is no longer behind fd */
        uint32_t e = ev->events;
        bool r = e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
        bool w = e & (EPOLLOUT | EPOLLHUP | EPOLLERR);
        G *gp;
        if (r && (gp = gort__netpollunblock(pd, 'r', true)) != NULL) {
            xadd(&gort__netpollWaiters, -1);
            gort__gqueue_pushchain(&list, gp, gp, 1);
        }
        if (w && (gp = gort__netpollunblock(pd, 'w', true)) != NULL) {
            xadd(&gort__netpollWaiters, -1);
            gort__gqueue_pushchain(&list, gp, gp, 1);
        }
        /* A goroutine in gort_fd_wait for either event waits in rg. */
        if (w && !r && load_acq(&pd->rwany) && (gp = gort__netpollunblock(pd, 'r', true)) != NULL) {
            xadd(&gort__netpollWaiters, -1);
            gort__gqueue_pushchain(&list, gp, gp, 1);
        }
    }
    if (np.timerfd >= 0 && delay > 0 && !timerfired) {
        struct itimerspec off = { { 0, 0 }, { 0, 0 } };
        timerfd_settime(np.timerfd, 0, &off, NULL);
    }
    if (gort__traceon() && list.n > 0) {
        M *mp = getm();
        gort__traceNetpoll(mp ? mp->p : NULL, list.n);
    }
    return list;
}

/* ---- deadlines ------------------------------------------------------------------- */

/* A deadline timer fired: if it is still the current one for its mode,
 * the deadline has passed: waiters and later calls get -ETIMEDOUT. */
static void deadlinefire(pollDesc *pd, int mode, uintptr_t seq) {
    gort__lock(&pd->lock);
    uint32_t cur = mode == 'r' ? pd->rseq : pd->wseq;
    if ((uint32_t)seq != cur) {
        gort__unlock(&pd->lock);
        return;   /* the deadline was moved or cleared meanwhile */
    }
    store_sc(mode == 'r' ? &pd->rd : &pd->wd, -1);   /* seq_cst: see netpollblock */
    G *gp = gort__netpollunblock(pd, mode, false);
    G *gp2 = mode == 'r' || !load_acq(&pd->rwany) ? NULL : gort__netpollunblock(pd, 'r', false);
    gort__unlock(&pd->lock);
    readyboth(gp, gp2);
}

static void readDeadline(void *arg, uintptr_t seq) { deadlinefire(arg, 'r', seq); }
static void writeDeadline(void *arg, uintptr_t seq) { deadlinefire(arg, 'w', seq); }

/* Sets the deadline of mode ('r' or 'w') to when (absolute gort_now()
 * nanoseconds; 0 clears it). pd->lock held. Returns the G to ready if
 * the new deadline has already passed and someone was waiting. */
static G *setdeadline(pollDesc *pd, int mode, int64_t when, int64_t now) {
    timer *t = mode == 'r' ? &pd->rt : &pd->wt;
    uint32_t *seq = mode == 'r' ? &pd->rseq : &pd->wseq;
    int64_t *d = mode == 'r' ? &pd->rd : &pd->wd;
    gort__deltimer(t);
    (*seq)++;
    if (when == 0) {
        store_rel(d, 0);
        return NULL;
    }
    if (when <= now) {
        store_sc(d, -1);   /* seq_cst: see netpollblock */
        return gort__netpollunblock(pd, mode, false);
    }
    store_rel(d, when);
    t->when = when;
    t->period = 0;
    t->f = mode == 'r' ? readDeadline : writeDeadline;
    t->arg = pd;
    t->seq = *seq;
    if (gort__addtimer(t) < 0)
        gort__fatal("deadline for descriptor %d: out of memory", pd->fd);
    return NULL;
}

void gort__pd_setdeadline(pollDesc *pd, int modes, int64_t when) {
    int64_t now = gort__nanotime();
    G *r = NULL, *w = NULL, *any = NULL;
    gort__lock(&pd->lock);
    if (modes & 1)
        r = setdeadline(pd, 'r', when, now);
    if (modes & 2) {
        w = setdeadline(pd, 'w', when, now);
        if (when != 0 && when <= now && load_acq(&pd->rwany) && !(modes & 1))
            any = gort__netpollunblock(pd, 'r', false);
    }
    gort__unlock(&pd->lock);
    readyboth(r, w);
    readyboth(any, NULL);
}

/* gort_close: waiters are woken with -EBADF and later calls fail until the
 * descriptor is closed; then the pollDesc is ready for the next file that
 * gets the number. */
void gort__pd_closing(pollDesc *pd) {
    gort__lock(&pd->lock);
    /* seq_cst: pairs with netpollblock (the unblocks below), and with
     * pd_acquire (gort_close then reads refs). */
    store_sc(&pd->closing, 1);
    G *r = gort__netpollunblock(pd, 'r', false);
    G *w = gort__netpollunblock(pd, 'w', false);
    gort__unlock(&pd->lock);
    readyboth(r, w);
}

void gort__pd_closed(pollDesc *pd) {
    gort__lock(&pd->lock);
    cleardeadlines(pd);
    store_rel(&pd->fdseq, pd->fdseq + 1);   /* the next file is another generation */
    store_rel(&pd->closing, 0);
    gort__unlock(&pd->lock);
}

/* Called by gort_close before close(2): a file that other descriptors
 * share (dup) keeps its registration after this number is closed, so it is
 * removed explicitly. */
void gort__pd_unregister(pollDesc *pd) {
    epoll_ctl(np.epfd, EPOLL_CTL_DEL, pd->fd, NULL);
}
