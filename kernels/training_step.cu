// training_step.cu — the training step's own bookkeeping, kept on the device so that a step has no host
// read inside it and can be captured as one CUDA graph (DESIGN.md, "One step, two shapes"). The host
// reads these accumulators at log intervals, between steps.
//
// `step` points at the step's number (1-based, an int the host writes before each step, beside Adam's
// schedule): a captured graph's arguments are frozen, so everything that changes per step is read from memory.
//
//   kernel                launch                                                  FLOPs   bytes
//   step_accumulate_f32   ONE thread (grid 1, block 1): sums[0..2] += the step's   ~10     ~60
//                         reconstruction, codebook and commitment losses (double,
//                         in step order: the same sums the host's window forms);
//                         sums[3] += 1. When a loss or the gradient norm is not
//                         finite: nonfinite[0] += 1 and nonfinite[1] = the first
//                         such step. Serial by design: 4 values, once per step.
//   usage_accumulate_i32  grid-stride over K codes: block (256,1,1),               K       16K
//                         grid (min(ceil(K/256), 65535),1,1); barrier-free.
//                         interval_counts[k] += counts[k]; where counts[k] > 0,
//                         last_used[k] = *step (the quantizer's record of use).
#include "common.cuh"

__device__ __forceinline__ bool vq_is_finite(float x) { return x - x == 0.0f; }  // false for NaN and ±Inf

extern "C" __global__ void step_accumulate_f32(const float* __restrict__ reconstruction, const float* __restrict__ codebook,
                                               const float* __restrict__ commitment, const float* __restrict__ grad_norm,
                                               const int* __restrict__ step, double* __restrict__ sums, int* __restrict__ nonfinite) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    const float r = reconstruction[0], c = codebook[0], m = commitment[0], g = grad_norm[0];
    sums[0] += (double)r;
    sums[1] += (double)c;
    sums[2] += (double)m;
    sums[3] += 1.0;
    if (!(vq_is_finite(r) && vq_is_finite(c) && vq_is_finite(m) && vq_is_finite(g))) {
        if (nonfinite[0] == 0) nonfinite[1] = step[0];
        nonfinite[0] += 1;
    }
}
VQ_KERNEL_NO_SYNC(step_accumulate_f32)

extern "C" __global__ void usage_accumulate_i32(const int* __restrict__ counts, const int* __restrict__ step, int* __restrict__ interval_counts,
                                                int* __restrict__ last_used, int K) {
    for (int k = vq_grid_start(K); k < K; k = vq_grid_next(k, K)) {
        const int n = counts[k];
        interval_counts[k] += n;
        if (n > 0) last_used[k] = step[0];
    }
}
VQ_KERNEL_NO_SYNC(usage_accumulate_i32)
