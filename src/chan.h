/*
 * chan.h: the channel structure, shared by chan.c and select.c.
 */
#ifndef GORT_CHAN_H
#define GORT_CHAN_H

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
    /* -- 64 bytes: the line above is all a send or receive touches -- */
    waitq     trecvq;    /* the thread waiters of recvq, through waitlink */
    waitq     tsendq;    /* ... of sendq */
    /* then the buffer: dataqsiz * elemsize bytes (chanbuf) */
} __attribute__((aligned(64)));

/* Would a send block? Read without the lock: a stale answer only makes a
 * non-blocking operation take the lock (see Go's chan.go, full()). */
static inline bool gort__chan_full(gort_chan *c) {
    if (c->dataqsiz == 0)
        return load_relaxed(&c->recvq.first) == NULL;
    return load_relaxed(&c->qcount) == c->dataqsiz;
}

static inline bool gort__chan_empty(gort_chan *c) {
    if (c->dataqsiz == 0)
        return load_relaxed(&c->sendq.first) == NULL;
    return load_relaxed(&c->qcount) == 0;
}

void   gort__chan_reap(gort_chan *c);

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

void   gort__waitq_enqueue(waitq *q, sudog *sg);
sudog *gort__waitq_dequeue(gort_chan *c, waitq *q);
void   gort__waitq_remove(waitq *q, sudog *sg);
void   gort__sudog_ready(sudog *sg);
int    gort__chansend(gort_chan *c, const void *ep, bool block);
int    gort__chanrecv(gort_chan *c, void *ep, bool block);

#endif /* GORT_CHAN_H */
