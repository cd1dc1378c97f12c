/*
 * select.c: gort_select, as in Go's select.go (selectgo).
 *
 * 1. Shuffle the cases into a random poll order (so the ready case taken is
 *    uniformly random) and sort them by channel address into a lock order;
 *    lock every channel in that order (a channel named twice is locked
 *    once). This is the one place where gort holds several channel locks:
 *    the address order is what keeps two selects from deadlocking.
 * 2. Pass 1: in poll order, take the first case that can proceed now.
 * 3. Otherwise (unless non-blocking) pass 2: enqueue a sudog on every
 *    channel, park, and let selparkcommit release the locks once parked.
 *    The first case to fire claims the goroutine (selectdone CAS in
 *    waitq_dequeue), takes all of its sudogs off that channel, and readies
 *    it with that case's sudog in g->param.
 * 4. Pass 3: relock the channels that did not fire and take our sudogs off
 *    them. The one that fired is never touched again: as after a plain
 *    send or receive, its owner may free it the moment the match is made.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"

#define MAXCASES 65536

/* Locks every channel of the select once, in lock order, but skip (the
 * channel that fired, which pass 3 must not touch; NULL: none). */
static void sellock(gort_case *cases, const uint16_t *lockorder, int n, gort_chan *skip) {
    gort_chan *c = NULL;
    for (int i = 0; i < n; i++) {
        gort_chan *c0 = cases[lockorder[i]].chan;
        if (c0 != c) {
            c = c0;
            if (c != skip)
                gort__chanlock(c);
        }
    }
}

static void selunlock(gort_case *cases, const uint16_t *lockorder, int n, gort_chan *skip) {
    for (int i = n - 1; i >= 0; i--) {
        gort_chan *c = cases[lockorder[i]].chan;
        if (i > 0 && c == cases[lockorder[i - 1]].chan)
            continue;   /* unlocked on the next iteration */
        if (c != skip)
            gort__unlock(&c->lock);
    }
}

/* Runs on g0 once the goroutine is parked: release the channel locks. The
 * sudogs are linked in lock order, so each channel is unlocked once. */
static bool selparkcommit(G *gp, void *arg) {
    (void)arg;
    gort_chan *lastc = NULL;
    for (sudog *sg = gp->waiting; sg; sg = sg->waitlink) {
        if (sg->c != lastc && lastc != NULL)
            gort__unlock(&((gort_chan *)lastc)->lock);
        lastc = sg->c;
    }
    if (lastc)
        gort__unlock(&lastc->lock);
    return true;
}

/* Heap sort by channel address: n log n and no extra memory. */
static void sortlockorder(gort_case *cases, uint16_t *lockorder, int n) {
    for (int i = 0; i < n; i++) {
        int j = i;
        gort_chan *c = cases[lockorder[i]].chan;
        uint16_t v = lockorder[i];
        while (j > 0) {
            int k = (j - 1) / 2;
            if ((uintptr_t)c <= (uintptr_t)cases[lockorder[k]].chan)
                break;
            lockorder[j] = lockorder[k];
            j = k;
        }
        lockorder[j] = v;
    }
    for (int i = n - 1; i >= 0; i--) {
        uint16_t o = lockorder[i];
        gort_chan *c = cases[o].chan;
        lockorder[i] = lockorder[0];
        int j = 0;
        for (;;) {
            int k = j * 2 + 1;
            if (k >= i)
                break;
            if (k + 1 < i && (uintptr_t)cases[lockorder[k]].chan < (uintptr_t)cases[lockorder[k + 1]].chan)
                k++;
            if ((uintptr_t)c < (uintptr_t)cases[lockorder[k]].chan) {
                lockorder[j] = lockorder[k];
                j = k;
                continue;
            }
            break;
        }
        lockorder[j] = o;
    }
}

static inline void *chanbuf(gort_chan *c, uint32_t i) {
    return (char *)(c + 1) + (size_t)i * c->elemsize;
}

static int selectgo(gort_case *cases, int ncases, bool block, uint16_t *pollorder,
                    uint16_t *lockorder, sudog *sgs) {
    /* Random poll order over the cases that have a channel. */
    int norder = 0;
    for (int i = 0; i < ncases; i++) {
        if (cases[i].chan == NULL)
            continue;
        int j = (int)(gort__fastrand() % (uint32_t)(norder + 1));
        pollorder[norder] = pollorder[j];
        pollorder[j] = (uint16_t)i;
        norder++;
    }
    memcpy(lockorder, pollorder, (size_t)norder * sizeof *lockorder);
    sortlockorder(cases, lockorder, norder);

    G *gp = getg();
    if (norder == 0) {
        if (!block)
            return -EAGAIN;
        /* select with no channels blocks for ever, as in Go. */
        gort__gopark(NULL, NULL, waitReasonSelectNoCases);
        gort__throw("selectgo: woken with no cases");
    }

    sellock(cases, lockorder, norder, NULL);

    /* Pass 1: look for something that can proceed now. */
    for (int k = 0; k < norder; k++) {
        int casi = pollorder[k];
        gort_case *cas = &cases[casi];
        gort_chan *c = cas->chan;
        sudog *sg;
        if (cas->op == GORT_RECV) {
            if ((sg = gort__waitq_dequeue(c, &c->sendq)) != NULL) {
                /* A sender waits: take its value (see chan.c chanrecv_direct). */
                if (c->dataqsiz == 0) {
                    if (cas->elem && c->elemsize)
                        memcpy(cas->elem, sg->elem, c->elemsize);
                } else {
                    void *qp = chanbuf(c, c->recvx);
                    if (cas->elem && c->elemsize)
                        memcpy(cas->elem, qp, c->elemsize);
                    if (c->elemsize)
                        memcpy(qp, sg->elem, c->elemsize);
                    if (++c->recvx == c->dataqsiz)
                        c->recvx = 0;
                    c->sendx = c->recvx;
                }
                sg->elem = NULL;
                sg->success = true;
                selunlock(cases, lockorder, norder, NULL);
                gort__sudog_ready(sg);
                cas->ok = 1;
                return casi;
            }
            if (c->qcount > 0) {
                void *qp = chanbuf(c, c->recvx);
                if (cas->elem && c->elemsize)
                    memcpy(cas->elem, qp, c->elemsize);
                if (++c->recvx == c->dataqsiz)
                    c->recvx = 0;
                store_relaxed(&c->qcount, c->qcount - 1);
                selunlock(cases, lockorder, norder, NULL);
                cas->ok = 1;
                return casi;
            }
            if (c->closed) {
                selunlock(cases, lockorder, norder, NULL);
                if (cas->elem && c->elemsize)
                    memset(cas->elem, 0, c->elemsize);
                cas->ok = 0;
                return casi;
            }
        } else {
            if (c->closed) {
                selunlock(cases, lockorder, norder, NULL);
                return -EPIPE;
            }
            if ((sg = gort__waitq_dequeue(c, &c->recvq)) != NULL) {
                if (sg->elem && c->elemsize)
                    memcpy(sg->elem, cas->elem, c->elemsize);
                sg->elem = NULL;
                sg->success = true;
                selunlock(cases, lockorder, norder, NULL);
                gort__sudog_ready(sg);
                return casi;
            }
            if (c->qcount < c->dataqsiz) {
                if (c->elemsize)
                    memcpy(chanbuf(c, c->sendx), cas->elem, c->elemsize);
                if (++c->sendx == c->dataqsiz)
                    c->sendx = 0;
                store_relaxed(&c->qcount, c->qcount + 1);
                selunlock(cases, lockorder, norder, NULL);
                return casi;
            }
        }
    }

    if (!block) {
        selunlock(cases, lockorder, norder, NULL);
        return -EAGAIN;
    }

    /* Pass 2: enqueue on every channel, in lock order. */
    if (gp->waiting != NULL)
        gort__throw("selectgo: gp->waiting != NULL");
    sudog **nextp = &gp->waiting;
    for (int k = 0; k < norder; k++) {
        int casi = lockorder[k];
        gort_case *cas = &cases[casi];
        sudog *sg = &sgs[k];
        memset(sg, 0, sizeof *sg);
        sg->g = gp;
        sg->isSelect = true;
        sg->elem = cas->elem;
        sg->c = cas->chan;
        *nextp = sg;
        nextp = &sg->waitlink;
        if (cas->op == GORT_SEND)
            gort__waitq_enqueue(&cas->chan->sendq, sg);
        else
            gort__waitq_enqueue(&cas->chan->recvq, sg);
        cas->chan->gen = load_relaxed(&gort__rungen);
    }
    gp->param = NULL;
    gort__gopark(selparkcommit, NULL, waitReasonSelect);

    /* Woken: one case fired. Its waker took every sudog of ours off that
     * channel (chan.c, selclaim), and the channel may already be freed:
     * relock and clean up only the others. */
    sudog *fired = gp->param;
    gp->param = NULL;
    gort_chan *firedc = fired->c;
    sellock(cases, lockorder, norder, firedc);
    store_relaxed(&gp->selectdone, 0);
    int casi = -1;
    bool success = false;
    sudog *sglist = gp->waiting;
    for (sudog *s = sglist; s; s = s->waitlink) {
        s->isSelect = false;
        s->elem = NULL;
    }
    gp->waiting = NULL;
    for (int k = 0; k < norder; k++) {
        gort_case *cas = &cases[lockorder[k]];
        if (sglist == fired) {
            /* Already dequeued by the goroutine that woke us. */
            casi = lockorder[k];
            success = sglist->success;
        } else if (sglist->c == firedc) {
            /* Taken off with it. */
        } else if (cas->op == GORT_SEND) {
            gort__waitq_remove(&cas->chan->sendq, sglist);
        } else {
            gort__waitq_remove(&cas->chan->recvq, sglist);
        }
        sudog *next = sglist->waitlink;
        sglist->waitlink = NULL;
        sglist->c = NULL;
        sglist = next;
    }
    if (casi < 0)
        gort__throw("selectgo: bad wakeup");
    selunlock(cases, lockorder, norder, firedc);
    if (cases[casi].op == GORT_SEND)
        return success ? casi : -EPIPE;
    cases[casi].ok = success ? 1 : 0;
    return casi;
}

GORT_API int gort_select(gort_case *cases, int n, int block) {
    if (n < 0 || n > MAXCASES || (n > 0 && cases == NULL))
        return -EINVAL;
    for (int i = 0; i < n; i++) {
        if (cases[i].op != GORT_SEND && cases[i].op != GORT_RECV)
            return -EINVAL;
        if (cases[i].op == GORT_SEND && cases[i].chan && cases[i].elem == NULL &&
            cases[i].chan->elemsize != 0)
            return -EINVAL;
    }
    if (getg() == NULL)
        return -EPERM;
    /* Orders and sudogs live on the goroutine's stack: select allocates
     * nothing. A huge select goes to the heap rather than risk the stack. */
    if (n <= 64) {
        uint16_t pollorder[64], lockorder[64];
        sudog sgs[64];
        return selectgo(cases, n, block != 0, pollorder, lockorder, sgs);
    }
    uint16_t *orders = malloc((size_t)n * 2 * sizeof *orders);
    sudog *sgs = malloc((size_t)n * sizeof *sgs);
    int r = -ENOMEM;
    if (orders && sgs)
        r = selectgo(cases, n, block != 0, orders, orders + n, sgs);
    free(orders);
    free(sgs);
    return r;
}
