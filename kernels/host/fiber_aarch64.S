// Fiber context switch for AArch64 (AAPCS64). See fiber.h.
// Frame saved on the switched-from stack (160 bytes, low to high address):
//   x19..x28, x29 (fp), x30 (lr), d8..d15
// FPCR is not saved: every fiber of a block runs on one OS thread and kernels never change it.
    .text
    .globl vqh_fiber_switch
    .type vqh_fiber_switch, %function
vqh_fiber_switch:
    sub sp, sp, #160
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mov x9, sp
    str x9, [x0]
    mov sp, x1
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #160
    ret
    .size vqh_fiber_switch, .-vqh_fiber_switch

// A new fiber's frame holds x19 = argument and x20 = entry function (see fiber_prepare_stack).
    .globl vqh_fiber_trampoline
    .type vqh_fiber_trampoline, %function
vqh_fiber_trampoline:
    mov x0, x19
    blr x20
    brk #0
    .size vqh_fiber_trampoline, .-vqh_fiber_trampoline

    .section .note.GNU-stack, "", %progbits
