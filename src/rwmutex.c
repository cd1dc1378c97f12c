/*
 * rwmutex.c: gort_rwmutex, Go's sync.RWMutex.
 *
 * A writer first takes w (so writers queue among themselves), then
 * announces itself by subtracting rwmutexMaxReaders from readerCount, which
 * makes every later RLock wait on readerSem, and waits on writerSem for the
 * readers already inside (readerWait counts them out). Unlock adds the
 * constant back and releases the readers that queued meanwhile. Readers
 * therefore cannot starve a writer, and the common RLock/RUnlock is one
 * atomic add each.
 */
#include "runtime.h"

#define rwmutexMaxReaders (1 << 30)

/* Race flavour (race.h), as Go's rwmutex.go tells its detector: a reader
 * acquires &readerSem, which every Unlock releases, so it follows the last
 * writer; a writer acquires &readerSem and &writerSem, which every RUnlock
 * releases into, so it follows the last writer and every reader before it.
 * Readers are not ordered among themselves. */

GORT_API void gort_rwmutex_rlock(gort_rwmutex *rw) {
    if (xadd(&rw->readerCount, 1) < 0)
        /* A writer is pending: wait for it. */
        gort__semacquire(&rw->readerSem, false, waitReasonSyncRWMutexRLock);
    raceacquire(&rw->readerSem);
}

GORT_API int gort_rwmutex_tryrlock(gort_rwmutex *rw) {
    for (;;) {
        int32_t c = load_relaxed(&rw->readerCount);
        if (c < 0)
            return 0;
        if (cas(&rw->readerCount, c, c + 1)) {
            raceacquire(&rw->readerSem);
            return 1;
        }
    }
}

GORT_API void gort_rwmutex_runlock(gort_rwmutex *rw) {
    racerelease(&rw->writerSem);
    int32_t r = xadd(&rw->readerCount, -1);
    if (r < 0) {
        if (r + 1 == 0 || r + 1 == -rwmutexMaxReaders)
            gort__fatal("sync: RUnlock of unlocked RWMutex");
        /* A writer is pending: the last reader out lets it in. */
        if (xadd(&rw->readerWait, -1) == 0)
            gort__semrelease(&rw->writerSem, false);
    }
}

GORT_API void gort_rwmutex_lock(gort_rwmutex *rw) {
    /* First, resolve competition with other writers. */
    gort_mutex_lock(&rw->w);
    /* Announce to readers there is a pending writer. */
    int32_t r = xadd(&rw->readerCount, -rwmutexMaxReaders) + rwmutexMaxReaders;
    /* Wait for active readers. */
    if (r != 0 && xadd(&rw->readerWait, r) != 0)
        gort__semacquire(&rw->writerSem, false, waitReasonSyncRWMutexLock);
    raceacquire(&rw->readerSem);
    raceacquire(&rw->writerSem);
}

GORT_API int gort_rwmutex_trylock(gort_rwmutex *rw) {
    if (!gort_mutex_trylock(&rw->w))
        return 0;
    if (!cas(&rw->readerCount, 0, -rwmutexMaxReaders)) {
        gort_mutex_unlock(&rw->w);
        return 0;
    }
    raceacquire(&rw->readerSem);
    raceacquire(&rw->writerSem);
    return 1;
}

GORT_API void gort_rwmutex_unlock(gort_rwmutex *rw) {
    racerelease(&rw->readerSem);
    /* Announce to readers there is no active writer. */
    int32_t r = xadd(&rw->readerCount, rwmutexMaxReaders);
    if (r >= rwmutexMaxReaders)
        gort__fatal("sync: Unlock of unlocked RWMutex");
    /* Unblock the readers that queued behind us. */
    for (int32_t i = 0; i < r; i++)
        gort__semrelease(&rw->readerSem, false);
    /* Allow other writers to proceed. */
    gort_mutex_unlock(&rw->w);
}
