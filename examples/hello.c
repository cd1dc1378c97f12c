/*
 * hello: ten goroutines add their index into a shared total under a mutex,
 * and main waits for them with a wait group.
 *
 *   cc hello.c $(pkg-config --cflags --libs gort) -o hello && ./hello
 */
#include <gort.h>
#include <stdio.h>
#include <string.h>

#define N 10

static gort_mutex mu; /* the zero value is an unlocked mutex */
static gort_waitgroup wg;
static long total; /* guarded by mu */

static void worker(void *arg) {
    long i = (long)(intptr_t)arg;

    gort_mutex_lock(&mu);
    total += i;
    gort_mutex_unlock(&mu);
    gort_wg_done(&wg);
}

static void main_goroutine(void *arg) {
    int *status = arg;

    gort_wg_add(&wg, N);
    for (long i = 0; i < N; i++) {
        if (gort_go(worker, (void *)(intptr_t)i) < 0) {
            fprintf(stderr, "hello: gort_go failed\n");
            *status = 1;
            return;
        }
    }
    gort_wg_wait(&wg);

    printf("total = %ld, goroutines = %lld\n", total, (long long)gort_num_goroutines());
    *status = total == N * (N - 1) / 2 ? 0 : 1;
}

int main(void) {
    int status = 1;
    int err = gort_run(NULL, main_goroutine, &status);

    if (err < 0) {
        fprintf(stderr, "hello: gort_run: %s\n", strerror(-err));
        return 1;
    }
    return status;
}
