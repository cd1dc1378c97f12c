/*
 * chan.h: the channel structure, shared by chan.c and select.c.
 */
#ifndef GORT_CHAN_H
#define GORT_CHAN_H

#include "runtime.h"

typedef struct waitq {
    sudog *first;   /* read without the lock by the fast paths (relaxed) */
    sudog *last;
} waitq;

struct gort_chan {
    gort_lock lock;      /* protects every field below but elemsize and dataqsiz */
    uint32_t  closed;    /* written under lock; read lock-free by fast paths */
    uint32_t  qcount;    /* elements in buf; read lock-free by len and fast paths */
    uint32_t  dataqsiz;  /* capacity: elements buf holds */
    uint32_t  sendx;     /* next slot a send fills */
    uint32_t  recvx;     /* next slot a receive empties */
    size_t    elemsize;
    char     *buf;       /* dataqsiz * elemsize bytes, right after the struct */
    waitq     recvq;     /* blocked receivers */
    waitq     sendq;     /* blocked senders */
};

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

void   gort__waitq_enqueue(waitq *q, sudog *sg);
sudog *gort__waitq_dequeue(waitq *q);
void   gort__waitq_remove(waitq *q, sudog *sg);
void   gort__sudog_ready(sudog *sg);
int    gort__chansend(gort_chan *c, const void *ep, bool block);
int    gort__chanrecv(gort_chan *c, void *ep, bool block);

#endif /* GORT_CHAN_H */
