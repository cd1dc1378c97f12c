/*
 * bench.h: what every gort benchmark shares. Each program runs its workload
 * REPS times inside one gort_run and reports the median round as the one
 * line bench/run.sh reads: RESULT <name> <value> <unit>.
 */
#ifndef GORT_BENCH_H
#define GORT_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* rc is gort_run's result, failed the workload's own verdict, v[0..n) the
 * per-round values. Returns the process's exit status. */
static int bench_report(const char *name, int rc, int failed, double *v, int n, const char *unit) {
    if (rc < 0) {
        fprintf(stderr, "%s: gort_run: %s\n", name, strerror(-rc));
        return 1;
    }
    if (failed) {
        fprintf(stderr, "%s: FAILED (a wrong value came back, or a call failed)\n", name);
        return 1;
    }
    qsort(v, (size_t)n, sizeof v[0], bench_cmp_double);
    printf("RESULT %s %.2f %s\n", name, v[n / 2], unit);
    return 0;
}

#endif /* GORT_BENCH_H */
