// softmax.cu — softmax cross-entropy over the class axis, averaged over positions.
//
// logits are [outer, K, inner] (the prior's [N, K, H, W] with inner = H·W, or [N, K] with inner = 1),
// targets int32 [outer, inner]: position q = o·inner + p has logits l_k = logits[(o·K + k)·inner + p]
// and target t = targets[q]. With P = outer·inner positions:
//   L = (1/P) Σ_q ( lse_q − l_t ),   lse_q = m_q + log Σ_k exp(l_k − m_q),   m_q = max_k l_k
// (subtracting the max keeps exp from overflowing; the largest term is exp(0) = 1, so the log never
// sees 0). dL/dl_k = (softmax_k − [k = t]) / P · dL, with softmax_k = exp(l_k − lse_q).
// A target outside [0, K) makes its loss and its gradients NaN, so a bad label shows up in the loss
// instead of reading out of bounds (the targets live on the device; checking them on the host
// would cost a copy and a sync).
//
//   softmax_xent_forward_f32   pass 1 of a deterministic two-pass mean (reduce_two_pass.cuh). One thread per position
//       (grid-stride): two passes over its K logits (max, then Σ exp), writes lse[q] for the
//       backward, accumulates its loss; block b writes partial[b] = scale · Σ (scale = 1/P).
//       Pass 2 is reduce.cu's sum_f32_partials with one block: loss[0] = Σ_b partial[b].
//       Launch: block (256,1,1) (VQ_REDUCE_BLOCK), grid (G,1,1), G = min(ceil(P/256), 512).
//       FLOPs: ~4PK (max, subtract, exp, add) + 3P. Bytes: 4PK (logits; the second pass hits
//       cache) + 4P targets + 4P lse written + 4G.
//   softmax_xent_backward_f32  dlogits += (exp(l − lse_q) − [k = t]) · scale · dL: one thread per
//       logit (coalesced in both layouts); grid-stride over m = P·K, block (256,1,1), grid
//       (min(ceil(m/256), 65535),1,1); barrier-free.
//       FLOPs: ~5m. Bytes: 12m (read logits and dlogits, write dlogits) + 8P (lse, targets; cached).
#include "reduce_two_pass.cuh"

extern "C" __global__ void softmax_xent_forward_f32(const float* __restrict__ logits, const int* __restrict__ targets,
                                                    float* __restrict__ lse, float* __restrict__ partial,
                                                    int classes, int inner, int positions, float scale) {
    const float acc = grid_stride_block_sum(positions, [&](int q) {
        const int o = q / inner;
        const int p = q - o * inner;
        const float* l = logits + o * classes * inner + p;
        float m = -VQ_INFINITY;
        for (int k = 0; k < classes; k++) m = fmaxf(m, l[k * inner]);
        float sum = 0.0f;
        for (int k = 0; k < classes; k++) sum += expf(l[k * inner] - m);
        const float lse_q = m + logf(sum);
        lse[q] = lse_q;
        const int t = targets[q];
        return (t >= 0 && t < classes) ? lse_q - l[t * inner] : __int_as_float(0x7fc00000);
    });
    if (threadIdx.x == 0) partial[blockIdx.x] = scale * acc;
}
VQ_KERNEL_SYNC(softmax_xent_forward_f32)

extern "C" __global__ void softmax_xent_backward_f32(const float* __restrict__ logits, const int* __restrict__ targets,
                                                     const float* __restrict__ lse, const float* __restrict__ dloss,
                                                     float* __restrict__ dlogits, int classes, int inner, int positions,
                                                     float scale) {
    const float g = scale * dloss[0];
    const int m = positions * classes;
    for (int e = vq_grid_start(m); e < m; e = vq_grid_next(e, m)) {
        const int p = e % inner;
        const int ok = e / inner;
        const int k = ok % classes;
        const int q = (ok / classes) * inner + p;
        const int t = targets[q];
        const float onehot = k == t ? 1.0f : 0.0f;
        const float d = (t >= 0 && t < classes) ? expf(logits[e] - lse[q]) - onehot : __int_as_float(0x7fc00000);
        dlogits[e] += d * g;
    }
}
VQ_KERNEL_NO_SYNC(softmax_xent_backward_f32)
