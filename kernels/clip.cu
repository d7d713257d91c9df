// clip.cu — global gradient-norm clipping (torch.nn.utils.clip_grad_norm_ with the 2-norm), with
// no host round trip: the norm is computed on the device and the scale kernel reads it there.
//
//   sumsq_partials_f32  pass 1: block b writes partial[b] = Σ g² over its grid-stride slice.
//                       Launch: block (256,1,1) (VQ_REDUCE_BLOCK), grid (G,1,1),
//                       G = min(ceil(n/256), 512). FLOPs 2n; bytes 4n + 4G.
//   sqrt_of_sum_f32     pass 2: ONE block of 256 sums the G partials and writes norm[0] = sqrt(Σ).
//                       FLOPs G + 1; bytes 4G + 4.
//   Deterministic (reduce_two_pass.cuh): the same tree of additions whatever order threads and blocks run in.
//   clip_scale_f32      coef = max_norm / (norm[0] + 1e-6); where coef < 1, g *= coef.
//                       Grid-stride over n: block (256,1,1), grid (min(ceil(n/256), 65535),1,1);
//                       barrier-free. FLOPs n + 2; bytes 8n + 4 when clipping, 4 when not
//                       (every thread sees the same coef, so the branch is uniform).
//   Non-finite gradients behave as in PyTorch (error_if_nonfinite=False): an infinite norm gives
//   coef 0 (finite gradients become 0, infinite ones NaN), a NaN norm gives coef NaN and every
//   gradient becomes NaN. The returned norm is what tells the caller.
#include "reduce_two_pass.cuh"

extern "C" __global__ void sumsq_partials_f32(const float* __restrict__ x, float* __restrict__ partial, int n) {
    const float acc = grid_stride_block_sum(n, [&](int i) { return x[i] * x[i]; });
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}
VQ_KERNEL_SYNC(sumsq_partials_f32)

extern "C" __global__ void sqrt_of_sum_f32(const float* __restrict__ partial, float* __restrict__ norm, int count) {
    const float acc = block_strided_sum(count, [&](int i) { return partial[i]; });
    if (threadIdx.x == 0) norm[0] = sqrtf(acc);
}
VQ_KERNEL_SYNC(sqrt_of_sum_f32)

extern "C" __global__ void clip_scale_f32(float* __restrict__ grad, const float* __restrict__ norm, float max_norm, int n) {
    const float coef = max_norm / (norm[0] + 1e-6f);
    if (coef >= 1.0f) return;  // NaN falls through and scales, as torch.clamp(NaN, max=1) = NaN
    for (int i = vq_grid_start(n); i < n; i = vq_grid_next(i, n)) grad[i] *= coef;
}
VQ_KERNEL_NO_SYNC(clip_scale_f32)
