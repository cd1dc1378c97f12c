/*
 * primes: Go's concurrent prime sieve, with goroutines and unbuffered channels.
 *
 * A generator goroutine sends 2, 3, 4, ... on a channel. The main goroutine
 * takes the first number off the end of the chain, which is prime, prints
 * it, and puts a new filter goroutine on the end of the chain: it passes on
 * the numbers its prime does not divide. After N primes the chain is N
 * filters long (the sieve of the Go tour and of "go doc" fame):
 *
 *     gen -> filter(2) -> filter(3) -> filter(5) -> ... -> main
 *
 * In Go, main simply returns and the sieve is abandoned. Here it is taken
 * down so that everything is freed: main closes the last channel; a filter
 * whose send fails (-EPIPE: its output was closed) closes its own input and
 * exits, so the failure travels back up the chain to the generator. A wait
 * group tells main when every goroutine is gone and the channels can be
 * freed.
 *
 * The primes are checked against trial division (and, for N >= 100, the
 * 100th must be 541); exit status 1 if any is wrong.
 *
 *   make primes          (or: build/primes [N], N defaults to 100)
 */
#include <gort.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_N 100000

typedef struct filter_args {
    gort_chan *in, *out;
    long prime;
} filter_args;

static gort_waitgroup wg; /* the generator and every filter */
static long n = 100;
static long *primes;
static gort_chan **chans; /* chans[0] is the generator's, chans[i] filter i's output */
static filter_args *fargs;
static int status;

/* Sends 2, 3, 4, ... on ch until ch is closed. */
static void generate(void *arg) {
    gort_chan *ch = arg;
    for (long i = 2;; i++)
        if (gort_chan_send(ch, &i) != 0)
            break;
    gort_wg_done(&wg);
}

/* Copies the numbers not divisible by a->prime from a->in to a->out; once
 * a->out is closed, closes a->in so that the stage before stops too. */
static void filter(void *arg) {
    filter_args *a = arg;
    long i;
    while (gort_chan_recv(a->in, &i) == 1) {
        if (i % a->prime != 0 && gort_chan_send(a->out, &i) != 0) {
            gort_chan_close(a->in);
            break;
        }
    }
    gort_wg_done(&wg);
}

static int is_prime(long x) {
    if (x < 2)
        return 0;
    for (long d = 2; d * d <= x; d++)
        if (x % d == 0)
            return 0;
    return 1;
}

static void fail(const char *what, int err) {
    fprintf(stderr, "primes: %s: %s\n", what, strerror(err));
    exit(1); /* the sieve cannot be taken down half-built */
}

static void sieve(void *arg) {
    (void)arg;
    int rc = gort_chan_make(&chans[0], sizeof(long), 0);
    if (rc < 0)
        fail("gort_chan_make", -rc);
    gort_wg_add(&wg, 1);
    int64_t id = gort_go(generate, chans[0]);
    if (id < 0)
        fail("gort_go", (int)-id);

    int64_t t0 = gort_now();
    gort_chan *ch = chans[0];
    for (long i = 0; i < n; i++) {
        long prime;
        gort_chan_recv(ch, &prime);
        primes[i] = prime;
        printf("%6ld%s", prime, (i % 10 == 9 || i == n - 1) ? "\n" : " ");

        if ((rc = gort_chan_make(&chans[i + 1], sizeof(long), 0)) < 0)
            fail("gort_chan_make", -rc);
        fargs[i] = (filter_args){ .in = ch, .out = chans[i + 1], .prime = prime };
        gort_wg_add(&wg, 1);
        if ((id = gort_go(filter, &fargs[i])) < 0)
            fail("gort_go", (int)-id);
        ch = chans[i + 1];
    }
    int64_t t1 = gort_now();

    /* Take the chain down from its end and wait for every goroutine. */
    gort_chan_close(ch);
    gort_wg_wait(&wg);
    int64_t t2 = gort_now();
    for (long i = 0; i <= n; i++)
        gort_chan_free(chans[i]);

    /* Check against trial division. */
    long x = 1;
    for (long i = 0; i < n; i++) {
        do
            x++;
        while (!is_prime(x));
        if (primes[i] != x) {
            printf("FAILED: prime %ld is %ld, want %ld\n", i + 1, primes[i], x);
            status = 1;
            return;
        }
    }
    if (n >= 100 && primes[99] != 541) {
        printf("FAILED: the 100th prime is %ld, want 541\n", primes[99]);
        status = 1;
        return;
    }
    printf("%ld prime%s, the last %ld%s, through %ld filter goroutine%s: %.1f ms "
           "(taking the chain down: %.1f ms); all checked\n",
           n, n == 1 ? "" : "s", primes[n - 1], n >= 100 ? " (the 100th is 541)" : "", n,
           n == 1 ? "" : "s", (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6);
}

int main(int argc, char **argv) {
    if (argc > 2) {
        fprintf(stderr, "usage: %s [N]   (the first N primes, 1..%d, default 100)\n", argv[0],
                MAX_N);
        return 2;
    }
    if (argc == 2) {
        char *end;
        errno = 0;
        n = strtol(argv[1], &end, 10);
        if (errno || *end || end == argv[1] || n < 1 || n > MAX_N) {
            fprintf(stderr, "primes: N must be a number from 1 to %d, not '%s'\n", MAX_N, argv[1]);
            return 2;
        }
    }
    primes = malloc(n * sizeof *primes);
    chans = malloc((n + 1) * sizeof *chans);
    fargs = malloc(n * sizeof *fargs);
    if (!primes || !chans || !fargs) {
        fprintf(stderr, "primes: out of memory\n");
        return 1;
    }
    int rc = gort_run(NULL, sieve, NULL);
    free(primes);
    free(chans);
    free(fargs);
    if (rc < 0) {
        fprintf(stderr, "primes: gort_run: %s\n", strerror(-rc));
        return 1;
    }
    return status;
}
