// fiber.cpp — the initial frame of a new fiber, matching the layout the assembly restores.
#include "fiber.h"

#include <cstdint>
#include <cstring>

namespace vqh {

void* fiber_prepare_stack(char* stack_top, FiberEntry entry, void* arg) {
#if defined(__x86_64__)
    // Seven words: r15 r14 r13 r12 rbx rbp ret. After the final `ret` the stack pointer is
    // frame+56 = top-16, 16-byte aligned as the trampoline's `call` requires.
    auto* frame = reinterpret_cast<uint64_t*>(stack_top - 72);
    std::memset(frame, 0, 72);
    frame[2] = reinterpret_cast<uint64_t>(entry);  // r13
    frame[3] = reinterpret_cast<uint64_t>(arg);    // r12
    frame[6] = reinterpret_cast<uint64_t>(&vqh_fiber_trampoline);
    return frame;
#elif defined(__aarch64__)
    // x19..x30 then d8..d15; `ret` jumps to x30 with sp = top, 16-byte aligned.
    auto* frame = reinterpret_cast<uint64_t*>(stack_top - 160);
    std::memset(frame, 0, 160);
    frame[0] = reinterpret_cast<uint64_t>(arg);    // x19
    frame[1] = reinterpret_cast<uint64_t>(entry);  // x20
    frame[11] = reinterpret_cast<uint64_t>(&vqh_fiber_trampoline);  // x30
    return frame;
#else
#error "fiber context switch: only x86-64 and AArch64 are implemented"
#endif
}

}  // namespace vqh
