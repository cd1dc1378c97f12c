/*
 * chan.h: the channel structure and the halves of a hand-off, shared by
 * chan.c and select.c.
 *
 * Go's selectgo completes a case with the same send() and recv() that
 * chansend and chanrecv use (chan.go); so does gort. The halves here copy
 * the value and mark the waiter's sudog done, with c->lock held, and do
 * nothing else: a plain send or receive then unlocks its one channel, a
 * select every channel it holds, and only then does either wake the peer
 * (gort__sudog_ready), so no lock is held across a goready.
 */
#ifndef GORT_CHAN_H
#define GORT_CHAN_H

#include <string.h>

#include "runtime.h"

/* The largest element a channel carries. Go's compiler refuses channel
 * element types of 64 KiB and more ("channel element type too large") and
 * makechan (chan.go) checks it again; here the bound is 64 KiB itself. A
 * value is copied on the stack of whoever sends or receives it, and stacks
 * are fixed, so far larger ones belong behind a pointer anyway. */
#define MAXELEMSIZE 65536

typedef struct waitq {
    sudog *first;   /* read without the lock by the fast paths (relaxed) */
    sudog *last;
} waitq;

/*
 * Waiters left behind by an ended run. When gort_run returns, goroutines
 * still blocked on a channel are abandoned and their stacks, where their
 * sudogs live, are unmapped. The channel does not know; so it records the
 * run generation (gort__rungen) of the goroutines in its queues, and the
 * first locked operation that finds waiters from another generation drops
 * them without reading them (chanlock). Threads that are not goroutines may
 * wait in the same queues and must be kept: each queue's thread waiters are
 * also linked, oldest first, through their sudog's waitlink into a second
 * list (threads never select, so waitlink is free), which is all live memory,
 * and the queue is rebuilt from it.
 */
struct gort_chan {
    gort_lock lock;      /* protects every field below but elemsize and dataqsiz */
    uint32_t  closed;    /* written under lock; read lock-free by fast paths */
    uint32_t  qcount;    /* elements in buf; read lock-free by len and fast paths */
    uint32_t  dataqsiz;  /* capacity: elements buf holds */
    uint32_t  sendx;     /* next slot a send fills */
    uint32_t  recvx;     /* next slot a receive empties */
    uint32_t  elemsize;  /* at most MAXELEMSIZE */
    uint32_t  gen;       /* gort__rungen when a waiter last queued */
    waitq     recvq;     /* blocked receivers */
    waitq     sendq;     /* blocked senders */
    /* The 64 bytes above are all a send or receive touches. */
    waitq     trecvq;    /* the thread waiters of recvq, through waitlink */
    waitq     tsendq;    /* ... of sendq */
    struct chanafter *after;   /* gort_after's channel: frees itself once received */
    /* then the buffer: dataqsiz * elemsize bytes (chanbuf) */
};

/* Would a send block? Read without the lock: a stale answer only makes a
 * non-blocking operation take the lock (see Go's chan.go, full()).
 * Relaxed: the send fast path reads closed first, and since closed only
 * goes 0 -> 1 and a closed channel is never "not ready", the two reads
 * mean "open and full at one moment" in either order. */
static inline bool gort__chan_full(gort_chan *c) {
    if (c->dataqsiz == 0)
        return load_relaxed(&c->recvq.first) == NULL;
    return load_relaxed(&c->qcount) == c->dataqsiz;
}

/* Would a receive block? Acquire: the receive fast path reads this, then
 * closed (Go's chanrecv: "empty, then not closed" means both held at the
 * first read; read the other way they need not have). The load must not
 * be passed by the later load of closed, and if it reads a count or a
 * queue head written after the close (a drain), the close must be seen:
 * those writes are store-releases (chan_put, chan_take, the wait queues),
 * made after the close under c->lock, so reading one brings the close
 * with it. On x86-64 all of this is plain MOVs; on arm64, LDAR/STLR. */
static inline bool gort__chan_empty(gort_chan *c) {
    if (c->dataqsiz == 0)
        return load_acq(&c->sendq.first) == NULL;
    return load_acq(&c->qcount) == 0;
}

void   gort__chan_reap(gort_chan *c);

/* gort_after (timer.c): a channel of one int64_t with its timer, which
 * frees itself once its value has been received (gort__chan_received);
 * the ones never received are freed when gort_run returns. */
int    gort__chan_make_after(gort_chan **out);
timer *gort__chan_timer(gort_chan *c);
void   gort__chan_after_fire(gort_chan *c, int64_t now);
void   gort__chan_received_after(gort_chan *c);
void   gort__afterchans_free(void);

/* Is c a gort_after channel? Asked with c->lock held by a receiver that
 * takes the value from the buffer (only it may free c afterwards). Only
 * channels of capacity 1 look at the cold line. A receiver woken with the
 * value learns it from its sudog (freechan) instead: once woken, it must
 * not touch a channel that is not its to free. */
static inline bool gort__chan_isafter(gort_chan *c) {
    return unlikely(c->dataqsiz == 1) && unlikely(c->after != NULL);
}

/* Locks c, and drops waiters an ended run left behind (see struct
 * gort_chan). The cost on the hot path is one compare, made only when a
 * queue is not empty. Every operation that reads c's queues locks c with
 * this; reading gort__rungen after the lock is what makes a live waiter's
 * generation visible to the thread that checks it. */
static inline void gort__chanlock(gort_chan *c) {
    gort__lock(&c->lock);
    if ((c->recvq.first != NULL || c->sendq.first != NULL) &&
        unlikely(c->gen != load_relaxed(&gort__rungen)))
        gort__chan_reap(c);
}

/* ---- wait queues; c->lock held ------------------------------------------ */

void gort__chan_enqueue(gort_chan *c, waitq *q, sudog *sg);
void gort__waitq_remove(waitq *q, sudog *sg);
bool gort__chan_claim(gort_chan *c, waitq *q, sudog *sg);

/* Takes the first waiter of q that can still be woken. The usual one, a
 * goroutine in a plain send or receive, costs no call; a thread's sudog
 * and a select's go through gort__chan_claim, which says whether the
 * sudog may be woken: a goroutine in select waits on several channels at
 * once, the first case to fire claims it, and the others drop its stale
 * sudogs as they find them, until it comes back to remove the rest. */
static inline sudog *gort__waitq_dequeue(gort_chan *c, waitq *q) {
    for (;;) {
        sudog *sgp = q->first;
        if (sgp == NULL)
            return NULL;
        sudog *y = sgp->next;
        if (y == NULL) {
            store_rel(&q->first, NULL);   /* release: see gort__chan_empty */
            q->last = NULL;
        } else {
            y->prev = NULL;
            store_rel(&q->first, y);
            sgp->next = NULL;
        }
        if (likely(sgp->g != NULL && !sgp->isSelect))
            return sgp;
        if (gort__chan_claim(c, q, sgp))
            return sgp;
    }
}

/* ---- the halves of a hand-off; c->lock held ------------------------------ */

static inline void *chanbuf(gort_chan *c, uint32_t i) {
    return (char *)(c + 1) + (size_t)i * c->elemsize;
}

/* Race flavour (race.h): the addresses a channel's edges go through, as in
 * Go's chan.go. raceaddr: close, and a receive that finds the channel
 * closed. racebuf: slot i of a buffered channel, so that a send happens
 * before the receive that takes its value, and the kth receive before the
 * (k+cap)th send completes (a channel as a semaphore); a channel of empty
 * elements has no slots to point at, and all its operations share
 * raceaddr, as Go's share c.buf. Both lie inside the channel's allocation,
 * so freeing it drops their edges. */
static inline void *raceaddr(gort_chan *c) { return c; }
static inline void *racebuf(gort_chan *c, uint32_t i) {
    return c->elemsize ? chanbuf(c, i) : raceaddr(c);
}

/* Copies one element. The common sizes go without a call to memcpy. */
static inline void elemcopy(gort_chan *c, void *dst, const void *src) {
    switch (c->elemsize) {
    case 0: return;
    case 4: memcpy(dst, src, 4); return;
    case 8: memcpy(dst, src, 8); return;
    case 16: memcpy(dst, src, 16); return;
    default:
        /* Race flavour: not seen through libtsan's memcpy either (Go's
         * typedmemmove is not instrumented): the channel's edges order
         * the element, and racereadrange/racewriterange check the user's
         * own accesses to it. */
        raceignorebegin();
        memcpy(dst, src, c->elemsize);
        raceignoreend();
        return;
    }
}

/* Zeroes a receiver's element (a receive from a closed channel). */
static inline void elemclr(gort_chan *c, void *p) {
    if (c->elemsize && p) {
        raceignorebegin();
        memset(p, 0, c->elemsize);
        raceignoreend();
    }
}

/* The value at ep goes to sg, a receiver just dequeued from c->recvq
 * (Go's send()). The caller unlocks, then calls gort__sudog_ready(sg). */
static inline void gort__chan_sendto(gort_chan *c, sudog *sg, const void *ep) {
    if (raceenabled && (c->dataqsiz == 0 || sg->g == NULL))
        raceacquire(racewaiter(sg));   /* racesync: what the receiver did before it parked */
    if (sg->elem) {
        elemcopy(c, sg->elem, ep);
        sg->elem = NULL;
    }
    sg->success = true;
    if (raceenabled) {
        if (c->dataqsiz) {
            /* The buffer is empty; as Go does, pretend the value went
             * through the slot the receiver would have emptied, for each
             * side (racenotify for us, then for the receiver), and turn
             * the ring as if it had. */
            void *slot = racebuf(c, c->recvx);
            raceacquire(slot);
            racerelease(slot);
            if (sg->g)
                racenotifyg(sg->g->tsan_fiber, slot);
            if (++c->recvx == c->dataqsiz)
                c->recvx = 0;
            c->sendx = c->recvx;
        }
        if (c->dataqsiz == 0 || sg->g == NULL)
            racerelease(racewaiter(sg));   /* for raceunpark, once it runs */
    }
}

/* A value for ep (may be NULL) from sg, a sender just dequeued from
 * c->sendq (Go's recv()). Unbuffered: the sender's value. Buffered (so
 * full): the head of the buffer, and the sender's value goes to its tail,
 * which is the slot just emptied. The caller unlocks, then calls
 * gort__sudog_ready(sg). */
static inline void gort__chan_recvfrom(gort_chan *c, sudog *sg, void *ep) {
    void *slot = NULL;
    if (raceenabled) {
        /* Unbuffered: racesync with the sender. Buffered (so full): the
         * head's value comes from its slot, and the sender's goes into it
         * (racenotify for us, then for the sender). A thread that sends
         * cannot be acted for: it is synchronised with as if unbuffered,
         * which orders more than Go would, never less. */
        if (c->dataqsiz) {
            slot = racebuf(c, c->recvx);
            raceacquire(slot);
        }
        if (c->dataqsiz == 0 || sg->g == NULL)
            raceacquire(racewaiter(sg));
    }
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
    if (raceenabled) {
        if (slot) {
            racerelease(slot);
            if (sg->g)
                racenotifyg(sg->g->tsan_fiber, slot);
        }
        if (c->dataqsiz == 0 || sg->g == NULL)
            racerelease(racewaiter(sg));
    }
}

/* The value at ep into the buffer, which has room. */
static inline void gort__chan_bufput(gort_chan *c, const void *ep) {
    if (raceenabled)
        raceacquire(racebuf(c, c->sendx));   /* racenotify: the slot's last receive */
    elemcopy(c, chanbuf(c, c->sendx), ep);
    if (raceenabled)
        racerelease(racebuf(c, c->sendx));
    if (++c->sendx == c->dataqsiz)
        c->sendx = 0;
    store_rel(&c->qcount, c->qcount + 1);   /* release: see gort__chan_empty */
}

/* The head of the buffer, which is not empty, into ep (may be NULL). Go
 * clears the slot for its garbage collector; with none, leaving it keeps
 * the consumer from writing the producer's cache line. */
static inline void gort__chan_buftake(gort_chan *c, void *ep) {
    void *qp = chanbuf(c, c->recvx);
    if (raceenabled)
        raceacquire(racebuf(c, c->recvx));   /* racenotify: the send that filled it */
    if (ep)
        elemcopy(c, ep, qp);
    if (raceenabled)
        racerelease(racebuf(c, c->recvx));   /* ... and the send that refills it */
    if (++c->recvx == c->dataqsiz)
        c->recvx = 0;
    store_rel(&c->qcount, c->qcount - 1);   /* release: see gort__chan_empty */
}

/* Wakes the waiter of a dequeued sudog, once no channel lock is held. */
void gort__sudog_ready(sudog *sg);

#endif /* GORT_CHAN_H */
