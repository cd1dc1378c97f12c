/*
 * tcpecho: request and answer over loopback TCP, many connections at once.
 *
 * One process is both ends, on every P (2 here): an echo server (a
 * goroutine accepting, and a goroutine per connection that reads up to 64
 * bytes and writes back what it read) and C = 100 client connections,
 * each a goroutine that writes a 64-byte message, reads the 64-byte echo
 * (however many reads it takes), checks it, and starts again: M = 2,000
 * round trips per connection and round. The connections are made once,
 * before the first round, with TCP_NODELAY on both ends (Go's default).
 * The value is C * M / the round's time, messages (round trips) per
 * second, the median of REPS rounds.
 *
 * Each round trip is four system calls that move data (two writes, two
 * reads) and two goroutines parked and woken by the poller.
 *
 * Go peer: bench/go/tcpecho/main.go (net.Listen, net.Dial, io.ReadFull).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <gort.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "bench.h"

#define C    100
#define M    2000
#define MSG  64
#define REPS 5

static int cfd[C];
static gort_waitgroup wg;
static double rate[REPS];
static int failed;

static void echo_conn(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[MSG];
    for (;;) {
        ssize_t n = gort_read(fd, buf, sizeof buf);
        if (n <= 0 || gort_write(fd, buf, (size_t)n) < 0)
            break;
    }
    gort_close(fd);
}

static void acceptor(void *arg) {
    int ln = (int)(intptr_t)arg;
    int one = 1;
    for (int i = 0; i < C; i++) {
        int fd = gort_accept(ln, NULL, NULL);
        if (fd < 0) {
            fprintf(stderr, "tcpecho: accept: %s\n", strerror(-fd));
            failed = 1;
            break;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (gort_go(echo_conn, (void *)(intptr_t)fd) < 0) {
            failed = 1;
            gort_close(fd);
        }
    }
    gort_close(ln);
}

static void client(void *arg) {
    int c = (int)(intptr_t)arg;
    char out[MSG], in[MSG];
    for (int k = 0; k < M && !failed; k++) {
        memset(out, 'a' + (c + k) % 26, sizeof out);
        memcpy(out, &k, sizeof k);
        ssize_t r = gort_write(cfd[c], out, MSG);
        size_t got = 0;
        while (r >= 0 && got < MSG) {
            r = gort_read(cfd[c], in + got, MSG - got);
            if (r == 0)
                r = -ECONNRESET;
            if (r > 0)
                got += (size_t)r;
        }
        if (r < 0 || memcmp(in, out, MSG) != 0) {
            fprintf(stderr, "tcpecho: conn %d message %d: %s\n", c, k,
                    r < 0 ? strerror((int)-r) : "wrong echo");
            failed = 1;
        }
    }
    gort_wg_done(&wg);
}

static void bench_main(void *arg) {
    (void)arg;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    int ln = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ln < 0 || bind(ln, (struct sockaddr *)&sa, sl) < 0 || listen(ln, SOMAXCONN) < 0 ||
        getsockname(ln, (struct sockaddr *)&sa, &sl) < 0) {
        fprintf(stderr, "tcpecho: listen: %s\n", strerror(errno));
        failed = 1;
        return;
    }
    if (gort_go(acceptor, (void *)(intptr_t)ln) < 0) {
        failed = 1;
        return;
    }
    for (int c = 0; c < C; c++) {
        int one = 1, r;
        cfd[c] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (cfd[c] < 0 || (r = gort_connect(cfd[c], (struct sockaddr *)&sa, sl)) < 0) {
            fprintf(stderr, "tcpecho: connect: %s\n", strerror(cfd[c] < 0 ? errno : -r));
            failed = 1;
            return;
        }
        setsockopt(cfd[c], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    for (int r = 0; r < REPS && !failed; r++) {
        gort_wg_add(&wg, C);
        int64_t start = gort_now();
        for (int c = 0; c < C; c++)
            if (gort_go(client, (void *)(intptr_t)c) < 0) {
                failed = 1;
                return;
            }
        gort_wg_wait(&wg);
        int64_t end = gort_now();
        rate[r] = (double)C * M / ((double)(end - start) / 1e9);
        fprintf(stderr, "tcpecho: round %d: %.0f msgs/s\n", r + 1, rate[r]);
    }
    for (int c = 0; c < C; c++)
        gort_close(cfd[c]);
}

int main(void) {
    return bench_report("tcpecho", gort_run(NULL, bench_main, NULL), failed, rate, REPS, "msgs/s");
}
