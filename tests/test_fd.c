/* Black-box tests of the I/O calls that park the goroutine (gort_read,
 * gort_write and the rest; Go's internal/poll and the net package's
 * behaviour tests where they map: partial writes, EOF, ECONNRESET, EPIPE
 * without SIGPIPE, deadlines (net/timeout_test.go), gort_close, numbers
 * that come back after close(2), TCP and UDP on loopback, regular files,
 * readv/writev, gort_fd_wait, and the calls from a thread that is not a
 * goroutine. Timing is only asserted as "never early". */
#define _GNU_SOURCE
#include <gort.h>
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS  (1000 * 1000LL)
#define SEC (1000 * MS)

/* ---- helpers ---------------------------------------------------------------------- */

static void mksocketpair(int sv[2]) {
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void mkpipe(int p[2]) { CHECK_EQ(pipe2(p, O_CLOEXEC), 0); }

static uint8_t pattern(size_t i) { return (uint8_t)(i * 131 + (i >> 8) * 7 + (i >> 16) + 3); }

/* A TCP listener on 127.0.0.1, port chosen by the kernel. */
static int tcp_listener(struct sockaddr_in *addr) {
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(l >= 0);
    int one = 1;
    CHECK_EQ(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(l, (struct sockaddr *)addr, sizeof *addr), 0);
    CHECK_EQ(listen(l, 128), 0);
    socklen_t len = sizeof *addr;
    CHECK_EQ(getsockname(l, (struct sockaddr *)addr, &len), 0);
    return l;
}

/* A connected TCP pair on loopback, made with gort_connect and gort_accept. */
static void tcp_pair(int *client, int *server) {
    struct sockaddr_in addr;
    int l = tcp_listener(&addr);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(c >= 0);
    CHECK_EQ(gort_connect(c, (struct sockaddr *)&addr, sizeof addr), 0);
    int s = gort_accept(l, NULL, NULL);
    CHECK(s >= 0);
    CHECK_EQ(gort_close(l), 0);
    *client = c;
    *server = s;
}

/* Fills the socket's send buffer (and the peer's receive buffer). */
static size_t fill_socket(int fd) {
    static char junk[65536];
    size_t total = 0;
    for (;;) {
        ssize_t n = send(fd, junk, sizeof junk, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
            return total;
        }
        total += (size_t)n;
    }
}

/* Drains what is readable now. */
static size_t drain(int fd) {
    char buf[65536];
    size_t total = 0;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0)
            return total;
        total += (size_t)n;
    }
}

/* Registers fd with the poller the way any first gort call on it does
 * (a descriptor in use, as a net.Conn is before its deadlines are set). */
static void gort_use(int fd) {
    int r = gort_fd_wait(fd, GORT_READ | GORT_WRITE, gort_now() + 100 * 1000);
    CHECK(r > 0 || r == -ETIMEDOUT);
}

static void join_thread(pthread_t th, void **ret) {
    gort_syscall_enter();
    CHECK_EQ(pthread_join(th, ret), 0);
    gort_syscall_exit();
}

/* ---- 16 MiB through a socket pair or a pipe, in partial writes --------------------- */

enum { BIG = 16 << 20 };

typedef struct {
    int fd;
    uint8_t *buf;
    gort_waitgroup *wg;
    uint64_t sum;
} xfer;

static void big_writer(void *arg) {
    xfer *x = arg;
    CHECK_EQ(gort_write(x->fd, x->buf, BIG), BIG);
    CHECK_EQ(gort_close(x->fd), 0);
    gort_wg_done(x->wg);
}

static void big_reader(void *arg) {
    xfer *x = arg;
    static uint8_t chunk[200000];
    size_t got = 0;
    uint64_t sum = 0, seed = 99;
    for (;;) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        size_t want = 1 + (size_t)(seed >> 33) % sizeof chunk;
        ssize_t n = gort_read(x->fd, chunk, want);
        CHECK(n >= 0);
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            if (chunk[i] != pattern(got + (size_t)i))
                CHECK_EQ(chunk[i], pattern(got + (size_t)i));
            sum = sum * 31 + chunk[i];
        }
        got += (size_t)n;
    }
    CHECK_EQ(got, BIG);
    x->sum = sum;
    CHECK_EQ(gort_close(x->fd), 0);
    gort_wg_done(x->wg);
}

static void big_main(void *arg) {
    int use_pipe = *(int *)arg;
    uint8_t *buf = malloc(BIG);
    CHECK(buf != NULL);
    uint64_t want = 0;
    for (size_t i = 0; i < BIG; i++) {
        buf[i] = pattern(i);
        want = want * 31 + buf[i];
    }
    int fds[2];
    if (use_pipe)
        mkpipe(fds);
    else
        mksocketpair(fds);
    gort_waitgroup wg = { 0 };
    xfer w = { use_pipe ? fds[1] : fds[0], buf, &wg, 0 };
    xfer r = { use_pipe ? fds[0] : fds[1], NULL, &wg, 0 };
    gort_wg_add(&wg, 2);
    CHECK(gort_go(big_reader, &r) > 0);
    CHECK(gort_go(big_writer, &w) > 0);
    gort_wg_wait(&wg);
    CHECK_EQ(r.sum, want);
    free(buf);
}

TEST(fd_partial_writes_16mib) {
    int use_pipe = 0;
    test_run_with(1, big_main, &use_pipe);
    test_run_with(2, big_main, &use_pipe);
    use_pipe = 1;
    test_run_with(1, big_main, &use_pipe);
    test_run_with(2, big_main, &use_pipe);
}

/* ---- end of file ------------------------------------------------------------------- */

static atomic_int eof_started;

static void eof_reader(void *arg) {
    int fd = *(int *)arg;
    char buf[16];
    atomic_store(&eof_started, 1);
    CHECK_EQ(gort_read(fd, buf, sizeof buf), 0); /* parked, then the peer closed */
    CHECK_EQ(gort_read(fd, buf, sizeof buf), 0);
    atomic_store(&eof_started, 2);
}

static void eof_main(void *arg) {
    (void)arg;
    char buf[16];
    /* Data, then EOF, then EOF again. */
    int sv[2];
    mksocketpair(sv);
    CHECK_EQ(gort_write(sv[0], "abc", 3), 3);
    CHECK_EQ(shutdown(sv[0], SHUT_WR), 0);
    CHECK_EQ(gort_read(sv[1], buf, sizeof buf), 3);
    CHECK(memcmp(buf, "abc", 3) == 0);
    CHECK_EQ(gort_read(sv[1], buf, sizeof buf), 0);
    CHECK_EQ(gort_read(sv[1], buf, sizeof buf), 0);
    /* The other direction still works. */
    CHECK_EQ(gort_write(sv[1], "xy", 2), 2);
    CHECK_EQ(gort_read(sv[0], buf, sizeof buf), 2);
    CHECK_EQ(gort_close(sv[0]), 0);
    CHECK_EQ(gort_close(sv[1]), 0);

    /* A reader parked when the peer closes: socket pair, pipe, TCP. */
    for (int kind = 0; kind < 3; kind++) {
        int p[2];
        if (kind == 0) {
            mksocketpair(p);
        } else if (kind == 1) {
            int q[2];
            mkpipe(q);
            p[0] = q[1]; /* p[0] the end that closes, p[1] the reader */
            p[1] = q[0];
        } else {
            tcp_pair(&p[0], &p[1]);
        }
        atomic_store(&eof_started, 0);
        CHECK(gort_go(eof_reader, &p[1]) > 0);
        test_yield_until(&eof_started, 1);
        test_wait_timer(MS); /* most likely parked by now; either way EOF */
        CHECK_EQ(gort_close(p[0]), 0);
        test_yield_until(&eof_started, 2);
        CHECK_EQ(gort_close(p[1]), 0);
    }
}

TEST(fd_eof) {
    test_run_with(1, eof_main, NULL);
    test_run_with(2, eof_main, NULL);
}

/* ---- ECONNRESET ------------------------------------------------------------------ */

static atomic_int reset_state;

static void reset_reader(void *arg) {
    int fd = *(int *)arg;
    char buf[16];
    atomic_store(&reset_state, 1);
    ssize_t r = gort_read(fd, buf, sizeof buf);
    CHECK_EQ(r, -ECONNRESET);
    atomic_store(&reset_state, 2);
}

static void linger0_close(int fd) {
    struct linger lg = { 1, 0 };
    CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    CHECK_EQ(gort_close(fd), 0);
}

static void econnreset_main(void *arg) {
    (void)arg;
    char buf[16];
    /* TCP, SO_LINGER 0: the peer's reset reaches a parked reader. */
    int c, s;
    tcp_pair(&c, &s);
    atomic_store(&reset_state, 0);
    CHECK(gort_go(reset_reader, &s) > 0);
    test_yield_until(&reset_state, 1);
    test_wait_timer(MS);
    linger0_close(c);
    test_yield_until(&reset_state, 2);
    CHECK_EQ(gort_close(s), 0);

    /* TCP: the peer closes with unread data (a reset), reader not parked. */
    tcp_pair(&c, &s);
    CHECK_EQ(gort_write(s, "unread", 6), 6);
    test_wait_timer(MS); /* let it arrive: a close with data queued sends a reset */
    CHECK_EQ(gort_close(c), 0);
    ssize_t r;
    do
        r = gort_read(s, buf, sizeof buf);
    while (r > 0);
    CHECK_EQ(r, -ECONNRESET);
    CHECK_EQ(gort_close(s), 0);

    /* A Unix socket pair: the peer closes with unread data. */
    int sv[2];
    mksocketpair(sv);
    CHECK_EQ(gort_write(sv[1], "unread", 6), 6);
    atomic_store(&reset_state, 0);
    CHECK(gort_go(reset_reader, &sv[1]) > 0);
    test_yield_until(&reset_state, 1);
    CHECK_EQ(gort_close(sv[0]), 0);
    test_yield_until(&reset_state, 2);
    CHECK_EQ(gort_close(sv[1]), 0);
}

TEST(fd_econnreset) {
    test_run_with(1, econnreset_main, NULL);
    test_run_with(2, econnreset_main, NULL);
}

/* ---- EPIPE, and no SIGPIPE ------------------------------------------------------- */

static atomic_int epipe_state;
static int epipe_tcp;

static void epipe_writer(void *arg) {
    int fd = *(int *)arg;
    atomic_store(&epipe_state, 1);
    static char big[1 << 20];
    ssize_t r;
    /* Until the buffers are full and it parks, then fails. */
    for (int i = 0; i < 1000 && (r = gort_write(fd, big, sizeof big)) > 0; i++)
        ;
    if (epipe_tcp && r == -ECONNRESET) /* TCP: the reset itself, then EPIPE */
        r = gort_write(fd, big, 1);
    CHECK_EQ(r, -EPIPE);
    atomic_store(&epipe_state, 2);
}

static void epipe_main(void *arg) {
    (void)arg;
    /* Socket pair and pipe, peer closed: -EPIPE at once, every time. */
    int sv[2], p[2];
    mksocketpair(sv);
    mkpipe(p);
    CHECK_EQ(gort_close(sv[1]), 0);
    CHECK_EQ(gort_close(p[0]), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(gort_write(sv[0], "x", 1), -EPIPE);
        CHECK_EQ(gort_send(sv[0], "x", 1, 0), -EPIPE);
        struct iovec iov = { "x", 1 };
        CHECK_EQ(gort_writev(sv[0], &iov, 1), -EPIPE);
        CHECK_EQ(gort_write(p[1], "x", 1), -EPIPE);
        CHECK_EQ(gort_writev(p[1], &iov, 1), -EPIPE);
    }
    CHECK_EQ(gort_close(sv[0]), 0);
    CHECK_EQ(gort_close(p[1]), 0);

    /* A writer parked on a full buffer when the reader closes. */
    for (int kind = 0; kind < 3; kind++) {
        int w, rd;
        if (kind == 0) {
            mksocketpair(sv);
            w = sv[0], rd = sv[1];
        } else if (kind == 1) {
            mkpipe(p);
            w = p[1], rd = p[0];
        } else {
            tcp_pair(&w, &rd);
        }
        atomic_store(&epipe_state, 0);
        epipe_tcp = kind == 2;
        CHECK(gort_go(epipe_writer, &w) > 0);
        test_yield_until(&epipe_state, 1);
        test_wait_timer(MS);
        if (kind == 2)
            linger0_close(rd); /* TCP: a reset, so the writer's next send fails */
        else
            CHECK_EQ(gort_close(rd), 0);
        for (int i = 0; i < 1000000 && atomic_load(&epipe_state) != 2; i++)
            test_wait_timer(100 * 1000);
        CHECK_EQ(atomic_load(&epipe_state), 2);
        CHECK_EQ(gort_close(w), 0);
    }
}

static void *thread_epipe(void *arg) {
    (void)arg;
    int sv[2], p[2];
    mksocketpair(sv);
    mkpipe(p);
    close(sv[1]);
    close(p[0]);
    CHECK_EQ(gort_write(sv[0], "x", 1), -EPIPE);
    CHECK_EQ(gort_send(sv[0], "x", 1, 0), -EPIPE);
    CHECK_EQ(gort_write(p[1], "x", 1), -EPIPE);
    close(sv[0]);
    close(p[1]);
    return NULL;
}

static void epipe_thread_main(void *arg) {
    (void)arg;
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, thread_epipe, NULL), 0);
    join_thread(th, NULL);
}

static void epipe_child(void) {
    signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would end the child */
    test_run_with(1, epipe_main, NULL);
    test_run_with(2, epipe_main, NULL);
    /* Nothing left pending on m0 once gort_run has restored its mask. */
    sigset_t pend;
    sigpending(&pend);
    CHECK(!sigismember(&pend, SIGPIPE));
}

static void epipe_thread_child(void) {
    signal(SIGPIPE, SIG_DFL);
    test_run_with(2, epipe_thread_main, NULL);
}

static void expect_clean_exit(void (*fn)(void)) {
    char *err = NULL;
    int status = test_fork_capture(fn, 120, &err);
    if (status != 0)
        fprintf(stderr, "child ended with status %#x (%s), stderr:\n%s\n", status,
                status != -1 && WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "-", err);
    CHECK_EQ(status, 0);
    free(err);
}

TEST(fd_epipe_no_sigpipe) { expect_clean_exit(epipe_child); }

/* The header: "socket writes use MSG_NOSIGNAL: a write to a closed peer
 * returns -EPIPE and the process lives". From a thread that is not a
 * goroutine too. */
TEST(fd_epipe_no_sigpipe_plain_thread) { expect_clean_exit(epipe_thread_child); }

/* ---- deadlines ------------------------------------------------------------------- */

/* Go's TestReadTimeout with a deadline in the past, and
 * TestReadDeadlineDataAvailable / TestWriteDeadlineBufferAvailable: a
 * passed deadline fails the call even when it could proceed. */
static void past_deadline_main(void *arg) {
    (void)arg;
    int kinds[] = { 0, 1, 2 };
    for (int k = 0; k < 3; k++) {
        int a, b;
        if (kinds[k] == 0) {
            int sv[2];
            mksocketpair(sv);
            a = sv[0], b = sv[1];
        } else if (kinds[k] == 1) {
            int p[2];
            mkpipe(p);
            a = p[1], b = p[0]; /* a writes, b reads */
        } else {
            tcp_pair(&a, &b);
        }
        gort_use(a);
        gort_use(b);
        char buf[16];
        CHECK_EQ(gort_write(a, "hello", 5), 5);
        CHECK_EQ(gort_fd_set_deadline(b, GORT_READ, 1), 0); /* long past */
        for (int i = 0; i < 3; i++)
            CHECK_EQ(gort_read(b, buf, sizeof buf), -ETIMEDOUT);
        CHECK_EQ(gort_fd_set_deadline(b, GORT_READ, gort_now() - 1), 0);
        CHECK_EQ(gort_read(b, buf, sizeof buf), -ETIMEDOUT);
        CHECK_EQ(gort_fd_set_deadline(a, GORT_WRITE, 1), 0);
        CHECK_EQ(gort_write(a, "more", 4), -ETIMEDOUT);
        /* Cleared: the data is there, and there is room again. */
        CHECK_EQ(gort_fd_set_deadline(b, GORT_READ, 0), 0);
        CHECK_EQ(gort_fd_set_deadline(a, GORT_WRITE, 0), 0);
        CHECK_EQ(gort_read(b, buf, sizeof buf), 5);
        CHECK(memcmp(buf, "hello", 5) == 0);
        CHECK_EQ(gort_write(a, "more", 4), 4);
        CHECK_EQ(gort_read(b, buf, sizeof buf), 4);
        /* A read deadline leaves writes alone and the other way round. */
        CHECK_EQ(gort_fd_set_deadline(a, GORT_READ, 1), 0);
        CHECK_EQ(gort_write(a, "z", 1), 1);
        CHECK_EQ(gort_read(b, buf, sizeof buf), 1);
        /* Both at once. */
        CHECK_EQ(gort_fd_set_deadline(b, GORT_READ | GORT_WRITE, 1), 0);
        CHECK_EQ(gort_read(b, buf, sizeof buf), -ETIMEDOUT);
        if (kinds[k] != 1)
            CHECK_EQ(gort_write(b, "z", 1), -ETIMEDOUT);
        CHECK_EQ(gort_close(a), 0);
        CHECK_EQ(gort_close(b), 0);
    }
}

TEST(fd_deadline_in_the_past_fails_at_once) { test_run_with(1, past_deadline_main, NULL); }

typedef struct {
    int fd;
    int mode; /* GORT_READ or GORT_WRITE */
    ssize_t result;
    int64_t returned;
    atomic_int state;
} dl_waiter;

static void deadline_waiter(void *arg) {
    dl_waiter *w = arg;
    static char big[4 << 20];
    char buf[64];
    atomic_store(&w->state, 1);
    if (w->mode == GORT_READ)
        w->result = gort_read(w->fd, buf, sizeof buf);
    else
        w->result = gort_write(w->fd, big, sizeof big);
    w->returned = gort_now();
    atomic_store(&w->state, 2);
}

/* Waits for the waiter to reach state v; a call that never returns
 * fails the test after 30 s instead of hanging it. */
static void wait_state(dl_waiter *w, int v) {
    int64_t give_up = gort_now() + 30 * SEC;
    while (atomic_load(&w->state) < v && gort_now() < give_up)
        test_wait_timer(200 * 1000);
    if (atomic_load(&w->state) < v)
        fprintf(stderr, "the call on descriptor %d has not returned after 30 s\n", w->fd);
    CHECK(atomic_load(&w->state) >= v);
}

/* A future deadline wakes a parked reader (and writer) with -ETIMEDOUT,
 * not before the deadline; later calls fail at once until it is moved. */
static void future_deadline_main(void *arg) {
    (void)arg;
    for (int mode = GORT_READ; mode <= GORT_WRITE; mode++) {
        int sv[2];
        mksocketpair(sv);
        gort_use(sv[0]);
        if (mode == GORT_WRITE)
            fill_socket(sv[0]);
        dl_waiter w = { .fd = sv[0], .mode = mode };
        int64_t deadline = gort_now() + 30 * MS;
        CHECK_EQ(gort_fd_set_deadline(sv[0], mode, deadline), 0);
        CHECK(gort_go(deadline_waiter, &w) > 0);
        wait_state(&w, 2);
        CHECK_EQ(w.result, -ETIMEDOUT);
        CHECK(w.returned >= deadline);
        char c = 0;
        if (mode == GORT_READ)
            CHECK_EQ(gort_read(sv[0], &c, 1), -ETIMEDOUT);
        else
            CHECK_EQ(gort_write(sv[0], &c, 1), -ETIMEDOUT);
        CHECK_EQ(gort_close(sv[0]), 0);
        CHECK_EQ(gort_close(sv[1]), 0);
    }
}

TEST(fd_deadline_wakes_parked_call_not_early) {
    test_run_with(1, future_deadline_main, NULL);
    test_run_with(2, future_deadline_main, NULL);
}

/* Moving a deadline while a goroutine waits: later extends the wait,
 * earlier (into the past) ends it, cleared lets it wait for data (Go's
 * TestVariousDeadlines / TestReadTimeoutMustNotReturn, in spirit). */
static void move_deadline_main(void *arg) {
    (void)arg;
    /* Later. If the move did not happen before the first deadline (a very
     * slow machine), try again with more room. */
    for (int64_t room = 50 * MS;; room *= 4) {
        int sv[2];
        mksocketpair(sv);
        gort_use(sv[0]);
        dl_waiter w = { .fd = sv[0], .mode = GORT_READ };
        int64_t first = gort_now() + room;
        CHECK_EQ(gort_fd_set_deadline(sv[0], GORT_READ, first), 0);
        CHECK(gort_go(deadline_waiter, &w) > 0);
        wait_state(&w, 1);
        int64_t second = gort_now() + 3 * room;
        CHECK_EQ(gort_fd_set_deadline(sv[0], GORT_READ, second), 0);
        int in_time = gort_now() < first;
        wait_state(&w, 2);
        CHECK_EQ(w.result, -ETIMEDOUT);
        if (in_time)
            CHECK(w.returned >= second);
        CHECK_EQ(gort_close(sv[0]), 0);
        CHECK_EQ(gort_close(sv[1]), 0);
        if (in_time || room > 10 * SEC)
            break;
    }
    /* Cleared: the waiter outlives the old deadline and gets the data. */
    for (int64_t room = 30 * MS;; room *= 4) {
        int sv[2];
        mksocketpair(sv);
        gort_use(sv[0]);
        dl_waiter w = { .fd = sv[0], .mode = GORT_READ };
        int64_t first = gort_now() + room;
        CHECK_EQ(gort_fd_set_deadline(sv[0], GORT_READ, first), 0);
        CHECK(gort_go(deadline_waiter, &w) > 0);
        wait_state(&w, 1);
        CHECK_EQ(gort_fd_set_deadline(sv[0], GORT_READ, 0), 0);
        int in_time = gort_now() < first;
        test_wait_timer(2 * room); /* past the old deadline */
        CHECK_EQ(gort_write(sv[1], "data", 4), 4);
        wait_state(&w, 2);
        if (in_time) {
            CHECK_EQ(w.result, 4);
        }
        CHECK_EQ(gort_close(sv[0]), 0);
        CHECK_EQ(gort_close(sv[1]), 0);
        if (in_time || room > 10 * SEC)
            break;
    }
    /* Earlier: an hour away, then in the past. */
    int sv[2];
    mksocketpair(sv);
    gort_use(sv[0]);
    dl_waiter w = { .fd = sv[0], .mode = GORT_READ };
    CHECK_EQ(gort_fd_set_deadline(sv[0], GORT_READ, gort_now() + 3600 * SEC), 0);
    CHECK(gort_go(deadline_waiter, &w) > 0);
    wait_state(&w, 1);
    test_wait_timer(MS);
    CHECK_EQ(gort_fd_set_deadline(sv[0], GORT_READ, 1), 0);
    wait_state(&w, 2);
    CHECK_EQ(w.result, -ETIMEDOUT);
    /* Earlier, still in the future. */
    CHECK_EQ(gort_fd_set_deadline(sv[0], GORT_READ, gort_now() + 3600 * SEC), 0);
    w.state = 0;
    CHECK(gort_go(deadline_waiter, &w) > 0);
    wait_state(&w, 1);
    int64_t soon = gort_now() + 20 * MS;
    CHECK_EQ(gort_fd_set_deadline(sv[0], GORT_READ, soon), 0);
    wait_state(&w, 2);
    CHECK_EQ(w.result, -ETIMEDOUT);
    CHECK(w.returned >= soon);
    CHECK_EQ(gort_close(sv[0]), 0);
    CHECK_EQ(gort_close(sv[1]), 0);
}

TEST(fd_deadline_moved_while_waiting) {
    test_run_with(1, move_deadline_main, NULL);
    test_run_with(2, move_deadline_main, NULL);
}

/* A deadline set on a descriptor before its first gort call (Go's usual
 * conn.SetReadDeadline, then conn.Read) holds for that call: in the past it
 * fails the call even with data there, in the future it ends the wait. */
static void first_use_deadline_main(void *arg) {
    (void)arg;
    char buf[16];
    int sv[2];
    mksocketpair(sv);
    CHECK_EQ(write(sv[0], "hello", 5), 5);
    CHECK_EQ(gort_fd_set_deadline(sv[1], GORT_READ, 1), 0);
    CHECK_EQ(gort_read(sv[1], buf, sizeof buf), -ETIMEDOUT);
    CHECK_EQ(gort_close(sv[0]), 0);
    CHECK_EQ(gort_close(sv[1]), 0);

    mksocketpair(sv);
    dl_waiter w = { .fd = sv[1], .mode = GORT_READ };
    int64_t dl = gort_now() + 20 * MS;
    CHECK_EQ(gort_fd_set_deadline(sv[1], GORT_READ, dl), 0);
    CHECK(gort_go(deadline_waiter, &w) > 0);
    wait_state(&w, 2);
    CHECK_EQ(w.result, -ETIMEDOUT);
    CHECK(w.returned >= dl);
    CHECK_EQ(gort_close(sv[0]), 0);
    CHECK_EQ(gort_close(sv[1]), 0);
}

TEST(fd_deadline_set_before_first_use) { test_run_with(1, first_use_deadline_main, NULL); }

static void *deadline_thread(void *arg) {
    int fd = *(int *)arg;
    CHECK_EQ(gort_fd_set_deadline(fd, GORT_READ, 1), -EPERM);
    return NULL;
}

static void deadline_einval_main(void *arg) {
    (void)arg;
    int sv[2];
    mksocketpair(sv);
    CHECK_EQ(gort_fd_set_deadline(sv[0], 0, 1), -EINVAL);
    CHECK_EQ(gort_fd_set_deadline(sv[0], 4, 1), -EINVAL);
    CHECK_EQ(gort_fd_set_deadline(sv[0], GORT_READ, -1), -EINVAL);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, deadline_thread, &sv[0]), 0);
    join_thread(th, NULL);
    CHECK_EQ(gort_close(sv[0]), 0);
    CHECK_EQ(gort_fd_set_deadline(sv[0], GORT_READ, 1), -EBADF);
    CHECK_EQ(gort_fd_set_deadline(-1, GORT_READ, 1), -EBADF);
    CHECK_EQ(gort_close(sv[1]), 0);
}

TEST(fd_deadline_errors) { test_run_with(1, deadline_einval_main, NULL); }

/* ---- gort_close wakes waiters with -EBADF ------------------------------------------ */

static void close_wakes_main(void *arg) {
    (void)arg;
    for (int mode = GORT_READ; mode <= GORT_WRITE; mode++) {
        int sv[2];
        mksocketpair(sv);
        if (mode == GORT_WRITE)
            fill_socket(sv[0]);
        dl_waiter w = { .fd = sv[0], .mode = mode };
        CHECK(gort_go(deadline_waiter, &w) > 0);
        wait_state(&w, 1);
        test_wait_timer(MS);
        CHECK_EQ(gort_close(sv[0]), 0);
        wait_state(&w, 2);
        CHECK_EQ(w.result, -EBADF);
        char c;
        CHECK_EQ(gort_read(sv[0], &c, 1), -EBADF); /* closed */
        CHECK_EQ(gort_close(sv[1]), 0);
    }
    /* A pipe, and a reader and a writer parked on one socket at once. */
    int p[2];
    mkpipe(p);
    dl_waiter w = { .fd = p[0], .mode = GORT_READ };
    CHECK(gort_go(deadline_waiter, &w) > 0);
    wait_state(&w, 1);
    test_wait_timer(MS);
    CHECK_EQ(gort_close(p[0]), 0);
    wait_state(&w, 2);
    CHECK_EQ(w.result, -EBADF);
    CHECK_EQ(gort_close(p[1]), 0);

    int sv[2];
    mksocketpair(sv);
    fill_socket(sv[0]);
    dl_waiter r = { .fd = sv[0], .mode = GORT_READ }, wr = { .fd = sv[0], .mode = GORT_WRITE };
    CHECK(gort_go(deadline_waiter, &r) > 0);
    CHECK(gort_go(deadline_waiter, &wr) > 0);
    wait_state(&r, 1);
    wait_state(&wr, 1);
    test_wait_timer(MS);
    CHECK_EQ(gort_close(sv[0]), 0);
    wait_state(&r, 2);
    wait_state(&wr, 2);
    CHECK_EQ(r.result, -EBADF);
    CHECK_EQ(wr.result, -EBADF);
    CHECK_EQ(gort_close(sv[1]), 0);
}

TEST(fd_gort_close_wakes_waiters) {
    test_run_with(1, close_wakes_main, NULL);
    test_run_with(2, close_wakes_main, NULL);
}

/* ---- numbers that come back after close(2) ---------------------------------------- */

/* The same number, another file: sockets, pipes, both ways round. */
static void reuse_main(void *arg) {
    (void)arg;
    char buf[16];
    for (int round = 0; round < 6; round++) {
        int a[2];
        if (round % 2)
            mkpipe(a); /* a[1] writes, a[0] reads */
        else {
            mksocketpair(a);
            int t = a[0];
            a[0] = a[1];
            a[1] = t;
        }
        /* Used with gort: registered, non-blocking, maybe parked once. */
        CHECK_EQ(gort_write(a[1], "old", 3), 3);
        CHECK_EQ(gort_read(a[0], buf, sizeof buf), 3);
        CHECK_EQ(gort_fd_set_deadline(a[0], GORT_READ, gort_now() + 3600 * SEC), 0);
        int n0 = a[0], n1 = a[1];
        close(a[0]); /* behind gort's back */
        close(a[1]);
        int b[2];
        if (round % 3 == 0)
            mkpipe(b);
        else
            mksocketpair(b);
        /* The lowest numbers come back. */
        CHECK((b[0] == n0 && b[1] == n1) || (b[0] == n1 && b[1] == n0));
        /* b[1] -> b[0]; the new file is blocking: gort makes it otherwise. */
        CHECK_EQ(gort_write(b[1], "new!", 4), 4);
        CHECK_EQ(gort_read(b[0], buf, sizeof buf), 4);
        CHECK(memcmp(buf, "new!", 4) == 0);
        /* Parking on the new file works (fresh registration). */
        dl_waiter w = { .fd = b[0], .mode = GORT_READ };
        CHECK(gort_go(deadline_waiter, &w) > 0);
        wait_state(&w, 1);
        test_wait_timer(MS);
        CHECK_EQ(gort_write(b[1], "again", 5), 5);
        wait_state(&w, 2);
        CHECK_EQ(w.result, 5);
        CHECK(fcntl(b[0], F_GETFL) & O_NONBLOCK);
        CHECK_EQ(gort_close(b[0]), 0);
        CHECK_EQ(gort_close(b[1]), 0);
    }
}

TEST(fd_number_reused_after_plain_close) {
    test_run_with(1, reuse_main, NULL);
    test_run_with(2, reuse_main, NULL);
}

/* A deadline belonged to the old file (design.md: pd_arm "clears
 * deadlines"): the new file behind the number has none. */
static void reuse_deadline_main(void *arg) {
    (void)arg;
    char buf[16];
    int kinds[] = { 0, 1 }; /* socket pair, pipe */
    for (int k = 0; k < 2; k++) {
        int a[2];
        if (kinds[k] == 0)
            mksocketpair(a);
        else
            mkpipe(a);
        gort_use(a[0]);
        CHECK_EQ(gort_fd_set_deadline(a[0], GORT_READ | GORT_WRITE, 1), 0); /* passed */
        CHECK_EQ(gort_read(a[0], buf, sizeof buf), -ETIMEDOUT);
        int n0 = a[0];
        close(a[0]);
        close(a[1]);
        int b[2];
        if (kinds[k] == 0)
            mksocketpair(b);
        else
            mkpipe(b);
        CHECK_EQ(b[0], n0);
        CHECK_EQ(write(b[1], "fresh", 5), 5);
        ssize_t r = gort_read(b[0], buf, sizeof buf);
        if (r != 5)
            fprintf(stderr, "%s: read on the new file: %zd\n", kinds[k] ? "pipe" : "socket", r);
        CHECK_EQ(r, 5);
        if (kinds[k] == 0)
            CHECK_EQ(gort_write(b[0], "w", 1), 1);
        CHECK_EQ(gort_close(b[0]), 0);
        CHECK_EQ(gort_close(b[1]), 0);
    }
}

TEST(fd_reused_number_has_no_old_deadline) { test_run_with(1, reuse_deadline_main, NULL); }

/* A goroutine still parked on the old file is woken with an error once
 * the new file behind its number is used with gort (netpoll.c, pd_arm).
 * One P, so that the waiter has parked by the time main runs again. */
static void stale_waiter_main(void *arg) {
    int how = *(int *)arg; /* 0: the new file is read with data there; 1: parked on */
    char buf[16];
    int a[2];
    mksocketpair(a);
    dl_waiter w = { .fd = a[0], .mode = GORT_READ };
    CHECK(gort_go(deadline_waiter, &w) > 0);
    test_yield_until(&w.state, 1); /* parked on the old file */
    int n0 = a[0];
    close(a[0]); /* behind gort's back: no event will ever come */
    close(a[1]);
    int b[2];
    mkpipe(b);
    CHECK_EQ(b[0], n0);
    CHECK_EQ(atomic_load(&w.state), 1);
    if (how == 0) {
        CHECK_EQ(write(b[1], "pipe", 4), 4);
        CHECK_EQ(gort_read(b[0], buf, sizeof buf), 4);
        CHECK(memcmp(buf, "pipe", 4) == 0);
    } else {
        dl_waiter w2 = { .fd = b[0], .mode = GORT_READ };
        CHECK(gort_go(deadline_waiter, &w2) > 0);
        test_yield_until(&w2.state, 1); /* w2 parked on the new file */
        wait_state(&w, 2);              /* and the old waiter has left */
        CHECK_EQ(gort_write(b[1], "pipe", 4), 4);
        wait_state(&w2, 2);
        CHECK_EQ(w2.result, 4);
    }
    wait_state(&w, 2);
    CHECK_EQ(w.result, -EBADF);
    CHECK_EQ(gort_close(b[0]), 0);
    CHECK_EQ(gort_close(b[1]), 0);
}

TEST(fd_stale_waiter_woken_by_new_file) {
    int how = 0;
    for (int i = 0; i < 3; i++)
        test_run_with(1, stale_waiter_main, &how);
}

TEST(fd_stale_waiter_woken_while_new_file_parks) {
    int how = 1;
    for (int i = 0; i < 3; i++)
        test_run_with(1, stale_waiter_main, &how);
}

/* gort_close on one goroutine while others make new descriptors: the
 * number close(2) frees may come straight back from socketpair(2) on
 * another thread, and the new file must work at once (no -EBADF from the
 * closing still in progress, no event lost to its generation change). */
typedef struct {
    int iters;
    atomic_int *ebadf;
    gort_waitgroup *wg;
} churn_arg;

static void churner(void *arg) {
    churn_arg *a = arg;
    char c;
    for (int i = 0; i < a->iters; i++) {
        int sv[2];
        mksocketpair(sv);
        ssize_t w = gort_write(sv[0], "x", 1), r = w == 1 ? gort_read(sv[1], &c, 1) : 1;
        if (w == -EBADF || r == -EBADF)
            atomic_fetch_add(a->ebadf, 1);
        CHECK(w == 1 || w == -EBADF);
        CHECK(r == 1 || r == -EBADF);
        CHECK_EQ(gort_close(sv[0]), 0);
        CHECK_EQ(gort_close(sv[1]), 0);
    }
    gort_wg_done(a->wg);
}

static void close_churn_main(void *arg) {
    (void)arg;
    enum { C = 4 };
    atomic_int ebadf = 0;
    gort_waitgroup wg = { 0 };
    churn_arg a = { (int)test_scale(20000, 5000, 2000), &ebadf, &wg };
    gort_wg_add(&wg, C);
    for (int i = 0; i < C; i++)
        CHECK(gort_go(churner, &a) > 0);
    gort_wg_wait(&wg);
    if (atomic_load(&ebadf))
        fprintf(stderr, "%d calls on fresh descriptors failed with -EBADF\n", atomic_load(&ebadf));
    CHECK_EQ(atomic_load(&ebadf), 0);
}

TEST(fd_gort_close_races_new_descriptors) { test_run_with(4, close_churn_main, NULL); }

/* ---- TCP on loopback -------------------------------------------------------------- */

static void refused_main(void *arg) {
    (void)arg;
    /* A port bound but not listening refuses. */
    int holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(holder, (struct sockaddr *)&addr, sizeof addr), 0);
    socklen_t len = sizeof addr;
    CHECK_EQ(getsockname(holder, (struct sockaddr *)&addr, &len), 0);
    for (int i = 0; i < 5; i++) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK_EQ(gort_connect(c, (struct sockaddr *)&addr, sizeof addr), -ECONNREFUSED);
        CHECK_EQ(gort_close(c), 0);
    }
    close(holder);
}

TEST(fd_connect_refused) { test_run_with(2, refused_main, NULL); }

typedef struct {
    int listener;
    int n;
    gort_waitgroup *wg;
} acc_arg;

static void echo_conn(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    for (;;) {
        ssize_t n = gort_read(fd, buf, sizeof buf);
        CHECK(n >= 0);
        if (n == 0)
            break;
        CHECK_EQ(gort_write(fd, buf, (size_t)n), n);
    }
    CHECK_EQ(gort_close(fd), 0);
}

static void acceptor(void *arg) {
    acc_arg *a = arg;
    for (int i = 0; i < a->n; i++) {
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        memset(&peer, 0, sizeof peer);
        int fd = gort_accept(a->listener, (struct sockaddr *)&peer, &len);
        CHECK(fd >= 0);
        CHECK_EQ(len, sizeof peer);
        CHECK_EQ(peer.sin_family, AF_INET);
        CHECK_EQ(ntohl(peer.sin_addr.s_addr), INADDR_LOOPBACK);
        int fl = fcntl(fd, F_GETFL);
        CHECK(fl >= 0 && (fl & O_NONBLOCK));
        int fdfl = fcntl(fd, F_GETFD);
        CHECK(fdfl >= 0 && (fdfl & FD_CLOEXEC));
        CHECK(gort_go(echo_conn, (void *)(intptr_t)fd) > 0);
    }
    gort_wg_done(a->wg);
}

static struct sockaddr_in echo_addr;

static void echo_client(void *arg) {
    int id = (int)(intptr_t)arg;
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(c >= 0);
    CHECK_EQ(gort_connect(c, (struct sockaddr *)&echo_addr, sizeof echo_addr), 0);
    char msg[64], buf[64];
    for (int k = 0; k < 20; k++) {
        int len = snprintf(msg, sizeof msg, "client %d message %d", id, k);
        CHECK_EQ(gort_write(c, msg, (size_t)len), len);
        int got = 0;
        while (got < len) {
            ssize_t n = gort_read(c, buf + got, (size_t)(len - got));
            CHECK(n > 0);
            got += (int)n;
        }
        CHECK(memcmp(buf, msg, (size_t)len) == 0);
    }
    CHECK_EQ(gort_close(c), 0);
}

static void tcp_main(void *arg) {
    (void)arg;
    int n = (int)test_scale(200, 100, 50);
    int l = tcp_listener(&echo_addr);
    gort_waitgroup accwg = { 0 };
    acc_arg a = { l, n, &accwg };
    gort_wg_add(&accwg, 1);
    CHECK(gort_go(acceptor, &a) > 0); /* parks in accept first */
    test_wait_timer(MS);
    for (int i = 0; i < n; i++)
        CHECK(gort_go(echo_client, (void *)(intptr_t)i) > 0);
    gort_wg_wait(&accwg);
    test_wait_until_only_main();
    CHECK_EQ(gort_close(l), 0);
}

TEST(fd_tcp_connect_accept_echo) {
    test_run_with(1, tcp_main, NULL);
    test_run_with(4, tcp_main, NULL);
}

/* ---- regular files and character devices ------------------------------------------ */

static void regular_main(void *arg) {
    (void)arg;
    char path[] = "/tmp/gort-test-fd-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    size_t n = 1 << 20;
    uint8_t *buf = malloc(n), *back = malloc(n);
    CHECK(buf && back);
    for (size_t i = 0; i < n; i++)
        buf[i] = pattern(i);
    CHECK_EQ(gort_write(fd, buf, n), n);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    size_t got = 0;
    while (got < n) {
        ssize_t r = gort_read(fd, back + got, n - got < 10007 ? n - got : 10007);
        CHECK(r > 0);
        got += (size_t)r;
    }
    CHECK(memcmp(buf, back, n) == 0);
    CHECK_EQ(gort_read(fd, back, 10), 0); /* end of file */
    /* readv/writev on a file */
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    struct iovec iov[2] = { { back, 3 }, { back + 3, 5 } };
    CHECK_EQ(gort_readv(fd, iov, 2), 8);
    CHECK(memcmp(back, buf, 8) == 0);
    /* A file is always ready, and is not made non-blocking. */
    CHECK_EQ(gort_fd_wait(fd, GORT_READ, 0), GORT_READ);
    CHECK_EQ(gort_fd_wait(fd, GORT_READ | GORT_WRITE, gort_now() + SEC), GORT_READ | GORT_WRITE);
    CHECK_EQ(gort_close(fd), 0);
    /* /dev/null and /dev/zero */
    int dn = open("/dev/null", O_RDWR | O_CLOEXEC), dz = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    CHECK(dn >= 0 && dz >= 0);
    CHECK_EQ(gort_write(dn, buf, n), n);
    CHECK_EQ(gort_read(dn, back, 100), 0);
    memset(back, 1, 100);
    CHECK_EQ(gort_read(dz, back, 100), 100);
    for (int i = 0; i < 100; i++)
        CHECK_EQ(back[i], 0);
    CHECK_EQ(gort_close(dn), 0);
    CHECK_EQ(gort_close(dz), 0);
    free(buf);
    free(back);
}

TEST(fd_regular_files) {
    test_run_with(1, regular_main, NULL);
    test_run_with(2, regular_main, NULL);
}

/* ---- UDP ---------------------------------------------------------------------------- */

static int udp_socket(struct sockaddr_in *addr) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(s >= 0);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(s, (struct sockaddr *)addr, sizeof *addr), 0);
    socklen_t len = sizeof *addr;
    CHECK_EQ(getsockname(s, (struct sockaddr *)addr, &len), 0);
    return s;
}

typedef struct {
    int fd;
    struct sockaddr_in from;
    atomic_int state;
} udp_rx;

static void udp_receiver(void *arg) {
    udp_rx *u = arg;
    char buf[2048];
    atomic_store(&u->state, 1);
    for (int i = 0; i < 3; i++) {
        socklen_t len = sizeof u->from;
        ssize_t n = gort_recvfrom(u->fd, buf, sizeof buf, 0, (struct sockaddr *)&u->from, &len);
        CHECK_EQ(n, 100 * (i + 1)); /* datagrams stay whole */
        for (ssize_t k = 0; k < n; k++)
            CHECK_EQ((uint8_t)buf[k], (uint8_t)(i + k));
        CHECK_EQ(len, sizeof u->from);
    }
    atomic_store(&u->state, 2);
}

static void udp_main(void *arg) {
    (void)arg;
    struct sockaddr_in a1, a2;
    int s1 = udp_socket(&a1), s2 = udp_socket(&a2);
    udp_rx u = { .fd = s2 };
    CHECK(gort_go(udp_receiver, &u) > 0);
    test_yield_until(&u.state, 1);
    test_wait_timer(MS);
    char buf[2048];
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 100 * (i + 1); k++)
            buf[k] = (char)(i + k);
        CHECK_EQ(
            gort_sendto(s1, buf, (size_t)(100 * (i + 1)), 0, (struct sockaddr *)&a2, sizeof a2),
            100 * (i + 1));
    }
    test_yield_until(&u.state, 2);
    CHECK_EQ(u.from.sin_port, a1.sin_port);
    CHECK_EQ(u.from.sin_addr.s_addr, a1.sin_addr.s_addr);
    /* Connected: gort_send / gort_recv, flags passed through (MSG_PEEK). */
    CHECK_EQ(connect(s1, (struct sockaddr *)&a2, sizeof a2), 0);
    CHECK_EQ(connect(s2, (struct sockaddr *)&a1, sizeof a1), 0);
    CHECK_EQ(gort_send(s1, "ping", 4, 0), 4);
    CHECK_EQ(gort_recv(s2, buf, sizeof buf, MSG_PEEK), 4);
    CHECK_EQ(gort_recv(s2, buf, sizeof buf, 0), 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    /* recvfrom with a NULL address */
    CHECK_EQ(gort_send(s2, "pong", 4, 0), 4);
    CHECK_EQ(gort_recvfrom(s1, buf, sizeof buf, 0, NULL, NULL), 4);
    /* A deadline on a datagram socket. */
    int64_t dl = gort_now() + 10 * MS;
    CHECK_EQ(gort_fd_set_deadline(s1, GORT_READ, dl), 0);
    CHECK_EQ(gort_recv(s1, buf, sizeof buf, 0), -ETIMEDOUT);
    CHECK(gort_now() >= dl);
    CHECK_EQ(gort_close(s1), 0);
    CHECK_EQ(gort_close(s2), 0);
}

TEST(fd_udp) {
    test_run_with(1, udp_main, NULL);
    test_run_with(2, udp_main, NULL);
}

/* ---- readv / writev ----------------------------------------------------------------- */

enum { VBIG = 8 << 20 };

static void vwriter(void *arg) {
    xfer *x = arg;
    size_t cut[] = { 1, 1000000, 3000001, VBIG };
    struct iovec iov[4], copy[4];
    size_t at = 0;
    for (int i = 0; i < 4; i++) {
        iov[i].iov_base = x->buf + at;
        iov[i].iov_len = cut[i] - at;
        at = cut[i];
    }
    memcpy(copy, iov, sizeof iov);
    CHECK_EQ(gort_writev(x->fd, iov, 4), VBIG);
    CHECK(memcmp(copy, iov, sizeof iov) == 0); /* the caller's array is untouched */
    CHECK_EQ(gort_writev(x->fd, iov, 0), 0);
    CHECK_EQ(gort_close(x->fd), 0);
    gort_wg_done(x->wg);
}

static void vreader(void *arg) {
    xfer *x = arg;
    static uint8_t a[7], b[65536], c[3000];
    size_t got = 0;
    for (;;) {
        struct iovec iov[3] = { { a, sizeof a }, { b, sizeof b }, { c, sizeof c } };
        ssize_t n = gort_readv(x->fd, iov, 3);
        CHECK(n >= 0);
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            uint8_t v = i < 7 ? a[i] : i < 7 + 65536 ? b[i - 7] : c[i - 7 - 65536];
            if (v != pattern(got + (size_t)i))
                CHECK_EQ(v, pattern(got + (size_t)i));
        }
        got += (size_t)n;
    }
    CHECK_EQ(got, VBIG);
    CHECK_EQ(gort_close(x->fd), 0);
    gort_wg_done(x->wg);
}

static void vector_main(void *arg) {
    int use_pipe = *(int *)arg;
    uint8_t *buf = malloc(VBIG);
    CHECK(buf != NULL);
    for (size_t i = 0; i < VBIG; i++)
        buf[i] = pattern(i);
    int fds[2];
    if (use_pipe)
        mkpipe(fds);
    else
        mksocketpair(fds);
    CHECK_EQ(gort_readv(fds[0], NULL, -1), -EINVAL);
    CHECK_EQ(gort_writev(fds[1], NULL, -1), -EINVAL);
    CHECK_EQ(gort_writev(fds[1], NULL, IOV_MAX + 1), -EINVAL);
    gort_waitgroup wg = { 0 };
    xfer w = { use_pipe ? fds[1] : fds[0], buf, &wg, 0 };
    xfer r = { use_pipe ? fds[0] : fds[1], NULL, &wg, 0 };
    gort_wg_add(&wg, 2);
    CHECK(gort_go(vreader, &r) > 0);
    CHECK(gort_go(vwriter, &w) > 0);
    gort_wg_wait(&wg);
    free(buf);
}

TEST(fd_readv_writev) {
    int use_pipe = 0;
    test_run_with(1, vector_main, &use_pipe);
    test_run_with(2, vector_main, &use_pipe);
    use_pipe = 1;
    test_run_with(2, vector_main, &use_pipe);
}

/* ---- gort_fd_wait ------------------------------------------------------------------- */

typedef struct {
    int fd, events;
    int64_t deadline;
    int result;
    int64_t returned;
    atomic_int state;
} fw_arg;

static void fd_waiter(void *arg) {
    fw_arg *w = arg;
    atomic_store(&w->state, 1);
    w->result = gort_fd_wait(w->fd, w->events, w->deadline);
    w->returned = gort_now();
    atomic_store(&w->state, 2);
}

static void fw_wait_state(fw_arg *w, int v) {
    int64_t give_up = gort_now() + 30 * SEC;
    while (atomic_load(&w->state) < v && gort_now() < give_up)
        test_wait_timer(200 * 1000);
    CHECK(atomic_load(&w->state) >= v);
}

static void fd_wait_main(void *arg) {
    (void)arg;
    int sv[2];
    mksocketpair(sv);
    /* Ready now: write yes, read no. */
    CHECK_EQ(gort_fd_wait(sv[0], GORT_WRITE, 0), GORT_WRITE);
    CHECK_EQ(gort_fd_wait(sv[0], GORT_READ | GORT_WRITE, 0), GORT_WRITE);
    /* Read: parks until the peer writes. */
    fw_arg w = { .fd = sv[0], .events = GORT_READ };
    CHECK(gort_go(fd_waiter, &w) > 0);
    fw_wait_state(&w, 1);
    test_wait_timer(MS);
    CHECK_EQ(atomic_load(&w.state), 1);
    CHECK_EQ(gort_write(sv[1], "r", 1), 1);
    fw_wait_state(&w, 2);
    CHECK_EQ(w.result, GORT_READ);
    CHECK_EQ(gort_fd_wait(sv[0], GORT_READ | GORT_WRITE, 0), GORT_READ | GORT_WRITE);
    char c;
    CHECK_EQ(gort_read(sv[0], &c, 1), 1);
    /* Write: parks on a full buffer until the peer drains it. */
    fill_socket(sv[0]);
    w = (fw_arg){ .fd = sv[0], .events = GORT_WRITE };
    CHECK(gort_go(fd_waiter, &w) > 0);
    fw_wait_state(&w, 1);
    test_wait_timer(MS);
    CHECK_EQ(atomic_load(&w.state), 1);
    drain(sv[1]);
    fw_wait_state(&w, 2);
    CHECK_EQ(w.result, GORT_WRITE);
    /* Both, with neither ready: the first that comes (read here). */
    fill_socket(sv[0]);
    w = (fw_arg){ .fd = sv[0], .events = GORT_READ | GORT_WRITE };
    CHECK(gort_go(fd_waiter, &w) > 0);
    fw_wait_state(&w, 1);
    test_wait_timer(MS);
    CHECK_EQ(atomic_load(&w.state), 1);
    CHECK_EQ(gort_write(sv[1], "r", 1), 1);
    fw_wait_state(&w, 2);
    CHECK(w.result & GORT_READ);
    CHECK_EQ(gort_read(sv[0], &c, 1), 1);
    /* Both again, then room (the write side) comes first. */
    w = (fw_arg){ .fd = sv[0], .events = GORT_READ | GORT_WRITE };
    CHECK(gort_go(fd_waiter, &w) > 0);
    fw_wait_state(&w, 1);
    test_wait_timer(MS);
    CHECK_EQ(atomic_load(&w.state), 1);
    drain(sv[1]);
    fw_wait_state(&w, 2);
    CHECK_EQ(w.result, GORT_WRITE);
    /* A deadline: -ETIMEDOUT, never early; one in the past, at once. */
    int64_t dl = gort_now() + 20 * MS;
    w = (fw_arg){ .fd = sv[0], .events = GORT_READ, .deadline = dl };
    CHECK(gort_go(fd_waiter, &w) > 0);
    fw_wait_state(&w, 2);
    CHECK_EQ(w.result, -ETIMEDOUT);
    CHECK(w.returned >= dl);
    CHECK_EQ(gort_fd_wait(sv[0], GORT_READ, 1), -ETIMEDOUT);
    fill_socket(sv[0]);
    dl = gort_now() + 10 * MS;
    CHECK_EQ(gort_fd_wait(sv[0], GORT_READ | GORT_WRITE, dl), -ETIMEDOUT);
    CHECK(gort_now() >= dl);
    drain(sv[1]);
    /* A deadline that does not come: ready first. */
    w = (fw_arg){ .fd = sv[0], .events = GORT_READ, .deadline = gort_now() + 3600 * SEC };
    CHECK(gort_go(fd_waiter, &w) > 0);
    fw_wait_state(&w, 1);
    CHECK_EQ(gort_write(sv[1], "r", 1), 1);
    fw_wait_state(&w, 2);
    CHECK_EQ(w.result, GORT_READ);
    CHECK_EQ(gort_read(sv[0], &c, 1), 1);
    /* Closed with gort_close: -EBADF. */
    w = (fw_arg){ .fd = sv[0], .events = GORT_READ, .deadline = 0 };
    CHECK(gort_go(fd_waiter, &w) > 0);
    fw_wait_state(&w, 1);
    test_wait_timer(MS);
    CHECK_EQ(gort_close(sv[0]), 0);
    fw_wait_state(&w, 2);
    CHECK_EQ(w.result, -EBADF);
    /* Errors. */
    CHECK_EQ(gort_fd_wait(sv[1], 0, 0), -EINVAL);
    CHECK_EQ(gort_fd_wait(sv[1], 4, 0), -EINVAL);
    CHECK_EQ(gort_fd_wait(sv[1], GORT_READ, -1), -EINVAL);
    CHECK_EQ(gort_close(sv[1]), 0);
}

TEST(fd_wait) {
    test_run_with(1, fd_wait_main, NULL);
    test_run_with(2, fd_wait_main, NULL);
}

/* Many goroutines wait with deadlines on descriptors that never become
 * ready, and many on ones that do: each ends the right way. */
static void fd_wait_many_main(void *arg) {
    (void)arg;
    enum { N = 200 };
    static fw_arg w[N];
    static int sv[N][2];
    int64_t dl = gort_now() + 30 * MS;
    for (int i = 0; i < N; i++) {
        mksocketpair(sv[i]);
        w[i] = (fw_arg){ .fd = sv[i][0], .events = GORT_READ, .deadline = i % 2 ? dl : 0 };
        CHECK(gort_go(fd_waiter, &w[i]) > 0);
    }
    for (int i = 0; i < N; i += 2)
        CHECK_EQ(gort_write(sv[i][1], "x", 1), 1);
    for (int i = 0; i < N; i++) {
        fw_wait_state(&w[i], 2);
        if (i % 2) {
            CHECK_EQ(w[i].result, -ETIMEDOUT);
            CHECK(w[i].returned >= dl);
        } else {
            CHECK_EQ(w[i].result, GORT_READ);
        }
        CHECK_EQ(gort_close(sv[i][0]), 0);
        CHECK_EQ(gort_close(sv[i][1]), 0);
    }
}

TEST(fd_wait_many_with_deadlines) {
    test_run_with(1, fd_wait_many_main, NULL);
    test_run_with(4, fd_wait_many_main, NULL);
}

/* A deadline timer run by another M (stealWork runs the timers of a busy
 * P) may fire while the waiter is between its look at the timeout and its
 * park. It used to find the waiter's word still pdNil, leave it, and the
 * waiter then parked for good (about one run in eight hung here, which
 * the harness's timeout reports). Short deadlines, over and over, with two
 * goroutines napping on the other P so that its M keeps looking for work
 * and running this P's timers. */
static atomic_int fwr_done;
static gort_waitgroup fwr_wg;

static void fwr_napper(void *arg) {
    (void)arg;
    while (!atomic_load(&fwr_done))
        gort_sleep(500);
    gort_wg_done(&fwr_wg);
}

static void fwr_waiter(void *arg) {
    int fd = *(int *)arg;
    long n = (long)test_scale(150000, 10000, 3000);
    uint32_t s = 1;
    for (long i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        CHECK_EQ(gort_fd_wait(fd, GORT_READ, gort_now() + (s >> 16) % 4000), -ETIMEDOUT);
    }
    atomic_store(&fwr_done, 1);
    gort_wg_done(&fwr_wg);
}

static void fd_wait_deadline_race_main(void *arg) {
    (void)arg;
    int sv[2];
    mksocketpair(sv);
    atomic_store(&fwr_done, 0);
    gort_wg_add(&fwr_wg, 3);
    CHECK(gort_go(fwr_napper, NULL) > 0);
    CHECK(gort_go(fwr_napper, NULL) > 0);
    CHECK(gort_go(fwr_waiter, &sv[0]) > 0);
    gort_wg_wait(&fwr_wg);
    CHECK_EQ(gort_close(sv[0]), 0);
    CHECK_EQ(gort_close(sv[1]), 0);
}

TEST(fd_wait_deadline_fires_before_park) { test_run_with(2, fd_wait_deadline_race_main, NULL); }

/* ---- I/O from a thread that is not a goroutine ---------------------------------------- */

static struct sockaddr_in thr_addr;
static atomic_int thr_state;

static void *io_thread(void *arg) {
    int *fds = arg; /* fds[0]: socket to the goroutines; fds[1]: a listener */
    CHECK_EQ(gort_id(), 0);
    char buf[64];
    atomic_store(&thr_state, 1);
    /* Blocks this thread until a goroutine writes. */
    CHECK_EQ(gort_read(fds[0], buf, sizeof buf), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK_EQ(gort_write(fds[0], "world", 5), 5);
    struct iovec iov = { buf, sizeof buf };
    CHECK_EQ(gort_readv(fds[0], &iov, 1), 3);
    CHECK_EQ(gort_fd_wait(fds[0], GORT_READ, gort_now() + 10 * MS), -ETIMEDOUT);
    CHECK_EQ(gort_fd_wait(fds[0], GORT_WRITE, 0), GORT_WRITE);
    /* accept and connect. */
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_EQ(gort_connect(c, (struct sockaddr *)&thr_addr, sizeof thr_addr), 0);
    int s = gort_accept(fds[1], NULL, NULL);
    CHECK(s >= 0);
    CHECK(fcntl(s, F_GETFL) & O_NONBLOCK);
    CHECK_EQ(gort_send(c, "tcp", 3, 0), 3);
    CHECK_EQ(gort_recv(s, buf, sizeof buf, 0), 3);
    CHECK_EQ(gort_close(c), 0);
    CHECK_EQ(gort_close(s), 0);
    return NULL;
}

static void thread_io_main(void *arg) {
    (void)arg;
    int sv[2];
    mksocketpair(sv);
    int fds[2] = { sv[1], tcp_listener(&thr_addr) };
    atomic_store(&thr_state, 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, io_thread, fds), 0);
    test_yield_until(&thr_state, 1);
    test_wait_timer(MS);
    CHECK_EQ(gort_write(sv[0], "hello", 5), 5);
    char buf[16];
    CHECK_EQ(gort_read(sv[0], buf, sizeof buf), 5);
    CHECK(memcmp(buf, "world", 5) == 0);
    CHECK_EQ(gort_write(sv[0], "vec", 3), 3);
    join_thread(th, NULL);
    CHECK_EQ(gort_close(sv[0]), 0);
    CHECK_EQ(gort_close(sv[1]), 0);
    CHECK_EQ(gort_close(fds[1]), 0);
}

TEST(fd_io_from_plain_thread) {
    test_run_with(1, thread_io_main, NULL);
    test_run_with(2, thread_io_main, NULL);
    /* And with no runtime at all. */
    int sv[2];
    mksocketpair(sv);
    CHECK_EQ(gort_write(sv[0], "x", 1), 1);
    char c;
    CHECK_EQ(gort_read(sv[1], &c, 1), 1);
    CHECK_EQ(gort_fd_wait(sv[1], GORT_READ, gort_now() + MS), -ETIMEDOUT);
    CHECK_EQ(gort_close(sv[0]), 0);
    CHECK_EQ(gort_close(sv[1]), 0);
}
