// common.cuh — the one header every kernel file includes.
//
// Kernels are written once, in CUDA C, and built for two targets:
//   * the GPU: NVRTC compiles the file as CUDA (this header is handed to NVRTC by name);
//   * the CPU: CMake compiles the same file as C++17, and kernels/host/cuda_host.h supplies
//     CUDA's execution model (threadIdx, __shared__, __syncthreads, shuffles, atomics, ...).
//
// The few things that cannot be spelled identically on both targets are macros here:
//   VQ_KERNEL_NO_SYNC(name)         registers a kernel that never synchronises: the CPU runs its
//                                   threads as plain calls in a loop (a barrier there is an error);
//   VQ_KERNEL_SYNC(name)            a kernel whose threads all reach the same barriers / warp ops;
//                                   the CPU runs the block's threads as fibers that switch at them;
//   VQ_KERNEL_SYNC_DIVERGENT(name)  a kernel in which some threads synchronise and others do not
//                                   (e.g. warp shuffles inside `if (threadIdx.x < 32)`): always fibers;
//   VQ_DYNAMIC_SHARED(T, name)      declares the block's dynamic shared memory as `T name[]`.
// On the GPU the registrations expand to nothing.
#pragma once

#if defined(__CUDACC_RTC__) || defined(__CUDACC__)
#define VQ_TARGET_GPU 1
#define VQ_KERNEL_NO_SYNC(name)
#define VQ_KERNEL_SYNC(name)
#define VQ_KERNEL_SYNC_DIVERGENT(name)
#define VQ_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#else
#define VQ_TARGET_HOST 1
#include "host/cuda_host.h"
#endif

// Grid-stride loops over x:
//   for (int i = vq_grid_start(n); i < n; i = vq_grid_next(i, n)) y[i] = ...;
// Counts are ints (no op passes 2^31 elements or more), but the plain loop
//   for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
// breaks near 2^31: i += stride overflows once i + stride passes 2^31 - 1 (with a grid that covers n
// once the stride is about n, so already for n > 2^30), and a grid covering n in whole blocks may start
// its last threads past 2^31 - 1; either way the loop goes on at a negative index. These two helpers keep
// the index an int, so index arithmetic and divisions stay 32-bit, and never overflow: the start is
// clamped to n, and the step goes to n instead of past it. Measured against the
// alternative of a 64-bit loop counter (kernels/NOTES.md, "Grid-stride loops near 2^31"): a signed one
// cost 6-20 registers per kernel, an unsigned one 0-9 and occupancy on six kernel/architecture pairs;
// these cost less (the NOTES table).
// Both work in unsigned 32 bits: the launch validator refuses grids of 2^32 threads or more along x, so
// neither the first index nor the stride can wrap (64-bit forms cost up to 8 registers more on sm_70/90).
__device__ __forceinline__ int vq_grid_start(int n) {
    const unsigned first = blockIdx.x * blockDim.x + threadIdx.x;
    return first < (unsigned)(n > 0 ? n : 0) ? (int)first : n;
}
__device__ __forceinline__ int vq_grid_next(int i, int n) {
    const unsigned stride = blockDim.x * gridDim.x;
    return (unsigned)(n - i) > stride ? i + (int)stride : n;  // i < n, so 0 < n - i <= 2^31 - 1, and then i + stride < n
}

// The cpu device's pointwise kernels (the *_chunks_f32 forms beside elementwise.cu's and activations.cu's grid-stride
// ones) give each thread ONE contiguous run of elements, [begin, end): a plain loop, which the compiler vectorises. The
// grid-stride forms, the GPU's (consecutive threads on consecutive elements: coalesced), give each thread elements a
// grid apart, which on the CPU — a block's threads run as plain calls one after another — is one scalar element per
// call, with the loop's bookkeeping around it. Runs are multiples of 16 floats (64 bytes), so only the last is ragged.
__device__ __forceinline__ void vq_chunk_bounds(int n, int* begin, int* end) {
    const int threads = (int)(gridDim.x * blockDim.x), t = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    const long long per = ((long long)(n / threads) + 16) & ~15LL;  // ≥ ceil(n / threads), a multiple of 16; 64-bit: no overflow near 2^31
    const long long first = (long long)t * per;
    *begin = first < n ? (int)first : n;
    *end = (long long)n - *begin > per ? (int)(*begin + per) : n;
}

// x where keep, else +0, without a branch: the bits of x ANDed with a mask of all ones or all zeros. On the CPU GCC
// compiles the plain select `c ? x : 0.0f` in a loop it does not vectorise (a grid-stride loop, a strided store) to a
// compare and a jump, which mispredicts on about half of a layer's activations; this is a setcc and an AND. The same bits
// as the select (NaN and −0 give +0 for keep = x > 0). In a unit-stride loop the plain select is the better form: GCC
// vectorises it (a packed compare and an AND) and not this one. A GPU compiles either to a predicated select.
// (activations.cu's ReLU, conv.cu's fused ReLU; kernels/NOTES.md, "ReLU without a branch".)
__device__ __forceinline__ float vq_keep_or_zero(float x, bool keep) { return __int_as_float(__float_as_int(x) & -(int)keep); }

// NVRTC has no <cfloat>/<cmath> macros; spell the constants the kernels need.
#define VQ_FLT_MAX 3.402823466e+38f
#define VQ_INFINITY __int_as_float(0x7f800000)
#define VQ_FULL_WARP_MASK 0xffffffffu
