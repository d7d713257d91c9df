// losses.cu — the mean squared error, L = (1/n) Σ (p_i − t_i)², forward and backward, and the vector
// quantizer's two loss terms (which are an MSE between z_e and z_q) with its straight-through backward.
//
// The reconstruction term of the VQ-VAE loss, and (with a stop-gradient on one side) its codebook
// and commitment terms. The loss stays on the device: the forward writes a [1] tensor and the
// backward reads the upstream gradient dL from device memory, so a training step never waits on
// the host.
//
// The forwards are reduce_two_pass.cuh's deterministic two-pass reduction (no float atomics: the same
// additions in the same tree whatever order threads and blocks run in):
//   mse_partials_f32  pass 1: block b writes partial[b] = scale · Σ (p − t)² over its grid-stride
//                     slice (scale = 1/n for Losses.Mse, applied per block so that pass 2 is a plain
//                     sum; scale = 1 for the quantizer, whose pass 2 divides).
//   pass 2 of Losses.Mse is reduce.cu's sum_f32_partials with one block: loss[0] = Σ_b partial[b].
//   Launch: block (VQ_REDUCE_BLOCK = 256,1,1); grid (G,1,1) with G = min(ceil(n/256), 512) — a
//   function of n only, so the tree is fixed for a given size (the quantizer: G ≤ 256, see
//   VectorQuantizer). Pass 2: grid 1, block 256, G inputs.
//   FLOPs: 3n (subtract, multiply, add) + G. Bytes: 8n read + 4G written; pass 2 4G read + 4 written.
//
//   mse_partials_chunks_f32   the cpu device's pass 1 (LossKernels picks it there): the same partial[b], each block ONE
//                     thread summing its contiguous run of the elements (common.cuh, vq_chunk_bounds: runs of
//                     ⌊n/G⌋ + 16 rounded down to a multiple of 16) in eight running sums (element j of the run into sum
//                     j mod 8, the eight added pairwise at the end), barrier-free: the
//                     block fold of mse_partials_f32 costs the cpu device ~35 ns per thread per shuffle or barrier (its
//                     fibers): 15% of the fashion-mnist quantizer forward's samples. Another tree than the GPU's,
//                     fixed by (n, G), so every thread order gives the same bits; on a GPU one thread a block would
//                     leave the SMs idle, so the GPU keeps mse_partials_f32.
//   Launch: grid (G,1,1) as mse_partials_f32, block (1,1,1) (a partial per thread).
//   FLOPs: 3n + 8G. Bytes: 8n read + 4G written.
//
//   mse_backward_f32  grad[i] += alpha · dL · (p_i − t_i), dL = dloss[0] read on the device.
//                     alpha = 2/n for the prediction, −2/n for the target (when it needs a gradient).
//   Launch: grid-stride, block (256,1,1), grid (min(ceil(n/256), 65535),1,1); barrier-free.
//   FLOPs: 3n. Bytes: 16n (read p, t, grad; write grad) + 4.
//
// The quantizer (z_e, z_q of n = M·D elements, NCHW):
//   vq_losses_f32     pass 2 after mse_partials_f32 (scale 1): codebook_loss = commitment_loss =
//                     Σ partial / n. The two losses have the same value, mean over all n elements of
//                     (z_e − z_q)² (PyTorch's F.mse_loss); they differ only in where their gradients go
//                     (see the ops layer). ONE block of 256.                     FLOPs G + 1   bytes 4G + 8
//   vq_straight_through_backward_f32   dz_e += dz_q + coef·(z_e − z_q), coef = 2β/n: the straight-through
//                     copy of the decoder's gradient fused with the gradient of β·commitment_loss.
//                     grid-stride over n, block (256), barrier-free.  FLOPs 4n   bytes 20n (read z_e, z_q,
//                     dz_q, dz_e; write dz_e)
#include "reduce_two_pass.cuh"

extern "C" __global__ void mse_partials_f32(const float* __restrict__ prediction, const float* __restrict__ target,
                                            float* __restrict__ partial, float scale, int n) {
    const float acc = grid_stride_block_sum(n, [&](int i) {
        const float d = prediction[i] - target[i];
        return d * d;
    });
    if (threadIdx.x == 0) partial[blockIdx.x] = scale * acc;
}
VQ_KERNEL_SYNC(mse_partials_f32)

extern "C" __global__ void mse_partials_chunks_f32(const float* __restrict__ prediction, const float* __restrict__ target,
                                                   float* __restrict__ partial, float scale, int n) {
    int begin, end;
    vq_chunk_bounds(n, &begin, &end);  // the thread's run, as the pointwise *_chunks_f32 kernels take theirs
    float lanes[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    int i = begin;
    for (; i + 8 <= end; i += 8)
        for (int l = 0; l < 8; l++) {
            const float d = prediction[i + l] - target[i + l];
            lanes[l] += d * d;
        }
    for (; i < end; i++) {
        const float d = prediction[i] - target[i];
        lanes[(i - begin) & 7] += d * d;
    }
    partial[blockIdx.x * blockDim.x + threadIdx.x] = scale * (((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7])));
}
VQ_KERNEL_NO_SYNC(mse_partials_chunks_f32)

extern "C" __global__ void mse_backward_f32(const float* __restrict__ prediction, const float* __restrict__ target,
                                            const float* __restrict__ dloss, float* __restrict__ grad, float alpha, int n) {
    const float k = alpha * dloss[0];
    for (int i = vq_grid_start(n); i < n; i = vq_grid_next(i, n))
        grad[i] += k * (prediction[i] - target[i]);
}
VQ_KERNEL_NO_SYNC(mse_backward_f32)

extern "C" __global__ void vq_losses_f32(const float* __restrict__ partial, float* __restrict__ codebook_loss,
                                         float* __restrict__ commitment_loss, int partials, float inv_count) {
    const float acc = block_strided_sum(partials, [&](int i) { return partial[i]; });
    if (threadIdx.x == 0) {
        const float mean = acc * inv_count;
        codebook_loss[0] = mean;
        commitment_loss[0] = mean;
    }
}
VQ_KERNEL_SYNC(vq_losses_f32)

extern "C" __global__ void vq_straight_through_backward_f32(const float* __restrict__ ze, const float* __restrict__ zq,
                                                            const float* __restrict__ dzq, float* __restrict__ dze, float coef, int n) {
    for (int i = vq_grid_start(n); i < n; i = vq_grid_next(i, n))
        dze[i] += dzq[i] + coef * (ze[i] - zq[i]);
}
VQ_KERNEL_NO_SYNC(vq_straight_through_backward_f32)
