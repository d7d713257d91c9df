// Fiber context switch for x86-64 System V. See fiber.h.
// Frame saved on the switched-from stack (low to high address):
//   r15 r14 r13 r12 rbx rbp <return address>
// The SSE/x87 control words are not saved: every fiber of a block runs on one OS thread and kernels
// never change rounding modes, and ldmxcsr/fldcw would cost more than the rest of the switch.
    .text
    .globl vqh_fiber_switch
    .type vqh_fiber_switch, @function
vqh_fiber_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    // `ret` would be mispredicted on every switch (the return-stack buffer remembers the other
    // stack's call); an indirect jump is predicted from its own history instead.
    popq %rcx
    jmp *%rcx
    .size vqh_fiber_switch, .-vqh_fiber_switch

// A new fiber's frame holds r12 = argument and r13 = entry function (see fiber_prepare_stack).
    .globl vqh_fiber_trampoline
    .type vqh_fiber_trampoline, @function
vqh_fiber_trampoline:
    movq %r12, %rdi
    callq *%r13
    ud2
    .size vqh_fiber_trampoline, .-vqh_fiber_trampoline

    .section .note.GNU-stack, "", @progbits
