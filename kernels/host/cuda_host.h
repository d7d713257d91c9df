// cuda_host.h — CUDA's execution model on the CPU, for kernels compiled as C++17.
//
// What a kernel file sees here is what it would see under NVRTC: threadIdx/blockIdx/blockDim/
// gridDim, __shared__, __syncthreads, __syncwarp, warp shuffles and votes, atomics, and the math
// intrinsics the kernels use. The machinery behind it lives in runtime.cpp:
//
//   * blocks run in parallel on a pool of OS threads (one block at a time per OS thread, so a
//     `__shared__` variable, declared here as a function-local `static __thread`, is shared by the
//     threads of one block and separate between blocks that run at the same time);
//   * the threads of a block run on one OS thread, either as plain calls in a loop (kernels that
//     never synchronise) or as fibers that switch at every barrier and warp operation;
//   * atomics are real atomics, because different blocks run on different OS threads.
//
// Thread-local state uses GNU `__thread` (not C++ `thread_local`) so that accesses are plain
// %fs-relative loads with no TLS wrapper call: the plain-call loop sets threadIdx once per thread.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

struct uint3 { unsigned int x, y, z; };
struct int3 { int x, y, z; };
struct dim3 {
    unsigned int x = 1, y = 1, z = 1;
    constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct float2 { float x, y; };
struct float4 { float x, y, z, w; };
struct int2 { int x, y; };
struct int4 { int x, y, z, w; };
static inline float2 make_float2(float x, float y) { return {x, y}; }
static inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

namespace vqh {

#define VQH_TLS
extern __thread uint3 t_threadIdx VQH_TLS;
extern __thread uint3 t_blockIdx VQH_TLS;
extern __thread dim3 t_blockDim VQH_TLS;
extern __thread dim3 t_gridDim VQH_TLS;

// How the CPU may run a kernel's threads; see common.cuh.
enum class SyncKind : int { NoSync = 0, Sync = 1, SyncDivergent = 2 };

// Warp operations: every lane deposits a request and waits until the lanes named by the mask
// have all arrived; the scheduler then computes every lane's result at once.
enum class WarpOp : int { Sync = 0, ShflIdx, ShflUp, ShflDown, ShflXor, Ballot, Any, All };

void syncthreads();
uint64_t warp_op(WarpOp op, unsigned mask, uint64_t value, int arg, int width);
void* dynamic_shared();

// A kernel as the runtime knows it: name, how its threads may run, its argument list, and two
// ways to run it — one thread (for fibers) or a whole block's threads as plain calls.
struct KernelInfo {
    const char* name;
    SyncKind sync;
    int argc;
    const unsigned short* arg_sizes;
    const char* arg_kinds;  // one char per argument: p pointer, f float, d double, i signed int, u unsigned
    void (*run_one)(void** args);
    void (*run_block_plain)(void** args, const uint32_t* order, uint32_t nthreads);
};
int register_kernel(const KernelInfo& info);

template <class T>
constexpr char arg_kind() {
    return std::is_pointer<T>::value ? 'p'
         : std::is_same<T, float>::value ? 'f'
         : std::is_same<T, double>::value ? 'd'
         : std::is_signed<T>::value ? 'i'
         : 'u';
}

template <auto F>
struct KernelTraits;

template <class... A, void (*F)(A...)>
struct KernelTraits<F> {
    using Values = std::tuple<std::decay_t<A>...>;
    static constexpr int argc = sizeof...(A);
    static constexpr unsigned short sizes[sizeof...(A) + 1] = {static_cast<unsigned short>(sizeof(std::decay_t<A>))..., 0};
    static constexpr char kinds[sizeof...(A) + 1] = {arg_kind<std::decay_t<A>>()..., 0};

    template <std::size_t... I>
    static Values unpack(void** args, std::index_sequence<I...>) {
        return Values{*static_cast<std::decay_t<A>*>(args[I])...};
    }

    static void run_one(void** args) {
        std::apply(F, unpack(args, std::index_sequence_for<A...>{}));
    }

    // All threads of the current block as plain calls; `order` lists linear thread indices
    // (null: ascending). The kernel is a compile-time constant here, so it inlines into the loop.
    static void run_block_plain(void** args, const uint32_t* order, uint32_t nthreads) {
        const Values values = unpack(args, std::index_sequence_for<A...>{});
        const dim3 bd = t_blockDim;
        if (order == nullptr && bd.y == 1 && bd.z == 1) {
            t_threadIdx.y = 0;
            t_threadIdx.z = 0;
            for (uint32_t x = 0; x < nthreads; ++x) {
                t_threadIdx.x = x;
                std::apply(F, values);
            }
            return;
        }
        if (order == nullptr) {
            // 2-D and 3-D blocks in CUDA's linear order (x fastest) without dividing the linear index per thread.
            for (uint32_t z = 0; z < bd.z; ++z) {
                t_threadIdx.z = z;
                for (uint32_t y = 0; y < bd.y; ++y) {
                    t_threadIdx.y = y;
                    for (uint32_t x = 0; x < bd.x; ++x) {
                        t_threadIdx.x = x;
                        std::apply(F, values);
                    }
                }
            }
            return;
        }
        for (uint32_t i = 0; i < nthreads; ++i) {
            const uint32_t linear = order ? order[i] : i;
            t_threadIdx.x = linear % bd.x;
            t_threadIdx.y = (linear / bd.x) % bd.y;
            t_threadIdx.z = linear / (bd.x * bd.y);
            std::apply(F, values);
        }
    }
};

template <auto F>
struct Registrar {
    Registrar(const char* name, SyncKind sync) {
        using T = KernelTraits<F>;
        register_kernel(KernelInfo{name, sync, T::argc, T::sizes, T::kinds, &T::run_one, &T::run_block_plain});
    }
};

template <class T>
static inline uint64_t to_bits(T v) {
    static_assert(sizeof(T) <= 8, "warp operations move at most 8 bytes");
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    return bits;
}
template <class T>
static inline T from_bits(uint64_t bits) {
    T v;
    std::memcpy(&v, &bits, sizeof(T));
    return v;
}

}  // namespace vqh

// ---- the CUDA names -------------------------------------------------------------------------
#define threadIdx (::vqh::t_threadIdx)
#define blockIdx (::vqh::t_blockIdx)
#define blockDim (::vqh::t_blockDim)
#define gridDim (::vqh::t_gridDim)
#define warpSize 32

// Kernels inline into the registry's loops (KernelTraits::run_block_plain runs a block's threads as plain
// calls): inlined, the thread-local index variables are looked up once per block instead of on every call
// (libvqvae_host is dlopen()ed, so each lookup is a call to _dl_tlsdesc_dynamic), and the compiler sees
// the loop over threads. GCC otherwise declined to inline the larger kernels (im2col, col2im), and the
// per-thread lookups cost 6–8 % of a training step.
#define __global__ __attribute__((always_inline)) inline
#define __device__ static
#define __host__
#define __forceinline__ __attribute__((always_inline)) inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static __thread
#define __constant__ static const

#define VQ_KERNEL_NO_SYNC(name) static ::vqh::Registrar<&name> vqh_registrar_##name(#name, ::vqh::SyncKind::NoSync);
#define VQ_KERNEL_SYNC(name) static ::vqh::Registrar<&name> vqh_registrar_##name(#name, ::vqh::SyncKind::Sync);
#define VQ_KERNEL_SYNC_DIVERGENT(name) \
    static ::vqh::Registrar<&name> vqh_registrar_##name(#name, ::vqh::SyncKind::SyncDivergent);
#define VQ_DYNAMIC_SHARED(T, name) T* name = static_cast<T*>(::vqh::dynamic_shared())

// ---- synchronisation ------------------------------------------------------------------------
static inline void __syncthreads() { ::vqh::syncthreads(); }
static inline void __syncwarp(unsigned mask = 0xffffffffu) { ::vqh::warp_op(::vqh::WarpOp::Sync, mask, 0, 0, 32); }
static inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

template <class T>
static inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    return ::vqh::from_bits<T>(::vqh::warp_op(::vqh::WarpOp::ShflIdx, mask, ::vqh::to_bits(v), src, width));
}
template <class T>
static inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return ::vqh::from_bits<T>(::vqh::warp_op(::vqh::WarpOp::ShflUp, mask, ::vqh::to_bits(v), (int)delta, width));
}
template <class T>
static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return ::vqh::from_bits<T>(::vqh::warp_op(::vqh::WarpOp::ShflDown, mask, ::vqh::to_bits(v), (int)delta, width));
}
template <class T>
static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    return ::vqh::from_bits<T>(::vqh::warp_op(::vqh::WarpOp::ShflXor, mask, ::vqh::to_bits(v), lane_mask, width));
}
static inline unsigned __ballot_sync(unsigned mask, int pred) {
    return (unsigned)::vqh::warp_op(::vqh::WarpOp::Ballot, mask, pred != 0, 0, 32);
}
static inline int __any_sync(unsigned mask, int pred) { return (int)::vqh::warp_op(::vqh::WarpOp::Any, mask, pred != 0, 0, 32); }
static inline int __all_sync(unsigned mask, int pred) { return (int)::vqh::warp_op(::vqh::WarpOp::All, mask, pred != 0, 0, 32); }

// ---- atomics: atomic across OS threads (blocks run in parallel) ------------------------------
static inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
static inline unsigned atomicAdd(unsigned* p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
static inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
template <class F, class Bits>
static inline F vqh_atomic_float_update(F* p, F v, F (*op)(F, F)) {
    Bits* bp = reinterpret_cast<Bits*>(p);
    Bits old_bits = __atomic_load_n(bp, __ATOMIC_RELAXED);
    for (;;) {
        F old = ::vqh::from_bits<F>(old_bits);
        Bits new_bits = (Bits)::vqh::to_bits(op(old, v));
        if (__atomic_compare_exchange_n(bp, &old_bits, new_bits, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) return old;
    }
}
static inline float atomicAdd(float* p, float v) {
    return vqh_atomic_float_update<float, uint32_t>(p, v, [](float a, float b) { return a + b; });
}
static inline double atomicAdd(double* p, double v) {
    return vqh_atomic_float_update<double, uint64_t>(p, v, [](double a, double b) { return a + b; });
}
template <class T>
static inline T vqh_atomic_int_update(T* p, T v, bool take_min) {
    T old = __atomic_load_n(p, __ATOMIC_RELAXED);
    for (;;) {
        T desired = take_min ? (v < old ? v : old) : (v > old ? v : old);
        if (desired == old) return old;
        if (__atomic_compare_exchange_n(p, &old, desired, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) return old;
    }
}
static inline int atomicMin(int* p, int v) { return vqh_atomic_int_update(p, v, true); }
static inline unsigned atomicMin(unsigned* p, unsigned v) { return vqh_atomic_int_update(p, v, true); }
static inline int atomicMax(int* p, int v) { return vqh_atomic_int_update(p, v, false); }
static inline unsigned atomicMax(unsigned* p, unsigned v) { return vqh_atomic_int_update(p, v, false); }
static inline int atomicCAS(int* p, int compare, int v) {
    __atomic_compare_exchange_n(p, &compare, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return compare;
}
static inline unsigned atomicCAS(unsigned* p, unsigned compare, unsigned v) {
    __atomic_compare_exchange_n(p, &compare, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return compare;
}
static inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long compare, unsigned long long v) {
    __atomic_compare_exchange_n(p, &compare, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return compare;
}
static inline int atomicExch(int* p, int v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
static inline unsigned atomicExch(unsigned* p, unsigned v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
static inline float atomicExch(float* p, float v) {
    uint32_t old = __atomic_exchange_n(reinterpret_cast<uint32_t*>(p), ::vqh::to_bits(v) & 0xffffffffu, __ATOMIC_SEQ_CST);
    return ::vqh::from_bits<float>(old);
}

// ---- math and bit intrinsics -----------------------------------------------------------------
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
static inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }
// __expf and __logf: glibc's <math.h> already declares both (as exact expf/logf).
static inline float __fdividef(float a, float b) { return a / b; }
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline int __float_as_int(float x) { return ::vqh::from_bits<int>(::vqh::to_bits(x)); }
static inline unsigned __float_as_uint(float x) { return ::vqh::from_bits<unsigned>(::vqh::to_bits(x)); }
static inline float __int_as_float(int x) { return ::vqh::from_bits<float>(::vqh::to_bits(x)); }
static inline float __uint_as_float(unsigned x) { return ::vqh::from_bits<float>(::vqh::to_bits(x)); }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __clz(unsigned x) { return x ? __builtin_clz(x) : 32; }
static inline int __ffs(unsigned x) { return __builtin_ffs((int)x); }
template <class T>
static inline T __ldg(const T* p) { return *p; }
