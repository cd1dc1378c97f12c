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

static void waitq_enqueue(waitq *q, sudog *sg) {
    sg->next = NULL;
    sudog *x = q->last;
    if (x == NULL) {
        sg->prev = NULL;
        store_rel(&q->first, sg);   /* release: see gort__chan_empty */
        q->last = sg;
        return;
    }
    sg->prev = x;
    x->next = sg;
    q->last = sg;
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
        store_rel(&q->first, y);
        sgp->next = NULL;
        return;
    }
    /* x == y == NULL: either the only element, or already removed by a
     * waker that dequeued it. */
    if (q->first == sgp) {
        store_rel(&q->first, NULL);
        q->last = NULL;
    }
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

/* The thread-waiter list kept beside q (see struct gort_chan). */
static inline waitq *threadq(gort_chan *c, waitq *q) {
    return q == &c->recvq ? &c->trecvq : &c->tsendq;
}

/* Queues sg, whose g (NULL for a thread), elem and c are set, at the tail
 * of q, one of c's queues, and stamps c with the run generation (see
 * struct gort_chan). A thread's sudog joins q's thread list too. */
void gort__chan_enqueue(gort_chan *c, waitq *q, sudog *sg) {
    waitq_enqueue(q, sg);
    c->gen = load_relaxed(&gort__rungen);
    if (sg->g == NULL) {
        waitq *t = threadq(c, q);
        sg->waitlink = NULL;
        *(t->last ? &t->last->waitlink : &t->first) = sg;
        t->last = sg;
    }
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
    store_rel(&q->first, t->first);
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

/* The waker that dequeued sgp has just claimed its selecting goroutine
 * (c->lock held). The goroutine's other sudogs on this same channel leave
 * with it: when it wakes it cleans up only the other channels and never
 * touches this one again, so c may be freed as soon as the match is made,
 * as after a plain send or receive. (Go's selectgo relocks every channel
 * in its pass 3; its garbage collector keeps a channel alive for that.)
 * The sudogs of one select are linked in lock order through waitlink, so
 * this channel's are adjacent. They were written before the goroutine
 * released c->lock, and stay put until it is readied. */
static void selclaim(gort_chan *c, sudog *sgp) {
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

/* The unusual sudogs gort__waitq_dequeue has just taken off q: says whether
 * sgp may be woken.
 *  - A thread's: it leaves the thread list too. It is at its head: threads
 *    leave q only from its head (only select removes from the middle, and
 *    threads cannot select).
 *  - A select's: the first channel to fire claims the goroutine with a CAS
 *    on selectdone, and takes its other sudogs off this channel (selclaim);
 *    a later one finds the CAS done and drops its stale sudog. */
bool gort__chan_claim(gort_chan *c, waitq *q, sudog *sgp) {
    if (sgp->g == NULL) {
        waitq *t = threadq(c, q);
        if (t->first != sgp)
            gort__throw("chan: thread waiter out of order");
        t->first = sgp->waitlink;
        if (t->first == NULL)
            t->last = NULL;
        sgp->waitlink = NULL;
        return true;
    }
    if (!cas(&sgp->g->selectdone, 0, 1))
        return false;
    selclaim(c, sgp);
    return true;
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

/* Nothing to hand over now (c->lock held): a non-blocking operation
 * returns -EAGAIN; a blocking one waits on q with a sudog on its own stack
 * whose elem is ep, c->lock released once it is parked (or, on a thread,
 * before it sleeps). Returns 1 when a peer completed the operation, 0 when
 * the channel was closed. The waker dequeued the sudog: c is not touched
 * after waking. */
static int chanwait(gort_chan *c, waitq *q, void *ep, bool block, waitReason reason) {
    if (!block) {
        gort__unlock(&c->lock);
        return -EAGAIN;
    }
    G *gp = getg();
    note n = { 0 };
    sudog mysg;
    memset(&mysg, 0, sizeof mysg);
    mysg.g = gp;
    mysg.osnote = gp ? NULL : &n;
    mysg.elem = ep;
    mysg.c = c;
    racepark(&mysg);
    gort__chan_enqueue(c, q, &mysg);
    if (gp) {
        gp->param = NULL;
        gort__goparkunlock(&c->lock, reason);
        gp->param = NULL;
    } else {
        gort__unlock(&c->lock);
        gort__notesleep(&n);
    }
    raceunpark(&mysg);   /* the peer's half of the hand-off, or the close */
    if (mysg.freechan)
        gort__chan_received_after(c);   /* gort_after's value: c is ours */
    return mysg.success ? 1 : 0;
}

/* Ends a hand-off with sg, a waiter dequeued and served under c->lock:
 * unlocks c, then wakes it. Returns r, the caller's result. */
static inline int unlockready(gort_chan *c, sudog *sg, int r) {
    gort__unlock(&c->lock);
    gort__sudog_ready(sg);
    return r;
}

/* ---- make, len, cap, free ----------------------------------------------- */

GORT_API int gort_chan_make(gort_chan **out, size_t elem_size, size_t cap) {
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (elem_size > MAXELEMSIZE || cap > UINT32_MAX / 2 ||
        (elem_size && cap > (SIZE_MAX - sizeof(gort_chan)) / elem_size))
        return -EINVAL;
    /* Deliberately not cache-line aligned: with the header alone on one
     * line, lock and buffer indexes together, a contended channel measured
     * a third slower (bench/buffered44), probably because spinners on the
     * lock keep taking that line from the holder as it updates them. */
    gort_chan *c = calloc(1, sizeof *c + elem_size * cap);
    if (c == NULL)
        return -ENOMEM;
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

/* Returns 0 sent, -EAGAIN not sent (non-blocking), -EPIPE closed, -EINVAL
 * no channel or no value. */
static int chansend(gort_chan *c, const void *ep, bool block) {
    if (c == NULL || (ep == NULL && c->elemsize != 0))
        return -EINVAL;
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
        gort__chan_sendto(c, sg, ep);
        return unlockready(c, sg, 0);
    }
    if (c->qcount < c->dataqsiz) {
        gort__chan_bufput(c, ep);
        gort__unlock(&c->lock);
        return 0;
    }
    /* Wait for a receiver (1) or close (0). */
    int r = chanwait(c, &c->sendq, (void *)ep, block, waitReasonChanSend);
    return r == 1 ? 0 : r == 0 ? -EPIPE : r;
}

/* ---- receive --------------------------------------------------------------- */

/* Returns 1 received, 0 closed and drained (ep zeroed), -EAGAIN nothing
 * there (non-blocking), -EINVAL no channel. */
static int chanrecv(gort_chan *c, void *ep, bool block) {
    if (c == NULL)
        return -EINVAL;
    /* Fast path: a non-blocking receive on an empty channel. */
    if (!block && gort__chan_empty(c)) {
        if (!load_acq(&c->closed))
            return -EAGAIN;
        /* Closed: it stays closed, so re-check emptiness now. */
        if (gort__chan_empty(c)) {
            raceacquire(raceaddr(c));   /* the close */
            elemclr(c, ep);
            return 0;
        }
    }

    gort__chanlock(c);
    if (c->closed) {
        if (c->qcount == 0) {
            raceacquire(raceaddr(c));   /* the close */
            gort__unlock(&c->lock);
            elemclr(c, ep);
            return 0;
        }
    } else {
        sudog *sg = gort__waitq_dequeue(c, &c->sendq);
        if (sg) {
            /* A sender waits (so a buffered channel is full). */
            gort__chan_recvfrom(c, sg, ep);
            return unlockready(c, sg, 1);
        }
    }
    if (c->qcount > 0) {
        gort__chan_buftake(c, ep);
        bool after = gort__chan_isafter(c);
        gort__unlock(&c->lock);
        if (after)
            gort__chan_received_after(c);
        return 1;
    }
    return chanwait(c, &c->recvq, ep, block, waitReasonChanReceive);
}

/* ---- gort_after's channels -------------------------------------------------- */

struct chanafter {
    timer             t;
    struct chanafter *next, *prev;   /* on afters.list (afters.lock) */
    gort_chan        *c;
};

static struct {
    gort_lock         lock;
    struct chanafter *list;
} afters;

/* A channel of one int64_t followed by its buffer and its chanafter, in
 * one allocation; listed so that shutdown can free the ones never
 * received. */
int gort__chan_make_after(gort_chan **out) {
    size_t bufsize = sizeof(int64_t);
    gort_chan *c = calloc(1, sizeof *c + bufsize + sizeof(struct chanafter));
    if (c == NULL)
        return -ENOMEM;
    c->elemsize = sizeof(int64_t);
    c->dataqsiz = 1;
    c->gen = load_relaxed(&gort__rungen);
    struct chanafter *a = (struct chanafter *)((char *)(c + 1) + bufsize);
    a->c = c;
    c->after = a;
    gort__lock(&afters.lock);
    a->next = afters.list;
    if (a->next)
        a->next->prev = a;
    afters.list = a;
    gort__unlock(&afters.lock);
    *out = c;
    return 0;
}

timer *gort__chan_timer(gort_chan *c) { return &c->after->t; }

/* The timer of a gort_after channel fired (on the scheduler): the value
 * goes to a waiting receiver, marked so that the receiver frees the
 * channel once awake (the one place a woken receiver may touch it), or
 * into the buffer. Nothing here touches c once it is unlocked. */
void gort__chan_after_fire(gort_chan *c, int64_t now) {
    /* The value, in a buffer as large as elemcopy's largest inline case:
     * gcc cannot see that elemsize is 8 here and warns of the 16. */
    int64_t v[2] = { now, 0 };
    gort__chanlock(c);
    sudog *sg = gort__waitq_dequeue(c, &c->recvq);
    if (sg) {
        gort__chan_sendto(c, sg, v);
        sg->freechan = true;
        gort__unlock(&c->lock);
        gort__sudog_ready(sg);
        return;
    }
    if (!c->closed && c->qcount < c->dataqsiz)
        gort__chan_bufput(c, v);
    gort__unlock(&c->lock);
}

/* Its one value was received: the channel goes, unless somebody else
 * waits on it too (then shutdown frees it). Its timer fired before the
 * value existed, so no heap holds it. */
void gort__chan_received_after(gort_chan *c) {
    gort__chanlock(c);
    bool waiters = c->recvq.first || c->sendq.first;
    gort__unlock(&c->lock);
    if (waiters)
        return;
    struct chanafter *a = c->after;
    gort__lock(&afters.lock);
    if (a->prev)
        a->prev->next = a->next;
    else
        afters.list = a->next;
    if (a->next)
        a->next->prev = a->prev;
    gort__unlock(&afters.lock);
    free(c);
}

/* gort_run's teardown: every gort_after channel left, fired or not. */
void gort__afterchans_free(void) {
    struct chanafter *a = afters.list;
    afters.list = NULL;
    while (a) {
        struct chanafter *next = a->next;
        free(a->c);
        a = next;
    }
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
    racerelease(raceaddr(c));   /* for receives that find it closed */

    /* Collect every waiter, then wake them after dropping the lock, as
     * Go's closechan does. Receivers get a zero value; senders return
     * -EPIPE. Goroutines are listed through their G (schedlink), not their
     * sudog: a sudog lies on its waiter's stack, one page per waiter, and
     * a million waiters' pages are not worth touching twice. */
    G *glist = NULL;
    sudog *tlist = NULL;   /* threads' sudogs */
    waitq *qs[2] = { &c->recvq, &c->sendq };
    for (int i = 0; i < 2; i++) {
        sudog *sg;
        while ((sg = gort__waitq_dequeue(c, qs[i])) != NULL) {
            if (qs[i] == &c->recvq)
                elemclr(c, sg->elem);
            sg->elem = NULL;
            sg->success = false;
            if (raceenabled) {
                /* Go's raceacquireg(gp, c.raceaddr()); a thread, which
                 * cannot be acted for, acquires through raceunpark. */
                if (sg->g)
                    raceacquireg(sg->g->tsan_fiber, raceaddr(c));
                else
                    racerelease(racewaiter(sg));
            }
            G *gp = sg->g;
            if (gp) {
                gp->param = sg;
                gp->schedlink = glist;
                glist = gp;
            } else {
                sg->next = tlist;
                tlist = sg;
            }
        }
    }
    gort__unlock(&c->lock);
    while (glist) {
        G *gp = glist;
        glist = gp->schedlink;
        gp->schedlink = NULL;
        gort__goready(gp);
    }
    while (tlist) {
        sudog *sg = tlist;
        tlist = sg->next;
        sg->next = NULL;
        gort__sudog_ready(sg);
    }
    return 0;
}

/* ---- the public send and receive ------------------------------------------- */

/* Race flavour: the element is read by a send that sent it and written by
 * a receive that filled it (racereadrange, racewriterange). */
GORT_API int gort_chan_send(gort_chan *c, const void *elem) {
    size_t n = c ? c->elemsize : 0;   /* once sent, c may be freed by its receiver */
    int r = chansend(c, elem, true);
    if (raceenabled && r == 0)
        racereadrange(elem, n);
    return r;
}

GORT_API int gort_chan_trysend(gort_chan *c, const void *elem) {
    size_t n = c ? c->elemsize : 0;   /* once sent, c may be freed by its receiver */
    int r = chansend(c, elem, false);
    if (raceenabled && r == 0)
        racereadrange(elem, n);
    return r;
}

GORT_API int gort_chan_recv(gort_chan *c, void *elem) {
    size_t n = c ? c->elemsize : 0;   /* c may be gone once received (gort_after, or freed by its sender) */
    int r = chanrecv(c, elem, true);
    if (raceenabled && r >= 0)
        racewriterange(elem, n);
    return r;
}

GORT_API int gort_chan_tryrecv(gort_chan *c, void *elem) {
    size_t n = c ? c->elemsize : 0;
    int r = chanrecv(c, elem, false);
    if (raceenabled && r >= 0)
        racewriterange(elem, n);
    return r;
}
