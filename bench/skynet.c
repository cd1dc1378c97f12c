/*
 * skynet: the classic skynet benchmark, 1,111,111 goroutines in a tree.
 *
 * skynet(c, num, size, div): a leaf (size 1) sends num on c; any other node
 * makes an unbuffered channel rc, starts div children skynet(rc, num +
 * i * size/div, size/div, div), sums div receives from rc and sends the sum on
 * c. With size 1,000,000 and div 10 that is 1 + 10 + ... + 1,000,000 =
 * 1,111,111 goroutines and 111,111 channels, and the root's sum is
 * 0 + 1 + ... + 999,999 = 499,999,500,000 (exit status 1 if not). With two
 * Ps, the time from starting the root to receiving its sum is the value: ms
 * per run. Median of REPS runs in one gort_run.
 *
 * With the argument -cold it makes one run only, the first in a fresh
 * process, when no goroutine stack has been touched yet: each stack the run
 * is the first to use is faulted in during it (about 24,000 page faults;
 * a warm round takes none). It reports it as skynet_cold; bench/run.sh runs
 * `bench_skynet -cold` in 5 processes and takes the median.
 *
 * Each goroutine's arguments live in one array of nodes laid out as a heap
 * (node k's children are 10k+1 .. 10k+10), allocated once and reused by every
 * run; a parent fills in its children's nodes before starting them. A node
 * frees its channel after its last receive, when no child can touch it any
 * more (a sender readies the receiver only after releasing the channel), as
 * Go's collector would; nothing is left allocated at the end.
 *
 * Go peer: bench/go/skynet/main.go.
 */
#include <gort.h>

#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIZE     1000000
#define DIV      10
#define NODES    1111111 /* 1 + 10 + ... + SIZE */
#define WANT     499999500000LL
#define REPS     5 /* rounds in one process; 1 with -cold */
#define MAXPROCS 2

typedef struct node {
    gort_chan *c; /* where to send the result */
    int64_t num;
    int64_t size;
} node;

static node *nodes;
static double ms_per_run[REPS];
static int reps = REPS;
static const char *name = "skynet"; /* skynet_cold with -cold */
static int failed;

static void die(const char *what, int err) {
    fprintf(stderr, "%s: %s: %s\n", name, what, strerror(err));
    exit(1); /* no way to unwind a half-built tree: end the process */
}

static void skynet(void *arg) {
    node *n = arg;
    if (n->size == 1) {
        if (gort_chan_send(n->c, &n->num) != 0)
            die("send", EPIPE);
        return;
    }
    gort_chan *rc;
    int err = gort_chan_make(&rc, sizeof(int64_t), 0);
    if (err < 0)
        die("gort_chan_make", -err);
    size_t first = (size_t)(n - nodes) * DIV + 1;
    int64_t sub = n->size / DIV;
    for (int i = 0; i < DIV; i++) {
        node *child = &nodes[first + i];
        child->c = rc;
        child->num = n->num + i * sub;
        child->size = sub;
        int64_t id = gort_go(skynet, child);
        if (id < 0)
            die("gort_go", (int)-id);
    }
    int64_t sum = 0, v;
    for (int i = 0; i < DIV; i++) {
        gort_chan_recv(rc, &v);
        sum += v;
    }
    gort_chan_free(rc);
    if (gort_chan_send(n->c, &sum) != 0)
        die("send", EPIPE);
}

static void bench_main(void *arg) {
    (void)arg;
    gort_chan *c;
    int err = gort_chan_make(&c, sizeof(int64_t), 0);
    if (err < 0)
        die("gort_chan_make", -err);
    for (int r = 0; r < reps; r++) {
        int64_t t0 = gort_now();
        nodes[0] = (node){ .c = c, .num = 0, .size = SIZE };
        int64_t id = gort_go(skynet, &nodes[0]);
        if (id < 0)
            die("gort_go", (int)-id);
        int64_t result = 0;
        gort_chan_recv(c, &result);
        int64_t t1 = gort_now();
        ms_per_run[r] = (double)(t1 - t0) / 1e6;
        fprintf(stderr, "%s: round %d: %.1f ms (result %lld)\n", name, r + 1, ms_per_run[r],
                (long long)result);
        if (result != WANT) {
            fprintf(stderr, "%s: wrong result %lld, want %lld\n", name, (long long)result, WANT);
            failed = 1;
            break;
        }
    }
    gort_chan_free(c);
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "-cold") == 0) {
        reps = 1;
        name = "skynet_cold";
    } else if (argc != 1) {
        fprintf(stderr, "usage: %s [-cold]\n", argv[0]);
        return 2;
    }
    nodes = malloc(NODES * sizeof *nodes);
    if (nodes == NULL) {
        fprintf(stderr, "%s: out of memory\n", name);
        return 1;
    }
    /* Fault the nodes in now: a cold run should pay for the runtime's first
     * touches (stacks), not for this harness's array. Not with zeros, which
     * the compiler may turn with the malloc into a calloc that touches none. */
    memset(nodes, 0xff, NODES * sizeof *nodes);
    gort_config cfg = { .maxprocs = MAXPROCS };
    int rc = gort_run(&cfg, bench_main, NULL);
    free(nodes);
    return bench_report(name, rc, failed, ms_per_run, reps, "ms/run");
}
