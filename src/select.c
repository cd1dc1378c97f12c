/*
 * select.c: gort_select, as in Go's select.go (selectgo).
 *
 * 1. Shuffle the cases into a random poll order (so the ready case taken is
 *    uniformly random) and sort them by channel address into a lock order;
 *    lock every channel in that order (a channel named twice is locked
 *    once). This is the one place where gort holds several channel locks:
 *    the address order is what keeps two selects from deadlocking.
 * 2. Pass 1 (selpoll): in poll order, take the first case that can
 *    proceed now, with the same halves of a hand-off chansend and chanrecv
 *    use (chan.h), as Go's selectgo calls send() and recv().
 * 3. Otherwise (unless non-blocking) pass 2 (selenqueue): enqueue a sudog
 *    on every channel, park, and let selparkcommit release the locks once
 *    parked. The first case to fire claims the goroutine (selectdone CAS in
 *    gort__chan_claim), takes all of its sudogs off that channel, and
 *    readies it with that case's sudog in g->param.
 * 4. Pass 3 (seldequeue): relock the channels that did not fire and take
 *    our sudogs off them. The one that fired is never touched again: as
 *    after a plain send or receive, its owner may free it the moment the
 *    match is made.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"

#define MAXCASES 65536

/* One select: its cases and the orders over those that have a channel. */
typedef struct selset {
    gort_case *cases;
    uint16_t  *pollorder;   /* random: which ready case is taken */
    uint16_t  *lockorder;   /* by channel address: how channels are locked */
    int        n;           /* cases with a channel */
} selset;

static inline gort_chan *lockchan(const selset *s, int i) {
    return s->cases[s->lockorder[i]].chan;
}

/* Locks every channel of the select once, in lock order, but skip (the
 * channel that fired, which pass 3 must not touch; NULL: none). */
static void sellock(const selset *s, gort_chan *skip) {
    gort_chan *c = NULL;
    for (int i = 0; i < s->n; i++) {
        if (lockchan(s, i) != c) {
            c = lockchan(s, i);
            if (c != skip)
                gort__chanlock(c);
        }
    }
}

static void selunlock(const selset *s, gort_chan *skip) {
    for (int i = s->n - 1; i >= 0; i--) {
        gort_chan *c = lockchan(s, i);
        if (i > 0 && c == lockchan(s, i - 1))
            continue;   /* unlocked on the next iteration */
        if (c != skip)
            gort__unlock(&c->lock);
    }
}

/* Runs on g0 once the goroutine is parked: release the channel locks. The
 * sudogs are linked in lock order, so each channel is unlocked once. A
 * sudog is read only while its channel is still locked: once it is not, a
 * waker may ready the goroutine, which may run at once elsewhere. */
static bool selparkcommit(G *gp, void *arg) {
    (void)arg;
    gort_chan *lastc = NULL;
    for (sudog *sg = gp->waiting; sg; sg = sg->waitlink) {
        if (sg->c != lastc && lastc != NULL)
            gort__unlock(&lastc->lock);
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

/* Shuffles the cases that have a channel into a random poll order and
 * sorts them by channel address into the lock order. */
static void selorder(selset *s, int ncases) {
    int n = 0;
    for (int i = 0; i < ncases; i++) {
        if (s->cases[i].chan == NULL)
            continue;
        int j = (int)(gort__fastrand() % (uint32_t)(n + 1));
        s->pollorder[n] = s->pollorder[j];
        s->pollorder[j] = (uint16_t)i;
        n++;
    }
    s->n = n;
    memcpy(s->lockorder, s->pollorder, (size_t)n * sizeof *s->lockorder);
    sortlockorder(s->cases, s->lockorder, n);
}

/* Pass 1, every channel locked: in poll order, the first case that can
 * proceed now does, as chansend and chanrecv would (the shared halves of
 * chan.h), and the locks are released. Returns its index (-EPIPE: a send
 * on a closed channel), or -EAGAIN, locks still held, if none can. */
static int selpoll(const selset *s) {
    for (int k = 0; k < s->n; k++) {
        int casi = s->pollorder[k];
        gort_case *cas = &s->cases[casi];
        gort_chan *c = cas->chan;
        sudog *sg = NULL;
        bool after = false;
        if (cas->op == GORT_RECV) {
            if ((sg = gort__waitq_dequeue(c, &c->sendq)) != NULL) {
                gort__chan_recvfrom(c, sg, cas->elem);
            } else if (c->qcount > 0) {
                gort__chan_buftake(c, cas->elem);
                after = gort__chan_isafter(c);
            } else if (c->closed) {
                raceacquire(raceaddr(c));   /* the close */
                elemclr(c, cas->elem);
                selunlock(s, NULL);
                cas->ok = 0;
                return casi;
            } else {
                continue;
            }
            cas->ok = 1;
        } else {
            if (c->closed) {
                selunlock(s, NULL);
                return -EPIPE;
            }
            if ((sg = gort__waitq_dequeue(c, &c->recvq)) != NULL)
                gort__chan_sendto(c, sg, cas->elem);
            else if (c->qcount < c->dataqsiz)
                gort__chan_bufput(c, cas->elem);
            else
                continue;
        }
        selunlock(s, NULL);
        if (sg)
            gort__sudog_ready(sg);
        if (after)
            gort__chan_received_after(c);   /* gort_after's value: c is ours */
        return casi;
    }
    return -EAGAIN;
}

/* Pass 2, every channel locked: a sudog on every channel, linked in lock
 * order on gp->waiting; park, and let selparkcommit release the locks. */
static void selenqueue(const selset *s, G *gp, sudog *sgs) {
    if (gp->waiting != NULL)
        gort__throw("selectgo: gp->waiting != NULL");
    sudog **nextp = &gp->waiting;
    for (int k = 0; k < s->n; k++) {
        gort_case *cas = &s->cases[s->lockorder[k]];
        gort_chan *c = cas->chan;
        sudog *sg = &sgs[k];
        memset(sg, 0, sizeof *sg);
        sg->g = gp;
        sg->isSelect = true;
        sg->elem = cas->elem;
        sg->c = c;
        *nextp = sg;
        nextp = &sg->waitlink;
        gort__chan_enqueue(c, cas->op == GORT_SEND ? &c->sendq : &c->recvq, sg);
    }
    gp->param = NULL;
    racepark(sgs);   /* every case's waker synchronises through gp's race context */
    gort__gopark(selparkcommit, NULL, waitReasonSelect);
}

/* Pass 3, woken: one case fired. Its waker took every sudog of ours off
 * that channel (chan.c, selclaim), and the channel may already be freed:
 * relock and clean up only the others. Returns the case that fired, or
 * -EPIPE for a send case woken by close. */
static int seldequeue(const selset *s, G *gp) {
    sudog *fired = gp->param;
    gp->param = NULL;
    raceunpark(fired);
    gort_chan *firedc = fired->c;
    sellock(s, firedc);
    store_relaxed(&gp->selectdone, 0);
    int casi = -1;
    sudog *sg = gp->waiting;
    gp->waiting = NULL;
    for (int k = 0; k < s->n; k++, sg = sg->waitlink) {
        gort_case *cas = &s->cases[s->lockorder[k]];
        gort_chan *c = cas->chan;
        if (sg == fired)
            casi = s->lockorder[k];   /* dequeued by the waker */
        else if (c != firedc)         /* firedc's: taken off with it */
            gort__waitq_remove(cas->op == GORT_SEND ? &c->sendq : &c->recvq, sg);
    }
    if (casi < 0)
        gort__throw("selectgo: bad wakeup");
    selunlock(s, firedc);
    if (s->cases[casi].op == GORT_SEND)
        return fired->success ? casi : -EPIPE;
    s->cases[casi].ok = fired->success ? 1 : 0;
    if (fired->freechan)
        gort__chan_received_after(s->cases[casi].chan);   /* c is ours */
    return casi;
}

static int selectgo(selset *s, int ncases, bool block, sudog *sgs) {
    selorder(s, ncases);
    if (s->n == 0) {
        if (!block)
            return -EAGAIN;
        /* select with no channels blocks for ever, as in Go. */
        gort__gopark(NULL, NULL, waitReasonSelectNoCases);
        gort__throw("selectgo: woken with no cases");
    }
    sellock(s, NULL);
    int r = selpoll(s);
    if (r != -EAGAIN)
        return r;
    if (!block) {
        selunlock(s, NULL);
        return -EAGAIN;
    }
    G *gp = getg();
    selenqueue(s, gp, sgs);
    return seldequeue(s, gp);
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
        selset s = { cases, pollorder, lockorder, 0 };
        return selectgo(&s, n, block != 0, sgs);
    }
    uint16_t *orders = malloc((size_t)n * 2 * sizeof *orders);
    sudog *sgs = malloc((size_t)n * sizeof *sgs);
    int r = -ENOMEM;
    if (orders && sgs) {
        selset s = { cases, orders, orders + n, 0 };
        r = selectgo(&s, n, block != 0, sgs);
    }
    free(orders);
    free(sgs);
    return r;
}
