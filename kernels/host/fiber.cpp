// fiber.cpp — the initial frame of a new fiber, matching the layout the assembly restores.
#include "fiber.h"

#include <cstdint>
#include <cstring>

namespace vqh {

void* fiber_prepare_stack(char* stack_top, FiberEntry entry, void* arg) {
#if defined(__x86_64__)
    // Eight words: [fp control] r15 r14 r13 r12 rbx rbp ret. After the final `ret` the stack
    // pointer is frame+64; the trampoline's `call` needs it 16-byte aligned, hence the extra 16.
    auto* frame = reinterpret_cast<uint64_t*>(stack_top - 80);
    std::memset(frame, 0, 80);
    uint32_t mxcsr;
    uint16_t fpucw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fpucw));
    std::memcpy(reinterpret_cast<char*>(frame), &mxcsr, 4);
    std::memcpy(reinterpret_cast<char*>(frame) + 4, &fpucw, 2);
    frame[3] = reinterpret_cast<uint64_t>(entry);  // r13
    frame[4] = reinterpret_cast<uint64_t>(arg);    // r12
    frame[7] = reinterpret_cast<uint64_t>(&vqh_fiber_trampoline);
    return frame;
#elif defined(__aarch64__)
    auto* frame = reinterpret_cast<uint64_t*>(stack_top - 176);
    std::memset(frame, 0, 176);
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    frame[0] = reinterpret_cast<uint64_t>(arg);    // x19
    frame[1] = reinterpret_cast<uint64_t>(entry);  // x20
    frame[11] = reinterpret_cast<uint64_t>(&vqh_fiber_trampoline);  // x30
    frame[20] = fpcr;
    return frame;
#else
#error "fiber context switch: only x86-64 and AArch64 are implemented"
#endif
}

}  // namespace vqh
