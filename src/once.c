/*
 * once.c: gort_once, Go's sync.Once. The fast path is one load-acquire of
 * done; done is set only after fn has returned, and under the mutex, so a
 * caller that sees it set also sees everything fn did, and a caller that
 * arrives while fn runs waits for it.
 */
#include "runtime.h"

GORT_API void gort_once_do(gort_once *o, void (*fn)(void *), void *arg) {
    if (load_acq(&o->done)) {   /* acquire: pairs with the store-release below */
        raceacquire(&o->done);  /* race flavour: what fn did (Go's atomic done) */
        return;
    }
    gort_mutex_lock(&o->m);
    if (o->done == 0) {
        fn(arg);
        racerelease(&o->done);
        store_rel(&o->done, 1);
    }
    gort_mutex_unlock(&o->m);
}
