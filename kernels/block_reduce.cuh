// block_reduce.cuh — the warp and block sums under every reduction (reduce_two_pass.cuh builds the
// grid- and block-strided sums on them): each warp folds its 32 values with shuffles (no shared
// memory, no barrier), warp 0 folds the per-warp sums written to shared memory after one __syncthreads.
// A kernel that calls block_sum_f32 has a barrier: register it VQ_KERNEL_SYNC, and let every
// thread of the block call it.
#pragma once
#include "common.cuh"

// The block size the reduction kernels are launched with (a multiple of 32, at most 1024).
#define VQ_REDUCE_BLOCK 256

__device__ __forceinline__ float warp_sum_f32(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(VQ_FULL_WARP_MASK, v, offset);
    return v;
}

// The sum over the block of each thread's `v`, valid in thread 0 only. The additions form a fixed
// tree for a given block size, so the result does not depend on the order threads run in.
// Calling it twice in one kernel needs a __syncthreads between the calls: warp 0 may still be
// reading the shared slots that the second call's warps write.
__device__ __forceinline__ float block_sum_f32(float v) {
    __shared__ float warp_sums[32];
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    v = warp_sum_f32(v);
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    const int warps = (blockDim.x + 31) >> 5;
    v = 0.0f;
    if (warp == 0) {
        v = lane < warps ? warp_sums[lane] : 0.0f;
        v = warp_sum_f32(v);
    }
    return v;
}
