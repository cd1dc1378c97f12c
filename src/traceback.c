/*
 * traceback.c: goroutine dumps, as Go prints them on SIGQUIT and after a
 * fatal error (Go's traceback.go: tracebackothers, goroutineheader).
 *
 * For each goroutine: its id, its state in Go's words (the wait reason of a
 * parked one), how long it has waited, the M and P running it, whether it
 * is locked to its thread, a backtrace, and where it was created. Parked
 * and runnable goroutines are walked from their saved context (the frame
 * gort__ctx_switch pushed: the frame pointer and the return address); the
 * goroutine that asks for the dump, or that faulted, from its own
 * registers. Goroutines running on other threads have no stable stack to
 * read: they say so, as Go's do.
 *
 * Frames are followed by their frame pointers, which the runtime itself is
 * always built with (CMakeLists.txt). A program compiled without them
 * (gcc's default at -O1 and above) still shows every runtime frame and the
 * function that called into gort; below that the chain is checked (each
 * frame inside the stack, above the last) and cut where it stops making
 * sense. -fno-omit-frame-pointer gives whole stacks. Names come from each
 * module's ELF symbol table (.symtab, so static functions too; .dynsym if
 * stripped), read from the file once per dump.
 *
 * Goroutines with the same state, wait reason, creator and frames are
 * printed once, followed by how many more there are and their ids: a
 * million goroutines parked in one place are one entry, not a million.
 *
 * Everything here may run in a fatal error or a signal handler, on a 64 KiB
 * signal stack, while other threads hold locks: it takes no lock of the
 * runtime, calls no malloc, writes with write(2), and gets its scratch
 * memory from mmap.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <ucontext.h>
#include <unistd.h>

#include "runtime.h"

#ifdef GORT_HAVE_VALGRIND
#include <valgrind/memcheck.h>
#endif

#define MAXFRAMES 32
#define MAXGROUPS 4096
#define SHOWIDS   16   /* ids listed for a group */
#define MAXMODS   64

/* ---- output --------------------------------------------------------------- */

typedef struct out {
    int    fd;
    int    err;       /* first write error, as a negative errno */
    size_t n;
    char   buf[2048];
} out;

static void oflush(out *o) {
    size_t off = 0;
    while (off < o->n) {
        ssize_t w = write(o->fd, o->buf + off, o->n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (o->err == 0)
                o->err = w < 0 ? -errno : -EIO;
            break;
        }
        off += (size_t)w;
    }
    o->n = 0;
}

__attribute__((format(printf, 2, 3))) static void oprintf(out *o, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    size_t len = (size_t)k < sizeof line ? (size_t)k : sizeof line - 1;
    if (o->n + len > sizeof o->buf)
        oflush(o);
    memcpy(o->buf + o->n, line, len);
    o->n += len;
}

/* ---- symbols -------------------------------------------------------------- */

/* A loaded module (the executable, libgort.so, libc...) and its symbols. */
typedef struct module {
    uintptr_t lo, hi;        /* its loaded address range */
    uintptr_t bias;          /* load address minus link address */
    char      path[256];
    const char *map;         /* the file, mapped; NULL until needed or if unreadable */
    size_t     maplen;
    const Elf64_Sym *syms;
    size_t     nsyms;
    const char *strs;
    bool       loaded;
} module;

/* The modules of the process. Dumps use modtab; the execution trace's
 * writer thread has a table of its own (gort__symtab_open), so the two
 * never share one. */
struct symtab {
    module mods[MAXMODS];
    int    n;
};
static symtab modtab;

static int addmod(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    symtab *tab = arg;
    if (tab->n == MAXMODS)
        return 1;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo)
            lo = a;
        if (a + ph->p_memsz > hi)
            hi = a + ph->p_memsz;
    }
    if (hi == 0)
        return 0;
    module *m = &tab->mods[tab->n++];
    memset(m, 0, sizeof *m);
    m->lo = lo;
    m->hi = hi;
    m->bias = info->dlpi_addr;
    const char *name = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : NULL;
    if (name == NULL) {   /* the executable */
        ssize_t k = readlink("/proc/self/exe", m->path, sizeof m->path - 1);
        m->path[k > 0 ? k : 0] = 0;
    } else {
        snprintf(m->path, sizeof m->path, "%s", name);
    }
    return 0;
}

/* Maps m's file and finds its symbol table. */
static void loadmod(module *m) {
    m->loaded = true;
    int fd = open(m->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(Elf64_Ehdr)) {
        close(fd);
        return;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return;
    m->map = p;
    m->maplen = (size_t)st.st_size;
    const Elf64_Ehdr *eh = p;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shoff == 0 || eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > m->maplen)
        return;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(m->map + eh->e_shoff);
    for (int want = SHT_SYMTAB; want; want = want == SHT_SYMTAB ? SHT_DYNSYM : 0) {
        for (int i = 0; i < eh->e_shnum; i++) {
            if (sh[i].sh_type != (Elf64_Word)want || sh[i].sh_link >= eh->e_shnum)
                continue;
            const Elf64_Shdr *strsh = &sh[sh[i].sh_link];
            if (sh[i].sh_offset + sh[i].sh_size > m->maplen ||
                strsh->sh_offset + strsh->sh_size > m->maplen)
                continue;
            m->syms = (const Elf64_Sym *)(m->map + sh[i].sh_offset);
            m->nsyms = sh[i].sh_size / sizeof(Elf64_Sym);
            m->strs = m->map + strsh->sh_offset;
            return;
        }
    }
}

static module *findmod(symtab *tab, uintptr_t pc) {
    for (int i = 0; i < tab->n; i++)
        if (pc >= tab->mods[i].lo && pc < tab->mods[i].hi)
            return &tab->mods[i];
    return NULL;
}

/* The function containing pc: its name and pc's offset in it, or NULL;
 * *file (if not NULL) gets the source file a local function came from
 * (the symbol table's FILE entry before it), or NULL. */
static const char *symbolize2(symtab *tab, uintptr_t pc, uintptr_t *off, module **mp,
                              const char **file) {
    module *m = findmod(tab, pc);
    *mp = m;
    if (file)
        *file = NULL;
    if (m == NULL)
        return NULL;
    if (!m->loaded)
        loadmod(m);
    uintptr_t a = pc - m->bias;
    const Elf64_Sym *best = NULL;
    const char *curfile = NULL, *bestfile = NULL;
    for (size_t i = 0; i < m->nsyms; i++) {
        const Elf64_Sym *s = &m->syms[i];
        if (ELF64_ST_TYPE(s->st_info) == STT_FILE) {
            curfile = m->strs + s->st_name;
            continue;
        }
        if (ELF64_ST_TYPE(s->st_info) != STT_FUNC || s->st_value == 0 || s->st_value > a)
            continue;
        if (a < s->st_value + (s->st_size ? s->st_size : 1) &&
            (best == NULL || s->st_value > best->st_value)) {
            best = s;
            bestfile = ELF64_ST_BIND(s->st_info) == STB_LOCAL ? curfile : NULL;
        }
    }
    if (best == NULL)
        return NULL;
    *off = a - best->st_value;
    if (file)
        *file = bestfile;
    return m->strs + best->st_name;
}

static const char *symbolize(uintptr_t pc, uintptr_t *off, module **mp) {
    return symbolize2(&modtab, pc, off, mp, NULL);
}

/* The runtime's source files (CMakeLists.txt's GORT_SOURCES): a local
 * function from one of them is the runtime's, in a program linked with
 * libgort.a, where no module boundary tells. */
static const char *const runtimefiles[] = {
    "futex.c", "m.c", "p.c", "g.c", "stack.c", "runq.c", "sched.c", "runtime.c", "run.c",
    "sema.c", "mutex.c", "waitgroup.c", "rwmutex.c", "once.c", "cond.c", "chan.c", "select.c",
    "syscall.c", "timer.c", "netpoll.c", "fd.c", "lockosthread.c", "time.c", "signal.c",
    "trace.c", "exectrace.c", "traceback.c", "sysmon.c", "version.c",
};

/* Is the frame at pc the runtime's own? With libgort.so, any frame in it;
 * linked statically, any gort_ function or local function of a runtime
 * source file. */
static bool isruntime(uintptr_t pc, const char **namep) {
    uintptr_t off;
    module *m, *gm;
    const char *file;
    const char *name = symbolize2(&modtab, pc - 1, &off, &m, &file);
    *namep = name;
    gm = findmod(&modtab, (uintptr_t)gort_dump);
    if (m != NULL && gm != NULL && gm != &modtab.mods[0])
        return m == gm;   /* libgort.so: its own module */
    if (name == NULL)
        return false;
    if (strncmp(name, "gort_", 5) == 0)
        return true;
    if (file == NULL)
        return false;
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    for (size_t i = 0; i < sizeof runtimefiles / sizeof runtimefiles[0]; i++)
        if (strcmp(base, runtimefiles[i]) == 0)
            return true;
    return false;
}

static void symtab_load(symtab *tab) {
    tab->n = 0;
    dl_iterate_phdr(addmod, tab);
}

static void symtab_unload(symtab *tab) {
    for (int i = 0; i < tab->n; i++)
        if (tab->mods[i].map)
            munmap((void *)tab->mods[i].map, tab->mods[i].maplen);
    tab->n = 0;
}

static void symtab_begin(void) { symtab_load(&modtab); }
static void symtab_end(void) { symtab_unload(&modtab); }

symtab *gort__symtab_open(void) {
    symtab *tab = calloc(1, sizeof *tab);
    if (tab)
        symtab_load(tab);
    return tab;
}

void gort__symtab_close(symtab *tab) {
    if (tab) {
        symtab_unload(tab);
        free(tab);
    }
}

/* The name of the function at pc (an entry point, not a return address),
 * or NULL. Valid until the table is closed. */
const char *gort__symtab_name(symtab *tab, uintptr_t pc) {
    uintptr_t off;
    module *m;
    return symbolize2(tab, pc, &off, &m, NULL);
}

/* ---- walking frames -------------------------------------------------------- */

typedef struct trace {
    int       n;
    bool      more;      /* frames beyond MAXFRAMES */
    uintptr_t pc[MAXFRAMES];
} trace;

/* The i-th word at addr, on a goroutine's stack. Code without frame
 * pointers leaves anything in rbp, so the walk can follow it to words never
 * written; it checks each before use, but memcheck would report every such
 * use, so under Valgrind the copy (not the stack) is declared defined. */
__attribute__((no_sanitize_address, no_sanitize_thread)) static inline uintptr_t
stackword(uintptr_t addr, int i) {
    uintptr_t v = ((volatile uintptr_t *)addr)[i];
#ifdef GORT_HAVE_VALGRIND
    VALGRIND_MAKE_MEM_DEFINED(&v, sizeof v);
#endif
    return v;
}

/* Follows the frame-pointer chain from (pc, fp) within [lo, hi). Each
 * frame is two words at fp: the caller's fp and the return address. The
 * walk stops at the top of the stack (gostart's zero return address), or
 * where a link leaves the stack or goes down: the frame of code built
 * without frame pointers. The loads may race with the goroutine resuming;
 * every address read is first checked to lie inside its stack, which stays
 * mapped. */
__attribute__((no_sanitize_address, no_sanitize_thread)) static void
walk(trace *t, uintptr_t pc, uintptr_t fp, uintptr_t lo, uintptr_t hi) {
    t->n = 0;
    t->more = false;
    while (pc != 0) {
        if (t->n == MAXFRAMES) {
            t->more = true;
            return;
        }
        t->pc[t->n++] = pc;
        if (fp < lo || fp + 16 > hi || (fp & 7) != 0)
            return;
        uintptr_t next = stackword(fp, 0);
        pc = gort__arch_strippc(stackword(fp, 1));
        if (next <= fp) {
            /* The caller keeps no frame pointer: its return address is
             * still good, the chain beyond it is not. */
            if (pc != 0 && t->n < MAXFRAMES)
                t->pc[t->n++] = pc;
            return;
        }
        fp = next;
    }
}

/* Drops the runtime's own frames at the top (gopark, chanrecv...) down to
 * the public call the program made (gort_chan_recv), when the compiler kept
 * its frame, or to the program's own frame; GORT_TRACEBACK=system keeps
 * them. */
static int firstshown(const trace *t) {
    if (gort__traceback_level >= TRACEBACK_SYSTEM)
        return 0;
    const char *prev = NULL;
    for (int i = 0; i < t->n; i++) {
        const char *name;
        if (!isruntime(t->pc[i], &name)) {
            if (i > 0 && prev && strncmp(prev, "gort_", 5) == 0 && strncmp(prev, "gort__", 6) != 0)
                return i - 1;
            return i;
        }
        prev = name;
    }
    return 0;
}

static void printpc(out *o, const char *prefix, uintptr_t pc, bool retaddr) {
    uintptr_t off = 0;
    module *m;
    /* A return address points after its call: look up the call. */
    const char *name = symbolize(retaddr ? pc - 1 : pc, &off, &m);
    if (retaddr)
        off++;
    const char *path = m ? m->path : "?";
    uintptr_t rel = m ? pc - m->bias : pc;
    if (name)
        oprintf(o, "%s%s+0x%lx\n\t%s+0x%lx\n", prefix, name, (unsigned long)off, path,
                (unsigned long)rel);
    else
        oprintf(o, "%s0x%lx\n\t%s+0x%lx\n", prefix, (unsigned long)pc, path, (unsigned long)rel);
}

/* gostart, the runtime's frame under every goroutine's function. */
static bool isgostart(uintptr_t pc) {
    uintptr_t off;
    module *m;
    const char *name = symbolize(pc - 1, &off, &m);
    return name && strcmp(name, "gostart") == 0;
}

static void printtrace(out *o, const trace *t) {
    int n = t->n;
    if (gort__traceback_level < TRACEBACK_SYSTEM && n > 0 && !t->more && isgostart(t->pc[n - 1]))
        n--;
    /* Every pc is looked up as a return address, the faulting one of a
     * signal context too: one byte back stays inside its function. */
    for (int i = firstshown(t); i < n; i++)
        printpc(o, "", t->pc[i], true);
    if (t->more)
        oprintf(o, "...additional frames elided...\n");
}

/* ---- one goroutine ---------------------------------------------------------- */

typedef struct gstate {
    uint32_t  status;
    uint8_t   waitreason;
    bool      locked;
    bool      havetrace;
    int64_t   waitsince;
    int64_t   mid, pid;   /* -1 if none */
    trace     t;
} gstate;

/* A parked or runnable G's frames, from the frame gort__ctx_switch pushed
 * (arch/amd64.S: rbp at sp+48, the return address at sp+56; arch/arm64.S:
 * the frame record at sp; arch/arch.h has the offsets). Read twice
 * around the walk: if the G ran meanwhile the walk is repeated. */
__attribute__((no_sanitize_address, no_sanitize_thread)) static bool
savedtrace(G *gp, trace *t) {
    for (int tries = 0; tries < 3; tries++) {
        uint32_t s1 = readgstatus(gp);
        if (s1 != Gwaiting && s1 != Grunnable)
            return false;
        uintptr_t lo = gp->stack.lo, hi = gp->stack.hi;
        uintptr_t sp = (uintptr_t)gp->sched.sp;
        if (lo == 0 || sp < lo || sp + GORT_CTX_BYTES > hi)
            return false;   /* runnable but not yet started: no frames */
        uintptr_t fp = stackword(sp, GORT_CTX_FP);
        uintptr_t pc = gort__arch_strippc(stackword(sp, GORT_CTX_PC));
        walk(t, pc, fp, sp, hi);
        if (readgstatus(gp) == s1 && (uintptr_t)gp->sched.sp == sp)
            return true;
    }
    return false;
}

GORT_SNAPSHOT static void readstate(G *gp, gstate *st) {
    memset(st, 0, sizeof *st);
    st->status = readgstatus(gp);
    st->waitreason = gp->waitreason;
    st->waitsince = gp->waitsince;
    st->locked = gp->lockedm != NULL;
    M *mp = load_relaxed(&gp->m);
    st->mid = mp ? mp->id : -1;
    P *pp = mp ? load_relaxed(&mp->p) : NULL;
    st->pid = pp ? pp->id : -1;
    if (st->status == Gwaiting || st->status == Grunnable)
        st->havetrace = savedtrace(gp, &st->t);
}

static const char *statusword(const gstate *st) {
    switch (st->status) {
    case Grunnable: return "runnable";
    case Grunning: return "running";
    case Gsyscall: return "syscall";
    case Gwaiting: return gort__waitreason_string(st->waitreason);
    default: return "?";
    }
}

/* How long since when (nanotime), in words: Go says "N minutes"; finer
 * below that. The park time comes from sysmon's clock, which lags by up
 * to its delay: under a second is not worth saying. */
static void fmtwait(char *buf, size_t len, int64_t when) {
    buf[0] = 0;
    int64_t ns = gort__nanotime() - when;
    if (when <= 0 || ns < 1000000000LL)
        return;
    if (ns >= 60000000000LL)
        snprintf(buf, len, ", %lld minutes", (long long)(ns / 60000000000LL));
    else
        snprintf(buf, len, ", %llds", (long long)(ns / 1000000000LL));
}

static void header(out *o, int64_t goid, const gstate *st) {
    char wait[48] = "";
    if (st->status == Gwaiting)
        fmtwait(wait, sizeof wait, st->waitsince);
    char where[48] = "";
    if (st->mid >= 0 && st->pid >= 0)
        snprintf(where, sizeof where, ", M%lld P%lld", (long long)st->mid, (long long)st->pid);
    else if (st->mid >= 0)
        snprintf(where, sizeof where, ", M%lld", (long long)st->mid);
    oprintf(o, "goroutine %lld [%s%s%s%s]:\n", (long long)goid, statusword(st), wait, where,
            st->locked ? ", locked to thread" : "");
}

GORT_SNAPSHOT static void createdby(out *o, G *gp) {
    if (gp == gort__sched.maing) {
        oprintf(o, "the main goroutine, started by gort_run\n");
        return;
    }
    if (gp->gopc == 0) {
        uintptr_t off;
        module *m;
        const char *name = symbolize((uintptr_t)gp->fn, &off, &m);
        oprintf(o, "started by the runtime: %s\n", name ? name : "?");
        return;
    }
    uintptr_t off = 0;
    module *m;
    const char *name = symbolize(gp->gopc - 1, &off, &m);
    if (gp->parentgoid > 0)
        oprintf(o, "created by %s in goroutine %lld\n\t%s+0x%lx\n", name ? name : "?",
                (long long)gp->parentgoid, m ? m->path : "?",
                (unsigned long)(m ? gp->gopc - m->bias : gp->gopc));
    else
        oprintf(o, "created by %s on a thread that is not a goroutine\n\t%s+0x%lx\n",
                name ? name : "?", m ? m->path : "?",
                (unsigned long)(m ? gp->gopc - m->bias : gp->gopc));
}

GORT_SNAPSHOT static void startfn(out *o, G *gp) {
    uintptr_t off;
    module *m;
    const char *name = symbolize((uintptr_t)gp->fn, &off, &m);
    oprintf(o, "%s(...)\n\tgoroutine's function, not started yet\n", name ? name : "?");
}

/* ---- all goroutines ------------------------------------------------------------ */

typedef struct group {
    uint64_t key;
    G       *first;      /* printed in full */
    gstate   st;
    int64_t  count;
    int64_t  ids[SHOWIDS];
} group;

typedef struct dumpstate {
    out      *o;
    G        *self;      /* printed first, from its own registers */
    group    *groups;
    int       ngroups;
    int       overflow;  /* goroutines past MAXGROUPS distinct groups: printed alone */
    gstate    tmp;
} dumpstate;

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
}

GORT_SNAPSHOT static uint64_t groupkey(G *gp, const gstate *st) {
    uint64_t h = mix(st->status, st->waitreason);
    h = mix(h, st->locked);
    h = mix(h, gp->gopc);
    h = mix(h, (uintptr_t)gp->fn);
    h = mix(h, (uint64_t)st->havetrace);
    if (st->status == Grunning || st->status == Gsyscall)
        h = mix(h, (uint64_t)gp->goid);   /* each its own */
    for (int i = 0; i < st->t.n; i++)
        h = mix(h, st->t.pc[i]);
    return h;
}

GORT_SNAPSHOT static void printone(out *o, G *gp, const gstate *st) {
    header(o, gp->goid, st);
    if (st->havetrace)
        printtrace(o, &st->t);
    else if (st->status == Grunning || st->status == Gsyscall)
        oprintf(o, "goroutine running on other thread; stack unavailable\n");
    else if (gp->stack.lo == 0)
        startfn(o, gp);
    else
        oprintf(o, "stack changed while being read\n");
    createdby(o, gp);
}

GORT_SNAPSHOT static void collect(G *gp, void *arg) {
    dumpstate *d = arg;
    uint32_t s = readgstatus(gp);
    if (s == Gdead || s == Gidle || gp == d->self)
        return;
    gstate *st = &d->tmp;
    readstate(gp, st);
    uint64_t key = groupkey(gp, st);
    for (int i = 0; i < d->ngroups; i++) {
        group *g = &d->groups[i];
        if (g->key == key) {
            if (g->count < SHOWIDS)
                g->ids[g->count] = gp->goid;
            g->count++;
            return;
        }
    }
    if (d->ngroups == MAXGROUPS) {
        out *o = d->o;
        printone(o, gp, st);
        oprintf(o, "\n");
        d->overflow++;
        return;
    }
    group *g = &d->groups[d->ngroups++];
    g->key = key;
    g->first = gp;
    g->st = *st;
    g->count = 1;
    g->ids[0] = gp->goid;
}

/* The current goroutine (or thread), from here. */
__attribute__((noinline)) static void selftrace(trace *t, uintptr_t lo, uintptr_t hi) {
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    uintptr_t pc = (uintptr_t)__builtin_return_address(0);
    uintptr_t next = ((uintptr_t *)fp)[0];
    walk(t, pc, next, lo ? lo : fp, hi ? hi : UINTPTR_MAX);
}

GORT_SNAPSHOT int gort__dumpall(int fd, const char *why, const void *sigctx) {
    static dumpstate d;   /* one dump at a time; not on the signal stack */
    static uint32_t busy;
    if (!cas(&busy, 0, 1))
        return -EBUSY;
    out *o = mmap(NULL, sizeof(out) + MAXGROUPS * sizeof(group), PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (o == MAP_FAILED) {
        store_rel(&busy, 0);
        return -ENOMEM;
    }
    memset(&d, 0, sizeof d);
    o->fd = fd;
    d.o = o;
    d.groups = (group *)(o + 1);
    symtab_begin();
    if (why)
        oprintf(o, "%s\n", why);

    /* The goroutine that asked, or faulted. */
    G *self = getg();
    d.self = self;
    if (self) {
        gstate st;
        memset(&st, 0, sizeof st);
        st.status = Grunning;
        st.locked = self->lockedm != NULL;
        M *mp = getm();
        st.mid = mp ? mp->id : -1;
        st.pid = mp && mp->p ? mp->p->id : -1;
        const ucontext_t *uc = sigctx;
        if (uc) {
            walk(&st.t, gort__ctx_pc(uc), gort__ctx_fp(uc), self->stack.lo, self->stack.hi);
        } else {
            selftrace(&st.t, self->stack.lo, self->stack.hi);
        }
        st.havetrace = true;
        oprintf(o, "\n");
        printone(o, self, &st);
    } else if (why == NULL) {
        oprintf(o, "(dumped from a thread that is not a goroutine)\n");
    }

    gort__forallg(collect, &d);
    for (int i = 0; i < d.ngroups; i++) {
        group *g = &d.groups[i];
        oprintf(o, "\n");
        printone(o, g->first, &g->st);
        if (g->count > 1) {
            oprintf(o, "...and %lld more goroutines in the same state, created at the same place, "
                       "with the same stack:",
                    (long long)(g->count - 1));
            int64_t shown = g->count < SHOWIDS ? g->count : SHOWIDS;
            for (int64_t k = 1; k < shown; k++)
                oprintf(o, " %lld", (long long)g->ids[k]);
            if (g->count > SHOWIDS)
                oprintf(o, " ...");
            oprintf(o, "\n");
        }
    }
    oflush(o);
    symtab_end();
    int err = o->err;
    munmap(o, sizeof(out) + MAXGROUPS * sizeof(group));
    store_rel(&busy, 0);
    return err;
}

GORT_API int gort_dump(int fd) {
    if (fd < 0)
        return -EBADF;
    if (fcntl(fd, F_GETFL) < 0)
        return -EBADF;
    bool foreign = getg() == NULL;
    if (foreign && !gort__foreign_enter())
        return -ESRCH;   /* no runtime is running */
    int err = gort__dumpall(fd, NULL, NULL);
    if (foreign)
        gort__foreign_exit();
    __asm__ volatile("" : "+r"(err));   /* no tail call: this frame stays in the dump */
    return err;
}
