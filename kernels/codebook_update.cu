// codebook_update.cu — how the quantizer's codebook learns, from the per-code counts n_k and sums
// s_k = Σ_{m: idx[m]=k} z_m (segment_sum.cu: exact counts, deterministic sums). E is [K, D] row-major.
//
// Codebook loss (the paper's second term), n = M·D elements of z:
//   vq_codebook_grad_f32      dE[k, d] += coef·(counts[k]·E[k, d] − s_k[d]), coef = 2/n: the gradient of the
//       codebook loss (1/n)Σ_m ‖sg[z_m] − e_{k_m}‖², i.e. Σ over the vectors on k of 2(e_k − z_m)/n.
//       grid-stride over KD: block (256), grid (min(ceil(KD/256), 65535)).     FLOPs 3KD   bytes 16KD + 4K
//
// The EMA codebook (the paper's appendix), γ = decay, ε = Laplace smoothing:
//   vq_ema_counts_f32         N_k ← γN_k + (1−γ)n_k; total = Σ_k N_k (reduce_two_pass.cuh's block-strided
//       sum: a fixed tree). ONE block of 256 (barriers).                         FLOPs 4K    bytes 12K + 4
//   vq_ema_codebook_f32       m_k ← γm_k + (1−γ)s_k; Ñ_k = (N_k + ε)/(total + Kε)·total; e_k = m_k / Ñ_k.
//       grid-stride over KD: block (256), grid (min(ceil(KD/256), 65535)).     FLOPs 8KD   bytes 16KD + 4K
#include "common.cuh"
#include "reduce_two_pass.cuh"

extern "C" __global__ void vq_codebook_grad_f32(const float* __restrict__ E, const int* __restrict__ counts, const float* __restrict__ sums,
                                                float* __restrict__ dE, float coef, int K, int D) {
    for (int i = vq_grid_start(K * D); i < K * D; i = vq_grid_next(i, K * D))
        dE[i] += coef * ((float)counts[i / D] * E[i] - sums[i]);
}
VQ_KERNEL_NO_SYNC(vq_codebook_grad_f32)

// ---- EMA codebook ----------------------------------------------------------------------------------------

extern "C" __global__ void vq_ema_counts_f32(const int* __restrict__ counts, float* __restrict__ cluster_size, float* __restrict__ total,
                                             float decay, int K) {
    const float acc = block_strided_sum(K, [&](int k) {
        const float n = decay * cluster_size[k] + (1.0f - decay) * (float)counts[k];
        cluster_size[k] = n;
        return n;
    });
    if (threadIdx.x == 0) total[0] = acc;
}
VQ_KERNEL_SYNC(vq_ema_counts_f32)

extern "C" __global__ void vq_ema_codebook_f32(const float* __restrict__ sums, const float* __restrict__ cluster_size,
                                               const float* __restrict__ total, float* __restrict__ ema_sums, float* __restrict__ E,
                                               float decay, float epsilon, int K, int D) {
    const float n_total = total[0];
    for (int i = vq_grid_start(K * D); i < K * D; i = vq_grid_next(i, K * D)) {
        const float w = decay * ema_sums[i] + (1.0f - decay) * sums[i];
        ema_sums[i] = w;
        const float smoothed = (cluster_size[i / D] + epsilon) / (n_total + (float)K * epsilon) * n_total;
        E[i] = w / smoothed;
    }
}
VQ_KERNEL_NO_SYNC(vq_ema_codebook_f32)
