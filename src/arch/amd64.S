/*
 * The context switch for x86-64 (System V ABI).
 *
 * void gort__ctx_switch(gobuf *from, gobuf *to)
 *
 * Saves what the ABI says a callee must preserve (rbx, rbp, r12-r15, the
 * MXCSR control bits and the x87 control word) on the current stack, stores
 * the stack pointer in from->sp, loads to->sp and restores the same set from
 * there, then jumps to the return address saved in the other context. A
 * fresh context is a stack laid out by gort__gobind (g.c) exactly as this
 * function leaves one, whose return address is the goroutine's entry.
 *
 * Nothing else is saved: the caller-saved registers are dead across a call,
 * and the signal mask is not per-goroutine (which is why ucontext, whose
 * swapcontext makes a sigprocmask system call each time, is not used).
 *
 * Frame, from the saved sp upwards:
 *   0: mxcsr (4 bytes), x87 cw (2 bytes), pad   8: r15   16: r14   24: r13
 *  32: r12   40: rbx   48: rbp   56: return address
 */
	.text
	.globl	gort__ctx_switch
	.hidden	gort__ctx_switch
	.type	gort__ctx_switch, @function
	.p2align 4
gort__ctx_switch:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)
	movq	(%rsi), %rsp
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	/* Return with an indirect jump rather than ret: a ret into another
	 * context always misses the CPU's return-stack predictor (it expects
	 * the caller of this call), which costs more than the rest of the
	 * switch; the branch target buffer predicts the jump well. */
	popq	%rcx
	jmpq	*%rcx
	.cfi_endproc
	.size	gort__ctx_switch, .-gort__ctx_switch

	.section .note.GNU-stack,"",@progbits
