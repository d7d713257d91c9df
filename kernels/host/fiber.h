// fiber.h — the smallest possible context switch, for running a block's threads on one OS thread.
//
// glibc's swapcontext saves and restores the signal mask with a system call on every switch;
// a block of 256 threads crossing one barrier switches 512 times, so that cost would dominate.
// fiber_x86_64.S / fiber_aarch64.S save only what the ABI says a callee must preserve
// (callee-saved registers, stack pointer, floating-point control state) and jump.
#pragma once

#include <cstddef>

extern "C" {
// Saves the current context's stack pointer into *save_sp and resumes the context whose stack
// pointer is load_sp. Returns when some other context switches back to the saved one.
void vqh_fiber_switch(void** save_sp, void* load_sp);
// The first code a new fiber runs: calls entry(arg), which must never return.
void vqh_fiber_trampoline();
}

namespace vqh {

using FiberEntry = void (*)(void* arg);

// Prepares a fresh stack so that the first vqh_fiber_switch into the returned stack pointer
// calls entry(arg). `stack_top` must be 16-byte aligned.
void* fiber_prepare_stack(char* stack_top, FiberEntry entry, void* arg);

}  // namespace vqh
