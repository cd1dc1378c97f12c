/*
 * The context switch for AArch64 (AAPCS64).
 *
 * void gort__ctx_switch(gobuf *from, gobuf *to)
 *
 * As arch/amd64.S: saves what the ABI says a callee must preserve (x19-x28,
 * the frame pointer x29, the link register x30, the low halves d8-d15 of
 * v8-v15, and FPCR, the floating-point control register: rounding mode,
 * flush-to-zero, trap enables) on the current stack, stores the stack
 * pointer in from->sp, loads to->sp, restores the same set from there and
 * returns to the x30 saved in the other context. A fresh context is laid
 * out by gort__arch_firstframe (arch/arch.h) exactly as this function
 * leaves one; its x30 is gort__gostart_tramp, below.
 *
 * Nothing else is saved: the caller-saved registers (x0-x18, the rest of
 * v0-v31, the NZCV flags, FPSR's cumulative exception bits) are dead across
 * a call, and the signal mask is not per-goroutine.
 *
 * Frame, from the saved sp upwards, 176 bytes (sp stays 16-aligned):
 *     0: x29   8: x30      (a frame record, as a prologue would push it,
 *                           so traceback.c walks a parked G from here)
 *    16: x19 x20   32: x21 x22   48: x23 x24   64: x25 x26   80: x27 x28
 *    96: d8 d9    112: d10 d11  128: d12 d13  144: d14 d15
 *   160: FPCR     168: unused
 *
 * Returning is a RET, not a BR as amd64's jmp is: BTI (below) would
 * require a landing pad at every return address for a BR, and there are
 * none, whereas RET is exempt. The return-stack predictor mispredicts
 * the RET into another context, which x86's jmp avoids; on AArch64 there
 * is no cheaper legal choice.
 *
 * Branch protection (-mbranch-protection=standard; the compiler says so
 * with __ARM_FEATURE_BTI_DEFAULT and __ARM_FEATURE_PAC_DEFAULT, and these
 * are all hint-space instructions, no-ops on cores without the features):
 *  - BTI: both entry points start with BTI C, and the object carries the
 *    GNU property note saying so, without which the linker would drop BTI
 *    from the whole program.
 *  - PAC: the return address saved here is signed on entry (PACIASP, the
 *    modifier the stack pointer at entry) and authenticated before the RET
 *    (AUTIASP) with the restored context's stack pointer, which is the one
 *    it was signed with: the saved contexts on parked goroutines' stacks
 *    hold no unsigned code address. A fresh context's is signed in C
 *    (gort__arch_signlr).
 */
#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define BTI_C	hint	#34			/* bti c */
#define GORT_FEATURE_BTI 1
#else
#define BTI_C
#define GORT_FEATURE_BTI 0
#endif

#if defined(__ARM_FEATURE_PAC_DEFAULT) && (__ARM_FEATURE_PAC_DEFAULT & 3)
#if __ARM_FEATURE_PAC_DEFAULT & 1
#define SIGN_LR	hint	#25			/* paciasp */
#define AUTH_LR	hint	#29			/* autiasp */
#else
#define SIGN_LR	hint	#27			/* pacibsp */
#define AUTH_LR	hint	#31			/* autibsp */
#endif
#define RA_SIGNED	.cfi_negate_ra_state
#define GORT_FEATURE_PAC 2
#else
#define SIGN_LR
#define AUTH_LR
#define RA_SIGNED
#define GORT_FEATURE_PAC 0
#endif

	.text
	.globl	gort__ctx_switch
	.hidden	gort__ctx_switch
	.type	gort__ctx_switch, %function
	.p2align 4
gort__ctx_switch:
	.cfi_startproc
	BTI_C
	SIGN_LR
	RA_SIGNED
	stp	x29, x30, [sp, #-176]!
	.cfi_def_cfa_offset 176
	.cfi_offset x29, -176
	.cfi_offset x30, -168
	stp	x19, x20, [sp, #16]
	stp	x21, x22, [sp, #32]
	stp	x23, x24, [sp, #48]
	stp	x25, x26, [sp, #64]
	stp	x27, x28, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x9, fpcr
	str	x9, [sp, #160]
	mov	x10, sp
	str	x10, [x0]
	ldr	x10, [x1]
	mov	sp, x10
	/* Writing FPCR can stall the pipeline on some cores; goroutines
	 * almost never change it, so it is written only when it differs. */
	ldr	x10, [sp, #160]
	cmp	x9, x10
	b.eq	1f
	msr	fpcr, x10
1:
	ldp	x19, x20, [sp, #16]
	ldp	x21, x22, [sp, #32]
	ldp	x23, x24, [sp, #48]
	ldp	x25, x26, [sp, #64]
	ldp	x27, x28, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	ldp	x29, x30, [sp], #176
	.cfi_def_cfa_offset 0
	.cfi_restore x29
	.cfi_restore x30
	AUTH_LR
	RA_SIGNED
	ret
	.cfi_endproc
	.size	gort__ctx_switch, .-gort__ctx_switch

/*
 * gort__gostart_tramp: where a fresh context's RET lands, with x29 zero
 * and the goroutine's entry (g.c's gostart) in x19. It calls the entry
 * with a zero link register, so the entry's frame record is (0, 0), the
 * end of the chain for traceback.c's walk as for gdb and libgcc's
 * unwinder; and while the pc is here, the CFI says the return address is
 * undefined, which ends an unwind too. The branch is through x16, which a
 * BTI C landing pad (the compiler's, at gostart) accepts. The RET that
 * reaches the trampoline is not checked by BTI; the landing pad is for
 * any other way in.
 */
	.globl	gort__gostart_tramp
	.hidden	gort__gostart_tramp
	.type	gort__gostart_tramp, %function
	.p2align 4
gort__gostart_tramp:
	.cfi_startproc
	.cfi_undefined x30
	BTI_C
	mov	x29, xzr
	mov	x30, xzr
	mov	x16, x19
	br	x16
	.cfi_endproc
	.size	gort__gostart_tramp, .-gort__gostart_tramp

	.section .note.GNU-stack,"",%progbits

/* The GNU property note: this object is BTI-compatible and/or uses PAC
 * (GNU_PROPERTY_AARCH64_FEATURE_1_AND, bits 1 and 2), so that a program
 * built with branch protection keeps it. */
#if GORT_FEATURE_BTI || GORT_FEATURE_PAC
	.section .note.gnu.property, "a"
	.p2align 3
	.long	4				/* name size */
	.long	16				/* descriptor size */
	.long	5				/* NT_GNU_PROPERTY_TYPE_0 */
	.asciz	"GNU"
	.long	0xc0000000			/* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
	.long	4				/* its data size */
	.long	GORT_FEATURE_BTI | GORT_FEATURE_PAC
	.long	0				/* padding to 8 bytes */
#endif
