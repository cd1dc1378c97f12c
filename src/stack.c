/*
 * stack.c: goroutine stacks.
 *
 * Stacks are carved from chunks: one anonymous MAP_NORESERVE mapping holds
 * STACKS_PER_CHUNK slots of [guard page | stack], so the kernel commits a
 * stack's pages only as they are touched and a million goroutines cost a
 * few thousand mappings, not a million.
 *
 * The guard page below each stack is armed by the best means the kernel
 * offers, chosen once at start-up (guard_choose): from Linux 6.13 a guard
 * region (MADV_GUARD_INSTALL); from 6.4 a userfaultfd write-protect marker
 * on the unpopulated page (UFFD_FEATURE_WP_UNPOPULATED); from 5.7 the same
 * on the shared zero page, mapped by reading the guard first. None of these
 * splits the mapping. Otherwise the guard is mprotect'd PROT_NONE, which
 * splits it: two of the process's vm.max_map_count mappings per stack, so
 * mprotect guards are spent within a budget, and chunks made past it have
 * no guard page but a canary: the guard slot's first and last lines must
 * still read zero (the never-written page is the kernel's zero page, so
 * this costs no memory), checked whenever the goroutine switches away and
 * when it exits. An overflow is reported either way: at the faulting write
 * (signal.c) or at the next check.
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
 *
 * Under Valgrind (built in when its headers were found, GORT_HAVE_VALGRIND)
 * every carved stack is registered as a stack of its own: memcheck tracks
 * the stack pointer and, not knowing a switch from a call, would take a
 * switch between two stacks less than 2 MiB apart (neighbouring slots) for
 * a frame pushed or popped and mark the memory between them. And memcheck
 * is told what a stack's memory holds: nothing to touch until a slot is
 * carved or while its stack is free, garbage when a G gets it. The client
 * requests are a few instructions that do nothing when not under Valgrind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#endif
#ifdef GORT_HAVE_VALGRIND
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#endif

#include "runtime.h"

#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif

#define PAGE 4096UL
#define LINE 64
#define STACKS_PER_CHUNK 256
#define STACKCACHE_MAX (2 * STACK_BATCH)
/* A stack in a cache or the free list is linked through its top word; a
 * canary stack's link carries this bit so it keeps its kind while free. */
#define CANARYBIT 1UL

typedef struct chunk {
    struct chunk *next;     /* all chunks */
    struct chunk *nextpartial; /* chunks with never-used slots */
    uintptr_t     base;     /* first slot's guard page */
    size_t        len;
    uintptr_t     carve;    /* next never-used slot */
    int           guard;    /* the pool's tier, or GORT_GUARD_CANARY past the budget */
    bool          baseguard; /* a canary chunk whose first guard page is mprotect'd */
#ifdef GORT_HAVE_VALGRIND
    unsigned      vgstack[STACKS_PER_CHUNK]; /* Valgrind's ids of the carved slots */
#endif
} chunk;

static struct {
    gort_lock lock;
    int       guard;        /* the tier chosen at start-up (gort_stack_guard) */
    int       uffd;         /* the userfaultfd of the uffd tiers, else -1 */
    int64_t   mapbudget;    /* mappings mprotect'd guards may still split off */
    int       pidfd;        /* this process, for process_madvise; -1 if none */
    bool      pmguard;      /* process_madvise installs guard regions */
    size_t    slotsize;     /* guard + stack */
    chunk    *chunks;
    chunk    *partial;      /* chunks with never-used slots */
    void     *free;         /* free stacks, linked through their top word */
    int64_t   nfree;
    int64_t   capacity;     /* slots in all chunks */
    int64_t   reserved;     /* credits held by Ps and live Gs */
    int64_t   ncarved;      /* slots ever handed out */
    int64_t   ncanary;      /* of those, canary slots */
} pool;

size_t gort__stacksize;

static inline void **toplink(uintptr_t hi) { return (void **)(hi - sizeof(void *)); }

/* The cache and free-list entry for a stack: its top, and the canary bit. */
static inline uintptr_t stack_entry(uintptr_t hi, bool canary) { return hi | (canary ? CANARYBIT : 0); }

/* Pops the first entry of a list linked through the stacks' top words. */
static inline uintptr_t list_pop(void **head) {
    uintptr_t e = (uintptr_t)*head;
    *head = *toplink(e & ~CANARYBIT);
    return e;
}

static inline void list_push(void **head, uintptr_t e) {
    *toplink(e & ~CANARYBIT) = *head;
    *head = (void *)e;
}

/* ---- Valgrind -------------------------------------------------------------- */

#ifdef GORT_HAVE_VALGRIND
/* A new chunk: no slot may be touched until it is carved. This also lets
 * memcheck's leak scan, at exit, skip the never-used part of the pool
 * instead of reading every page of it. */
static void vg_chunk_new(chunk *c) { VALGRIND_MAKE_MEM_NOACCESS(c->base, c->len); }

/* The slot whose guard page is at guard is carved: its stack is registered
 * as a stack, and its top word becomes the free-list link. The guard page
 * gets back what the mmap gave it, readable zeros (the canary and
 * zero-page tiers read it; where the kernel guards it, the kernel reports a
 * touch), unless it is mprotect'd, which Valgrind tracks itself. */
static void vg_carve(chunk *c, uintptr_t guard, bool mprotected) {
    uintptr_t hi = guard + pool.slotsize;
    unsigned id = VALGRIND_STACK_REGISTER(hi - gort__stacksize, hi - 1);   /* lowest, highest */
    c->vgstack[(guard - c->base) / pool.slotsize] = id;
    if (!mprotected)
        VALGRIND_MAKE_MEM_DEFINED(guard, PAGE);
    VALGRIND_MAKE_MEM_UNDEFINED(toplink(hi), sizeof(void *));
}

static void vg_chunk_free(chunk *c) {
    for (uintptr_t guard = c->base; guard < c->carve; guard += pool.slotsize)
        VALGRIND_STACK_DEREGISTER(c->vgstack[(guard - c->base) / pool.slotsize]);
}

/* A G gets the stack: what the last one left is garbage to it. */
static void vg_stack_alloc(uintptr_t hi) {
    VALGRIND_MAKE_MEM_UNDEFINED(hi - gort__stacksize, gort__stacksize);
}

/* The stack is free: nothing but its free-list link may be touched, so a
 * pointer into a dead goroutine's frames is reported where it is used. */
static void vg_stack_free(uintptr_t hi) {
    VALGRIND_MAKE_MEM_NOACCESS(hi - gort__stacksize, gort__stacksize - sizeof(void *));
}

/* The canary lines of the stack at lo are read on purpose: after an
 * overflow has returned they lie below the stack pointer, which memcheck
 * takes for popped frames that nothing may read. */
static void vg_canary_read(uintptr_t lo) {
    VALGRIND_MAKE_MEM_DEFINED(lo - LINE, LINE);
    VALGRIND_MAKE_MEM_DEFINED(lo - PAGE, LINE);
}
#else
static inline void vg_chunk_new(chunk *c) { (void)c; }
static inline void vg_carve(chunk *c, uintptr_t guard, bool mprotected) {
    (void)c, (void)guard, (void)mprotected;
}
static inline void vg_chunk_free(chunk *c) { (void)c; }
static inline void vg_stack_alloc(uintptr_t hi) { (void)hi; }
static inline void vg_stack_free(uintptr_t hi) { (void)hi; }
static inline void vg_canary_read(uintptr_t lo) { (void)lo; }
#endif

GORT_API const char *gort_stack_guard_name(int guard) {
    switch (guard) {
    case GORT_GUARD_MADVISE: return "madvise";
    case GORT_GUARD_UFFD: return "uffd";
    case GORT_GUARD_UFFD_ZEROPAGE: return "uffd-zeropage";
    case GORT_GUARD_MPROTECT: return "mprotect";
    case GORT_GUARD_CANARY: return "canary";
    default: return "?";
    }
}

/* ---- choosing the tier ----------------------------------------------------- */

/* A userfaultfd with SIGBUS delivery and the given extra features. User-mode
 * faults only (5.11+) is what an unprivileged process may ask for; older
 * kernels reject the flag, so try without it too. */
static int uffd_open(uint64_t features) {
    for (int flags = UFFD_USER_MODE_ONLY; flags >= 0; flags--) {
        int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | flags);
        if (fd < 0)
            continue;
        struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_SIGBUS | features };
        if (ioctl(fd, UFFDIO_API, &api) == 0)
            return fd;
        close(fd);
    }
    return -1;
}

/* Can the kernel write-protect through fd? Register a scratch page and
 * write-protect it (after a read, for the zero-page tier). */
static bool uffd_works(int fd, bool zeropage) {
    void *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return false;
    struct uffdio_register reg = {
        .range = { .start = (uintptr_t)p, .len = PAGE },
        .mode = UFFDIO_REGISTER_MODE_WP,
    };
    bool ok = ioctl(fd, UFFDIO_REGISTER, &reg) == 0 &&
              (reg.ioctls & (1ULL << _UFFDIO_WRITEPROTECT));
    if (ok) {
        if (zeropage)
            (void)*(volatile char *)p;
        struct uffdio_writeprotect wp = {
            .range = { .start = (uintptr_t)p, .len = PAGE },
            .mode = UFFDIO_WRITEPROTECT_MODE_WP,
        };
        ok = ioctl(fd, UFFDIO_WRITEPROTECT, &wp) == 0;
    }
    munmap(p, PAGE);
    return ok;
}

/* Does the guard region installed on p really guard it? A system call that
 * reads the page must fail with EFAULT. Asked because an emulator may say
 * yes without doing it: qemu-user (7.2 at least) answers 0 to any madvise
 * advice it does not know, MADV_GUARD_INSTALL included, and installs
 * nothing, which would leave every stack unguarded. */
static bool guard_faults(const void *p) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return false;
    bool faults = write(fds[1], p, 1) < 0 && errno == EFAULT;
    close(fds[0]);
    close(fds[1]);
    return faults;
}

/* Is tier g available here? Opens pool.uffd for the uffd tiers. */
static bool guard_try(int g) {
    switch (g) {
    case GORT_GUARD_MADVISE: {
        void *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return false;
        bool ok = madvise(p, PAGE, MADV_GUARD_INSTALL) == 0 && guard_faults(p);
        munmap(p, 2 * PAGE);
        return ok;
    }
    case GORT_GUARD_UFFD:
    case GORT_GUARD_UFFD_ZEROPAGE: {
        bool zero = g == GORT_GUARD_UFFD_ZEROPAGE;
        int fd = uffd_open(zero ? 0 : UFFD_FEATURE_WP_UNPOPULATED);
        if (fd >= 0 && uffd_works(fd, zero)) {
            pool.uffd = fd;
            return true;
        }
        if (fd >= 0)
            close(fd);
        return false;
    }
    default:
        return true;
    }
}

/* Mappings the mprotect tier may split off: vm.max_map_count less those in
 * use now and a quarter kept for the program's own mappings (threads,
 * malloc arenas, libraries loaded later). */
static int64_t map_budget(void) {
    int64_t max = 65530, used = 0;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        long long v;
        if (fscanf(f, "%lld", &v) == 1 && v > 0)
            max = v;
        fclose(f);
    }
    f = fopen("/proc/self/maps", "r");
    if (f) {
        int c;
        while ((c = getc(f)) != EOF)
            used += c == '\n';
        fclose(f);
    } else {
        used = 1000;
    }
#ifdef GORT_HAVE_VALGRIND
    /* Under Valgrind the tighter ceiling is its own table of the address
     * space, 30,000 segments in its Linux builds (fixed when Valgrind is
     * built, and it exits when the table is full). Every mapping, ours and
     * Valgrind's, is a segment and the gap before it one more. (madvise
     * guards pass through Valgrind to the kernel and cost no segments; it
     * has no userfaultfd, so the uffd tiers fail their probe.) */
    if (RUNNING_ON_VALGRIND) {
        max = max < 30000 ? max : 30000;
        used *= 2;
    }
#endif
    int64_t budget = max - max / 4 - used;
    return budget > 0 ? budget : 0;
}

/* The first tier available at or below the forced one (the best, unforced).
 * A forced tier this kernel lacks is reported, and the next one used. */
static void guard_choose(void) {
    int want = gort__debug_stackguard ? gort__debug_stackguard : GORT_GUARD_MADVISE;
    int g = want;
    /* The race flavour remaps every stack it hands out (racemalloc): a
     * mapping that is not registered with the userfaultfd would split the
     * chunk for good, two mappings a stack. */
    while (!guard_try(g) ||
           (raceenabled && (g == GORT_GUARD_UFFD || g == GORT_GUARD_UFFD_ZEROPAGE)))
        g++;
    if (gort__debug_stackguard && g != want)
        fprintf(stderr, "gort: GORT_DEBUG stackguard=%s: not available here; using %s\n",
                gort_stack_guard_name(want), gort_stack_guard_name(g));
    pool.guard = g;
    pool.mapbudget = g == GORT_GUARD_MPROTECT ? map_budget() : 0;
}

/* process_madvise on this process: one system call for a batch of
 * scattered pages. Linux 6.13 and later take any advice for the caller
 * itself, guard regions included; elsewhere a madvise per guard. */
static long pmadvise(const struct iovec *iov, size_t n, int advice) {
    return syscall(SYS_process_madvise, pool.pidfd, iov, n, advice, 0);
}

static void pmadvise_probe(void) {
    pool.pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);   /* close-on-exec */
    if (pool.pidfd < 0)
        return;
    char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return;
    struct iovec a = { p, PAGE };
    pool.pmguard = pmadvise(&a, 1, MADV_GUARD_INSTALL) == (long)PAGE && guard_faults(p);
    munmap(p, 2 * PAGE);
    if (!pool.pmguard) {
        close(pool.pidfd);
        pool.pidfd = -1;
    }
}

/* GORT_DEBUG=mtrace or schedtrace: which tier was chosen. */
static void stackguard_trace(void) {
    fprintf(stderr, "gort: stacks of %zu KiB, guarded by %s\n", gort__stacksize / 1024,
            gort_stack_guard_name(pool.guard));
}

int gort__stackpool_init(size_t size) {
    memset(&pool, 0, sizeof pool);
    pool.uffd = -1;
    pool.pidfd = -1;
    gort__stacksize = size;
    pool.slotsize = size + PAGE;
    guard_choose();
    if (pool.guard == GORT_GUARD_MADVISE)
        pmadvise_probe();
    if (gort__debug_mtrace || gort__debug_schedtrace > 0)
        stackguard_trace();
    return 0;
}

void gort__stackstats(gort_metrics *m) {
    gort__lock(&pool.lock);
    m->stack_guard = pool.guard;
    m->stacks = pool.ncarved;
    m->canary_stacks = pool.ncanary;
    gort__unlock(&pool.lock);
}

void gort__stackpool_destroy(void) {
    chunk *c = pool.chunks;
    while (c) {
        chunk *next = c->next;
#ifdef __SANITIZE_ADDRESS__
        /* Only slots ever used can hold poisoned frames. */
        ASAN_UNPOISON_MEMORY_REGION((void *)c->base, c->carve - c->base);
#endif
        vg_chunk_free(c);
        munmap((void *)c->base, c->len);
        free(c);
        c = next;
    }
    if (pool.uffd >= 0)
        close(pool.uffd);
    if (pool.pidfd >= 0)
        close(pool.pidfd);
    memset(&pool, 0, sizeof pool);
    pool.uffd = -1;
    pool.pidfd = -1;
}

/* ---- chunks and slots ------------------------------------------------------ */

/* The mprotect tier guards every slot of a new chunk at once, while the
 * budget lasts; a failure part way (the limit reached after all) gives the
 * chunk back its one mapping and makes it a canary chunk. */
static void chunk_mprotect(chunk *c) {
    int64_t need = 2 * STACKS_PER_CHUNK;
    if (pool.mapbudget < need) {
        c->guard = GORT_GUARD_CANARY;
        return;
    }
    for (int i = 0; i < STACKS_PER_CHUNK; i++) {
        if (mprotect((void *)(c->base + i * pool.slotsize), PAGE, PROT_NONE) < 0) {
            mprotect((void *)c->base, c->len, PROT_READ | PROT_WRITE);   /* merges it again */
            pool.mapbudget = 0;
            c->guard = GORT_GUARD_CANARY;
            return;
        }
    }
    pool.mapbudget -= need;
}

/* Maps one more chunk. pool.lock held. Every failure is reported here, at
 * reservation time, never when a G is about to run, and costs one failed
 * system call or two: gort_go fails fast when memory is gone. */
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
    c->guard = pool.guard;
    /* Never huge pages: with transparent huge pages "always" (Debian 12's
     * default) the first touch of a stack would fault in 2 MiB, eight
     * stacks' worth of mostly untouched address space, and a thousand
     * goroutines would cost gigabytes. */
    (void)madvise(base, c->len, MADV_NOHUGEPAGE);

    if (pool.uffd >= 0) {
        /* Register the chunk now; each guard page is write-protected when
         * its slot is first carved (carve_batch), so reserving capacity for
         * goroutines that have not run costs no more than the mmap. */
        struct uffdio_register reg = {
            .range = { .start = c->base, .len = c->len },
            .mode = UFFDIO_REGISTER_MODE_WP,
        };
        if (ioctl(pool.uffd, UFFDIO_REGISTER, &reg) < 0) {
            munmap(base, c->len);
            free(c);
            return -ENOMEM;
        }
    } else if (c->guard == GORT_GUARD_MPROTECT) {
        chunk_mprotect(c);
    }
    /* A canary chunk still gets one real guard page, at its bottom, so an
     * overflow that runs through the stacks below it stops there instead
     * of in whatever is mapped under the chunk (one more mapping a chunk). */
    c->baseguard = c->guard == GORT_GUARD_CANARY &&
                   mprotect((void *)c->base, PAGE, PROT_NONE) == 0;
    vg_chunk_new(c);   /* after the mprotects: memcheck takes memory made readable for defined */
    c->next = pool.chunks;
    store_rel(&pool.chunks, c);   /* release: pairs with the fault handler's walk */
    c->carve = c->base;
    c->nextpartial = pool.partial;
    pool.partial = c;
    pool.capacity += STACKS_PER_CHUNK;
    return 0;
}

/* Arms the guard of a slot about to be used for the first time. The
 * madvise and uffd tiers need the kernel to allocate at most a page-table
 * page here; if even that fails there is nothing sensible left but to stop
 * (binding a stack must not fail). */
static void guard_arm(chunk *c, uintptr_t guard) {
    switch (c->guard) {
    case GORT_GUARD_MADVISE:
        if (madvise((void *)guard, PAGE, MADV_GUARD_INSTALL) < 0)
            gort__fatal("stackalloc: cannot install a stack guard page (out of memory)");
        break;
    case GORT_GUARD_UFFD_ZEROPAGE:
        /* Map the zero page: write-protecting a present page needs no
         * WP_UNPOPULATED, and a read costs no memory. */
        (void)*(volatile char *)guard;
        /* fallthrough */
    case GORT_GUARD_UFFD: {
        struct uffdio_writeprotect wp = {
            .range = { .start = guard, .len = PAGE },
            .mode = UFFDIO_WRITEPROTECT_MODE_WP,
        };
        if (ioctl(pool.uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
            gort__fatal("stackalloc: cannot write-protect a stack guard page (out of memory)");
        break;
    }
    case GORT_GUARD_CANARY:
        /* Read, not written: both lines map the zero page. */
        (void)*(volatile uint64_t *)guard;
        pool.ncanary++;
        break;
    }
}

/* Carves never-used slots into pp's empty cache and arms their guards.
 * pool.lock held. At least one slot, more as more stacks are in use (a
 * program with a few goroutines keeps a few stacks), up to a batch from
 * one chunk, whose guard regions go in with one process_madvise: a tenth
 * off the time to park a million goroutines. (Populating the stacks' top
 * pages the same way, MADV_POPULATE_WRITE, instead of a fault each, was
 * measured too: no faster.) */
static void carve_batch(P *pp) {
    chunk *c = pool.partial;
    if (c == NULL)
        gort__throw("stackalloc: pool exhausted despite credits");
    int64_t n = pool.ncarved / 4;
    int64_t left = (int64_t)((c->base + c->len - c->carve) / pool.slotsize);
    n = n < 1 ? 1 : n > STACK_BATCH ? STACK_BATCH : n;
    n = n < left ? n : left;
    struct iovec guards[STACK_BATCH];
    size_t ng = 0;
    for (int64_t i = 0; i < n; i++) {
        uintptr_t guard = c->carve;
        c->carve += pool.slotsize;
        bool canary = c->guard == GORT_GUARD_CANARY && !(c->baseguard && guard == c->base);
        vg_carve(c, guard,
                 c->guard == GORT_GUARD_MPROTECT || (c->guard == GORT_GUARD_CANARY && !canary));
        if (c->guard == GORT_GUARD_MADVISE && pool.pmguard)
            guards[ng++] = (struct iovec){ (void *)guard, PAGE };
        else if (canary || c->guard != GORT_GUARD_CANARY)
            guard_arm(c, guard);
        list_push(&pp->stackcache, stack_entry(guard + pool.slotsize, canary));
        pp->stackcachecnt++;
    }
    if (c->carve == c->base + c->len)
        pool.partial = c->nextpartial;
    pool.ncarved += n;
    if (ng > 0 && pmadvise(guards, ng, MADV_GUARD_INSTALL) != (long)(ng * PAGE)) {
        for (size_t i = 0; i < ng; i++)   /* installing twice is harmless */
            guard_arm(c, (uintptr_t)guards[i].iov_base);
    }
}

/* ---- canaries -------------------------------------------------------------- */

/* gp's stack has no guard page: the first and last lines of the page below
 * it were never written by anything but an overflow. */
void gort__stackcanary_check(G *gp) {
    const uint64_t *last = (const uint64_t *)(gp->stack.lo - LINE);
    const uint64_t *first = (const uint64_t *)(gp->stack.lo - PAGE);
    uint64_t bits = 0;
    vg_canary_read(gp->stack.lo);
    for (size_t i = 0; i < LINE / sizeof(uint64_t); i++)
        bits |= last[i] | first[i];
    if (unlikely(bits != 0))
        gort__fatal("goroutine %lld stack overflow (%zu KiB stack; found by its canary, as it "
                    "switched away: the stack had no guard page)",
                    (long long)gp->goid, gort__stacksize / 1024);
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

/* Race flavour: a stack handed to a new goroutine must not carry the
 * shadow of the one that used it before, or the new goroutine's first
 * writes to its locals would be reported as races with a dead goroutine
 * (nothing orders two goroutines that share a stack but the runtime, which
 * ThreadSanitizer does not see). Go's race mode calls racemalloc on every
 * new stack (stack.go) for this. libtsan has no call that clears shadow,
 * but its mmap interceptor does, when the calling fiber ignores writes: so
 * the stack's usable range is mapped afresh, in place (the guard page below
 * stays), and told not to use huge pages again, so that the kernel merges
 * it back into the chunk's mapping. The pages come back zeroed, costing
 * the new goroutine a fault or two. */
static void racemalloc(uintptr_t lo, uintptr_t hi) {
#ifdef GORT_RACE
    AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
    void *p = mmap((void *)lo, hi - lo, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
    if (p == MAP_FAILED)
        gort__fatal("stackalloc: cannot remap a stack for the race detector (out of memory)");
    (void)madvise(p, hi - lo, MADV_NOHUGEPAGE);
#else
    (void)lo, (void)hi;
#endif
}

/* A stack for a G about to run for the first time. Cannot fail: the G holds
 * a credit, and the pool invariant guarantees a slot outside P caches.
 * *canary says whether the stack has a canary instead of a guard page. */
stack gort__stackalloc(P *pp, bool *canary) {
    uintptr_t e;
    if (pp->stackcache) {
        e = list_pop(&pp->stackcache);
        pp->stackcachecnt--;
    } else {
        gort__lock(&pool.lock);
        /* Refill the cache with up to a batch from the free list. */
        while (pool.free && pp->stackcachecnt < STACK_BATCH) {
            list_push(&pp->stackcache, list_pop(&pool.free));
            pool.nfree--;
            pp->stackcachecnt++;
        }
        if (pp->stackcache == NULL)
            carve_batch(pp);
        e = list_pop(&pp->stackcache);
        pp->stackcachecnt--;
        gort__unlock(&pool.lock);
    }
    *canary = e & CANARYBIT;
    uintptr_t hi = e & ~CANARYBIT;
    vg_stack_alloc(hi);
    if (raceenabled)
        racemalloc(hi - gort__stacksize, hi);
    return (stack){ .lo = hi - gort__stacksize, .hi = hi };
}

/* Returns a stack to pp's cache, spilling a batch to the pool when full. */
void gort__stackfree(P *pp, stack st, bool canary) {
#ifdef __SANITIZE_ADDRESS__
    /* A goroutine that ended in gort_exit leaves its frames' redzones
     * poisoned; the next owner must start clean. */
    ASAN_UNPOISON_MEMORY_REGION((void *)st.lo, st.hi - st.lo);
#endif
    vg_stack_free(st.hi);
    list_push(&pp->stackcache, stack_entry(st.hi, canary));
    pp->stackcachecnt++;
    if (pp->stackcachecnt > STACKCACHE_MAX) {
        gort__lock(&pool.lock);
        while (pp->stackcachecnt > STACK_BATCH) {
            list_push(&pool.free, list_pop(&pp->stackcache));
            pp->stackcachecnt--;
            pool.nfree++;
        }
        gort__unlock(&pool.lock);
    }
}

/* A P is being destroyed: its stacks and credits go back to the pool. */
void gort__stackcache_flush(P *pp) {
    gort__lock(&pool.lock);
    while (pp->stackcache) {
        list_push(&pool.free, list_pop(&pp->stackcache));
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
            return c->guard != GORT_GUARD_CANARY ? (addr - c->base) % pool.slotsize < PAGE
                                                 : c->baseguard && addr < c->base + PAGE;
    }
    return false;
}
