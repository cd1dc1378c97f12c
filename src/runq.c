/*
 * runq.c: run queues, as in Go's proc.go.
 *
 * Each P has a 256-slot ring of runnable Gs plus a runnext slot. The owner
 * P puts at the tail and gets from the head; thieves (other Ps' Ms) take
 * half from the head with a CAS on runqhead. runqtail is written only by the
 * owner. The slots themselves are read by thieves before their CAS commits
 * the consume, so slots are accessed with relaxed atomics: a thief may read a
 * slot the owner is overwriting, but then its CAS fails and it retries.
 *
 * The global run queue (sched.runq) is a plain linked list under
 * sched.lock, fed by overflowing local queues, by threads that are not Ms,
 * and by destroyed Ps; every 61st schedule tick a P takes from it first so
 * it cannot starve.
 */
#include "runtime.h"

static void runqputslow(P *pp, G *gp, uint32_t h, uint32_t t);
static void gqueue_push(gqueue *q, G *gp);

static inline G *slot_load(P *pp, uint32_t i) {
    return load_relaxed(&pp->runq[i % RUNQ_SIZE]);
}

static inline void slot_store(P *pp, uint32_t i, G *gp) {
    store_relaxed(&pp->runq[i % RUNQ_SIZE], gp);
}

/* With a single P there are no thieves: only an M holding a P steals, and
 * GOMAXPROCS changes only with the world stopped, when no M is inside the
 * scheduler. The owner may then update runnext and runqhead with plain
 * stores instead of the locked CAS that races with thieves need; on a
 * channel ping-pong that is a third of the locked instructions. */
static inline bool nothieves(void) { return load_relaxed(&gort__gomaxprocs) == 1; }

/* True if pp has no Gs on its local run queue. The loop guards against
 * reading head and tail at different moments. */
bool gort__runqempty(P *pp) {
    for (;;) {
        uint32_t head = load_acq(&pp->runqhead);
        uint32_t tail = load_acq(&pp->runqtail);
        G *runnext = load_acq(&pp->runnext);
        if (tail == load_acq(&pp->runqtail))
            return head == tail && runnext == NULL;
    }
}

/* runqput tries to put gp on the local runnable queue. With next, gp goes
 * in runnext and the G it displaces goes to the tail: a G readied by the
 * running G runs next, which keeps producer/consumer pairs on one P and
 * their data in cache. If the ring is full, half of it moves to the global
 * queue. Executed only by the owner P. */
void gort__runqput(P *pp, G *gp, bool next) {
    if (next) {
        G *old = load_relaxed(&pp->runnext);
        if (nothieves()) {
            /* No thief, and no spinner to miss gp: the only P is ours, so
             * npidle is 0 and wakep, reading it, starts nobody. */
            store_relaxed(&pp->runnext, gp);
        } else {
            /* seq_cst, not just acq_rel (the same instruction on x86-64 and
             * arm64): this is the submitter's write in the spinning
             * protocol, which wakep's seq_cst loads of npidle and
             * nmspinning follow; the spinner's side is findrunnable's
             * nmspinning decrement and fence_sc before checkRunqsNoP. */
            while (!__atomic_compare_exchange_n(&pp->runnext, &old, gp, false,
                                                __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
                ;
        }
        if (old == NULL)
            return;
        gp = old;  /* kick the old runnext to the regular queue */
    }
    for (;;) {
        uint32_t h = load_acq(&pp->runqhead);  /* load-acquire, synchronize with consumers */
        uint32_t t = pp->runqtail;
        if (t - h < RUNQ_SIZE) {
            slot_store(pp, t, gp);
            /* store-release, makes the item available for consumption.
             * Release is enough: no caller of runqput(..., false) relies on
             * wakep (those that wake use next, and runnext's CAS). */
            store_rel(&pp->runqtail, t + 1);
            return;
        }
        runqputslow(pp, gp, h, t);
        return;
    }
}

/* Moves gp and half of the full local queue to the global queue. If a
 * thief got there first the queue is no longer full and gp goes back to
 * the local queue. Executed only by the owner P. */
static void runqputslow(P *pp, G *gp, uint32_t h, uint32_t t) {
    G *batch[RUNQ_SIZE / 2 + 1];
    uint32_t n = (t - h) / 2;
    if (n != RUNQ_SIZE / 2)
        gort__throw("runqputslow: queue is not full");
    for (uint32_t i = 0; i < n; i++)
        batch[i] = slot_load(pp, h + i);
    if (!cas(&pp->runqhead, h, h + n)) {  /* cas-release, commits consume */
        gort__runqput(pp, gp, false);
        return;
    }
    batch[n] = gp;
    for (uint32_t i = 0; i < n; i++)
        batch[i]->schedlink = batch[i + 1];

    gort__lock(&gort__sched.lock);
    gort__gqueue_pushchain(&gort__sched.runq, batch[0], batch[n], (int32_t)n + 1);
    store_relaxed(&gort__sched.runqsize, gort__sched.runq.n);
    gort__unlock(&gort__sched.lock);
}

/* Gets a G from the local queue. inheritTime is set when the G came from
 * runnext: it shares the current time slice instead of starting a new one.
 * Executed only by the owner P. */
G *gort__runqget(P *pp, bool *inheritTime) {
    bool alone = nothieves();
    /* If there's a runnext, it's the next G to run. Only the owner clears
     * runnext to NULL here, but thieves may CAS it away, so CAS too. */
    G *next = load_relaxed(&pp->runnext);
    if (next != NULL && (alone ? (store_relaxed(&pp->runnext, NULL), true)
                               : cas(&pp->runnext, next, NULL))) {
        *inheritTime = true;
        return next;
    }
    for (;;) {
        uint32_t h = load_acq(&pp->runqhead);  /* load-acquire, synchronize with other consumers */
        uint32_t t = pp->runqtail;
        if (t == h)
            return NULL;
        G *gp = slot_load(pp, h);
        /* The next G's struct is usually cold (another P made it): start
         * loading it now, while this one runs. */
        if (t - h > 1)
            __builtin_prefetch(slot_load(pp, h + 1));
        if (alone) {
            store_rel(&pp->runqhead, h + 1);
            *inheritTime = false;
            return gp;
        }
        if (cas(&pp->runqhead, h, h + 1)) {   /* cas-release, commits consume */
            *inheritTime = false;
            return gp;
        }
    }
}

/* Grabs a batch of Gs from pp's local queue into batch[batchHead...].
 * Returns the number grabbed. Can be executed by any P. */
static uint32_t runqgrab(P *pp, G **batch, uint32_t batchHead, bool stealRunNextG) {
    for (;;) {
        uint32_t h = load_acq(&pp->runqhead);  /* load-acquire, synchronize with other consumers */
        uint32_t t = load_acq(&pp->runqtail);  /* load-acquire, synchronize with the producer */
        uint32_t n = t - h;
        n = n - n / 2;
        if (n == 0) {
            if (stealRunNextG) {
                G *next = load_acq(&pp->runnext);
                if (next != NULL) {
                    /* The P's owner often readies a G and blocks right away
                     * (a channel hand-off takes tens of ns); give it a
                     * moment to run its runnext before stealing it, so Gs
                     * do not thrash between Ps. */
                    if (load_relaxed(&pp->status) == Prunning)
                        gort__usleep(3);
                    if (!cas(&pp->runnext, next, NULL))
                        continue;
                    batch[batchHead % RUNQ_SIZE] = next;
                    return 1;
                }
            }
            return 0;
        }
        if (n > RUNQ_SIZE / 2)  /* read inconsistent h and t */
            continue;
        for (uint32_t i = 0; i < n; i++)
            store_relaxed(&batch[(batchHead + i) % RUNQ_SIZE], slot_load(pp, h + i));
        if (cas(&pp->runqhead, h, h + n))     /* cas-release, commits consume */
            return n;
    }
}

/* Steals half of p2's local queue into pp's and returns one of the stolen
 * Gs, or NULL. Executed by pp's owner, which must have an empty queue. */
G *gort__runqsteal(P *pp, P *p2, bool stealRunNextG) {
    uint32_t t = pp->runqtail;
    uint32_t n = runqgrab(p2, pp->runq, t, stealRunNextG);
    if (n == 0)
        return NULL;
    n--;
    G *gp = slot_load(pp, t + n);
    if (n == 0)
        return gp;
    uint32_t h = load_acq(&pp->runqhead);     /* load-acquire, synchronize with consumers */
    if (t - h + n >= RUNQ_SIZE)
        gort__throw("runqsteal: runq overflow");
    store_rel(&pp->runqtail, t + n);           /* store-release, makes the items available */
    return gp;
}

/* ---- chained G queues; the owner's lock must be held ---------------------- */

void gort__gqueue_pushchain(gqueue *q, G *head, G *tail, int32_t n) {
    head->chaintail = tail;
    head->chainn = n;
    tail->schedlink = NULL;
    if (q->tail)
        q->tail->schedlink = head;
    else
        q->head = head;
    q->tail = tail;
    q->n += n;
}

static void gqueue_push(gqueue *q, G *gp) { gort__gqueue_pushchain(q, gp, gp, 1); }

/* Takes the first chain off q; returns its head (the chain stays linked
 * through schedlink and ends in NULL) and its length in *n. */
G *gort__gqueue_popchain(gqueue *q, int32_t *n) {
    G *head = q->head;
    if (head == NULL) {
        *n = 0;
        return NULL;
    }
    G *tail = head->chaintail;
    *n = head->chainn;
    q->head = tail->schedlink;
    if (q->head == NULL)
        q->tail = NULL;
    tail->schedlink = NULL;
    q->n -= *n;
    return head;
}

/* Takes one G off q; the rest of its chain stays a chain. */
G *gort__gqueue_pop(gqueue *q) {
    G *gp = q->head;
    if (gp == NULL)
        return NULL;
    if (gp->chainn > 1) {
        G *next = gp->schedlink;
        next->chaintail = gp->chaintail;
        next->chainn = gp->chainn - 1;
    }
    q->head = gp->schedlink;
    if (q->head == NULL)
        q->tail = NULL;
    gp->schedlink = NULL;
    q->n--;
    return gp;
}

/* ---- global run queue; sched.lock must be held ------------------------------ */

void gort__globrunqput(G *gp) {
    gqueue_push(&gort__sched.runq, gp);
    /* seq_cst: the submitter's write in the spinning protocol when gp comes
     * from a thread without a P (newproc_global, goready), which calls
     * wakep next. The lock orders nothing here: a spinner that gave up its
     * P before this critical section rescans runqsize after it, lock-free
     * (checkRunqsNoP, after fence_sc). An XCHG on x86-64, under a lock
     * that is two already. */
    store_sc(&gort__sched.runqsize, gort__sched.runq.n);
}

void gort__globrunqputhead(G *gp) {
    gqueue *q = &gort__sched.runq;
    gp->chaintail = gp;
    gp->chainn = 1;
    gp->schedlink = q->head;
    q->head = gp;
    if (!q->tail)
        q->tail = gp;
    q->n++;
    store_relaxed(&gort__sched.runqsize, q->n);
}

/* Takes work from the global queue: one G with max == 1 (the 61st-tick
 * check), else the first chain: at most half a run queue, about the share
 * Go takes. Returns the G to run now; the rest of the chain hangs off its
 * schedlink for the caller to hand to gort__runqputlist once sched.lock is
 * released, so the lock is never held while cold Gs are walked. */
G *gort__globrunqget(P *pp, int32_t max) {
    (void)pp;
    gqueue *q = &gort__sched.runq;
    G *gp;
    if (q->n == 0)
        return NULL;
    if (max == 1) {
        gp = gort__gqueue_pop(q);
    } else {
        int32_t n;
        gp = gort__gqueue_popchain(q, &n);
    }
    store_relaxed(&gort__sched.runqsize, q->n);
    return gp;
}

/* Puts a NULL-terminated schedlink list on pp's local queue. Owner P only;
 * sched.lock must not be held (an overflow takes it). */
void gort__runqputlist(P *pp, G *list) {
    while (list) {
        G *next = list->schedlink;
        if (next)
            __builtin_prefetch(next);
        gort__runqput(pp, list, false);
        list = next;
    }
}
