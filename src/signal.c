/*
 * signal.c: fatal errors, and the faults the runtime owns.
 *
 * Every M gets a signal stack in mpreinit (Go's gsignal) and installs it in
 * minit, so a fault taken on an overflowing goroutine stack still has a
 * stack to run its handler on. The handler recognises a write into a stack
 * guard page (SIGBUS from userfaultfd write-protection, SIGSEGV from an
 * mprotect'd page), names the goroutine and aborts. Any other fault is
 * passed to the handler that was installed before gort_run, or to the
 * default action.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "runtime.h"

#define SIGSTACK_SIZE (64 * 1024)

static struct sigaction old_segv, old_bus, old_quit;
static bool installed, quitinstalled;

static void writeerr(const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(2, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* After a fatal error's message: every goroutine (unless GORT_TRACEBACK
 * says none), then exit status 2, as Go's fatal errors, or abort() for a
 * core dump with GORT_TRACEBACK=crash. A second thread that fails while the
 * first is still printing waits for the first to end the process. */
__attribute__((noreturn)) static void die(const void *sigctx) {
    static uint32_t dying;
    if (!cas(&dying, 0, 1)) {
        for (;;)
            pause();
    }
    if (gort__traceback_level != TRACEBACK_NONE)
        gort__dumpall(2, NULL, sigctx);
    if (gort__traceback_level == TRACEBACK_CRASH) {
        signal(SIGABRT, SIG_DFL);
        abort();
    }
    _exit(2);
}

void gort__throw(const char *msg) {
    char buf[512];
    snprintf(buf, sizeof buf, "gort: fatal error: %s\n", msg);
    writeerr(buf);
    die(NULL);
}

void gort__fatal(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(buf, sizeof buf, "gort: ");
    vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = strlen(buf);
    buf[len] = '\n';
    buf[len + 1] = 0;
    writeerr(buf);
    die(NULL);
}

/* Async-signal-safe decimal formatting. */
static char *fmtint(char *end, uint64_t v) {
    *--end = 0;
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

static void chain(int sig, siginfo_t *si, void *ctx, struct sigaction *old) {
    if (old->sa_flags & SA_SIGINFO) {
        if (old->sa_sigaction) {
            old->sa_sigaction(sig, si, ctx);
            return;
        }
    } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    /* Default action: restore it and return; the faulting instruction runs
     * again and the kernel kills the process with the usual signal. */
    signal(sig, SIG_DFL);
}

/* The stack pointer at the fault. */
static uintptr_t ctx_sp(void *ctx) {
    const ucontext_t *uc = ctx;
    return gort__ctx_sp(uc);
}

static void sighandler(int sig, siginfo_t *si, void *ctx) {
    uintptr_t addr = (uintptr_t)si->si_addr;
    M *mp = getm();
    G *gp = mp ? mp->curg : NULL;
    bool ours = false;

    /* An overflow: the fault is just below the running goroutine's stack,
     * or in any stack's guard page, or the goroutine's stack pointer has
     * left its stack downwards (a canary stack has no guard page: the
     * overflow runs on through the stacks below until it meets the guard
     * at the bottom of its chunk, stack.c). */
    if (gp && gp->stack.lo && addr < gp->stack.lo && addr >= gp->stack.lo - 4096 * 16)
        ours = true;
    else if (gort__stack_guard_hit(addr))
        ours = true;
    else if (gp && gp->stack.lo && ctx_sp(ctx) < gp->stack.lo &&
             ctx_sp(ctx) >= gp->stack.lo - (1UL << 30))
        ours = true;

    if (ours) {
        char a[24], b[24], msg[128];
        const char *id = fmtint(a + sizeof a, gp ? (uint64_t)gp->goid : 0);
        const char *kib = fmtint(b + sizeof b, gort__stacksize / 1024);
        msg[0] = 0;
        strcat(msg, "gort: goroutine ");
        strcat(msg, id);
        strcat(msg, " stack overflow (");
        strcat(msg, kib);
        strcat(msg, " KiB stack)\n");
        writeerr(msg);
        die(ctx);
    }
    chain(sig, si, ctx, sig == SIGBUS ? &old_bus : &old_segv);
}

/* SIGQUIT (^\\): every goroutine, then exit 2, as Go does. */
static void quithandler(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    (void)si;
    (void)ctx;
    gort__dumpall(2, "SIGQUIT: quit", NULL);
    _exit(2);
}

void gort__signal_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = sighandler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigfillset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
    quitinstalled = gort__debug_quitdump != 0;
    if (quitinstalled) {
        sa.sa_sigaction = quithandler;
        sigaction(SIGQUIT, &sa, &old_quit);
    }
    installed = true;
}

void gort__signal_uninstall(void) {
    if (!installed)
        return;
    sigaction(SIGSEGV, &old_segv, NULL);
    sigaction(SIGBUS, &old_bus, NULL);
    if (quitinstalled)
        sigaction(SIGQUIT, &old_quit, NULL);
    installed = false;
}

/* mpreinit: the M's signal stack (Go's gsignal). Called in mcommoninit on
 * the creating thread; minit installs it on the M's own thread. */
int gort__mpreinit(M *mp) {
    void *s = mmap(NULL, SIGSTACK_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (s == MAP_FAILED)
        return -1;
    mp->gsignal = s;
    mp->gsignalsize = SIGSTACK_SIZE;
    return 0;
}

void gort__mfreesignal(M *mp) {
    if (mp->gsignal)
        munmap(mp->gsignal, mp->gsignalsize);
    mp->gsignal = NULL;
}

/* minit: runs on the new M's thread: install the signal stack, remember the
 * kernel thread id. */
int gort__minit(M *mp) {
    stack_t ss = { .ss_sp = mp->gsignal, .ss_size = mp->gsignalsize, .ss_flags = 0 };
    mp->procid = (int32_t)gettid();
    return sigaltstack(&ss, NULL);
}

void gort__unminit(M *mp) {
    stack_t ss = { .ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE };
    (void)mp;
    sigaltstack(&ss, NULL);
}
