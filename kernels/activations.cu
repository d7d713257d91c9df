// activations.cu — pointwise nonlinearities, forward and backward.
//
// All are grid-stride loops: block (256,1,1), grid (min(ceil(n/256), 65535),1,1); barrier-free.
// Backward kernels ADD into the input gradient (dx += ...): the tape accumulates gradients.
//
//   kernel             computes                                    FLOPs  bytes
//   relu_forward_f32   y = max(x, 0)                               n      8n
//   relu_backward_f32  dx += (y > 0) ? dy : 0   (y: the output)    n      16n (read y, dy, dx; write dx)
#include "common.cuh"

extern "C" __global__ void relu_forward_f32(const float* __restrict__ x, float* __restrict__ y, int n) {
    // A compare and select, not fmaxf: the same result for every input (NaN and −0 give +0 either way), but on the CPU
    // fmaxf is a libm call per element and the loop does not vectorise; a GPU compiles both to one max or select.
    for (int i = vq_grid_start(n); i < n; i = vq_grid_next(i, n)) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
VQ_KERNEL_NO_SYNC(relu_forward_f32)

extern "C" __global__ void relu_backward_f32(const float* __restrict__ y, const float* __restrict__ dy, float* __restrict__ dx, int n) {
    // A select, not a branch: the loop vectorises on the CPU (the branch made it 4x slower than the forward there);
    // a GPU predicates either form. (−0 in dx may become +0 where y ≤ 0: equal as floats.)
    for (int i = vq_grid_start(n); i < n; i = vq_grid_next(i, n)) dx[i] += y[i] > 0.0f ? dy[i] : 0.0f;
}
VQ_KERNEL_NO_SYNC(relu_backward_f32)
