/*
 * waitgroup.c: gort_waitgroup, Go's sync.WaitGroup. The counter and the
 * number of waiters share one 64-bit word, so Add can tell with one atomic
 * whether it brought the counter to zero with waiters to release.
 */
#include "runtime.h"

/* Race flavour (race.h), as Go's waitgroup.go: every Done (a negative
 * Add) releases into wg, and Wait acquires it when it returns, so what each
 * goroutine did before its Done happens before Wait returns. */
GORT_API void gort_wg_add(gort_waitgroup *wg, int64_t delta) {
    if (delta < 0)
        racerelease(wg);
    uint64_t state = xadd(&wg->state, (uint64_t)delta << 32);
    int32_t v = (int32_t)(state >> 32);
    uint32_t w = (uint32_t)state;
    if (v < 0)
        gort__fatal("sync: negative WaitGroup counter");
    if (w != 0 && delta > 0 && v == (int32_t)delta)
        gort__fatal("sync: WaitGroup misuse: Add called concurrently with Wait");
    if (v > 0 || w == 0)
        return;
    /* Counter is 0 and there are waiters: nobody may change the state now
     * (Adds must not race with Wait), so reset it and release them. */
    if (load_relaxed(&wg->state) != state)
        gort__fatal("sync: WaitGroup misuse: Add called concurrently with Wait");
    store_relaxed(&wg->state, 0);
    for (; w != 0; w--)
        gort__semrelease(&wg->sema, false);
}

GORT_API void gort_wg_done(gort_waitgroup *wg) { gort_wg_add(wg, -1); }

GORT_API void gort_wg_wait(gort_waitgroup *wg) {
    for (;;) {
        uint64_t state = load_acq(&wg->state);
        if ((int32_t)(state >> 32) == 0) {
            raceacquire(wg);
            return;
        }
        if (cas(&wg->state, state, state + 1)) {
            gort__semacquire(&wg->sema, false, waitReasonSyncWaitGroupWait);
            if (load_relaxed(&wg->state) != 0)
                gort__fatal("sync: WaitGroup is reused before previous Wait has returned");
            raceacquire(wg);
            return;
        }
    }
}
