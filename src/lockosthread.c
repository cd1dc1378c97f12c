/*
 * lockosthread.c: gort_lock_thread / gort_unlock_thread, Go's
 * LockOSThread: a goroutine wired to its M. The goroutine runs only on
 * that M and the M runs nothing else: when the goroutine blocks, the M
 * gives its P away and sleeps (stoplockedm); when a scheduler finds the
 * goroutine runnable, it hands its own P to the locked M and wakes it
 * (startlockedm). A goroutine that exits still locked takes its thread
 * with it: whatever state it gave the thread (unshare, setns, capability
 * changes) dies with the thread instead of leaking into other goroutines.
 *
 * New threads are created by a template thread (Go's newmHandoff) while
 * the creator is locked: pthread_create copies the creator's namespaces
 * and other per-thread kernel state into the new thread, and the state of
 * a locked thread is exactly what must not spread. The template thread is
 * started by the first gort_lock_thread, from a thread that is still
 * clean, and otherwise only sleeps.
 *
 * m0 is the caller's own thread: it never exits. The main goroutine runs
 * on m0 until it first blocks, so a gort_lock_thread before that keeps it
 * on the main thread for good (for libraries that need the main thread).
 */
#include <errno.h>

#include "runtime.h"

/* ---- the template thread --------------------------------------------------- */

static struct {
    gort_lock lock;
    M        *newm;       /* Ms to start, through schedlink */
    note      wake;
    bool      waiting;    /* the template thread sleeps on wake */
    bool      exited;     /* it left (shutdown): nobody takes requests */
    uint32_t  started;    /* atomic */
} newmHandoff;

/* mstartfn of the template thread: an M without a P that starts the Ms
 * handed to it, and leaves at shutdown. */
static void templateThread(void) {
    for (;;) {
        gort__lock(&newmHandoff.lock);
        while (newmHandoff.newm) {
            M *list = newmHandoff.newm;
            newmHandoff.newm = NULL;
            gort__unlock(&newmHandoff.lock);
            while (list) {
                M *next = list->schedlink;
                list->schedlink = NULL;
                gort__newm1(list);
                list = next;
            }
            gort__lock(&newmHandoff.lock);
        }
        if (load_acq(&gort__sched.shutdown)) {
            newmHandoff.exited = true;
            gort__unlock(&newmHandoff.lock);
            return;
        }
        newmHandoff.waiting = true;
        gort__noteclear(&newmHandoff.wake);
        gort__unlock(&newmHandoff.lock);
        gort__notesleep(&newmHandoff.wake);
    }
}

static void startTemplateThread(void) {
    if (load_acq(&newmHandoff.started) || !cas(&newmHandoff.started, 0, 1))
        return;
    gort__lock(&gort__sched.lock);
    gort__sched.nmsys++;   /* never runs goroutines: not counted by checkdead */
    gort__unlock(&gort__sched.lock);
    gort__newm(templateThread, NULL, -1);
}

/* newm on a locked M: the thread is started by the template thread.
 * Returns false if there is none (the caller starts the thread itself). */
bool gort__newm_handoff(M *mp) {
    if (!load_acq(&newmHandoff.started))
        return false;
    gort__lock(&newmHandoff.lock);
    if (newmHandoff.exited) {
        /* Shutdown: the new M leaves as soon as it starts, so whatever
         * it inherits from this thread does not matter. */
        gort__unlock(&newmHandoff.lock);
        return false;
    }
    mp->schedlink = newmHandoff.newm;
    newmHandoff.newm = mp;
    bool wake = newmHandoff.waiting;
    newmHandoff.waiting = false;
    gort__unlock(&newmHandoff.lock);
    if (wake)
        gort__notewakeup(&newmHandoff.wake);
    return true;
}

/* Shutdown: the template thread leaves. */
void gort__template_shutdown(void) {
    if (!load_acq(&newmHandoff.started))
        return;
    gort__lock(&newmHandoff.lock);
    bool wake = newmHandoff.waiting;
    newmHandoff.waiting = false;
    gort__unlock(&newmHandoff.lock);
    if (wake)
        gort__notewakeup(&newmHandoff.wake);
}

/* Teardown: ready for the next gort_run. */
void gort__template_reset(void) {
    newmHandoff.newm = NULL;
    newmHandoff.waiting = false;
    newmHandoff.exited = false;
    newmHandoff.wake.key = 0;
    store_rel(&newmHandoff.started, 0);
}

/* ---- stoplockedm / startlockedm ------------------------------------------------ */

/* The current M is locked to a G that is not running: give the P away and
 * sleep until a scheduler hands the G back, with a P (Go's stoplockedm).
 * Returns false at shutdown.
 *
 * The hand-back (startlockedm) may come before this M sleeps: the note
 * keeps it. Both sides count the M in sched.nmidlelocked under sched.lock
 * (the count may dip below zero for a moment, as in Go, which only makes
 * checkdead more careful), and the waker wakes under that lock, so that
 * shutdown, which wakes every M marked lockedparked, never wakes one twice. */
bool gort__stoplockedm(M *mp) {
    if (mp->lockedg == NULL || mp->lockedg->lockedm != mp)
        gort__throw("stoplockedm: inconsistent locking");
    if (mp->p)
        gort__handoffp(gort__releasep());
    gort__lock(&gort__sched.lock);
    if (load_relaxed(&gort__sched.shutdown)) {
        gort__unlock(&gort__sched.lock);
        return false;
    }
    mp->lockedparked = load_relaxed(&mp->park.key) == 0;
    gort__sched.nmidlelocked++;
    gort__checkdead();
    gort__unlock(&gort__sched.lock);
    gort__notesleep(&mp->park);
    gort__noteclear(&mp->park);
    if (mp->nextp == NULL)
        return false;   /* woken by shutdown */
    if (readgstatus(mp->lockedg) != Grunnable)
        gort__throw("stoplockedm: inconsistent locking");
    gort__acquirep(mp->nextp);
    mp->nextp = NULL;
    return true;
}

/* Schedules the locked M to run the locked G gp: this M hands it its P
 * and goes idle (Go's startlockedm). */
void gort__startlockedm(M *mp, G *gp) {
    M *lm = gp->lockedm;
    if (lm == mp)
        gort__throw("startlockedm: locked to me");
    if (lm->nextp)
        gort__throw("startlockedm: m has p");
    if (mp->spinning) {
        /* It found work, if not for itself. */
        mp->spinning = false;
        xadd(&gort__sched.nmspinning, -1);
        gort__wakep();
    }
    gort__lock(&gort__sched.lock);
    if (load_relaxed(&gort__sched.shutdown)) {
        /* gp is abandoned; this M's loop sees the shutdown next. */
        gort__unlock(&gort__sched.lock);
        return;
    }
    lm->nextp = gort__releasep();
    lm->lockedparked = false;
    gort__sched.nmidlelocked--;
    gort__notewakeup(&lm->park);
    gort__unlock(&gort__sched.lock);
    gort__stopm();
}

/* Shutdown (sched.lock held): locked Ms asleep in stoplockedm leave. */
void gort__wakelockedms_locked(void) {
    for (M *mp = load_acq(&gort__allm); mp; mp = mp->alllink) {
        if (mp->lockedparked) {
            mp->lockedparked = false;
            mp->nextp = NULL;
            gort__notewakeup(&mp->park);
        }
    }
}

/* ---- the calls --------------------------------------------------------------- */

GORT_API int gort_lock_thread(void) {
    M *mp = getm();
    G *gp = getg();
    if (gp == NULL)
        return -EPERM;
    if (mp->lockedext == 0)
        startTemplateThread();   /* from a thread not yet changed by its owner */
    if (mp->lockedext == UINT32_MAX)
        gort__fatal("gort_lock_thread nested too deeply");
    mp->lockedext++;
    gp->lockedm = mp;
    mp->lockedg = gp;
    return 0;
}

GORT_API int gort_unlock_thread(void) {
    G *gp = getg();
    if (gp == NULL)
        return -EPERM;
    M *mp = gp->m;
    if (mp->lockedext > 0 && --mp->lockedext == 0) {
        gp->lockedm = NULL;
        mp->lockedg = NULL;
    }
    return 0;   /* unlocking an unlocked goroutine does nothing, as in Go */
}
