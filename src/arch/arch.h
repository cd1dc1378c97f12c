/*
 * arch.h: what the runtime needs to know about the processor, for each
 * architecture it runs on, beside that architecture's context switch
 * (arch/<arch>.S). Included by runtime.h; nothing here knows a G or an M.
 *
 *   gort__arch_getm()      the thread's gort__tls_m (initial-exec TLS), read
 *                          so that the compiler can neither cache nor move it
 *                          (runtime.h, getm, says why)
 *   gort__cputicks()       a cycle or tick counter, cheap, for the trace
 *   gort__arch_pause()     the spin-wait hint
 *   GORT_CACHELINE         the line size that hot structures are aligned to
 *   gort__ctx_sp/pc/fp()   a signal context's stack, program counter and
 *                          frame pointer
 *   GORT_CTX_FP, _PC       where gort__ctx_switch left the frame pointer and
 *   GORT_CTX_BYTES         the return address in a saved context, in words
 *                          from its sp, and the bytes it spans
 *   gort__arch_firstframe  lays out a never-run goroutine's saved context
 *   gort__arch_strippc()   a return address read from a stack, made a plain
 *                          address (pointer authentication signs them)
 */
#ifndef GORT_ARCH_H
#define GORT_ARCH_H

#include <stdint.h>

#if defined(__x86_64__)

#define GORT_CACHELINE 64

/* The load relative to %fs is an asm volatile with a memory clobber: see
 * getm in runtime.h. */
static inline void *gort__arch_getm(void) {
    void *mp;
    __asm__ volatile("movq gort__tls_m@gottpoff(%%rip), %0\n\t"
                     "movq %%fs:(%0), %0"
                     : "=r"(mp) : : "memory");
    return mp;
}

static inline uint64_t gort__cputicks(void) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static inline void gort__arch_pause(void) { __asm__ volatile("pause" ::: "memory"); }

/* Macros, so that only their users need <ucontext.h> (and _GNU_SOURCE). */
#define gort__ctx_sp(uc) ((uintptr_t)(uc)->uc_mcontext.gregs[REG_RSP])
#define gort__ctx_pc(uc) ((uintptr_t)(uc)->uc_mcontext.gregs[REG_RIP])
#define gort__ctx_fp(uc) ((uintptr_t)(uc)->uc_mcontext.gregs[REG_RBP])

/* arch/amd64.S: mxcsr and x87 cw, r15, r14, r13, r12, rbx, rbp, return
 * address. */
#define GORT_CTX_FP    6
#define GORT_CTX_PC    7
#define GORT_CTX_BYTES 64

/* The saved context of a goroutine that has not run: default MXCSR and x87
 * control word, zeroed callee-saved registers, entry as the return address
 * and a zero return address above it so debuggers stop unwinding there.
 * Returns its sp. */
static inline void *gort__arch_firstframe(uintptr_t hi, void (*entry)(void)) {
    uint64_t *sp = (uint64_t *)(hi - 72);
    sp[0] = 0x1F80 | ((uint64_t)0x037F << 32);
    for (int i = 1; i <= 6; i++)
        sp[i] = 0;
    sp[7] = (uint64_t)(uintptr_t)entry;
    sp[8] = 0;
    return sp;
}

static inline uintptr_t gort__arch_strippc(uintptr_t pc) { return pc; }

#elif defined(__aarch64__)

/* Go's too (CacheLinePad on arm64): most cores' line, and where a core has
 * 128-byte lines (Apple's), 64 still keeps the hot fields of two Ps off
 * each other's first line. */
#define GORT_CACHELINE 64

/* TPIDR_EL0 holds the thread pointer; the variable's offset from it comes
 * from the GOT (the initial-exec model, which the linker relaxes to a
 * constant in an executable). One asm volatile with a memory clobber, as
 * on x86-64: see getm in runtime.h. */
static inline void *gort__arch_getm(void) {
    void *mp;
    uintptr_t tp;
    __asm__ volatile("adrp %0, :gottprel:gort__tls_m\n\t"
                     "ldr  %0, [%0, #:gottprel_lo12:gort__tls_m]\n\t"
                     "mrs  %1, tpidr_el0\n\t"
                     "ldr  %0, [%1, %0]"
                     : "=&r"(mp), "=&r"(tp) : : "memory");
    return mp;
}

/* The virtual counter: readable from user space on Linux, constant rate
 * (CNTFRQ_EL0, often 25 MHz to 1 GHz), so a tick may be several ns; the
 * trace measures the rate against the clock (exectrace.c). No ISB before
 * it: like rdtsc it may be read a little early, which a trace tolerates. */
static inline uint64_t gort__cputicks(void) {
    uint64_t t;
    __asm__ volatile("mrs %0, cntvct_el0" : "=r"(t));
    return t;
}

/* Go's procyield on arm64 is YIELD; it tells an SMT core or a hypervisor
 * that this thread spins. */
static inline void gort__arch_pause(void) { __asm__ volatile("yield" ::: "memory"); }

#define gort__ctx_sp(uc) ((uintptr_t)(uc)->uc_mcontext.sp)
#define gort__ctx_pc(uc) ((uintptr_t)(uc)->uc_mcontext.pc)
#define gort__ctx_fp(uc) ((uintptr_t)(uc)->uc_mcontext.regs[29])

/* arch/arm64.S: a frame record (x29, x30) at sp, then x19-x28, d8-d15 and
 * FPCR: 22 words, a multiple of 16 bytes as sp must stay. */
#define GORT_CTX_FP    0
#define GORT_CTX_PC    1
#define GORT_CTX_BYTES 176

void gort__gostart_tramp(void);   /* arch/arm64.S */

/* The return address stored in a saved context is signed as
 * gort__ctx_switch's own prologue would have signed it (PACIASP: the A
 * key, sp at entry, which is the saved sp plus the frame), since its
 * epilogue authenticates whatever it restores. PACIA1716 is in the hint
 * space: a no-op without pointer authentication. */
static inline uintptr_t gort__arch_signlr(uintptr_t lr, uintptr_t sp) {
#if defined(__ARM_FEATURE_PAC_DEFAULT) && (__ARM_FEATURE_PAC_DEFAULT & 1)
    return (uintptr_t)__builtin_aarch64_pacia1716((void *)lr, sp);
#elif defined(__ARM_FEATURE_PAC_DEFAULT) && (__ARM_FEATURE_PAC_DEFAULT & 2)
    return (uintptr_t)__builtin_aarch64_pacib1716((void *)lr, sp);
#else
    (void)sp;
    return lr;
#endif
}

/* The saved context of a goroutine that has not run: zero frame record
 * and registers, FPCR 0 (Linux's initial one: round to nearest, no traps),
 * the return address the first-frame trampoline, which calls entry (in
 * x19) with zero fp and lr, so that entry's own frame record is (0, 0): the
 * frame-pointer walk stops there (traceback.c) and so do unwinders.
 * Returns its sp. */
static inline void *gort__arch_firstframe(uintptr_t hi, void (*entry)(void)) {
    uint64_t *sp = (uint64_t *)(hi - GORT_CTX_BYTES);
    for (int i = 0; i < GORT_CTX_BYTES / 8; i++)
        sp[i] = 0;
    sp[1] = gort__arch_signlr((uintptr_t)gort__gostart_tramp, hi);
    sp[2] = (uint64_t)(uintptr_t)entry;
    return sp;
}

/* XPACLRI (hint space) strips a signature from x30; a return address that
 * carries none comes back unchanged. */
static inline uintptr_t gort__arch_strippc(uintptr_t pc) {
    register uintptr_t lr __asm__("x30") = pc;
    __asm__("hint #7" : "+r"(lr));   /* xpaclri */
    return lr;
}

#else
#error "gort: no support for this architecture (src/arch/arch.h)"
#endif

#endif /* GORT_ARCH_H */
