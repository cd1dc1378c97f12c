/* Black-box test of gort_fd_wait driving a library with its own
 * non-blocking I/O: TLS (OpenSSL) between goroutines over socket pairs.
 * Both ends are non-blocking; SSL_do_handshake, SSL_read, SSL_write and
 * SSL_shutdown report SSL_ERROR_WANT_READ / SSL_ERROR_WANT_WRITE, and the
 * goroutine parks in gort_fd_wait until the socket is ready. The
 * certificate is self-signed, made in memory at start (EC P-256).
 *
 * OpenSSL keeps its error queue per thread and a goroutine may share its
 * thread with others between calls, so the queue is cleared before every
 * SSL call (which OpenSSL asks for anyway). Needs -lssl -lcrypto. */
#define _GNU_SOURCE
#include <gort.h>
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define MS  (1000 * 1000LL)
#define SEC (1000 * MS)

static EVP_PKEY *tls_key;
static X509 *tls_cert;
static SSL_CTX *server_ctx, *client_ctx;
static atomic_int max_threads;
static atomic_int nwaits; /* parks in gort_fd_wait */

static void ssl_fail(const char *what, int err) {
    fprintf(stderr, "%s: SSL error %d\n", what, err);
    ERR_print_errors_fp(stderr);
    CHECK(0);
}

/* A self-signed certificate for "gort.test", and the two contexts: the
 * server presents it, the client trusts only it and checks the name. */
static void tls_setup(void) {
    tls_key = EVP_EC_gen("P-256");
    CHECK(tls_key != NULL);
    tls_cert = X509_new();
    CHECK(tls_cert != NULL);
    CHECK_EQ(X509_set_version(tls_cert, 2), 1);
    CHECK_EQ(ASN1_INTEGER_set(X509_get_serialNumber(tls_cert), 1), 1);
    CHECK(X509_gmtime_adj(X509_getm_notBefore(tls_cert), -3600) != NULL);
    CHECK(X509_gmtime_adj(X509_getm_notAfter(tls_cert), 86400) != NULL);
    CHECK_EQ(X509_set_pubkey(tls_cert, tls_key), 1);
    X509_NAME *name = X509_get_subject_name(tls_cert);
    CHECK_EQ(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                        (const unsigned char *)"gort.test", -1, -1, 0),
             1);
    CHECK_EQ(X509_set_issuer_name(tls_cert, name), 1);
    CHECK(X509_sign(tls_cert, tls_key, EVP_sha256()) > 0);

    server_ctx = SSL_CTX_new(TLS_server_method());
    CHECK(server_ctx != NULL);
    CHECK_EQ(SSL_CTX_use_certificate(server_ctx, tls_cert), 1);
    CHECK_EQ(SSL_CTX_use_PrivateKey(server_ctx, tls_key), 1);
    CHECK_EQ(SSL_CTX_check_private_key(server_ctx), 1);

    client_ctx = SSL_CTX_new(TLS_client_method());
    CHECK(client_ctx != NULL);
    CHECK_EQ(X509_STORE_add_cert(SSL_CTX_get_cert_store(client_ctx), tls_cert), 1);
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, NULL);
}

static void tls_teardown(void) {
    SSL_CTX_free(server_ctx);
    SSL_CTX_free(client_ctx);
    X509_free(tls_cert);
    EVP_PKEY_free(tls_key);
}

static uint8_t pattern(int dir, size_t i) {
    return (uint8_t)(i * 7 + (i >> 9) + (size_t)dir * 101);
}

typedef struct {
    int fd;
    int server;
    size_t total; /* bytes each way */
    gort_waitgroup *wg;
} peer;

static void record_threads(void) {
    gort_stats st;
    gort_read_stats(&st);
    int m = atomic_load(&max_threads);
    while (st.threads > m && !atomic_compare_exchange_weak(&max_threads, &m, st.threads))
        ;
}

/* Parks until the socket is ready for what OpenSSL wants. */
static void wait_for(int fd, int events) {
    CHECK(events != 0);
    atomic_fetch_add(&nwaits, 1);
    int r = gort_fd_wait(fd, events, gort_now() + 60 * SEC);
    if (r < 0)
        fprintf(stderr, "gort_fd_wait(%d, %d): %d\n", fd, events, r);
    CHECK(r > 0);
    CHECK((r & ~events) == 0);
}

/* GORT_READ or GORT_WRITE for a WANT_ error; fails on any other. */
static int wanted(SSL *ssl, int r, const char *what) {
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        return GORT_READ;
    if (e == SSL_ERROR_WANT_WRITE)
        return GORT_WRITE;
    ssl_fail(what, e);
    return 0;
}

static void tls_peer(void *arg) {
    peer *p = arg;
    int dir = p->server; /* this side sends pattern dir, receives !dir */
    SSL *ssl = SSL_new(p->server ? server_ctx : client_ctx);
    CHECK(ssl != NULL);
    CHECK_EQ(SSL_set_fd(ssl, p->fd), 1);
    if (p->server) {
        SSL_set_accept_state(ssl);
    } else {
        SSL_set_connect_state(ssl);
        CHECK_EQ(SSL_set1_host(ssl, "gort.test"), 1);
        CHECK_EQ(SSL_set_tlsext_host_name(ssl, "gort.test"), 1);
    }

    /* Handshake. */
    for (;;) {
        ERR_clear_error();
        int r = SSL_do_handshake(ssl);
        if (r == 1)
            break;
        wait_for(p->fd, wanted(ssl, r, "handshake"));
    }
    if (!p->server)
        CHECK_EQ(SSL_get_verify_result(ssl), X509_V_OK);
    CHECK_EQ(SSL_version(ssl), TLS1_3_VERSION);

    /* Both directions at once from this one goroutine (an SSL object is
     * not to be used from two threads at a time). */
    uint8_t *out = malloc(p->total), *in = malloc(p->total);
    CHECK(out && in);
    for (size_t i = 0; i < p->total; i++)
        out[i] = pattern(dir, i);
    size_t sent = 0, got = 0;
    for (int iter = 0; sent < p->total || got < p->total; iter++) {
        int want = 0, progress = 0;
        if (sent < p->total) {
            /* A retried SSL_write gets the same buffer and length. */
            int n = p->total - sent < 16384 ? (int)(p->total - sent) : 16384;
            ERR_clear_error();
            int r = SSL_write(ssl, out + sent, n);
            if (r > 0) {
                sent += (size_t)r;
                progress = 1;
            } else {
                want |= wanted(ssl, r, "write");
            }
        }
        if (got < p->total) {
            size_t room = p->total - got;
            ERR_clear_error();
            int r = SSL_read(ssl, in + got, room < 65536 ? (int)room : 65536);
            if (r > 0) {
                got += (size_t)r;
                progress = 1;
            } else {
                want |= wanted(ssl, r, "read");
            }
        }
        if (!progress)
            wait_for(p->fd, want);
        if (iter % 64 == 0)
            record_threads();
    }
    for (size_t i = 0; i < p->total; i++)
        if (in[i] != pattern(!dir, i))
            CHECK_EQ(in[i], pattern(!dir, i));

    /* Both close_notify alerts, sent and received. */
    for (;;) {
        ERR_clear_error();
        int r = SSL_shutdown(ssl);
        if (r == 1)
            break;
        if (r == 0)
            continue; /* ours sent; now for the peer's */
        wait_for(p->fd, wanted(ssl, r, "shutdown"));
    }
    SSL_free(ssl);
    CHECK_EQ(gort_close(p->fd), 0);
    free(out);
    free(in);
    gort_wg_done(p->wg);
}

static size_t tls_total;
static int tls_pairs;

static void tls_main(void *arg) {
    (void)arg;
    gort_waitgroup wg = { 0 };
    peer *peers = calloc((size_t)tls_pairs * 2, sizeof *peers);
    CHECK(peers != NULL);
    atomic_store(&max_threads, 0);
    atomic_store(&nwaits, 0);
    gort_wg_add(&wg, 2 * tls_pairs);
    for (int i = 0; i < tls_pairs; i++) {
        int sv[2];
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        for (int k = 0; k < 2; k++) {
            int fl = fcntl(sv[k], F_GETFL);
            CHECK_EQ(fcntl(sv[k], F_SETFL, fl | O_NONBLOCK), 0);
            peers[2 * i + k] = (peer){ sv[k], k, tls_total, &wg };
        }
        CHECK(gort_go(tls_peer, &peers[2 * i]) > 0);
        CHECK(gort_go(tls_peer, &peers[2 * i + 1]) > 0);
    }
    gort_wg_wait(&wg);
    gort_stats st;
    gort_read_stats(&st);
    printf("# %d TLS pairs, %zu bytes each way: %d waits in gort_fd_wait, at most %d threads "
           "for %d procs\n",
           tls_pairs, tls_total, atomic_load(&nwaits), atomic_load(&max_threads), st.procs);
    CHECK(atomic_load(&nwaits) > 0); /* the WANT_READ/WANT_WRITE path was taken */
    CHECK(atomic_load(&max_threads) <= st.procs + 4);
    free(peers);
}

TEST(tls_one_pair_1mib_each_way) {
    tls_setup();
    tls_total = 1 << 20;
    tls_pairs = 1;
    test_run_with(1, tls_main, NULL);
    test_run_with(2, tls_main, NULL);
    tls_teardown();
}

TEST(tls_many_pairs) {
    tls_setup();
    tls_total = (size_t)test_scale(256 << 10, 64 << 10, 32 << 10);
    tls_pairs = (int)test_scale(32, 8, 4);
    test_run_with(2, tls_main, NULL);
    test_run_with(4, tls_main, NULL);
    tls_teardown();
}
