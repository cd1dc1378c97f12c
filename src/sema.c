/*
 * sema.c: the runtime semaphore under the sync types (gort_mutex,
 * gort_rwmutex, gort_waitgroup), as in Go's sema.go.
 *
 * A semaphore is a uint32 in the user's structure. Acquire decrements it if
 * it is positive; otherwise the goroutine parks on a wait queue found by
 * hashing the address into a fixed table of roots, each with its own lock
 * and a count of waiters so that a release with nobody waiting costs one
 * atomic add and one load. Waiters are sudogs on the waiter's own stack:
 * a waker touches one only while the waiter is parked, and never after
 * readying it.
 *
 * A thread that is not running a goroutine may block here too: it sleeps
 * on a note in its sudog instead of parking, so gort_mutex and
 * gort_waitgroup work from any thread.
 *
 * Lock order: a root's lock is taken before sched.lock (goready may take
 * it), never after.
 */
#include <string.h>

#include "runtime.h"

#define SEMTABSZ 251

typedef struct semaroot {
    gort_lock lock;
    sudog    *head, *tail;  /* waiters, all addresses mixed, FIFO */
    uint32_t  nwait;        /* atomic: waiters, read without the lock */
} __attribute__((aligned(64))) semaroot;

static semaroot semtable[SEMTABSZ];

static semaroot *semroot(uint32_t *addr) {
    return &semtable[((uintptr_t)addr >> 3) % SEMTABSZ];
}

/* Shutdown: goroutines still waiting were abandoned with their stacks, so
 * their sudogs must not stay linked into the next run's table. */
void gort__sema_reset(void) { memset(semtable, 0, sizeof semtable); }

/* The load is seq_cst: in semacquire it follows the nwait increment, and
 * must see a release whose releaser did not see that increment (see
 * semrelease). */
static bool cansemacquire(uint32_t *addr) {
    for (;;) {
        uint32_t v = load_sc(addr);
        if (v == 0)
            return false;
        if (cas(addr, v, v - 1))
            return true;
    }
}

/* Adds s to root's queue: at the tail, or with lifo ahead of the first
 * waiter for the same address (a mutex waiter that has waited before goes
 * to the front). root->lock held. */
static void queue(semaroot *root, uint32_t *addr, sudog *s, bool lifo) {
    s->addr = (uintptr_t)addr;
    s->ticket = 0;
    sudog *t = NULL;   /* s goes in before t; NULL: at the tail */
    if (lifo)
        for (t = root->head; t && t->addr != (uintptr_t)addr; t = t->next)
            ;
    s->next = t;
    s->prev = t ? t->prev : root->tail;
    if (s->prev)
        s->prev->next = s;
    else
        root->head = s;
    if (t)
        t->prev = s;
    else
        root->tail = s;
}

/* Removes and returns the first waiter for addr. root->lock held. */
static sudog *dequeue(semaroot *root, uint32_t *addr) {
    for (sudog *s = root->head; s; s = s->next) {
        if (s->addr != (uintptr_t)addr)
            continue;
        if (s->prev)
            s->prev->next = s->next;
        else
            root->head = s->next;
        if (s->next)
            s->next->prev = s->prev;
        else
            root->tail = s->prev;
        s->next = s->prev = NULL;
        return s;
    }
    return NULL;
}

void gort__semacquire(uint32_t *addr, bool lifo, waitReason reason) {
    if (cansemacquire(addr))
        return;
    G *gp = getg();
    note n = { 0 };
    sudog s = { 0 };
    s.g = gp;
    s.osnote = gp ? NULL : &n;
    semaroot *root = semroot(addr);
    for (;;) {
        gort__lock(&root->lock);
        /* Announce ourselves first, so a concurrent release sees nwait. */
        xadd(&root->nwait, 1);
        if (cansemacquire(addr)) {
            xadd(&root->nwait, -1);
            gort__unlock(&root->lock);
            break;
        }
        queue(root, addr, &s, lifo);
        if (gp) {
            gort__goparkunlock(&root->lock, reason);
        } else {
            gort__unlock(&root->lock);
            gort__notesleep(&n);
            gort__noteclear(&n);
        }
        if (load_acq(&s.ticket) != 0 || cansemacquire(addr))
            break;
    }
}

void gort__semrelease(uint32_t *addr, bool handoff) {
    semaroot *root = semroot(addr);
    xadd(addr, 1);
    /* Easy case: no waiters. This check must come after the add, to avoid
     * missing a waiter that announced itself just before: a Dekker pair
     * with semacquire (xadd nwait, then load *addr), so both loads are
     * seq_cst, as both adds are (an acquire load here could read nwait
     * from before the waiter's add while the waiter misses ours). */
    if (load_sc(&root->nwait) == 0)
        return;
    gort__lock(&root->lock);
    if (load_relaxed(&root->nwait) == 0) {
        gort__unlock(&root->lock);
        return;
    }
    sudog *s = dequeue(root, addr);
    if (s)
        xadd(&root->nwait, -1);
    gort__unlock(&root->lock);
    if (s == NULL)
        return;
    bool handed = false;
    if (handoff && cansemacquire(addr)) {
        store_rel(&s->ticket, 1);
        handed = true;
    }
    /* After goready or notewakeup the sudog may be gone: read it first. */
    G *wg = s->g;
    note *wn = s->osnote;
    if (wg)
        gort__goready(wg);
    else
        gort__notewakeup(wn);
    if (handed) {
        /* Direct hand-off: the waiter is in our runnext; run it now, so a
         * starving mutex waiter does not wait for our time slice. */
        M *mp = getm();
        if (mp && mp->curg && mp->locks == 0)
            gort_yield();
    }
}

/* sync's spin check (Go's sync_runtime_canSpin): spin only a few times,
 * only on a multicore machine with another P running, and only if this P
 * has nothing else to run. */
bool gort__sync_canspin(int iter) {
    if (iter >= 4 || gort__ncpu <= 1)
        return false;
    M *mp = getm();
    if (mp == NULL || mp->p == NULL)
        return false;
    int32_t procs = load_relaxed(&gort__gomaxprocs);
    if (procs <= (int32_t)(load_relaxed(&gort__sched.npidle) + load_relaxed(&gort__sched.nmspinning)) + 1)
        return false;
    return gort__runqempty(mp->p);
}
