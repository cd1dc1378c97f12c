/*
 * fd.c: I/O calls that park the goroutine, not the thread (Go's
 * internal/poll: fd_unix.go, fd_poll_runtime.go).
 *
 * Every call has the same shape: try the system call without blocking; on
 * EAGAIN, wait in the poller for the descriptor to become ready (the
 * goroutine parks, its M runs others), then try again. EINTR is retried.
 *
 * Descriptors come back. A program may close(2) a descriptor gort polls
 * and get the same number from socket(2), accept(2) or open(2), so gort
 * never trusts what it learnt about a number without asking the kernel,
 * and asks in the cheapest way that also registers (netpoll.c's
 * gort__pd_arm, one EPOLL_CTL_ADD that answers EEXIST for a known file):
 *  - sockets are read and written with MSG_DONTWAIT (and MSG_NOSIGNAL), a
 *    per-call non-blocking mode that does not depend on O_NONBLOCK; only a
 *    call that would block checks the registration before it parks. The
 *    common case, data already there, costs nothing extra;
 *  - every other call (read/write on pipes, FIFOs, ttys, eventfds; accept
 *    and connect, which have no per-call flag) checks the registration
 *    first, which also sets O_NONBLOCK on a file gort has not seen;
 *  - a file epoll refuses (EPERM: regular files, directories) is used with
 *    a blocking call between syscall enter and exit.
 * docs/design.md ("Descriptors that come back") has the costs measured.
 *
 * SIGPIPE: gort's threads run with SIGPIPE blocked (m.c, run.c) and socket
 * writes pass MSG_NOSIGNAL, so writing to a closed pipe or socket returns
 * -EPIPE instead of killing the process; the pending signal a pipe write
 * leaves is consumed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

/* One I/O call: returns >= 0 or a negative errno. sock: the file is a
 * socket, use the socket call with MSG_DONTWAIT. */
typedef ssize_t (*iofn)(int fd, void *ctx, bool sock);

/* Clears the SIGPIPE a write to a broken pipe left pending on this thread
 * (blocked there, so it was never delivered). */
static void eatsigpipe(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    struct timespec zero = { 0, 0 };
    while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
        ;
}

static ssize_t ret(ssize_t r) { return r >= 0 ? r : -errno; }

/* Takes a reference on pd for one call. While gort_close runs, a new call
 * waits for it to finish: the number may already belong to a new file
 * (close(2) has returned and socket(2) handed it out again before the
 * pollDesc was reset), and if it does not, the call gets the kernel's
 * -EBADF. Calls already waiting when the close began get -EBADF from the
 * poller. */
static void pd_acquire(pollDesc *pd) {
    for (int i = 0;; i++) {
        /* A Dekker pair with gort_close, which stores closing (seq_cst,
         * pd_closing) and then reads refs (seq_cst): either it sees our
         * reference and waits, or we see closing. Hence a seq_cst load
         * after the seq_cst add (a plain load on x86-64, LDAR on arm64). */
        xadd(&pd->refs, 1);
        if (likely(!load_sc(&pd->closing)))
            return;
        xadd(&pd->refs, -1);
        while (load_acq(&pd->closing))
            i++ < 100 ? gort__procyield(10) : gort_yield();
    }
}

static void pd_release(pollDesc *pd) { xadd(&pd->refs, -1); }

/* A thread that is not a goroutine (or a descriptor beyond the poller's
 * table) waits with poll(2), holding its thread. */
static ssize_t fd_do_thread(int fd, int mode, iofn fn, void *ctx) {
    for (;;) {
        ssize_t r = fn(fd, ctx, false);
        if (r == -EINTR)
            continue;
        if (r != -EAGAIN)
            return r;
        struct pollfd p = { fd, (short)(mode == 'r' ? POLLIN : POLLOUT), 0 };
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            return -errno;
    }
}

/* Runs fn on a file epoll refuses: a blocking call, with the P handed off
 * if it takes long. */
static ssize_t fd_do_blocking(int fd, iofn fn, void *ctx) {
    gort_syscall_enter();
    ssize_t r;
    do
        r = fn(fd, ctx, false);
    while (r == -EINTR);
    gort_syscall_exit();
    return r;
}

/* Waits for mode on pd: 0 when it may be ready, or -ETIMEDOUT, -EBADF.
 * Go's runtime_pollWait. */
static int fd_wait(pollDesc *pd, int mode, uint32_t seq) {
    int err = gort__netpollcheckerr(pd, mode, seq);
    if (err)
        return err;
    while (!gort__netpollblock(pd, mode, seq))
        if ((err = gort__netpollcheckerr(pd, mode, seq)) != 0)
            return err;
    return 0;
}

/* The loop every call runs (see the top of the file). socketcall: fn has a
 * per-call non-blocking socket form. */
static ssize_t fd_do(int fd, int mode, iofn fn, void *ctx, bool socketcall) {
    if (getg() == NULL)
        return fd_do_thread(fd, mode, fn, ctx);
    pollDesc *pd = gort__pd_get(fd);
    if (pd == NULL)
        return fd < 0 ? -EBADF : fd_do_blocking(fd, fn, ctx);
    pd_acquire(pd);
    ssize_t r;
    /* The file the call waited on, once it has: a call woken from a wait
     * (an edge of the old file, closed behind gort's back, can still come)
     * must not carry on with a new file that took the number meanwhile,
     * whose data and whose waiters are someone else's: it fails with
     * -EBADF, as the waiters pd_arm wakes do. Before its first wait, a
     * call may still learn that the number holds a new file. */
    bool waited = false;
    uint32_t waitseq = 0;
    for (;;) {
        uint32_t seq = load_acq(&pd->fdseq);
        bool sock = socketcall && load_relaxed(&pd->issock);
        if (!sock) {
            int a = gort__pd_arm(pd);
            if (a == -EPERM) {
                r = fd_do_blocking(fd, fn, ctx);
                break;
            }
            if (a < 0) {
                r = a;
                break;
            }
            seq = load_acq(&pd->fdseq);
        }
        if (waited && seq != waitseq) {
            r = -EBADF;
            break;
        }
        /* A deadline that has passed fails the call before it is tried,
         * unless the number has come back as another file since (plain
         * close(2)): the socket path has not asked yet, so it asks now. */
        if ((r = gort__netpollcheckerr(pd, mode, seq)) != 0) {
            if (r == -ETIMEDOUT && sock && gort__pd_arm(pd) == 1)
                continue;
            break;
        }
        r = fn(fd, ctx, sock);
        if (r == -EINTR)
            continue;
        if (r == -ENOTSOCK && sock) {
            store_relaxed(&pd->issock, 0);   /* another file now: learn it again */
            continue;
        }
        if (r != -EAGAIN)
            break;
        if (sock) {
            /* About to park: make sure the poller watches this file. A new
             * registration means a new file: try again before parking. */
            int a = gort__pd_arm(pd);
            if (a == 1)
                continue;
            if (a < 0) {
                r = a == -EPERM ? -EAGAIN : a;
                break;
            }
        }
        if ((r = fd_wait(pd, mode, seq)) != 0)
            break;
        waited = true;
        waitseq = seq;
    }
    pd_release(pd);
    return r;
}

/* ---- read side -------------------------------------------------------------------- */

typedef struct {
    void         *buf;
    size_t        n;
    int           flags;
    struct sockaddr *addr;
    socklen_t    *addrlen;
    const struct iovec *iov;
    int           iovcnt;
} rctx;

static ssize_t do_read(int fd, void *c, bool sock) {
    rctx *x = c;
    return ret(sock ? recv(fd, x->buf, x->n, MSG_DONTWAIT) : read(fd, x->buf, x->n));
}

static ssize_t do_recvfrom(int fd, void *c, bool sock) {
    rctx *x = c;
    (void)sock;
    return ret(recvfrom(fd, x->buf, x->n, x->flags | MSG_DONTWAIT, x->addr, x->addrlen));
}

static ssize_t do_readv(int fd, void *c, bool sock) {
    rctx *x = c;
    if (sock) {
        struct msghdr m = { .msg_iov = (struct iovec *)x->iov, .msg_iovlen = (size_t)x->iovcnt };
        return ret(recvmsg(fd, &m, MSG_DONTWAIT));
    }
    return ret(readv(fd, x->iov, x->iovcnt));
}

GORT_API ssize_t gort_read(int fd, void *buf, size_t n) {
    rctx x = { .buf = buf, .n = n };
    return fd_do(fd, 'r', do_read, &x, true);
}

GORT_API ssize_t gort_recv(int fd, void *buf, size_t n, int flags) {
    rctx x = { .buf = buf, .n = n, .flags = flags };
    return fd_do(fd, 'r', do_recvfrom, &x, true);
}

GORT_API ssize_t gort_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
                               socklen_t *addrlen) {
    rctx x = { .buf = buf, .n = n, .flags = flags, .addr = addr, .addrlen = addrlen };
    return fd_do(fd, 'r', do_recvfrom, &x, true);
}

GORT_API ssize_t gort_readv(int fd, const struct iovec *iov, int iovcnt) {
    if (iovcnt < 0)
        return -EINVAL;
    rctx x = { .iov = iov, .iovcnt = iovcnt };
    return fd_do(fd, 'r', do_readv, &x, true);
}

/* ---- write side ------------------------------------------------------------------- */

typedef struct {
    const void   *buf;
    size_t        n;
    int           flags;
    const struct sockaddr *addr;
    socklen_t     addrlen;
    struct iovec *iov;
    int           iovcnt;
} wctx;

static ssize_t wret(ssize_t r) {
    if (r >= 0)
        return r;
    int e = errno;
    if (e == EPIPE)
        eatsigpipe();
    return -e;
}

static ssize_t do_write(int fd, void *c, bool sock) {
    wctx *x = c;
    return wret(sock ? send(fd, x->buf, x->n, MSG_DONTWAIT | MSG_NOSIGNAL)
                     : write(fd, x->buf, x->n));
}

static ssize_t do_sendto(int fd, void *c, bool sock) {
    wctx *x = c;
    (void)sock;
    return wret(sendto(fd, x->buf, x->n, x->flags | MSG_DONTWAIT | MSG_NOSIGNAL, x->addr,
                       x->addrlen));
}

static ssize_t do_writev(int fd, void *c, bool sock) {
    wctx *x = c;
    if (sock) {
        struct msghdr m = { .msg_iov = x->iov, .msg_iovlen = (size_t)x->iovcnt };
        return wret(sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL));
    }
    return wret(writev(fd, x->iov, x->iovcnt));
}

/* Writes all n bytes, parking as often as the peer makes it (Go's
 * FD.Write); a failure after a partial write reports the error. */
static ssize_t writeall(int fd, const void *buf, size_t n, int flags, iofn fn) {
    size_t done = 0;
    do {
        wctx x = { .buf = (const char *)buf + done, .n = n - done, .flags = flags };
        ssize_t r = fd_do(fd, 'w', fn, &x, true);
        if (r < 0)
            return r;
        done += (size_t)r;
    } while (done < n);
    return (ssize_t)done;
}

GORT_API ssize_t gort_write(int fd, const void *buf, size_t n) {
    return writeall(fd, buf, n, 0, do_write);
}

GORT_API ssize_t gort_send(int fd, const void *buf, size_t n, int flags) {
    return writeall(fd, buf, n, flags, do_sendto);
}

GORT_API ssize_t gort_sendto(int fd, const void *buf, size_t n, int flags,
                             const struct sockaddr *addr, socklen_t addrlen) {
    /* A datagram goes whole or not at all: no loop. */
    wctx x = { .buf = buf, .n = n, .flags = flags, .addr = addr, .addrlen = addrlen };
    return fd_do(fd, 'w', do_sendto, &x, true);
}

/* Writes every byte of the vectors (Go's writev loop). The caller's
 * array is not modified: a partial write continues on a copy. */
GORT_API ssize_t gort_writev(int fd, const struct iovec *iov, int iovcnt) {
    if (iovcnt < 0 || iovcnt > IOV_MAX)
        return -EINVAL;
    struct iovec v[iovcnt > 0 ? iovcnt : 1];
    memcpy(v, iov, (size_t)iovcnt * sizeof *v);
    size_t total = 0, done = 0;
    for (int i = 0; i < iovcnt; i++)
        total += v[i].iov_len;
    struct iovec *p = v;
    int cnt = iovcnt;
    while (done < total || total == 0) {
        wctx x = { .iov = p, .iovcnt = cnt };
        ssize_t r = fd_do(fd, 'w', do_writev, &x, true);
        if (r < 0)
            return r;
        if (total == 0)
            return 0;
        done += (size_t)r;
        size_t k = (size_t)r;
        while (cnt > 0 && k >= p->iov_len) {
            k -= p->iov_len;
            p++;
            cnt--;
        }
        if (cnt > 0) {
            p->iov_base = (char *)p->iov_base + k;
            p->iov_len -= k;
        }
    }
    return (ssize_t)done;
}

/* ---- accept and connect ----------------------------------------------------------- */

typedef struct {
    struct sockaddr *addr;
    socklen_t       *len;
} actx;

static ssize_t do_accept(int fd, void *c, bool sock) {
    actx *x = c;
    (void)sock;
    return ret(accept4(fd, x->addr, x->len, SOCK_NONBLOCK | SOCK_CLOEXEC));
}

/* The new descriptor is non-blocking and close-on-exec. */
GORT_API int gort_accept(int fd, struct sockaddr *addr, socklen_t *len) {
    actx x = { addr, len };
    for (;;) {
        ssize_t r = fd_do(fd, 'r', do_accept, &x, false);
        /* Go retries these: the connection died before it was accepted. */
        if (r == -ECONNABORTED)
            continue;
        return (int)r;
    }
}

typedef struct {
    const struct sockaddr *addr;
    socklen_t len;
    bool      started;
} cctx;

static ssize_t do_connect(int fd, void *c, bool sock) {
    cctx *x = c;
    (void)sock;
    if (!x->started) {
        x->started = true;
        if (connect(fd, x->addr, x->len) == 0)
            return 0;
        int e = errno;
        /* In progress: wait for writability (fd_do parks on EAGAIN). */
        return e == EINPROGRESS || e == EINTR ? -EAGAIN : -e;
    }
    /* Writable again: the connection is made or has failed. */
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        return -errno;
    if (soerr == 0) {
        /* A spurious wake-up leaves a connect still in progress: ask the
         * kernel whether we are connected yet. */
        struct sockaddr_storage ss;
        socklen_t l = sizeof ss;
        if (getpeername(fd, (struct sockaddr *)&ss, &l) < 0)
            return errno == ENOTCONN ? -EAGAIN : -errno;
        return 0;
    }
    return -soerr;
}

GORT_API int gort_connect(int fd, const struct sockaddr *addr, socklen_t len) {
    cctx x = { addr, len, false };
    return (int)fd_do(fd, 'w', do_connect, &x, false);
}

/* ---- close, wait, deadlines -------------------------------------------------------- */

GORT_API int gort_close(int fd) {
    /* A thread that is not a goroutine may close too, while the runtime
     * runs: goroutines waiting on fd must still be woken. */
    bool foreign = getg() == NULL;
    pollDesc *pd = NULL;
    if (!foreign || gort__foreign_enter())
        pd = gort__pd_get(fd);
    else
        foreign = false;   /* no runtime: nothing waits */
    if (pd == NULL) {
        if (foreign)
            gort__foreign_exit();
        return close(fd) < 0 ? -errno : 0;
    }
    gort__pd_closing(pd);
    /* Calls in progress see closing and leave (a blocking call on a
     * regular file finishes first). seq_cst: read after pd_closing's
     * seq_cst store of closing; pd_acquire is the other side. */
    for (int i = 0; load_sc(&pd->refs) != 0; i++) {
        if (i < 100)
            gort__procyield(10);
        else if (foreign)
            gort__osyield();
        else
            gort_yield();
    }
    gort__pd_unregister(pd);
    int r = close(fd) < 0 ? -errno : 0;
    gort__pd_closed(pd);
    if (foreign)
        gort__foreign_exit();
    return r;
}

GORT_API int gort_fd_set_deadline(int fd, int events, int64_t when) {
    if ((events & ~(GORT_READ | GORT_WRITE)) || events == 0 || when < 0)
        return -EINVAL;
    if (getg() == NULL)
        return -EPERM;
    pollDesc *pd = gort__pd_get(fd);
    if (pd == NULL)
        return -EBADF;
    /* Register first: a registration made later, by the first call, would
     * take the descriptor for a new file and clear the deadline. */
    int a = gort__pd_arm(pd);
    if (a < 0 && a != -EPERM)
        return a;
    gort__pd_setdeadline(pd, (events & GORT_READ ? 1 : 0) | (events & GORT_WRITE ? 2 : 0), when);
    return 0;
}

/* What poll(2) says of fd now, as GORT_READ|GORT_WRITE bits. */
static int readynow(int fd, int events) {
    struct pollfd p = { fd, 0, 0 };
    if (events & GORT_READ)
        p.events |= POLLIN;
    if (events & GORT_WRITE)
        p.events |= POLLOUT;
    if (poll(&p, 1, 0) <= 0)
        return 0;
    int r = 0;
    if (p.revents & (POLLIN | POLLHUP | POLLERR))
        r |= events & GORT_READ;
    if (p.revents & (POLLOUT | POLLHUP | POLLERR))
        r |= events & GORT_WRITE;
    if (r == 0 && (p.revents & POLLNVAL))
        return -EBADF;
    return r;
}

typedef struct {
    pollDesc *pd;
    int       mode;
    uint32_t  timedout;
} fwctx;

/* The deadline of a gort_fd_wait passed. The waiter reads timedout only
 * before it moves its word to pdWait (netpollblock's own re-check after
 * that looks at rd/wd, not at timedout), so a timeout that fired after the
 * waiter's read and found the word pdNil used to leave it for good: the
 * waiter then parked with nobody to wake it. So the timeout leaves pdReady
 * (ioready), as an edge would: the waiter's netpollblock returns at once
 * and its loop reads timedout (the pdReady CAS it consumes orders the
 * store before that read). A pdReady left behind after the waiter has
 * gone costs the next call on the descriptor one retry. */
static void fdwaitTimeout(void *arg, uintptr_t seq) {
    (void)seq;
    fwctx *x = arg;
    store_rel(&x->timedout, 1);
    G *gp = gort__netpollunblock(x->pd, x->mode, true);
    if (gp)
        gort__netpollgoready(gp);
}

/* Parks until fd is ready for events, the deadline passes (-ETIMEDOUT) or
 * fd is closed (-EBADF). Returns the events that are ready. */
GORT_API int gort_fd_wait(int fd, int events, int64_t deadline) {
    if ((events & ~(GORT_READ | GORT_WRITE)) || events == 0 || deadline < 0)
        return -EINVAL;
    pollDesc *pd = getg() ? gort__pd_get(fd) : NULL;
    if (pd == NULL) {
        /* A plain thread: poll(2) with the deadline. */
        for (;;) {
            int r = readynow(fd, events);
            if (r != 0)
                return r;
            int ms = -1;
            if (deadline) {
                int64_t left = deadline - gort__nanotime();
                if (left <= 0)
                    return -ETIMEDOUT;
                ms = (int)((left + 999999) / 1000000);
            }
            struct pollfd p = { fd, (short)((events & GORT_READ ? POLLIN : 0) |
                                            (events & GORT_WRITE ? POLLOUT : 0)), 0 };
            poll(&p, 1, ms);
        }
    }
    pd_acquire(pd);
    int a = gort__pd_arm(pd);
    int r;
    if (a < 0) {
        r = a == -EPERM ? readynow(fd, events) | events : a;   /* regular files are always ready */
        goto out;
    }
    int mode = events & GORT_READ ? 'r' : 'w';
    bool any = events == (GORT_READ | GORT_WRITE);
    fwctx x = { pd, mode, 0 };
    timer t;
    memset(&t, 0, sizeof t);
    if (deadline) {
        t.when = deadline;
        t.f = fdwaitTimeout;
        t.arg = &x;
        t.waitable = true;
        if ((r = gort__addtimer(&t)) < 0)
            goto out;
    }
    if (any)
        store_rel(&pd->rwany, 1);
    uint32_t seq = load_acq(&pd->fdseq);
    for (;;) {
        r = readynow(fd, events);
        if (r != 0)
            break;
        if (load_acq(&x.timedout)) {
            r = -ETIMEDOUT;
            break;
        }
        int e = gort__netpollcheckerr(pd, mode, seq);
        if (e != 0) {
            r = e;
            break;
        }
        gort__netpollblock(pd, mode, seq);
    }
    if (any)
        store_rel(&pd->rwany, 0);
    if (deadline) {
        gort__deltimer(&t);
        gort__timer_waitfire(&t);   /* t and x live on this stack */
    }
out:
    pd_release(pd);
    return r;
}
