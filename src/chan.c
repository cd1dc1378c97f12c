/*
 * chan.c: channels, as in Go's chan.go.
 *
 * A channel is a lock, a ring buffer of cap elements (none for an
 * unbuffered channel) and two queues of waiting goroutines, receivers and
 * senders. Invariants (under c->lock):
 *  - at least one of sendq and recvq is empty, except for an unbuffered
 *    channel with one goroutine blocked in select on both its send and
 *    receive cases;
 *  - for a buffered channel, qcount > 0 implies recvq is empty and
 *    qcount < cap implies sendq is empty.
 *
 * A value passed to a waiting goroutine is copied straight into its
 * destination (the sudog's elem, which points into the waiter's stack or
 * buffer) and the waiter is readied into the waker's runnext, so a
 * ping-pong pair runs on one P without touching the run queue.
 *
 * Waiters are sudogs on the waiting goroutine's own stack: a waker reads
 * and writes one only under c->lock, or between dequeuing it and readying
 * its goroutine, and the goroutine's frame lives until it has been woken
 * and has removed itself from every queue. So a blocking operation
 * allocates nothing. A thread that is not a goroutine may send and receive
 * too: its sudog carries a note and it sleeps on the futex.
 *
 * A channel outlives gort_run, the goroutines blocked on it at the end of a
 * run do not: their stacks are unmapped. Every locked operation goes
 * through gort__chanlock, which drops such waiters unread, keeping the
 * threads among them (chan.h, struct gort_chan).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"

/* ---- wait queues; c->lock held --------------------------------------------- */

void gort__waitq_enqueue(waitq *q, sudog *sg) {
    sg->next = NULL;
    sudog *x = q->last;
    if (x == NULL) {
        sg->prev = NULL;
        store_relaxed(&q->first, sg);
        q->last = sg;
        return;
    }
    sg->prev = x;
    x->next = sg;
    q->last = sg;
}

/* Takes s off whichever of c's queues holds it; nothing if none does (a
 * waker already dequeued it). A sudog inside a queue unlinks without
 * knowing which; at an end, the queue is the one whose end it is. */
static void chan_unqueue(gort_chan *c, sudog *s) {
    waitq *q = &c->sendq;
    if (c->recvq.first == s || c->recvq.last == s)
        q = &c->recvq;
    gort__waitq_remove(q, s);
}

/* The waker that dequeued sgp has just claimed its selecting goroutine
 * (c->lock held). The goroutine's other sudogs on this same channel leave
 * with it: when it wakes it cleans up only the other channels and never
 * touches this one again, so c may be freed as soon as the match is made,
 * as after a plain send or receive. (Go's selectgo relocks every channel
 * in its pass 3; its garbage collector keeps a channel alive for that.)
 * The sudogs of one select are linked in lock order through waitlink, so
 * this channel's are adjacent. They were written before the goroutine
 * released c->lock, and stay put until it is readied. */
static __attribute__((noinline)) void selclaim(sudog *sgp) {
    gort_chan *c = sgp->c;
    bool seen = false;
    for (sudog *s = sgp->g->waiting; s; s = s->waitlink) {
        if (s->c != c) {
            if (seen)
                break;
            continue;
        }
        seen = true;
        if (s != sgp)
            chan_unqueue(c, s);
    }
}

/* Takes the first waiter that can still be woken. A goroutine in select
 * waits on several channels at once; the first case to fire claims it with
 * a CAS on selectdone (and takes its other sudogs off this channel, see
 * selclaim), and the other channels skip its stale sudogs until it comes
 * back to remove them. */
/* The thread-waiter list kept beside q (see struct gort_chan). */
static inline waitq *threadq(gort_chan *c, waitq *q) {
    return q == &c->recvq ? &c->trecvq : &c->tsendq;
}

/* A thread's sudog joins q's thread list too, at its tail. */
static void threadq_push(gort_chan *c, waitq *q, sudog *sg) {
    waitq *t = threadq(c, q);
    sg->waitlink = NULL;
    if (t->last)
        t->last->waitlink = sg;
    else
        t->first = sg;
    t->last = sg;
}

/* A thread's sudog left q from its head: threads leave no other way (only
 * select removes from the middle, and threads cannot select), so it heads
 * the thread list too. */
static __attribute__((noinline)) void threadq_pop(gort_chan *c, waitq *q, sudog *sg) {
    waitq *t = threadq(c, q);
    if (t->first != sg)
        gort__throw("chan: thread waiter out of order");
    t->first = sg->waitlink;
    if (t->first == NULL)
        t->last = NULL;
    sg->waitlink = NULL;
}

/* Rebuilds q from its thread list alone: the goroutine waiters in it are
 * from an ended run, and their memory is gone. */
static void waitq_rebuild(waitq *q, waitq *t) {
    sudog *prev = NULL;
    for (sudog *s = t->first; s; s = s->waitlink) {
        s->prev = prev;
        if (prev)
            prev->next = s;
        prev = s;
    }
    if (prev)
        prev->next = NULL;
    store_relaxed(&q->first, t->first);
    q->last = prev;
}

/* Called by gort__chanlock (c->lock held) when c has waiters from another
 * run generation than the current one: that run has ended, so its
 * goroutines' sudogs, on their unmapped stacks, are dropped unread. Any
 * thread waiters are kept, in their order. */
void gort__chan_reap(gort_chan *c) {
    waitq_rebuild(&c->recvq, &c->trecvq);
    waitq_rebuild(&c->sendq, &c->tsendq);
    c->gen = load_relaxed(&gort__rungen);
}

sudog *gort__waitq_dequeue(gort_chan *c, waitq *q) {
    for (;;) {
        sudog *sgp = q->first;
        if (sgp == NULL)
            return NULL;
        sudog *y = sgp->next;
        if (y == NULL) {
            store_relaxed(&q->first, NULL);
            q->last = NULL;
        } else {
            y->prev = NULL;
            store_relaxed(&q->first, y);
            sgp->next = NULL;
        }
        if (sgp->g == NULL)
            threadq_pop(c, q, sgp);
        else if (sgp->isSelect) {
            if (!cas(&sgp->g->selectdone, 0, 1))
                continue;
            selclaim(sgp);
        }
        return sgp;
    }
}

/* Removes sgp from q wherever it is (select's losing cases). */
void gort__waitq_remove(waitq *q, sudog *sgp) {
    sudog *x = sgp->prev, *y = sgp->next;
    if (x != NULL) {
        if (y != NULL) {            /* middle of queue */
            x->next = y;
            y->prev = x;
            sgp->next = sgp->prev = NULL;
            return;
        }
        x->next = NULL;             /* end of queue */
        q->last = x;
        sgp->prev = NULL;
        return;
    }
    if (y != NULL) {                /* start of queue */
        y->prev = NULL;
        store_relaxed(&q->first, y);
        sgp->next = NULL;
        return;
    }
    /* x == y == NULL: either the only element, or already removed by a
     * waker that dequeued it. */
    if (q->first == sgp) {
        store_relaxed(&q->first, NULL);
        q->last = NULL;
    }
}

/* Wakes the waiter of a dequeued sudog: readies its goroutine, or its
 * thread's note. After this the sudog may be gone. */
void gort__sudog_ready(sudog *sg) {
    G *gp = sg->g;
    note *n = sg->osnote;
    if (gp) {
        gp->param = sg;
        gort__goready(gp);
    } else {
        gort__notewakeup(n);
    }
}

/* Parks the caller on sg until a waker readies it; c->lock is released
 * once the caller is parked. */
static bool chanparkcommit(G *gp, void *lock) {
    (void)gp;
    gort__unlock(lock);
    return true;
}

/* Blocks the caller on q with a sudog on its own stack whose elem is ep,
 * releasing c->lock once parked. Returns whether a peer completed the
 * operation (false: the channel was closed). */
static bool chanblock(gort_chan *c, waitq *q, void *ep, waitReason reason) {
    G *gp = getg();
    note n = { 0 };
    sudog mysg;
    memset(&mysg, 0, sizeof mysg);
    mysg.g = gp;
    mysg.osnote = gp ? NULL : &n;
    mysg.elem = ep;
    mysg.c = c;
    gort__waitq_enqueue(q, &mysg);
    c->gen = load_relaxed(&gort__rungen);
    if (gp == NULL)
        threadq_push(c, q, &mysg);
    if (gp) {
        gp->param = NULL;
        gort__gopark(chanparkcommit, &c->lock, reason);
        gp->param = NULL;
    } else {
        gort__unlock(&c->lock);
        gort__notesleep(&n);
    }
    return mysg.success;
}

static inline void *chanbuf(gort_chan *c, uint32_t i) {
    return (char *)(c + 1) + (size_t)i * c->elemsize;
}

static inline void elemcopy(gort_chan *c, void *dst, const void *src) {
    switch (c->elemsize) {   /* the common sizes without a call to memcpy */
    case 0: return;
    case 4: memcpy(dst, src, 4); return;
    case 8: memcpy(dst, src, 8); return;
    case 16: memcpy(dst, src, 16); return;
    default: memcpy(dst, src, c->elemsize); return;
    }
}

static inline void elemclr(gort_chan *c, void *p) {
    if (c->elemsize && p)
        memset(p, 0, c->elemsize);
}

/* ---- make, len, cap, free ----------------------------------------------- */

GORT_API int gort_chan_make(gort_chan **out, size_t elem_size, size_t cap) {
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (elem_size > MAXELEMSIZE || cap > UINT32_MAX / 2 ||
        (elem_size && cap > (SIZE_MAX - sizeof(gort_chan) - 63) / elem_size))
        return -EINVAL;
    /* The header on a cache line of its own: what a send or receive
     * touches is its first line, shared with nothing else. */
    size_t size = (sizeof(gort_chan) + elem_size * cap + 63) & ~(size_t)63;
    gort_chan *c = aligned_alloc(64, size);
    if (c == NULL)
        return -ENOMEM;
    memset(c, 0, size);
    c->elemsize = (uint32_t)elem_size;
    c->dataqsiz = (uint32_t)cap;
    c->gen = load_relaxed(&gort__rungen);
    *out = c;
    return 0;
}

GORT_API size_t gort_chan_len(gort_chan *c) { return c ? load_relaxed(&c->qcount) : 0; }
GORT_API size_t gort_chan_cap(gort_chan *c) { return c ? c->dataqsiz : 0; }

GORT_API void gort_chan_free(gort_chan *c) {
    if (c == NULL)
        return;
    /* Waiters of an ended run are dropped by chanlock: once gort_run has
     * returned, its goroutines no longer count. Live ones, goroutines of
     * the run in progress or threads, would touch freed memory. */
    gort__chanlock(c);
    if (c->recvq.first || c->sendq.first)
        gort__fatal("gort_chan_free: channel %p freed while goroutines or threads wait on it",
                    (void *)c);
    gort__unlock(&c->lock);
    free(c);
}

/* ---- send ------------------------------------------------------------------ */

/* Hands ep to a waiting receiver sg (c->lock held; released here). */
static void chansend_direct(gort_chan *c, sudog *sg, const void *ep) {
    if (sg->elem) {
        elemcopy(c, sg->elem, ep);
        sg->elem = NULL;
    }
    sg->success = true;
    gort__unlock(&c->lock);
    gort__sudog_ready(sg);
}

/* Returns 0 sent, -EAGAIN not sent (non-blocking), -EPIPE closed. */
int gort__chansend(gort_chan *c, const void *ep, bool block) {
    /* Fast path: a non-blocking send on a full open channel fails without
     * the lock (see Go's chansend for why these racy reads are enough). */
    if (!block && !load_relaxed(&c->closed) && gort__chan_full(c))
        return -EAGAIN;

    gort__chanlock(c);
    if (c->closed) {
        gort__unlock(&c->lock);
        return -EPIPE;
    }
    sudog *sg = gort__waitq_dequeue(c, &c->recvq);
    if (sg) {
        /* A receiver waits: pass the value directly, bypassing the buffer. */
        chansend_direct(c, sg, ep);
        return 0;
    }
    if (c->qcount < c->dataqsiz) {
        elemcopy(c, chanbuf(c, c->sendx), ep);
        if (++c->sendx == c->dataqsiz)
            c->sendx = 0;
        store_relaxed(&c->qcount, c->qcount + 1);
        gort__unlock(&c->lock);
        return 0;
    }
    if (!block) {
        gort__unlock(&c->lock);
        return -EAGAIN;
    }

    /* Block: queue a sudog pointing at the value and park. Woken by a
     * receiver (success) or by close. */
    return chanblock(c, &c->sendq, (void *)ep, waitReasonChanSend) ? 0 : -EPIPE;
}

/* ---- receive --------------------------------------------------------------- */

/* Takes a value from a waiting sender sg (c->lock held; released here).
 * Unbuffered: copy from the sender. Buffered (so full): take the head of
 * the buffer and put the sender's value at its tail. */
static void chanrecv_direct(gort_chan *c, sudog *sg, void *ep) {
    if (c->dataqsiz == 0) {
        if (ep)
            elemcopy(c, ep, sg->elem);
    } else {
        void *qp = chanbuf(c, c->recvx);
        if (ep)
            elemcopy(c, ep, qp);
        elemcopy(c, qp, sg->elem);
        if (++c->recvx == c->dataqsiz)
            c->recvx = 0;
        c->sendx = c->recvx;
    }
    sg->elem = NULL;
    sg->success = true;
    gort__unlock(&c->lock);
    gort__sudog_ready(sg);
}

/* Returns 1 received, 0 closed and drained (ep zeroed), -EAGAIN nothing
 * there (non-blocking). */
int gort__chanrecv(gort_chan *c, void *ep, bool block) {
    /* Fast path: a non-blocking receive on an empty channel. */
    if (!block && gort__chan_empty(c)) {
        if (!load_acq(&c->closed))
            return -EAGAIN;
        /* Closed: it stays closed, so re-check emptiness now. */
        if (gort__chan_empty(c)) {
            elemclr(c, ep);
            return 0;
        }
    }

    gort__chanlock(c);
    if (c->closed) {
        if (c->qcount == 0) {
            gort__unlock(&c->lock);
            elemclr(c, ep);
            return 0;
        }
    } else {
        sudog *sg = gort__waitq_dequeue(c, &c->sendq);
        if (sg) {
            chanrecv_direct(c, sg, ep);
            return 1;
        }
    }
    if (c->qcount > 0) {
        void *qp = chanbuf(c, c->recvx);
        if (ep)
            elemcopy(c, ep, qp);
        /* Go clears the slot for its garbage collector; with none, leaving
         * it keeps the consumer from writing the producer's cache line. */
        if (++c->recvx == c->dataqsiz)
            c->recvx = 0;
        store_relaxed(&c->qcount, c->qcount - 1);
        gort__unlock(&c->lock);
        return 1;
    }
    if (!block) {
        gort__unlock(&c->lock);
        return -EAGAIN;
    }

    return chanblock(c, &c->recvq, ep, waitReasonChanReceive) ? 1 : 0;
}

/* ---- close ------------------------------------------------------------------- */

GORT_API int gort_chan_close(gort_chan *c) {
    if (c == NULL)
        return -EINVAL;
    gort__chanlock(c);
    if (c->closed) {
        gort__unlock(&c->lock);
        return -EPIPE;
    }
    store_rel(&c->closed, 1);

    /* Collect every waiter, then wake them after dropping the lock. */
    sudog *list = NULL;
    sudog *sg;
    while ((sg = gort__waitq_dequeue(c, &c->recvq)) != NULL) {
        elemclr(c, sg->elem);
        sg->elem = NULL;
        sg->success = false;
        sg->next = list;
        list = sg;
    }
    while ((sg = gort__waitq_dequeue(c, &c->sendq)) != NULL) {
        sg->elem = NULL;
        sg->success = false;   /* senders return -EPIPE */
        sg->next = list;
        list = sg;
    }
    gort__unlock(&c->lock);
    while (list) {
        sg = list;
        list = sg->next;
        sg->next = NULL;
        gort__sudog_ready(sg);
    }
    return 0;
}

/* ---- the public send and receive ------------------------------------------- */

GORT_API int gort_chan_send(gort_chan *c, const void *elem) {
    if (c == NULL || (elem == NULL && c->elemsize != 0))
        return -EINVAL;
    return gort__chansend(c, elem, true);
}

GORT_API int gort_chan_recv(gort_chan *c, void *elem) {
    if (c == NULL)
        return -EINVAL;
    return gort__chanrecv(c, elem, true);
}

GORT_API int gort_chan_trysend(gort_chan *c, const void *elem) {
    if (c == NULL || (elem == NULL && c->elemsize != 0))
        return -EINVAL;
    return gort__chansend(c, elem, false);
}

GORT_API int gort_chan_tryrecv(gort_chan *c, void *elem) {
    if (c == NULL)
        return -EINVAL;
    return gort__chanrecv(c, elem, false);
}
