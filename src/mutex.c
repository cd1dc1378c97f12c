/*
 * mutex.c: gort_mutex, Go's sync.Mutex.
 *
 * Two modes. Normal: waiters queue FIFO, but a woken waiter competes with
 * newly arriving goroutines (which are already on a CPU and usually win),
 * and arriving goroutines spin briefly before queueing. Starvation: a
 * waiter that has waited over 1 ms switches the mutex to starvation mode,
 * in which unlock hands the mutex directly to the first waiter and
 * newcomers queue at the tail without trying. The last waiter, or one that
 * waited under 1 ms, switches it back. Normal mode is much faster; the
 * starvation mode bounds the tail latency.
 *
 * state: bit 0 locked, bit 1 woken (a waiter is awake, so unlock need not
 * wake another), bit 2 starving, the rest the number of waiters.
 */
#include "runtime.h"

enum {
    mutexLocked = 1,
    mutexWoken = 2,
    mutexStarving = 4,
    mutexWaiterShift = 3,
};
#define starvationThresholdNs 1000000

static void lockslow(gort_mutex *m) {
    int64_t waitStartTime = 0;
    bool starving = false, awoke = false;
    int iter = 0;
    int32_t old = load_relaxed(&m->state);
    for (;;) {
        /* Don't spin in starvation mode: ownership is handed to waiters. */
        if ((old & (mutexLocked | mutexStarving)) == mutexLocked && gort__sync_canspin(iter)) {
            /* Set the woken flag so that unlock does not wake others. */
            if (!awoke && (old & mutexWoken) == 0 && (old >> mutexWaiterShift) != 0 &&
                cas(&m->state, old, old | mutexWoken))
                awoke = true;
            gort__procyield(30);
            iter++;
            old = load_relaxed(&m->state);
            continue;
        }
        int32_t new = old;
        if ((old & mutexStarving) == 0)
            new |= mutexLocked;      /* don't try to take a starving mutex */
        if ((old & (mutexLocked | mutexStarving)) != 0)
            new += 1 << mutexWaiterShift;
        /* Switch to starvation mode, unless the mutex is already free. */
        if (starving && (old & mutexLocked) != 0)
            new |= mutexStarving;
        if (awoke) {
            if ((new & mutexWoken) == 0)
                gort__fatal("sync: inconsistent mutex state");
            new &= ~mutexWoken;
        }
        if (cas(&m->state, old, new)) {
            if ((old & (mutexLocked | mutexStarving)) == 0)
                break;               /* locked with the CAS */
            /* Waited before: queue at the front. */
            bool queueLifo = waitStartTime != 0;
            if (waitStartTime == 0)
                waitStartTime = gort__nanotime();
            gort__semacquire(&m->sema, queueLifo, waitReasonSyncMutexLock);
            starving = starving || gort__nanotime() - waitStartTime > starvationThresholdNs;
            old = load_relaxed(&m->state);
            if ((old & mutexStarving) != 0) {
                /* Handed off: the mutex is ours, but the state still says
                 * unlocked with us counted as a waiter. Fix it. */
                if ((old & (mutexLocked | mutexWoken)) != 0 || (old >> mutexWaiterShift) == 0)
                    gort__fatal("sync: inconsistent mutex state");
                int32_t delta = mutexLocked - (1 << mutexWaiterShift);
                if (!starving || (old >> mutexWaiterShift) == 1)
                    delta -= mutexStarving;   /* exit starvation mode */
                xadd(&m->state, delta);
                break;
            }
            awoke = true;
            iter = 0;
        } else {
            old = load_relaxed(&m->state);
        }
    }
}

GORT_API void gort_mutex_lock(gort_mutex *m) {
    if (cas(&m->state, 0, mutexLocked)) {   /* fast path: grab an unlocked mutex */
        raceacquire(m);   /* race flavour: the last Unlock (Go's mutex.go) */
        return;
    }
    lockslow(m);
    raceacquire(m);
}

GORT_API int gort_mutex_trylock(gort_mutex *m) {
    int32_t old = load_relaxed(&m->state);
    if ((old & (mutexLocked | mutexStarving)) != 0)
        return 0;
    /* There may be a goroutine waiting for the mutex, but we are running
     * now and can try to grab it before it wakes up. */
    if (!cas(&m->state, old, old | mutexLocked))
        return 0;
    raceacquire(m);
    return 1;
}

static void unlockslow(gort_mutex *m, int32_t new) {
    if (((new + mutexLocked) & mutexLocked) == 0)
        gort__fatal("sync: unlock of unlocked mutex");
    if ((new & mutexStarving) == 0) {
        int32_t old = new;
        for (;;) {
            /* Nobody to wake, or someone already woken or holding it. */
            if ((old >> mutexWaiterShift) == 0 || (old & (mutexLocked | mutexWoken | mutexStarving)) != 0)
                return;
            new = (old - (1 << mutexWaiterShift)) | mutexWoken;
            if (cas(&m->state, old, new)) {
                gort__semrelease(&m->sema, false);
                return;
            }
            old = load_relaxed(&m->state);
        }
    } else {
        /* Starving: hand ownership to the next waiter and yield to it. */
        gort__semrelease(&m->sema, true);
    }
}

GORT_API void gort_mutex_unlock(gort_mutex *m) {
    racerelease(m);
    int32_t new = xadd(&m->state, -mutexLocked);
    if (new != 0)
        unlockslow(m, new);
}
