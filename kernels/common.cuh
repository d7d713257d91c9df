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

// NVRTC has no <cfloat>/<cmath> macros; spell the constants the kernels need.
#define VQ_FLT_MAX 3.402823466e+38f
#define VQ_INFINITY __int_as_float(0x7f800000)
#define VQ_FULL_WARP_MASK 0xffffffffu
