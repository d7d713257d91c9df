// reduce_two_pass.cuh — the one deterministic reduction to a scalar, in two passes, that every
// loss, norm and sum uses (reduce.cu, losses.cu, softmax.cu, clip.cu, conv.cu, codebook_update.cu).
//
//   pass 1  grid_stride_block_sum: each thread accumulates term(i) over its grid-stride slice
//           i = blockIdx.x·blockDim.x + threadIdx.x + j·blockDim.x·gridDim.x, in ascending j, in a
//           register; the block folds its threads' values with block_sum_f32 (block_reduce.cuh).
//           The kernel writes the block's value as partial[blockIdx.x].
//   pass 2  block_strided_sum over the G partials in ONE block (thread t adds t, t + B, t + 2B, ...),
//           folded the same way.
// No float atomics: the additions form a fixed tree for a given (n, G, B), so the result is the same
// bits whatever order threads and blocks run in. G is chosen on the host from n alone
// (src/VqVaeCuda/Ops/ScalarReduction.cs), B is VQ_REDUCE_BLOCK.
// `term` may have side effects (softmax.cu writes lse[q] from it); it is called once per index.
// Both functions contain a barrier: every thread of the block must call them, and the kernel is
// registered VQ_KERNEL_SYNC. Their result is valid in thread 0 only.
#pragma once
#include "block_reduce.cuh"

template <class Term>
__device__ __forceinline__ float grid_stride_block_sum(int n, Term term) {
    float acc = 0.0f;
    for (int i = vq_grid_start(n); i < n; i = vq_grid_next(i, n)) acc += term(i);
    return block_sum_f32(acc);
}

template <class Term>
__device__ __forceinline__ float block_strided_sum(int n, Term term) {
    float acc = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) acc += term(i);
    return block_sum_f32(acc);
}
