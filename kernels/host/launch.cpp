// launch.cpp — the kernel registry, the pool of OS threads that run blocks, and vqh_launch.
//
// A launch hands out blocks in chunks from one atomic counter; the calling thread works too, so
// a one-block launch never wakes the pool. Launches are synchronous: when vqh_launch returns,
// every block has run (the C# HostDevice is therefore always "synchronised").
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "block_scheduler.h"
#include "host_api.h"
#include "parallel.h"

namespace vqh {

namespace {

std::vector<KernelInfo>& registry() {
    static std::vector<KernelInfo> kernels;  // function-local: safe from static-initialisation order
    return kernels;
}

void write_error(char* err, int cap, const std::string& message) {
    if (err == nullptr || cap <= 0) return;
    const size_t n = std::min(message.size(), static_cast<size_t>(cap - 1));
    std::memcpy(err, message.data(), n);
    err[n] = '\0';
}

uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

struct LaunchJob {
    const KernelInfo* kernel = nullptr;
    const std::function<void(uint64_t)>* task = nullptr;  // a parallel_for job instead of a kernel
    void** args = nullptr;
    dim3 grid, block;
    uint32_t dynamic_shared_bytes = 0;
    int order = 0;
    uint64_t seed = 0;
    uint64_t total_blocks = 0;
    uint64_t chunk = 1;
    std::atomic<uint64_t> next_block{0};
    std::atomic<bool> failed{false};
    std::mutex error_mutex;
    std::string error;

    void fail(const std::string& message) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!failed.exchange(true)) error = message;
    }
};

__thread void* t_dynamic_shared = nullptr;

// Runs the tasks of a parallel_for job on the calling OS thread until none are left.
void work_on_tasks(LaunchJob& job) {
    for (;;) {
        if (job.failed.load(std::memory_order_relaxed)) return;
        const uint64_t start = job.next_block.fetch_add(job.chunk, std::memory_order_relaxed);
        if (start >= job.total_blocks) return;
        const uint64_t end = std::min(start + job.chunk, job.total_blocks);
        try {
            for (uint64_t i = start; i < end; ++i) (*job.task)(i);
        } catch (const std::exception& e) {
            job.fail(e.what());
            return;
        }
    }
}

// Runs blocks of `job` on the calling OS thread until none are left.
void work_on(LaunchJob& job) {
    if (job.task != nullptr) {
        work_on_tasks(job);
        return;
    }
    BlockScheduler& scheduler = BlockScheduler::current();
    t_gridDim = job.grid;
    t_blockDim = job.block;
    const uint32_t nthreads = job.block.x * job.block.y * job.block.z;
    std::vector<uint32_t> order;
    if (job.order != 0) order.resize(nthreads);
    if (job.order == 1)
        for (uint32_t i = 0; i < nthreads; ++i) order[i] = nthreads - 1 - i;
    for (;;) {
        if (job.failed.load(std::memory_order_relaxed)) return;
        const uint64_t start = job.next_block.fetch_add(job.chunk, std::memory_order_relaxed);
        if (start >= job.total_blocks) return;
        const uint64_t end = std::min(start + job.chunk, job.total_blocks);
        for (uint64_t b = start; b < end; ++b) {
            t_blockIdx = uint3{static_cast<unsigned>(b % job.grid.x), static_cast<unsigned>((b / job.grid.x) % job.grid.y),
                               static_cast<unsigned>(b / (static_cast<uint64_t>(job.grid.x) * job.grid.y))};
            if (job.order == 2) {
                // A fresh permutation per block, reproducible from (seed, block).
                uint64_t state = job.seed ^ (b * 0xD1B54A32D192ED03ull);
                for (uint32_t i = 0; i < nthreads; ++i) order[i] = i;
                for (uint32_t i = nthreads; i > 1; --i) std::swap(order[i - 1], order[splitmix64(state) % i]);
            }
            t_dynamic_shared = scheduler.dynamic_shared(job.dynamic_shared_bytes, true);
            try {
                scheduler.run_block(*job.kernel, job.args, order.empty() ? nullptr : order.data(), nthreads);
            } catch (const std::exception& e) {
                job.fail(e.what());
                return;
            }
        }
    }
}

class WorkerPool {
public:
    static WorkerPool& instance() {
        static WorkerPool pool;
        return pool;
    }

    int size() const { return static_cast<int>(helpers_.size()) + 1; }

    void resize(int total) {
        std::lock_guard<std::mutex> launch_lock(launch_mutex_);
        stop_helpers();
        if (total <= 0) total = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
        stopping_ = false;
        // Each helper starts from the generation current now, so a launch that begins before the
        // helper first takes the lock is still seen as new work.
        const uint64_t start_generation = generation_.load();
        for (int i = 1; i < total; ++i) helpers_.emplace_back([this, start_generation] { helper_loop(start_generation); });
    }

    void run(LaunchJob& job) {
        std::lock_guard<std::mutex> launch_lock(launch_mutex_);  // one launch at a time, like a stream
        const int workers = size();
        job.chunk = std::max<uint64_t>(1, job.total_blocks / (static_cast<uint64_t>(workers) * 8));
        const bool use_helpers = workers > 1 && job.total_blocks > job.chunk;
        if (use_helpers) {
            std::lock_guard<std::mutex> lock(mutex_);
            job_ = &job;
            busy_.store(static_cast<int>(helpers_.size()), std::memory_order_relaxed);
            generation_.fetch_add(1, std::memory_order_release);
            wake_.notify_all();
        }
        work_on(job);
        if (use_helpers) {
            // The helpers finish within microseconds of the caller as a rule: spin a little before sleeping.
            for (int i = 0; i < kSpinIterations && busy_.load(std::memory_order_acquire) != 0; ++i) cpu_relax();
            std::unique_lock<std::mutex> lock(mutex_);
            done_.wait(lock, [this] { return busy_.load(std::memory_order_acquire) == 0; });
            job_ = nullptr;
        }
    }

    ~WorkerPool() { stop_helpers(); }

private:
    WorkerPool() { resize(0); }

    void stop_helpers() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
            wake_.notify_all();
        }
        for (auto& t : helpers_) t.join();
        helpers_.clear();
    }

    void helper_loop(uint64_t seen) {
        for (;;) {
            // A training step launches a kernel or GEMM every few tens of microseconds: spin that long for the next one
            // before sleeping on the condition variable, whose wake-up (a futex round trip and a reschedule) made the
            // helper join each launch late. Bounded (~50 µs), so an idle pool sleeps.
            for (int i = 0; i < kSpinIterations && generation_.load(std::memory_order_acquire) == seen &&
                            !stopping_.load(std::memory_order_relaxed); ++i)
                cpu_relax();
            LaunchJob* job;
            {
                std::unique_lock<std::mutex> lock(mutex_);
                wake_.wait(lock, [&] { return stopping_.load() || generation_.load() != seen; });
                if (stopping_.load()) return;
                seen = generation_.load();
                job = job_;
            }
            work_on(*job);
            std::lock_guard<std::mutex> lock(mutex_);
            if (busy_.fetch_sub(1, std::memory_order_acq_rel) == 1) done_.notify_one();
        }
    }

    static void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        asm volatile("yield");
#endif
    }

    static constexpr int kSpinIterations = 1000;

    std::mutex launch_mutex_;
    std::mutex mutex_;
    std::condition_variable wake_, done_;
    std::vector<std::thread> helpers_;
    LaunchJob* job_ = nullptr;
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> busy_{0};
    std::atomic<bool> stopping_{false};
};

}  // namespace

int register_kernel(const KernelInfo& info) {
    registry().push_back(info);
    return static_cast<int>(registry().size()) - 1;
}

void* dynamic_shared() { return t_dynamic_shared; }

int worker_count() { return WorkerPool::instance().size(); }

bool parallel_for(uint64_t count, const std::function<void(uint64_t)>& task, std::string& error) {
    if (count == 0) return true;
    LaunchJob job;
    job.task = &task;
    job.total_blocks = count;
    WorkerPool::instance().run(job);
    if (job.failed.load()) {
        error = job.error;
        return false;
    }
    return true;
}

}  // namespace vqh

using namespace vqh;

extern "C" {

int vqh_abi_version() { return 3; }

int vqh_kernel_count() { return static_cast<int>(registry().size()); }

int vqh_kernel_describe(int index, const char** name, int* sync_kind, int* argc, const unsigned short** arg_sizes,
                        const char** arg_kinds) {
    if (index < 0 || index >= vqh_kernel_count()) return 1;
    const KernelInfo& k = registry()[static_cast<size_t>(index)];
    *name = k.name;
    *sync_kind = static_cast<int>(k.sync);
    *argc = k.argc;
    *arg_sizes = k.arg_sizes;
    *arg_kinds = k.arg_kinds;
    return 0;
}

int vqh_launch(int kernel_index, const uint32_t* grid3, const uint32_t* block3, uint32_t dynamic_shared_bytes,
               void** args, int thread_order, uint64_t seed, char* err, int err_cap) {
    if (kernel_index < 0 || kernel_index >= vqh_kernel_count()) {
        write_error(err, err_cap, "no kernel with index " + std::to_string(kernel_index));
        return 1;
    }
    if (thread_order < 0 || thread_order > 2) {
        write_error(err, err_cap, "thread order must be 0 (ascending), 1 (descending) or 2 (shuffled)");
        return 1;
    }
    LaunchJob job;
    job.kernel = &registry()[static_cast<size_t>(kernel_index)];
    job.args = args;
    job.grid = dim3(grid3[0], grid3[1], grid3[2]);
    job.block = dim3(block3[0], block3[1], block3[2]);
    job.dynamic_shared_bytes = dynamic_shared_bytes;
    job.order = thread_order;
    job.seed = seed;
    job.total_blocks = static_cast<uint64_t>(grid3[0]) * grid3[1] * grid3[2];
    if (job.total_blocks == 0 || block3[0] * block3[1] * block3[2] == 0) {
        write_error(err, err_cap, "grid and block dimensions must all be at least 1");
        return 1;
    }
    WorkerPool::instance().run(job);
    if (job.failed.load()) {
        write_error(err, err_cap, job.error);
        return 1;
    }
    return 0;
}

unsigned long long vqh_fiber_resume_count() { return BlockScheduler::total_resumes(); }

void vqh_set_worker_count(int count) { WorkerPool::instance().resize(count); }

int vqh_worker_count() { return WorkerPool::instance().size(); }

}  // extern "C"
