/*
 * httpd: a small HTTP/1.1 server with keep-alive and pipelining, one
 * goroutine per connection.
 *
 *   GET /              200 "Hello, World!" (text/plain, 13 bytes)
 *   GET /sleep?ms=N    sleeps N ms (gort_sleep: the goroutine parks, the
 *                      thread serves others), then 200 "slept N ms\n"
 *   HEAD of either     the same headers, no body
 *   anything else      404 for another path, 405 for another method,
 *                      400 for what is not HTTP (and the connection closes)
 *
 *   httpd [PORT]       listens on 127.0.0.1:PORT; PORT defaults to $PORT,
 *                      then 8080. Runs on every core (GORT_MAXPROCS to change).
 *   make httpd
 *
 * Each connection's goroutine reads what has arrived into its buffer,
 * answers every complete request in it (a pipelining client sends several
 * at once, and a request may arrive split over many reads), writes the
 * answers in one gort_write, and reads again. Keep-alive follows the
 * protocol: HTTP/1.1 keeps the connection unless the request says
 * "Connection: close", HTTP/1.0 closes it unless the request says
 * "Connection: keep-alive".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <gort.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PORT 8080
#define INBUF        8192  /* the largest request head accepted */
#define OUTBUF       16384 /* answers gathered for one write */
#define MAX_SLEEP_MS 60000
#define LINGER_NS    (500 * 1000000L) /* how long a closing connection drains its input */

static const char hello[] = "Hello, World!";

/* ---- one request ---------------------------------------------------------- */

typedef struct {
    const char *method, *target;
    size_t methodlen, targetlen;
    int minor;             /* HTTP/1.minor */
    bool close, keepalive; /* Connection: tokens seen */
    bool host;             /* a Host header (required by HTTP/1.1) */
    bool chunked;          /* Transfer-Encoding: a body this server cannot frame */
    long long length;      /* Content-Length, -1 if absent */
} request;

/* RFC 9110's tchar: the characters of a method or a header name. */
static bool tchar(unsigned char c) {
    return isalnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* RFC 9110's VCHAR: a visible character, as in a request target. */
static bool vchar(unsigned char c) { return c > ' ' && c < 0x7f; }

/* The end of the line starting at p (the '\n'), or NULL if it has not
 * arrived yet. */
static const char *eol(const char *p, const char *end) {
    return memchr(p, '\n', (size_t)(end - p));
}

/* The length of a line without its terminator, CRLF or a bare LF. */
static size_t linelen(const char *p, const char *nl) {
    return (size_t)(nl - p) - (nl > p && nl[-1] == '\r');
}

/* Does the comma-separated list v (Connection's value) hold token? */
static bool hastoken(const char *v, size_t n, const char *token) {
    size_t tl = strlen(token);
    for (size_t i = 0; i < n;) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t j = i;
        while (j < n && v[j] != ',')
            j++;
        size_t k = j;
        while (k > i && (v[k - 1] == ' ' || v[k - 1] == '\t'))
            k--;
        if (k - i == tl && strncasecmp(v + i, token, tl) == 0)
            return true;
        i = j;
    }
    return false;
}

/* Parses the request head at the start of buf[0..n). Returns its length
 * once the blank line that ends it has arrived, 0 if more must be read,
 * -1 if it is not HTTP, -2 if it is HTTP of another major version. */
static long parse_request(const char *buf, size_t n, request *rq) {
    const char *p = buf, *end = buf + n, *nl;

    /* RFC 9112 2.2: empty lines before a request are ignored. */
    while (p < end && (*p == '\r' || *p == '\n')) {
        if (*p == '\r' && (p + 1 == end || p[1] != '\n'))
            return p + 1 == end ? 0 : -1;
        p += *p == '\r' ? 2 : 1;
    }
    if ((nl = eol(p, end)) == NULL)
        return 0;

    /* The request line: METHOD SP TARGET SP HTTP/1.x */
    memset(rq, 0, sizeof *rq);
    rq->length = -1;
    const char *q = p, *le = p + linelen(p, nl);
    while (q < le && tchar((unsigned char)*q))
        q++;
    if (q == p || q == le || *q != ' ')
        return -1;
    rq->method = p;
    rq->methodlen = (size_t)(q - p);
    const char *t = ++q;
    while (q < le && vchar((unsigned char)*q))
        q++;
    if (q == t || q == le || *q != ' ')
        return -1;
    rq->target = t;
    rq->targetlen = (size_t)(q - t);
    q++;
    if (le - q != 8 || memcmp(q, "HTTP/", 5) != 0 || !isdigit((unsigned char)q[5]) || q[6] != '.' ||
        !isdigit((unsigned char)q[7]))
        return -1;
    if (q[5] != '1')
        return -2; /* HTTP/0.9, HTTP/2.0 (a prior-knowledge h2 preface)... */
    rq->minor = q[7] - '0';

    /* Header fields, up to the empty line. */
    for (p = nl + 1;; p = nl + 1) {
        if ((nl = eol(p, end)) == NULL)
            return 0;
        le = p + linelen(p, nl);
        if (le == p)
            break;
        if (*p == ' ' || *p == '\t')
            return -1; /* obsolete line folding: refused, as RFC 9112 5.2 allows */
        const char *c = p;
        while (c < le && tchar((unsigned char)*c))
            c++;
        if (c == p || c == le || *c != ':')
            return -1; /* no name, or space before the colon (RFC 9112 5.1) */
        size_t namelen = (size_t)(c - p);
        const char *v = c + 1, *ve = le;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t vlen = (size_t)(ve - v);
#define IS(name) (namelen == sizeof(name) - 1 && strncasecmp(p, name, namelen) == 0)
        if (IS("Connection")) {
            rq->close |= hastoken(v, vlen, "close");
            rq->keepalive |= hastoken(v, vlen, "keep-alive");
        } else if (IS("Host")) {
            if (rq->host)
                return -1; /* two Host fields */
            rq->host = true;
        } else if (IS("Transfer-Encoding")) {
            rq->chunked = true;
        } else if (IS("Content-Length")) {
            long long len = 0;
            if (vlen == 0 || vlen > 15)
                return -1;
            for (size_t i = 0; i < vlen; i++) {
                if (!isdigit((unsigned char)v[i]))
                    return -1;
                len = len * 10 + (v[i] - '0');
            }
            if (rq->length >= 0 && rq->length != len)
                return -1; /* two lengths that disagree: request smuggling */
            rq->length = len;
        }
#undef IS
    }
    if (rq->minor >= 1 && !rq->host)
        return -1; /* RFC 9112 3.2: an HTTP/1.1 request without Host is a 400 */
    return nl + 1 - buf;
}

/* ---- one connection --------------------------------------------------------- */

typedef struct {
    int fd;
    size_t inlen, outlen;
    long long discard; /* body bytes of the last request still to skip */
    time_t datesec;
    char date[40]; /* "Date: ...\r\n" for datesec */
    char in[INBUF];
    char out[OUTBUF];
} conn;

/* Writes out what the answers so far have gathered. */
static int flush(conn *c) {
    if (c->outlen == 0)
        return 0;
    ssize_t r = gort_write(c->fd, c->out, c->outlen);
    c->outlen = 0;
    return r < 0 ? (int)r : 0;
}

/* Appends one answer. close: the connection ends after it. */
static int respond(conn *c, int status, const char *reason, const char *extra, const char *body,
                   size_t bodylen, bool head, bool close, bool keepalive10) {
    time_t now = time(NULL);
    if (now != c->datesec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(c->date, sizeof c->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        c->datesec = now;
    }
    if (c->outlen + 512 + bodylen > OUTBUF && flush(c) < 0)
        return -1;
    int n = snprintf(c->out + c->outlen, OUTBUF - c->outlen,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: text/plain\r\n"
                     "Content-Length: %zu\r\n"
                     "%s%s%s"
                     "\r\n",
                     status, reason, bodylen, c->date, extra ? extra : "",
                     close         ? "Connection: close\r\n"
                     : keepalive10 ? "Connection: keep-alive\r\n"
                                   : "");
    c->outlen += (size_t)n;
    if (!head) {
        memcpy(c->out + c->outlen, body, bodylen);
        c->outlen += bodylen;
    }
    return 0;
}

/* An error answer, after which the connection closes: 0, or -1 if the
 * connection broke. */
static int respond_close(conn *c, int status, const char *reason, const char *msg) {
    return respond(c, status, reason, NULL, msg, strlen(msg), false, true, false) < 0 ? -1 : 0;
}

/* The value of ms in the query string q[0..n): 0 and *ms, or -1. */
static int query_ms(const char *q, size_t n, long *ms) {
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && q[j] != '&')
            j++;
        if (j - i > 3 && memcmp(q + i, "ms=", 3) == 0) {
            long v = 0;
            for (size_t k = i + 3; k < j; k++) {
                if (!isdigit((unsigned char)q[k]) || v > MAX_SLEEP_MS)
                    return -1;
                v = v * 10 + (q[k] - '0');
            }
            if (v > MAX_SLEEP_MS)
                return -1;
            *ms = v;
            return 0;
        }
        i = j + 1;
    }
    return -1;
}

/* Answers one parsed request. Returns 1 to keep the connection, 0 to close
 * it once the answers are out, -1 if it is broken. */
static int handle(conn *c, const request *rq) {
    bool head = rq->methodlen == 4 && memcmp(rq->method, "HEAD", 4) == 0;
    bool get = rq->methodlen == 3 && memcmp(rq->method, "GET", 3) == 0;
    bool close = rq->minor == 0 ? !rq->keepalive : rq->close;
    bool ka10 = rq->minor == 0 && !close;

    if (rq->chunked) /* a body this server does not read cannot be skipped either */
        return respond_close(c, 501, "Not Implemented",
                             "chunked request bodies are not supported\n");
    c->discard = rq->length > 0 ? rq->length : 0;

    const char *path = rq->target, *query = memchr(rq->target, '?', rq->targetlen);
    size_t pathlen = query ? (size_t)(query - path) : rq->targetlen;
    size_t querylen = query ? rq->targetlen - pathlen - 1 : 0;
    if (query)
        query++;
    bool root = pathlen == 1 && path[0] == '/';
    bool sleep = pathlen == 6 && memcmp(path, "/sleep", 6) == 0;

    int r;
    if (!root && !sleep) {
        static const char msg[] = "404 page not found\n";
        r = respond(c, 404, "Not Found", NULL, msg, sizeof msg - 1, head, close, ka10);
    } else if (!get && !head) {
        static const char msg[] = "405 method not allowed\n";
        r = respond(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n", msg, sizeof msg - 1,
                    false, close, ka10);
    } else if (root) {
        r = respond(c, 200, "OK", NULL, hello, sizeof hello - 1, head, close, ka10);
    } else {
        long ms;
        if (query_ms(query, querylen, &ms) < 0) {
            static const char msg[] = "want /sleep?ms=N, N from 0 to 60000\n";
            r = respond(c, 400, "Bad Request", NULL, msg, sizeof msg - 1, head, close, ka10);
        } else {
            /* Answers to earlier pipelined requests go out first: they
             * need not wait for this one. */
            if (flush(c) < 0)
                return -1;
            gort_sleep(ms * 1000000L);
            char msg[32];
            int n = snprintf(msg, sizeof msg, "slept %ld ms\n", ms);
            r = respond(c, 200, "OK", NULL, msg, (size_t)n, head, close, ka10);
        }
    }
    return r < 0 ? -1 : close ? 0 : 1;
}

/* The server closes first: after its last answer it shuts down its side
 * and reads what the client still sends, for a while, before it closes.
 * Closing a socket with unread input sends a reset, which can destroy the
 * answer before the client has read it (Go's closeWriteAndWait does the
 * same; nginx's lingering_close). */
static void linger(conn *c) {
    shutdown(c->fd, SHUT_WR);
    gort_fd_set_deadline(c->fd, GORT_READ, gort_now() + LINGER_NS);
    for (int i = 0; i < 32 && gort_read(c->fd, c->in, INBUF) > 0; i++)
        ;
}

static void serve(void *arg) {
    conn cs, *c = &cs; /* 24 KiB of a 256 KiB stack */
    int fd = (int)(intptr_t)arg;

    c->fd = fd;
    c->inlen = c->outlen = 0;
    c->discard = 0;
    c->datesec = 0;

    int keep = 1;
    while (keep > 0) {
        /* Answer every complete request that has arrived. */
        size_t off = 0;
        while (keep > 0) {
            if (c->discard > 0) {
                size_t k = c->inlen - off;
                if ((long long)k > c->discard)
                    k = (size_t)c->discard;
                off += k;
                c->discard -= (long long)k;
                if (c->discard > 0)
                    break;
            }
            request rq;
            long n = parse_request(c->in + off, c->inlen - off, &rq);
            if (n == 0)
                break;
            if (n == -2) {
                keep = respond_close(c, 505, "HTTP Version Not Supported", "HTTP/1.x only\n");
                break;
            }
            if (n < 0) {
                keep = respond_close(c, 400, "Bad Request", "400 Bad Request\n");
                break;
            }
            off += (size_t)n;
            keep = handle(c, &rq);
        }
        if (flush(c) < 0 || keep < 0)
            break;
        if (keep == 0) {
            linger(c);
            break;
        }
        memmove(c->in, c->in + off, c->inlen - off);
        c->inlen -= off;
        if (c->inlen == INBUF) {
            if (respond_close(c, 431, "Request Header Fields Too Large",
                              "request head too large\n") == 0 &&
                flush(c) == 0)
                linger(c);
            break;
        }
        ssize_t r = gort_read(fd, c->in + c->inlen, INBUF - c->inlen);
        if (r <= 0)
            break; /* the client is done (0), or the connection broke */
        c->inlen += (size_t)r;
    }
    gort_close(fd);
}

/* ---- the listener ------------------------------------------------------------- */

static int port = DEFAULT_PORT;

static void server(void *arg) {
    int *status = arg;
    int one = 1;
    struct sockaddr_in sa;

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ln = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ln < 0 || setsockopt(ln, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(ln, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ln, SOMAXCONN) < 0) {
        fprintf(stderr, "httpd: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        *status = 1;
        return;
    }
    printf("httpd: serving http://127.0.0.1:%d/ on %d Ps (GET /, GET /sleep?ms=N)\n", port,
           gort_maxprocs(0));

    for (;;) {
        int fd = gort_accept(ln, NULL, NULL);
        if (fd < 0) {
            if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
                gort_sleep(10 * 1000000L); /* out of descriptors: wait for some to close */
                continue;
            }
            fprintf(stderr, "httpd: accept: %s\n", strerror(-fd));
            *status = 1;
            break;
        }
        /* Answers are written whole, and each is wanted at once. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int64_t id = gort_go(serve, (void *)(intptr_t)fd);
        if (id < 0) {
            fprintf(stderr, "httpd: gort_go: %s\n", strerror((int)-id));
            gort_close(fd);
        }
    }
    gort_close(ln);
}

int main(int argc, char **argv) {
    const char *p = argc > 1 ? argv[1] : getenv("PORT");
    if (argc > 2 || (p && *p)) {
        char *end;
        long v = argc > 2 ? 0 : strtol(p, &end, 10);
        if (argc > 2 || *end != '\0' || v < 1 || v > 65535) {
            fprintf(stderr, "usage: %s [PORT]   (default $PORT, then %d)\n", argv[0], DEFAULT_PORT);
            return 2;
        }
        port = (int)v;
    }
    struct rlimit rl; /* a descriptor per connection (Go raises it too) */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    int status = 0;
    int err = gort_run(NULL, server, &status);
    if (err < 0) {
        fprintf(stderr, "httpd: gort_run: %s\n", strerror(-err));
        return 1;
    }
    return status;
}
