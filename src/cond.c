/*
 * cond.c: gort_cond, Go's sync.Cond, on a ticket-based notify list (Go's
 * notifyList in sema.go).
 *
 * Wait takes a ticket (wait++) before unlocking the mutex, then sleeps
 * unless its ticket has already been notified. Signal wakes the holder of
 * the oldest unnotified ticket (notify++), Broadcast all of them. Because
 * the ticket is taken while the mutex is still held, a Signal made after
 * the waiter released the mutex can never be lost, even if it comes before
 * the waiter has gone to sleep.
 */
#include "runtime.h"

/* a < b in ticket order, allowing for wrap-around. */
static bool less(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }

static gort_lock *listlock(gort_cond *c) { return (gort_lock *)&c->lock; }

GORT_API void gort_cond_wait(gort_cond *c, gort_mutex *m) {
    uint32_t t = xadd(&c->wait, 1) - 1;
    gort_mutex_unlock(m);

    gort__lock(listlock(c));
    if (less(t, load_relaxed(&c->notify))) {
        /* Already notified. */
        gort__unlock(listlock(c));
    } else {
        G *gp = getg();
        note n = { 0 };
        sudog s = { 0 };
        s.g = gp;
        s.osnote = gp ? NULL : &n;
        s.ticket = t;
        if (c->tail == NULL)
            c->head = &s;
        else
            ((sudog *)c->tail)->next = &s;
        c->tail = &s;
        if (gp) {
            gort__goparkunlock(listlock(c), waitReasonSyncCondWait);
        } else {
            gort__unlock(listlock(c));
            gort__notesleep(&n);
        }
    }
    gort_mutex_lock(m);
}

static void ready(sudog *s) {
    if (s->g)
        gort__goready(s->g);
    else
        gort__notewakeup(s->osnote);
}

GORT_API void gort_cond_signal(gort_cond *c) {
    /* No waiter since the last notification: nothing to do, no lock. */
    if (load_acq(&c->wait) == load_acq(&c->notify))
        return;
    gort__lock(listlock(c));
    uint32_t t = c->notify;
    if (t == load_relaxed(&c->wait)) {
        gort__unlock(listlock(c));
        return;
    }
    store_rel(&c->notify, t + 1);
    /* The ticket-holder may not have queued yet: then it will find its
     * ticket notified and not sleep at all. */
    sudog *p = NULL;
    for (sudog *s = c->head; s; p = s, s = s->next) {
        if (s->ticket == t) {
            sudog *n = s->next;
            if (p)
                p->next = n;
            else
                c->head = n;
            if (n == NULL)
                c->tail = p;
            gort__unlock(listlock(c));
            s->next = NULL;
            ready(s);
            return;
        }
    }
    gort__unlock(listlock(c));
}

GORT_API void gort_cond_broadcast(gort_cond *c) {
    if (load_acq(&c->wait) == load_acq(&c->notify))
        return;
    gort__lock(listlock(c));
    sudog *s = c->head;
    c->head = NULL;
    c->tail = NULL;
    store_rel(&c->notify, load_relaxed(&c->wait));
    gort__unlock(listlock(c));
    while (s) {
        sudog *next = s->next;
        s->next = NULL;
        ready(s);
        s = next;
    }
}
