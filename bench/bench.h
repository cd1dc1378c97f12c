/*
 * bench.h: what every gort benchmark shares. Each program runs its workload
 * REPS times inside one gort_run and reports the median round as the one
 * line bench/run.sh reads: RESULT <name> <value> <unit>; a program that
 * measures several things (a wall time and latency percentiles) prints a
 * line for each, the median round of each.
 */
#ifndef GORT_BENCH_H
#define GORT_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n) (sorts v). */
static inline double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof v[0], bench_cmp_double);
    return v[n / 2];
}

/* One line for bench/run.sh. A program that measures several things prints
 * one line for each, under names of its own (timers_wall, timers_p99). */
static inline void bench_result(const char *name, double value, const char *unit) {
    printf("RESULT %s %.2f %s\n", name, value, unit);
}

/* The verdict of a run: 0 if gort_run succeeded and the workload did not
 * fail, else 1 with the reason on stderr. */
static inline int bench_check(const char *name, int rc, int failed) {
    if (rc < 0) {
        fprintf(stderr, "%s: gort_run: %s\n", name, strerror(-rc));
        return 1;
    }
    if (failed) {
        fprintf(stderr, "%s: FAILED (a wrong value came back, or a call failed)\n", name);
        return 1;
    }
    return 0;
}

/* rc is gort_run's result, failed the workload's own verdict, v[0..n) the
 * per-round values. Returns the process's exit status. */
static inline int bench_report(const char *name, int rc, int failed, double *v, int n, const char *unit) {
    if (bench_check(name, rc, failed))
        return 1;
    bench_result(name, bench_median(v, n), unit);
    return 0;
}

static inline int bench_cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The p-th percentile (0 < p < 100) of the samples v[0..n), sorted by an
 * earlier bench_sort_i64: the nearest-rank value. */
static inline int64_t bench_percentile(const int64_t *v, int n, double p) {
    int k = (int)(p / 100.0 * n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

static inline void bench_sort_i64(int64_t *v, int n) { qsort(v, (size_t)n, sizeof v[0], bench_cmp_i64); }

#endif /* GORT_BENCH_H */
