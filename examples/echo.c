/*
 * echo: a TCP echo server on the loopback interface, and a client that
 * checks it.
 *
 *   echo [PORT]                  serve on 127.0.0.1:PORT (default 7007)
 *   echo client PORT N [M]       open N connections at once, send M
 *                                messages (default 100) on each, check
 *                                every echo; exit 0 only if all came back
 *
 * The server is Go's shape of a network server: one goroutine accepts, and
 * every connection gets a goroutine of its own that reads and writes as if
 * it had the machine to itself. gort_read and gort_write park the
 * goroutine, not the thread, when the socket is not ready, so ten thousand
 * idle connections cost ten thousand small stacks and no threads.
 *
 *   make echo          (server and client, with 1000 connections)
 *   build/echo & nc 127.0.0.1 7007
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <gort.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_PORT 7007
#define BUFSIZE      4096

static int parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* A connection each, on both sides: the default limit of 1024 descriptors
 * is a limit of the past (Go raises it too, since 1.19). */
static void raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

/* ---- the server ------------------------------------------------------------ */

static int srv_port = DEFAULT_PORT;

static void serve_conn(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[BUFSIZE];

    /* Whatever came, back it goes; 0 is the peer's end of stream. */
    for (;;) {
        ssize_t n = gort_read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        if (gort_write(fd, buf, (size_t)n) < 0)
            break;
    }
    gort_close(fd);
}

static void server(void *arg) {
    int *status = arg;
    int port = srv_port;

    int ln = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in sa = loopback(port);
    if (ln < 0 || setsockopt(ln, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(ln, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ln, SOMAXCONN) < 0) {
        fprintf(stderr, "echo: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        *status = 1;
        return;
    }
    printf("echo: listening on 127.0.0.1:%d, %d Ps\n", port, gort_maxprocs(0));

    for (;;) {
        int fd = gort_accept(ln, NULL, NULL);
        if (fd < 0) {
            /* Out of descriptors, or a connection reset before its accept:
             * a server lives on; anything else is a bug here. */
            if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
                gort_sleep(10 * 1000000L);
                continue;
            }
            fprintf(stderr, "echo: accept: %s\n", strerror(-fd));
            *status = 1;
            break;
        }
        int64_t id = gort_go(serve_conn, (void *)(intptr_t)fd);
        if (id < 0) {
            fprintf(stderr, "echo: gort_go: %s\n", strerror((int)-id));
            gort_close(fd);
        }
    }
    gort_close(ln);
}

/* ---- the client ------------------------------------------------------------ */

static struct {
    int port, nconn, nmsg;
    gort_waitgroup wg;
    gort_waitgroup connected; /* every connection made (or failed) */
    int64_t bytes;            /* atomic */
    int bad;                  /* atomic: connections that failed */
} cl;

/* Message k of connection c: its length varies from 1 to 200 bytes, so
 * that echoes come back in pieces of every size. */
static size_t message(char *buf, int c, int k) {
    int len = snprintf(buf, BUFSIZE, "conn %d message %d ", c, k);
    int want = 1 + (c * 31 + k * 17) % 200;
    for (; len < want; len++)
        buf[len] = (char)('a' + (c + k + len) % 26);
    if (len > want)
        len = want;
    buf[len - 1] = '\n';
    return (size_t)len;
}

static int dial(int port) {
    struct sockaddr_in sa = loopback(port);
    /* The server may still be starting (make echo starts both at once):
     * refused connections are retried for a few seconds. */
    for (int tries = 0;; tries++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        int r = gort_connect(fd, (struct sockaddr *)&sa, sizeof sa);
        if (r == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            return fd;
        }
        gort_close(fd);
        if (r != -ECONNREFUSED || tries == 300)
            return r;
        gort_sleep(10 * 1000000L);
    }
}

static void client_conn(void *arg) {
    int c = (int)(intptr_t)arg;
    char out[BUFSIZE], in[BUFSIZE];
    int fd = dial(cl.port);

    gort_wg_done(&cl.connected);
    if (fd < 0) {
        fprintf(stderr, "echo client: conn %d: connect: %s\n", c, strerror(-fd));
        __atomic_add_fetch(&cl.bad, 1, __ATOMIC_RELAXED);
        gort_wg_done(&cl.wg);
        return;
    }
    /* Every connection is open before the first message goes out, so
     * that the count below shows them all parked at once. */
    gort_wg_wait(&cl.connected);

    int64_t bytes = 0;
    for (int k = 0; k < cl.nmsg; k++) {
        size_t len = message(out, c, k);
        ssize_t r = gort_write(fd, out, len);
        size_t got = 0;
        /* TCP is a stream: the echo may come back in several reads. */
        while (r >= 0 && got < len) {
            r = gort_read(fd, in + got, len - got);
            if (r == 0)
                r = -ECONNRESET; /* the server hung up early */
            if (r > 0)
                got += (size_t)r;
        }
        if (r < 0 || memcmp(in, out, len) != 0) {
            fprintf(stderr, "echo client: conn %d message %d: %s\n", c, k,
                    r < 0 ? strerror((int)-r) : "wrong echo");
            __atomic_add_fetch(&cl.bad, 1, __ATOMIC_RELAXED);
            break;
        }
        bytes += (int64_t)len;
    }
    __atomic_add_fetch(&cl.bytes, bytes, __ATOMIC_RELAXED);
    gort_close(fd);
    gort_wg_done(&cl.wg);
}

static void client(void *arg) {
    int *status = arg;
    gort_stats after;

    int64_t t0 = gort_now();
    gort_wg_add(&cl.wg, cl.nconn);
    gort_wg_add(&cl.connected, cl.nconn);
    for (int c = 0; c < cl.nconn; c++) {
        int64_t id = gort_go(client_conn, (void *)(intptr_t)c);
        if (id < 0) {
            fprintf(stderr, "echo client: gort_go: %s\n", strerror((int)-id));
            gort_wg_add(&cl.wg, -(int64_t)(cl.nconn - c));
            gort_wg_add(&cl.connected, -(int64_t)(cl.nconn - c));
            *status = 1;
            break;
        }
    }
    gort_wg_wait(&cl.wg);
    int64_t t1 = gort_now();
    gort_read_stats(&after);

    double s = (double)(t1 - t0) / 1e9;
    int bad = __atomic_load_n(&cl.bad, __ATOMIC_RELAXED);
    int64_t msgs = (int64_t)(cl.nconn - bad) * cl.nmsg;
    printf("echo client: %d connections x %d messages to 127.0.0.1:%d: %lld bytes echoed "
           "in %.0f ms (%.0f messages/s)\n",
           cl.nconn, cl.nmsg, cl.port, (long long)cl.bytes, s * 1e3, (double)msgs / s);
    printf("echo client: %d goroutines ran on %d threads (%d Ps); %s\n", cl.nconn, after.threads,
           after.procs, bad ? "SOME ECHOES WERE WRONG" : "every echo checked");
    if (bad)
        *status = 1;
}

int main(int argc, char **argv) {
    int status = 0;
    void (*fn)(void *) = server;

    raise_nofile();
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 2 && strcmp(argv[1], "client") == 0) {
        cl.nmsg = 100;
        if (argc < 4 || argc > 5 || parse_int(argv[2], 1, 65535, &cl.port) < 0 ||
            parse_int(argv[3], 1, 1000000, &cl.nconn) < 0 ||
            (argc == 5 && parse_int(argv[4], 1, 100000000, &cl.nmsg) < 0)) {
            fprintf(stderr, "usage: %s client PORT N [M]\n", argv[0]);
            return 2;
        }
        fn = client;
    } else if (argc > 2 || (argc == 2 && parse_int(argv[1], 1, 65535, &srv_port) < 0)) {
        fprintf(stderr, "usage: %s [PORT]    or    %s client PORT N [M]\n", argv[0], argv[0]);
        return 2;
    }

    int err = gort_run(NULL, fn, &status);
    if (err < 0) {
        fprintf(stderr, "echo: gort_run: %s\n", strerror(-err));
        return 1;
    }
    return status;
}
