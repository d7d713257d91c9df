// losses.cu — the mean squared error, L = (1/n) Σ (p_i − t_i)², forward and backward.
//
// The reconstruction term of the VQ-VAE loss, and (with a stop-gradient on one side) its codebook
// and commitment terms. The loss stays on the device: the forward writes a [1] tensor and the
// backward reads the upstream gradient dL from device memory, so a training step never waits on
// the host.
//
// The forward is a deterministic two-pass reduction (no float atomics: the same additions in the
// same tree whatever order threads and blocks run in):
//   mse_partials_f32  pass 1: block b writes partial[b] = scale · Σ (p − t)² over its grid-stride
//                     slice (scale = 1/n, applied per block so that pass 2 is a plain sum);
//   pass 2 is reduce.cu's sum_f32_partials with one block: loss[0] = Σ_b partial[b].
//   Launch: block (VQ_REDUCE_BLOCK = 256,1,1); grid (G,1,1) with G = min(ceil(n/256), 512) — a
//   function of n only, so the tree is fixed for a given size. Pass 2: grid 1, block 256, G inputs.
//   FLOPs: 3n (subtract, multiply, add) + G. Bytes: 8n read + 4G written; pass 2 4G read + 4 written.
//
//   mse_backward_f32  grad[i] += alpha · dL · (p_i − t_i), dL = dloss[0] read on the device.
//                     alpha = 2/n for the prediction, −2/n for the target (when it needs a gradient).
//   Launch: grid-stride, block (256,1,1), grid (min(ceil(n/256), 65535),1,1); barrier-free.
//   FLOPs: 3n. Bytes: 16n (read p, t, grad; write grad) + 4.
#include "block_reduce.cuh"

extern "C" __global__ void mse_partials_f32(const float* __restrict__ prediction, const float* __restrict__ target,
                                            float* __restrict__ partial, float scale, int n) {
    float acc = 0.0f;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
        const float d = prediction[i] - target[i];
        acc += d * d;
    }
    acc = block_sum_f32(acc);
    if (threadIdx.x == 0) partial[blockIdx.x] = scale * acc;
}
VQ_KERNEL_SYNC(mse_partials_f32)

extern "C" __global__ void mse_backward_f32(const float* __restrict__ prediction, const float* __restrict__ target,
                                            const float* __restrict__ dloss, float* __restrict__ grad, float alpha, int n) {
    const float k = alpha * dloss[0];
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
        grad[i] += k * (prediction[i] - target[i]);
}
VQ_KERNEL_NO_SYNC(mse_backward_f32)
