/*
 * pipeline: a worker pool between channels, the way Go programs are built.
 *
 *     generate --jobs (buffered)--> worker x (Ps * 4) --results (buffered)--> collect
 *
 * A generator goroutine feeds job numbers 1..NJOBS into a buffered channel
 * and closes it; a pool of worker goroutines, four per P, takes jobs until
 * the channel is closed, does some CPU work for each (STEPS rounds of a
 * 64-bit mixing function) and sends the result on a results channel; a
 * closer goroutine waits for the workers on a wait group and then closes the
 * results channel; the main goroutine, the collector, sums results until it
 * is closed.
 *
 * The generator sends with a select on its jobs channel and a done channel,
 * Go's cancellation idiom: closing done stops it. The pipeline runs twice:
 *   1. to completion: the total must equal the one computed sequentially;
 *   2. cancelled: the collector closes done after a tenth of the results
 *      and keeps draining; the generator must stop early, and what comes
 *      out must be exactly the results of the jobs it sent (1..sent).
 * Exit status 1 if either check fails.
 *
 *   make pipeline        (or: build/pipeline [NJOBS], default 100000)
 */
#include <gort.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STEPS       2000 /* work per job */
#define JOBS_CAP    256
#define RESULTS_CAP 256

typedef struct pipeline {
    gort_chan *jobs, *results, *done;
    gort_waitgroup workers;
    int64_t njobs;
    int64_t sent; /* jobs the generator sent: 1..sent */
} pipeline;

static int64_t njobs = 100000;
static uint64_t *prefix; /* prefix[j]: sum of work(1..j), computed sequentially */
static int status;

/* The CPU work of one job: deterministic, not foldable by the compiler. */
static uint64_t work(int64_t job) {
    uint64_t x = (uint64_t)job;
    for (int i = 0; i < STEPS; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        x ^= x >> 29;
    }
    return x >> 40; /* 24 bits: the sum of a few million fits easily */
}

static void fail(const char *what, int err) {
    fprintf(stderr, "pipeline: %s: %s\n", what, strerror(err));
    exit(1); /* a half-started pipeline cannot be taken down cleanly */
}

static void go(void (*fn)(void *), void *arg) {
    int64_t id = gort_go(fn, arg);
    if (id < 0)
        fail("gort_go", (int)-id);
}

/* Stage 1: jobs 1..njobs, or fewer once done is closed. */
static void generate(void *arg) {
    pipeline *p = arg;
    int64_t j;
    for (j = 1; j <= p->njobs; j++) {
        gort_case cases[2] = {
            { .chan = p->jobs, .op = GORT_SEND, .elem = &j },
            { .chan = p->done, .op = GORT_RECV },
        };
        if (gort_select(cases, 2, 1) == 1)
            break; /* cancelled */
    }
    p->sent = j - 1;
    gort_chan_close(p->jobs);
}

/* Stage 2, many times over: a result per job. */
static void worker(void *arg) {
    pipeline *p = arg;
    int64_t job;
    while (gort_chan_recv(p->jobs, &job) == 1) {
        uint64_t r = work(job);
        gort_chan_send(p->results, &r);
    }
    gort_wg_done(&p->workers);
}

/* Closes results once every worker is done. */
static void closer(void *arg) {
    pipeline *p = arg;
    gort_wg_wait(&p->workers);
    gort_chan_close(p->results);
}

/* Runs the pipeline over jobs 1..njobs; the collector closes done after
 * cancel_after results (never if 0). Returns 0 if the outcome checks out. */
static int run(const char *label, int nworkers, int64_t cancel_after) {
    pipeline p = { .njobs = njobs };
    int rc;
    if ((rc = gort_chan_make(&p.jobs, sizeof(int64_t), JOBS_CAP)) < 0 ||
        (rc = gort_chan_make(&p.results, sizeof(uint64_t), RESULTS_CAP)) < 0 ||
        (rc = gort_chan_make(&p.done, 0, 0)) < 0)
        fail("gort_chan_make", -rc);

    int64_t t0 = gort_now();
    go(generate, &p);
    gort_wg_add(&p.workers, nworkers);
    for (int i = 0; i < nworkers; i++)
        go(worker, &p);
    go(closer, &p);

    /* Stage 3, the collector. */
    uint64_t total = 0, r;
    int64_t count = 0;
    while (gort_chan_recv(p.results, &r) == 1) {
        total += r;
        if (++count == cancel_after)
            gort_chan_close(p.done);
    }
    int64_t t1 = gort_now();

    /* results is closed: the closer is done, so are the workers, and so is
     * the generator (the workers finished because it closed jobs). */
    gort_chan_free(p.jobs);
    gort_chan_free(p.results);
    gort_chan_free(p.done);

    /* Cancelled, the generator may still have sent what fits in the
     * buffers and the workers' hands, and a few more while select picked
     * the jobs case over done by chance; past that it must have stopped. */
    int64_t slack = JOBS_CAP + RESULTS_CAP + 2 * (int64_t)nworkers + 1000;
    int stopped_early = cancel_after == 0 || p.sent < njobs || njobs - cancel_after <= slack;
    int ok = count == p.sent && total == prefix[p.sent] && stopped_early &&
             (cancel_after || p.sent == njobs);
    printf("%s: %lld jobs sent, %lld results, total %llu in %.1f ms (want %llu): %s\n", label,
           (long long)p.sent, (long long)count, (unsigned long long)total, (double)(t1 - t0) / 1e6,
           (unsigned long long)prefix[p.sent], ok ? "ok" : "FAILED");
    if (!stopped_early)
        printf("  FAILED: the generator was not cancelled\n");
    return ok ? 0 : -1;
}

static void pipeline_main(void *arg) {
    (void)arg;
    int procs = gort_maxprocs(0);
    int nworkers = procs * 4;
    printf("pipeline: %lld jobs of %d steps, %d workers (%d Ps x 4)\n", (long long)njobs, STEPS,
           nworkers, procs);

    /* The expected totals, sequentially on this goroutine. */
    int64_t t0 = gort_now();
    prefix[0] = 0;
    for (int64_t j = 1; j <= njobs; j++)
        prefix[j] = prefix[j - 1] + work(j);
    int64_t t1 = gort_now();
    printf("sequential: total %llu in %.1f ms\n", (unsigned long long)prefix[njobs],
           (double)(t1 - t0) / 1e6);

    if (run("pipeline", nworkers, 0) < 0)
        status = 1;
    int64_t cancel_after = njobs / 10 > 0 ? njobs / 10 : 1;
    char label[64];
    snprintf(label, sizeof label, "cancelled after %lld", (long long)cancel_after);
    if (run(label, nworkers, cancel_after) < 0)
        status = 1;
}

int main(int argc, char **argv) {
    if (argc > 2) {
        fprintf(stderr, "usage: %s [NJOBS]   (default 100000)\n", argv[0]);
        return 2;
    }
    if (argc == 2) {
        char *end;
        errno = 0;
        long long v = strtoll(argv[1], &end, 10);
        if (errno || *end || end == argv[1] || v < 1 || v > 100000000) {
            fprintf(stderr, "pipeline: NJOBS must be a number from 1 to 100000000, not '%s'\n",
                    argv[1]);
            return 2;
        }
        njobs = v;
    }
    prefix = malloc((size_t)(njobs + 1) * sizeof *prefix);
    if (prefix == NULL) {
        fprintf(stderr, "pipeline: out of memory\n");
        return 1;
    }
    int rc = gort_run(NULL, pipeline_main, NULL);
    free(prefix);
    if (rc < 0) {
        fprintf(stderr, "pipeline: gort_run: %s\n", strerror(-rc));
        return 1;
    }
    return status;
}
