// block_scheduler.cpp — the threads of a block as fibers on one OS thread.
//
// Scheduling is run-to-block: in each round every runnable thread, taken in the launch's thread
// order, runs until it reaches a barrier, a warp operation, or its end. Then the scheduler
// releases what can be released — first any warp whose named lanes have all arrived at a warp
// operation, otherwise the block barrier once every live thread waits at it — and starts the
// next round. Because a thread runs as far as it can before the next one starts, a read of shared
// memory that lacks its __syncthreads sees different data in ascending and descending order:
// that is how the tests catch a missing barrier without a GPU.
//
// A kernel registered VQ_KERNEL_SYNC whose first thread finishes without ever synchronising
// (a block with nothing to reduce, say) has the rest of its threads run as plain calls, so such a
// block costs no fiber switches.
#include "block_scheduler.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "fiber.h"

namespace vqh {

__thread uint3 t_threadIdx VQH_TLS;
__thread uint3 t_blockIdx VQH_TLS;
__thread dim3 t_blockDim VQH_TLS;
__thread dim3 t_gridDim VQH_TLS;

namespace {

constexpr uint32_t kWarpSize = 32;

size_t fiber_stack_bytes() {
    static const size_t bytes = [] {
        const char* env = std::getenv("VQVAE_FIBER_STACK_KB");
        long kb = env ? std::strtol(env, nullptr, 10) : 0;
        return static_cast<size_t>(kb > 16 ? kb : 256) * 1024;
    }();
    return bytes;
}

__thread BlockScheduler* t_scheduler = nullptr;

std::atomic<uint64_t> g_total_resumes{0};

const char* op_name(WarpOp op) {
    switch (op) {
        case WarpOp::Sync: return "__syncwarp";
        case WarpOp::ShflIdx: return "__shfl_sync";
        case WarpOp::ShflUp: return "__shfl_up_sync";
        case WarpOp::ShflDown: return "__shfl_down_sync";
        case WarpOp::ShflXor: return "__shfl_xor_sync";
        case WarpOp::Ballot: return "__ballot_sync";
        case WarpOp::Any: return "__any_sync";
        case WarpOp::All: return "__all_sync";
    }
    return "warp operation";
}

uint3 unflatten(uint32_t linear, dim3 bd) {
    return uint3{linear % bd.x, (linear / bd.x) % bd.y, linear / (bd.x * bd.y)};
}

}  // namespace

std::string describe_thread(uint3 t) {
    return "(" + std::to_string(t.x) + "," + std::to_string(t.y) + "," + std::to_string(t.z) + ")";
}

std::string describe_block() { return describe_thread(t_blockIdx); }

BlockScheduler& BlockScheduler::current() {
    if (t_scheduler == nullptr) t_scheduler = new BlockScheduler();  // one per OS thread, lives with it
    return *t_scheduler;
}

BlockScheduler::~BlockScheduler() {
    const long page = sysconf(_SC_PAGESIZE);
    for (Fiber& f : fibers_)
        if (f.stack_lo) munmap(f.stack_lo - page, f.stack_bytes + page);
}

void BlockScheduler::ensure_fibers(uint32_t n) {
    if (fibers_.size() >= n) return;
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t bytes = (fiber_stack_bytes() + page - 1) / page * page;
    const size_t old = fibers_.size();
    fibers_.resize(n);
    for (size_t i = old; i < n; ++i) {
        // A guard page below each stack turns an overflow into a fault instead of silently
        // overwriting the neighbouring fiber's frames. Pages are committed only when touched.
        void* mem = mmap(nullptr, bytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                         -1, 0);
        if (mem == MAP_FAILED) throw KernelError("could not map a fiber stack of " + std::to_string(bytes) + " bytes");
        mprotect(mem, page, PROT_NONE);
        fibers_[i].stack_lo = static_cast<char*>(mem) + page;
        fibers_[i].stack_bytes = bytes;
    }
}

void* BlockScheduler::dynamic_shared(size_t bytes, bool poison) {
    if (dynamic_shared_.size() < bytes) dynamic_shared_.resize(bytes);
    if (poison && bytes) std::memset(dynamic_shared_.data(), 0xFF, bytes);
    return dynamic_shared_.data();
}

void BlockScheduler::fiber_main(void* self) {
    auto* s = static_cast<BlockScheduler*>(self);
    Fiber* f = s->current_;
    try {
        s->kernel_->run_one(s->args_);
    } catch (const std::exception& e) {
        s->fiber_error_ = e.what();
    } catch (...) {
        s->fiber_error_ = "unknown exception in kernel";
    }
    f->state = FiberState::Done;
    vqh_fiber_switch(&f->sp, s->scheduler_sp_);
    __builtin_trap();  // a finished fiber is never resumed
}

uint64_t BlockScheduler::total_resumes() { return g_total_resumes.load(std::memory_order_relaxed); }

void BlockScheduler::resume(Fiber& f) {
    ++block_resumes_;
    current_ = &f;
    t_threadIdx = f.tid;
    vqh_fiber_switch(&scheduler_sp_, f.sp);
    current_ = nullptr;
    if (!fiber_error_.empty()) {
        std::string message;
        message.swap(fiber_error_);
        throw KernelError(message);
    }
}

void BlockScheduler::run_block(const KernelInfo& kernel, void** args, const uint32_t* order, uint32_t nthreads) {
    kernel_ = &kernel;
    args_ = args;
    t_scheduler = this;
    if (kernel.sync == SyncKind::NoSync) {
        kernel.run_block_plain(args, order, nthreads);
        return;
    }
    ensure_fibers(nthreads);
    const dim3 bd = t_blockDim;
    for (uint32_t i = 0; i < nthreads; ++i) {
        Fiber& f = fibers_[i];
        f.linear = i;
        f.tid = unflatten(i, bd);
        f.state = FiberState::Runnable;
        // Stacks are a whole number of pages apart, so without an offset every fiber's top frame
        // would fall in the same L1 cache sets and evict the others' on each switch; shifting each
        // top by a different cache line spreads them over all 64 sets.
        char* top = f.stack_lo + f.stack_bytes - (i % 64) * 64;
        f.sp = fiber_prepare_stack(top, &BlockScheduler::fiber_main, this);
    }
    block_synced_ = false;
    block_resumes_ = 0;
    // Publishes this block's resume count however the block ends (finished, fell back to plain
    // calls, or threw).
    struct PublishResumes {
        const uint64_t& count;
        ~PublishResumes() { g_total_resumes.fetch_add(count, std::memory_order_relaxed); }
    } publish{block_resumes_};
    bool probing = kernel.sync == SyncKind::Sync;
    for (;;) {
        uint32_t done = 0, at_warp = 0;
        for (uint32_t k = 0; k < nthreads; ++k) {
            Fiber& f = fibers_[order ? order[k] : k];
            if (f.state == FiberState::Runnable) {
                resume(f);
                if (probing) {
                    probing = false;
                    if (f.state == FiberState::Done && !block_synced_) {
                        run_rest_plain(order, k + 1, nthreads, f.linear);
                        return;
                    }
                }
            }
            done += f.state == FiberState::Done;
            at_warp += f.state == FiberState::AtWarpOp;
        }
        // Every thread has now run until it blocked or finished.
        if (done == nthreads) return;
        if (at_warp > 0) {
            if (release_warps(nthreads)) continue;
            fail_deadlock(nthreads);
        }
        // Only barrier waiters are left (exited threads count as arrived, as on sm_70+).
        for (uint32_t i = 0; i < nthreads; ++i)
            if (fibers_[i].state == FiberState::AtBarrier) fibers_[i].state = FiberState::Runnable;
    }
}

void BlockScheduler::run_rest_plain(const uint32_t* order, uint32_t from, uint32_t nthreads, uint32_t finished_linear) {
    plain_fallback_ = true;
    plain_fallback_first_ = finished_linear;
    const dim3 bd = t_blockDim;
    try {
        for (uint32_t k = from; k < nthreads; ++k) {
            t_threadIdx = unflatten(order ? order[k] : k, bd);
            kernel_->run_one(args_);
        }
    } catch (...) {
        plain_fallback_ = false;
        throw;
    }
    plain_fallback_ = false;
}

bool BlockScheduler::release_warps(uint32_t nthreads) {
    bool released = false;
    for (uint32_t base = 0; base < nthreads; base += kWarpSize) {
        const uint32_t count = std::min(kWarpSize, nthreads - base);
        unsigned waiting = 0, live = 0, named = 0;
        for (uint32_t lane = 0; lane < count; ++lane) {
            const Fiber& f = fibers_[base + lane];
            if (f.state != FiberState::Done) live |= 1u << lane;
            if (f.state == FiberState::AtWarpOp) {
                waiting |= 1u << lane;
                named |= f.mask | (1u << lane);
            }
        }
        if (waiting == 0) continue;
        // Lanes that have exited or do not exist (a partial last warp) cannot take part; every
        // other lane a waiting lane names must have arrived too.
        const unsigned required = named & live;
        if ((required & ~waiting) != 0) continue;
        complete_warp_op(base, count, required);
        released = true;
    }
    return released;
}

void BlockScheduler::complete_warp_op(uint32_t base, uint32_t count, unsigned participants) {
    WarpOp op = WarpOp::Sync;
    bool first = true;
    for (uint32_t lane = 0; lane < count; ++lane) {
        if (!(participants >> lane & 1u)) continue;
        const Fiber& f = fibers_[base + lane];
        if (first) {
            op = f.op;
            first = false;
        } else if (f.op != op) {
            throw KernelError("kernel '" + std::string(kernel_->name) + "', block " + describe_block() + ": lanes of warp " +
                              std::to_string(base / kWarpSize) + " wait at different warp operations (" + op_name(op) +
                              " and " + op_name(f.op) + ")");
        }
    }
    unsigned votes = 0;
    for (uint32_t lane = 0; lane < count; ++lane)
        if ((participants >> lane & 1u) && fibers_[base + lane].value != 0) votes |= 1u << lane;
    for (uint32_t lane = 0; lane < count; ++lane) {
        if (!(participants >> lane & 1u)) continue;
        Fiber& f = fibers_[base + lane];
        const int width = (f.width >= 1 && f.width <= 32) ? f.width : 32;
        const int segment = static_cast<int>(lane) & ~(width - 1);
        int src = -1;
        switch (f.op) {
            case WarpOp::ShflIdx: src = segment + (f.arg & (width - 1)); break;
            case WarpOp::ShflUp: src = static_cast<int>(lane) - f.arg; if (src < segment) src = -1; break;
            case WarpOp::ShflDown: src = static_cast<int>(lane) + f.arg; if (src >= segment + width) src = -1; break;
            case WarpOp::ShflXor: src = static_cast<int>(lane) ^ f.arg; if (src >= segment + width) src = -1; break;
            default: break;
        }
        switch (f.op) {
            case WarpOp::Sync: f.result = 0; break;
            case WarpOp::Ballot: f.result = votes & f.mask; break;
            case WarpOp::Any: f.result = (votes & f.mask & participants) != 0; break;
            case WarpOp::All: f.result = (votes & f.mask & participants) == (f.mask & participants); break;
            default:
                // A source lane that does not take part (exited, outside the block, outside the
                // mask) has no value to give; CUDA leaves the result undefined, we return the
                // caller's own value, which is what a partial warp's tail typically sees.
                f.result = (src >= 0 && src < static_cast<int>(count) && (participants >> src & 1u))
                               ? fibers_[base + src].value
                               : f.value;
                break;
        }
    }
    for (uint32_t lane = 0; lane < count; ++lane)
        if (participants >> lane & 1u) fibers_[base + lane].state = FiberState::Runnable;
}

void BlockScheduler::fail_unsynchronisable(const char* what) const {
    const std::string who = "kernel '" + std::string(kernel_->name) + "': thread " + describe_thread(t_threadIdx) +
                            " of block " + describe_block() + " called " + what;
    if (kernel_->sync == SyncKind::NoSync)
        throw KernelError(who + ", but the kernel is registered VQ_KERNEL_NO_SYNC (its threads run as plain calls); "
                                "register it with VQ_KERNEL_SYNC");
    throw KernelError(who + " after thread " + describe_thread(unflatten(plain_fallback_first_, t_blockDim)) +
                      " had finished without reaching any barrier or warp operation. On the GPU a barrier that not every "
                      "thread reaches is undefined; if only some warps synchronise by design, register the kernel with "
                      "VQ_KERNEL_SYNC_DIVERGENT");
}

void BlockScheduler::fail_deadlock(uint32_t nthreads) const {
    std::string detail;
    for (uint32_t i = 0; i < nthreads && detail.size() < 400; ++i) {
        const Fiber& f = fibers_[i];
        if (f.state == FiberState::AtWarpOp)
            detail += " thread " + describe_thread(f.tid) + " waits at " + op_name(f.op) + ";";
        else if (f.state == FiberState::AtBarrier && detail.find("__syncthreads") == std::string::npos)
            detail += " thread " + describe_thread(f.tid) + " waits at __syncthreads;";
    }
    throw KernelError("kernel '" + std::string(kernel_->name) + "', block " + describe_block() +
                      ": deadlock, no barrier or warp operation can complete:" + detail);
}

void BlockScheduler::syncthreads() {
    if (current_ == nullptr) fail_unsynchronisable("__syncthreads");
    Fiber& f = *current_;
    block_synced_ = true;
    f.state = FiberState::AtBarrier;
    vqh_fiber_switch(&f.sp, scheduler_sp_);
}

uint64_t BlockScheduler::warp_op(WarpOp op, unsigned mask, uint64_t value, int arg, int width) {
    if (current_ == nullptr) fail_unsynchronisable(op_name(op));
    Fiber& f = *current_;
    block_synced_ = true;
    f.op = op;
    f.mask = mask;
    f.value = value;
    f.arg = arg;
    f.width = width;
    f.state = FiberState::AtWarpOp;
    vqh_fiber_switch(&f.sp, scheduler_sp_);
    return f.result;
}

void syncthreads() { BlockScheduler::current().syncthreads(); }

uint64_t warp_op(WarpOp op, unsigned mask, uint64_t value, int arg, int width) {
    return BlockScheduler::current().warp_op(op, mask, value, arg, width);
}

}  // namespace vqh
