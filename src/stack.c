/*
 * stack.c: goroutine stacks.
 *
 * Stacks are carved from chunks: one anonymous MAP_NORESERVE mapping holds
 * STACKS_PER_CHUNK slots of [guard page | stack], so the kernel commits a
 * stack's pages only as they are touched and a million goroutines cost a
 * few hundred mappings, not a million. Each slot's guard page is made
 * unwritable without splitting the mapping: a userfaultfd registered in
 * write-protect mode (UFFD_FEATURE_WP_UNPOPULATED, Linux 6.4+) marks it, and
 * a write there raises SIGBUS with the exact address (signal.c). Where
 * userfaultfd is not available the guard page is mprotect'd instead, which
 * splits the mapping and so spends two of the process's ~65,530 mappings
 * per stack; when they run out gort_go returns -ENOMEM.
 *
 * A G gets its stack when it first runs, not when it is created, and gives
 * it back when it exits: a million goroutines started before any runs, each
 * running briefly, share a few hot stacks (the P's cache is LIFO).
 *
 * So that binding a stack can never fail, every live G holds a credit,
 * taken when it is created (gort_go can fail there, with -ENOMEM) and
 * returned when it exits. The pool keeps
 *     capacity >= reserved + (credits and stacks a P may cache) * Ps ever
 * so a P whose own cache is empty always finds a stack in the global free
 * list or in the unused tail of a chunk. Credits and stacks move between a
 * P and the pool in batches of STACK_BATCH; the hot path touches only the
 * P's own lists.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#endif

#include "runtime.h"

#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

#define PAGE 4096UL
#define STACKS_PER_CHUNK 256
#define STACKCACHE_MAX (2 * STACK_BATCH)

enum { guard_uffd = 1, guard_mprotect = 2 };

typedef struct chunk {
    struct chunk *next;     /* all chunks */
    struct chunk *nextpartial; /* chunks with never-used slots */
    uintptr_t     base;     /* first slot's guard page */
    size_t        len;
    uintptr_t     carve;    /* next never-used slot */
} chunk;

static struct {
    gort_lock lock;
    int       uffd;         /* -1 when guard pages are mprotect'd */
    int       mode;
    size_t    slotsize;     /* guard + stack */
    chunk    *chunks;
    chunk    *partial;      /* chunks with never-used slots */
    void     *free;         /* free stacks, linked through their top word */
    int64_t   nfree;
    int64_t   capacity;     /* slots in all chunks */
    int64_t   reserved;     /* credits held by Ps and live Gs */
} pool;

size_t gort__stacksize;

static inline void **toplink(uintptr_t hi) { return (void **)(hi - sizeof(void *)); }

static int uffd_open(void) {
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    if (fd < 0)
        return -1;
    struct uffdio_api api = {
        .api = UFFD_API,
        .features = UFFD_FEATURE_SIGBUS | UFFD_FEATURE_WP_UNPOPULATED,
    };
    if (ioctl(fd, UFFDIO_API, &api) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int gort__stackpool_init(size_t size) {
    memset(&pool, 0, sizeof pool);
    gort__stacksize = size;
    pool.slotsize = size + PAGE;
    pool.uffd = gort__env_nouffd() ? -1 : uffd_open();
    pool.mode = pool.uffd >= 0 ? guard_uffd : guard_mprotect;
    return 0;
}

void gort__stackpool_destroy(void) {
    chunk *c = pool.chunks;
    while (c) {
        chunk *next = c->next;
#ifdef __SANITIZE_ADDRESS__
        /* Only slots ever used can hold poisoned frames. */
        ASAN_UNPOISON_MEMORY_REGION((void *)c->base, c->carve - c->base);
#endif
        munmap((void *)c->base, c->len);
        free(c);
        c = next;
    }
    if (pool.uffd >= 0)
        close(pool.uffd);
    memset(&pool, 0, sizeof pool);
    pool.uffd = -1;
}

/* Maps one more chunk and guards every slot in it. pool.lock held.
 * Every failure is reported here, at reservation time, never when a G is
 * about to run. */
static int chunk_grow(void) {
    chunk *c = malloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    c->len = pool.slotsize * STACKS_PER_CHUNK;
    void *base = mmap(NULL, c->len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
        free(c);
        return -ENOMEM;
    }
    c->base = (uintptr_t)base;

    if (pool.mode == guard_uffd) {
        /* Register the chunk now; each guard page is write-protected when
         * its slot is first carved (carve_slot), so reserving capacity for
         * goroutines that have not run costs no more than the mmap. */
        struct uffdio_register reg = {
            .range = { .start = c->base, .len = c->len },
            .mode = UFFDIO_REGISTER_MODE_WP,
        };
        if (ioctl(pool.uffd, UFFDIO_REGISTER, &reg) < 0) {
            munmap(base, c->len);
            free(c);
            if (pool.chunks != NULL)
                return -ENOMEM;
            /* userfaultfd opened but will not register (a sandbox, an
             * older kernel): fall back to mprotect for good. */
            close(pool.uffd);
            pool.uffd = -1;
            pool.mode = guard_mprotect;
            return chunk_grow();
        }
    } else {
        for (int i = 0; i < STACKS_PER_CHUNK; i++) {
            if (mprotect((void *)(c->base + i * pool.slotsize), PAGE, PROT_NONE) < 0) {
                munmap(base, c->len);   /* gives back the mappings it split */
                free(c);
                return -ENOMEM;
            }
        }
    }
    c->next = pool.chunks;
    store_rel(&pool.chunks, c);   /* release: pairs with the fault handler's walk */
    c->carve = c->base;
    c->nextpartial = pool.partial;
    pool.partial = c;
    pool.capacity += STACKS_PER_CHUNK;
    return 0;
}

/* Takes the next never-used slot and arms its guard page. pool.lock held.
 * With userfaultfd the protection is one ioctl on an already registered
 * range; it fails only if the kernel cannot allocate a page table, which
 * leaves nothing sensible to do but stop. */
static uintptr_t carve_slot(void) {
    chunk *c = pool.partial;
    if (c == NULL)
        gort__throw("stackalloc: pool exhausted despite credits");
    uintptr_t guard = c->carve;
    c->carve += pool.slotsize;
    if (c->carve == c->base + c->len)
        pool.partial = c->nextpartial;
    if (pool.mode == guard_uffd) {
        struct uffdio_writeprotect wp = {
            .range = { .start = guard, .len = PAGE },
            .mode = UFFDIO_WRITEPROTECT_MODE_WP,
        };
        if (ioctl(pool.uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
            gort__fatal("stackalloc: cannot write-protect a stack guard page (out of memory)");
    }
    return guard + pool.slotsize;
}

/* Grows the pool until it can back n more credits. pool.lock held. */
static int reserve_locked(int64_t n) {
    int64_t slack = (int64_t)(STACKCACHE_MAX + 2 * STACK_BATCH) * (gort__nallp + 1);
    while (pool.capacity < pool.reserved + n + slack) {
        int err = chunk_grow();
        if (err < 0)
            return err;
    }
    pool.reserved += n;
    return 0;
}

/* Refills pp's credits with a batch. Owner P only. */
int gort__stackreserve(P *pp) {
    gort__lock(&pool.lock);
    int err = reserve_locked(STACK_BATCH);
    gort__unlock(&pool.lock);
    if (err == 0)
        pp->stackcredit += STACK_BATCH;
    return err;
}

/* Grows the pool for the Ps that exist now (procresize calls it). */
int gort__stackpool_fit(void) {
    gort__lock(&pool.lock);
    int err = reserve_locked(0);
    gort__unlock(&pool.lock);
    return err;
}

/* One credit, for a goroutine created by a thread that is not an M. */
int gort__stackreserve1(void) {
    gort__lock(&pool.lock);
    int err = reserve_locked(1);
    gort__unlock(&pool.lock);
    return err;
}

/* Gives back credits beyond what a P should hold. Owner P only. */
void gort__stackcredit_return(P *pp) {
    if (pp->stackcredit <= STACKCACHE_MAX)
        return;
    gort__lock(&pool.lock);
    pool.reserved -= STACK_BATCH;
    gort__unlock(&pool.lock);
    pp->stackcredit -= STACK_BATCH;
}

/* A stack for a G about to run for the first time. Cannot fail: the G holds
 * a credit, and the pool invariant guarantees a slot outside P caches. */
stack gort__stackalloc(P *pp) {
    uintptr_t hi;
    if (pp->stackcache) {
        hi = (uintptr_t)pp->stackcache;
        pp->stackcache = *toplink(hi);
        pp->stackcachecnt--;
    } else {
        gort__lock(&pool.lock);
        /* Refill the cache with up to a batch from the free list. */
        while (pool.free && pp->stackcachecnt < STACK_BATCH) {
            hi = (uintptr_t)pool.free;
            pool.free = *toplink(hi);
            pool.nfree--;
            *toplink(hi) = pp->stackcache;
            pp->stackcache = (void *)hi;
            pp->stackcachecnt++;
        }
        if (pp->stackcache) {
            hi = (uintptr_t)pp->stackcache;
            pp->stackcache = *toplink(hi);
            pp->stackcachecnt--;
        } else {
            hi = carve_slot();
        }
        gort__unlock(&pool.lock);
    }
    return (stack){ .lo = hi - gort__stacksize, .hi = hi };
}

/* Returns a stack to pp's cache, spilling a batch to the pool when full. */
void gort__stackfree(P *pp, stack st) {
#ifdef __SANITIZE_ADDRESS__
    /* A goroutine that ended in gort_exit leaves its frames' redzones
     * poisoned; the next owner must start clean. */
    ASAN_UNPOISON_MEMORY_REGION((void *)st.lo, st.hi - st.lo);
#endif
    *toplink(st.hi) = pp->stackcache;
    pp->stackcache = (void *)st.hi;
    pp->stackcachecnt++;
    if (pp->stackcachecnt > STACKCACHE_MAX) {
        gort__lock(&pool.lock);
        while (pp->stackcachecnt > STACK_BATCH) {
            uintptr_t hi = (uintptr_t)pp->stackcache;
            pp->stackcache = *toplink(hi);
            pp->stackcachecnt--;
            *toplink(hi) = pool.free;
            pool.free = (void *)hi;
            pool.nfree++;
        }
        gort__unlock(&pool.lock);
    }
}

/* A P is being destroyed: its stacks and credits go back to the pool. */
void gort__stackcache_flush(P *pp) {
    gort__lock(&pool.lock);
    while (pp->stackcache) {
        uintptr_t hi = (uintptr_t)pp->stackcache;
        pp->stackcache = *toplink(hi);
        *toplink(hi) = pool.free;
        pool.free = (void *)hi;
        pool.nfree++;
    }
    pp->stackcachecnt = 0;
    pool.reserved -= pp->stackcredit;
    pp->stackcredit = 0;
    gort__unlock(&pool.lock);
}

/* Is addr inside any slot's guard page? Called from the fault handler, so
 * it takes no lock: chunks are only added at the head, with the list
 * published before any stack in the new chunk is handed out. */
bool gort__stack_guard_hit(uintptr_t addr) {
    for (chunk *c = load_acq(&pool.chunks); c; c = c->next) {
        if (addr >= c->base && addr < c->base + c->len)
            return (addr - c->base) % pool.slotsize < PAGE;
    }
    return false;
}
