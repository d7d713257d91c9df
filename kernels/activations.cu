// activations.cu — pointwise nonlinearities, forward and backward.
//
// All are grid-stride loops: block (256,1,1), grid (min(ceil(n/256), 65535),1,1); barrier-free.
// Backward kernels ADD into the input gradient (dx += ...): the tape accumulates gradients.
//
//   kernel             computes                                    FLOPs  bytes
//   relu_forward_f32   y = max(x, 0)                               n      8n
//   relu_backward_f32  dx += (y > 0) ? dy : 0   (y: the output)    n      16n (read y, dy, dx; write dx)
//
// relu_forward_chunks_f32 and relu_backward_chunks_f32 compute the same for the cpu device, one contiguous run per
// thread (common.cuh, vq_chunk_bounds; grid (min(ceil(n/2048), 4·workers)), block (1)): a loop the compiler vectorises.
#include "common.cuh"

// The grid-stride forms use common.cuh's vq_keep_or_zero (no branch where GCC does not vectorise: relu ran at 10 GB/s in
// the training step with the plain select, a third of the add kernel's rate).

extern "C" __global__ void relu_forward_f32(const float* __restrict__ x, float* __restrict__ y, int n) {
    for (int i = vq_grid_start(n); i < n; i = vq_grid_next(i, n)) {
        const float v = x[i];
        y[i] = vq_keep_or_zero(v, v > 0.0f);
    }
}
VQ_KERNEL_NO_SYNC(relu_forward_f32)

extern "C" __global__ void relu_backward_f32(const float* __restrict__ y, const float* __restrict__ dy, float* __restrict__ dx, int n) {
    // (−0 in dx may become +0 where y ≤ 0: equal as floats.)
    for (int i = vq_grid_start(n); i < n; i = vq_grid_next(i, n)) dx[i] += vq_keep_or_zero(dy[i], y[i] > 0.0f);
}
VQ_KERNEL_NO_SYNC(relu_backward_f32)

// The cpu device's forms: a contiguous run per thread. Here the plain select is right: in a unit-stride loop GCC
// vectorises it (a packed compare and an AND), where it did not vectorise the bit mask. Same bits as the mask.
extern "C" __global__ void relu_forward_chunks_f32(const float* __restrict__ x, float* __restrict__ y, int n) {
    int begin, end;
    vq_chunk_bounds(n, &begin, &end);
    for (int i = begin; i < end; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
VQ_KERNEL_NO_SYNC(relu_forward_chunks_f32)

extern "C" __global__ void relu_backward_chunks_f32(const float* __restrict__ y, const float* __restrict__ dy, float* __restrict__ dx, int n) {
    int begin, end;
    vq_chunk_bounds(n, &begin, &end);
    for (int i = begin; i < end; i++) {
        const float g = dy[i];  // loaded whatever y says: a load under the condition would not vectorise
        dx[i] += y[i] > 0.0f ? g : 0.0f;
    }
}
VQ_KERNEL_NO_SYNC(relu_backward_chunks_f32)
