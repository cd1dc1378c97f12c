/*
 * futex.c: how OS threads sleep and wake, and the runtime's own locks.
 *
 * This is Go's lock_futex.go. Goroutines never sleep here: they park in the
 * scheduler. Ms sleep here when there is nothing to run (stopm on m->park),
 * and runtime locks fall back to the futex after a short spin. The futex
 * word is private to the process (FUTEX_PRIVATE_FLAG).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

enum { mutex_unlocked = 0, mutex_locked = 1, mutex_sleeping = 2 };
/* Go spins 4 times 30 PAUSEs. PAUSE has grown from ~10 cycles to 65-140 on
 * current AMD and Intel cores, so 30 of them are about a microsecond, far
 * longer than any runtime critical section: the spinner keeps missing the
 * release it waits for while the holder takes the lock again. 4 PAUSEs are
 * closer to the ~100 ns Go meant (a 2-P channel producer/consumer pair runs
 * 15-20% faster). */
enum { active_spin = 4, active_spin_cnt = 4, passive_spin = 1 };

/* Sleeps while *addr == val, for at most ns nanoseconds (ns < 0: forever).
 * Spurious wakeups are allowed; callers loop. */
static void futexsleep(uint32_t *addr, uint32_t val, int64_t ns) {
    struct timespec ts, *tsp = NULL;
    if (ns >= 0) {
        ts.tv_sec = ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        tsp = &ts;
    }
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, tsp, NULL, 0);
}

static void futexwakeup(uint32_t *addr, uint32_t cnt) {
    long r = syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, cnt, NULL, NULL, 0);
    if (r < 0 && errno != EAGAIN)
        gort__throw("futexwakeup: futex failed");
}

void gort__procyield(int cycles) {
    for (int i = 0; i < cycles; i++)
        gort__arch_pause();
}

void gort__osyield(void) { sched_yield(); }

void gort__usleep(int64_t us) {
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
    nanosleep(&ts, NULL);
}

/* gort__lock (runtime.h) swapped in mutex_locked and found v instead of
 * mutex_unlocked. */
void gort__lock_slow(gort_lock *l, uint32_t v) {
    /* wait is mutex_locked or mutex_sleeping: if we ever slept, we must
     * leave the key at sleeping so the unlocker knows to wake someone. */
    uint32_t wait = v;
    int spin = gort__ncpu > 1 ? active_spin : 0;
    for (;;) {
        for (int i = 0; i < spin; i++) {
            while (load_relaxed(&l->key) == mutex_unlocked)
                if (cas(&l->key, mutex_unlocked, wait))
                    return;
            gort__procyield(active_spin_cnt);
        }
        for (int i = 0; i < passive_spin; i++) {
            while (load_relaxed(&l->key) == mutex_unlocked)
                if (cas(&l->key, mutex_unlocked, wait))
                    return;
            gort__osyield();
        }
        v = xchg(&l->key, mutex_sleeping);
        if (v == mutex_unlocked)
            return;
        wait = mutex_sleeping;
        futexsleep(&l->key, mutex_sleeping, -1);
    }
}

/* gort__unlock (runtime.h) swapped in mutex_unlocked and found v instead of
 * mutex_locked: either sleepers to wake, or a bug. */
void gort__unlock_slow(gort_lock *l, uint32_t v) {
    if (v == mutex_unlocked)
        gort__throw("unlock of unlocked lock");
    if (v == mutex_sleeping)
        futexwakeup(&l->key, 1);
}

/* ---- notes: one-shot sleep and wakeup ------------------------------------ */

void gort__noteclear(note *n) { store_relaxed(&n->key, 0); }

void gort__notewakeup(note *n) {
    uint32_t old = xchg(&n->key, 1);
    if (old != 0)
        gort__throw("notewakeup: double wakeup");
    futexwakeup(&n->key, 1);
}

void gort__notesleep(note *n) {
    while (load_acq(&n->key) == 0)    /* acquire: pairs with notewakeup's xchg */
        futexsleep(&n->key, 0, -1);
}

bool gort__notetsleep(note *n, int64_t ns) {
    if (ns < 0) {
        gort__notesleep(n);
        return true;
    }
    int64_t deadline = gort__nanotime() + ns;
    while (load_acq(&n->key) == 0) {
        futexsleep(&n->key, 0, ns);
        if (load_acq(&n->key) != 0)
            break;
        int64_t now = gort__nanotime();
        if (now >= deadline)
            return false;
        ns = deadline - now;
    }
    return true;
}
