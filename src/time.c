/*
 * time.c: the monotonic clock that timers (timer.c), deadlines (netpoll.c)
 * and gort_now read.
 */
#include <time.h>

#include "runtime.h"

/* Monotonic nanoseconds. clock_gettime(CLOCK_MONOTONIC) is served by the
 * vDSO: no system call. */
int64_t gort__nanotime(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

GORT_API int64_t gort_now(void) { return gort__nanotime(); }
