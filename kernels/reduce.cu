// reduce.cu — sum of a float32 vector.
//
// Two variants, side by side (kernels/NOTES.md has their measurements):
//   sum_f32_partials  pass 1 of 2: block b writes the sum of its grid-stride slice to partial[b];
//                     a second launch with one block sums the partials. Deterministic for a fixed
//                     grid: no atomics, the same additions in the same tree every run.
//   sum_f32_atomic    one pass: each block adds its sum to *out with atomicAdd. One launch fewer,
//                     but the order of the float additions depends on block timing.
// Inside a block both reduce the same way (reduce_two_pass.cuh's grid_stride_block_sum): each thread
// accumulates its slice in a register, each warp folds its 32 values with shuffles (no shared memory,
// no barrier), warp 0 folds the per-warp sums written to shared memory after one __syncthreads.
//
// Launch shape: block = (B,1,1) with B a multiple of 32, B <= 1024 (256 is the default);
// grid = (G,1,1), G >= 1; pass 2 of the two-pass form: grid 1, input = the G partials.
// FLOPs: n additions. Bytes: 4n read + 4G written (pass 1), 4G read + 4 written (pass 2).
#include "common.cuh"
#include "reduce_two_pass.cuh"

extern "C" __global__ void sum_f32_partials(const float* __restrict__ x, float* __restrict__ partial, int n) {
    const float acc = grid_stride_block_sum(n, [&](int i) { return x[i]; });
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}
VQ_KERNEL_SYNC(sum_f32_partials)

extern "C" __global__ void sum_f32_atomic(const float* __restrict__ x, float* __restrict__ out, int n) {
    const float acc = grid_stride_block_sum(n, [&](int i) { return x[i]; });
    if (threadIdx.x == 0) atomicAdd(out, acc);
}
VQ_KERNEL_SYNC(sum_f32_atomic)
