// block_scheduler.h — runs the threads of one block on the calling OS thread.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_host.h"

namespace vqh {

// A kernel did something the CPU target cannot run faithfully (a barrier in a kernel registered
// barrier-free, a deadlock, lanes of one warp at different operations). Raised inside the kernel,
// caught at the block boundary, and returned to C# as the launch's error.
struct KernelError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

enum class FiberState : uint8_t { Runnable, AtBarrier, AtWarpOp, Done };

struct Fiber {
    void* sp = nullptr;
    char* stack_lo = nullptr;  // lowest usable byte (a PROT_NONE guard page lies just below)
    size_t stack_bytes = 0;
    uint32_t linear = 0;
    uint3 tid{0, 0, 0};
    FiberState state = FiberState::Done;
    // The pending warp request and, once released, its result.
    WarpOp op = WarpOp::Sync;
    unsigned mask = 0;
    uint64_t value = 0;
    int arg = 0;
    int width = 32;
    uint64_t result = 0;
};

// Per-OS-thread execution state: the fibers and their stacks are kept from launch to launch.
class BlockScheduler {
public:
    ~BlockScheduler();

    // Runs every thread of the current block (t_blockIdx/t_blockDim already set).
    // `order` lists linear thread indices in run order, or is null for ascending order.
    void run_block(const KernelInfo& kernel, void** args, const uint32_t* order, uint32_t nthreads);

    void* dynamic_shared(size_t bytes, bool poison);

    // Entry points for the synchronisation intrinsics of the running kernel.
    void syncthreads();
    uint64_t warp_op(WarpOp op, unsigned mask, uint64_t value, int arg, int width);

    static BlockScheduler& current();

    // Fiber resumes since the library was loaded, all OS threads together (added once per block, so
    // counting costs one atomic per block). Lets tests prove that a block that never synchronises
    // runs without fiber switches.
    static uint64_t total_resumes();

private:
    void ensure_fibers(uint32_t n);
    void resume(Fiber& f);
    bool release_warps(uint32_t nthreads);
    void complete_warp_op(uint32_t base, uint32_t count, unsigned participants);
    void run_rest_plain(const uint32_t* order, uint32_t from, uint32_t nthreads, uint32_t finished_linear);
    [[noreturn]] void fail_unsynchronisable(const char* what) const;
    [[noreturn]] void fail_deadlock(uint32_t nthreads) const;
    static void fiber_main(void* self);

    std::vector<Fiber> fibers_;
    std::vector<char> dynamic_shared_;
    void* scheduler_sp_ = nullptr;
    Fiber* current_ = nullptr;
    const KernelInfo* kernel_ = nullptr;
    void** args_ = nullptr;
    bool block_synced_ = false;
    // Set while the rest of a block runs as plain calls after its first thread finished without
    // synchronising; holds that thread's linear index for the error message.
    bool plain_fallback_ = false;
    uint32_t plain_fallback_first_ = 0;
    std::string fiber_error_;
    uint64_t block_resumes_ = 0;
};

std::string describe_thread(uint3 t);
std::string describe_block();

}  // namespace vqh
