// elementwise.cu — memory-bound elementwise kernels over float32 vectors.
//
// All use a grid-stride loop: launch shape block = (256,1,1), grid = (min(ceil(n/256), cap),1,1);
// any grid size is correct, a grid that covers n gives one element per thread.
// None synchronises, so the CPU target runs their threads as plain calls in a loop.
//
//   kernel      computes                 FLOPs   bytes (fewest that must move)
//   fill_f32    out[i] = value           0       4n   (write out)
//   scale_f32   out[i] = alpha * x[i]    n       8n   (read x, write out)
//   axpy_f32    y[i] += alpha * x[i]     2n      12n  (read x and y, write y)
//   add_f32     out[i] = a[i] + b[i]     n       12n  (read a and b, write out)
//
// Each has a *_chunks_f32 twin with the same arithmetic for the cpu device: one contiguous run per thread
// (common.cuh, vq_chunk_bounds), launched as grid (min(ceil(n/2048), 4·workers)), block (1); the same FLOPs and
// bytes. On a GPU it would be uncoalesced, so a GPU runs the grid-stride form (`vqvae verify` runs both there).
#include "common.cuh"

extern "C" __global__ void fill_f32(float* out, float value, int n) {
    for (int i = vq_grid_start(n); i < n; i = vq_grid_next(i, n)) out[i] = value;
}
VQ_KERNEL_NO_SYNC(fill_f32)

extern "C" __global__ void scale_f32(const float* __restrict__ x, float* __restrict__ out, float alpha, int n) {
    for (int i = vq_grid_start(n); i < n; i = vq_grid_next(i, n)) out[i] = alpha * x[i];
}
VQ_KERNEL_NO_SYNC(scale_f32)

extern "C" __global__ void axpy_f32(const float* __restrict__ x, float* __restrict__ y, float alpha, int n) {
    for (int i = vq_grid_start(n); i < n; i = vq_grid_next(i, n)) y[i] += alpha * x[i];
}
VQ_KERNEL_NO_SYNC(axpy_f32)

extern "C" __global__ void add_f32(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ out, int n) {
    for (int i = vq_grid_start(n); i < n; i = vq_grid_next(i, n)) out[i] = a[i] + b[i];
}
VQ_KERNEL_NO_SYNC(add_f32)

// The cpu device's forms (see the header): a contiguous run per thread.
extern "C" __global__ void fill_chunks_f32(float* out, float value, int n) {
    int begin, end;
    vq_chunk_bounds(n, &begin, &end);
    for (int i = begin; i < end; i++) out[i] = value;
}
VQ_KERNEL_NO_SYNC(fill_chunks_f32)

extern "C" __global__ void scale_chunks_f32(const float* __restrict__ x, float* __restrict__ out, float alpha, int n) {
    int begin, end;
    vq_chunk_bounds(n, &begin, &end);
    for (int i = begin; i < end; i++) out[i] = alpha * x[i];
}
VQ_KERNEL_NO_SYNC(scale_chunks_f32)

extern "C" __global__ void axpy_chunks_f32(const float* __restrict__ x, float* __restrict__ y, float alpha, int n) {
    int begin, end;
    vq_chunk_bounds(n, &begin, &end);
    for (int i = begin; i < end; i++) y[i] += alpha * x[i];
}
VQ_KERNEL_NO_SYNC(axpy_chunks_f32)

extern "C" __global__ void add_chunks_f32(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ out, int n) {
    int begin, end;
    vq_chunk_bounds(n, &begin, &end);
    for (int i = begin; i < end; i++) out[i] = a[i] + b[i];
}
VQ_KERNEL_NO_SYNC(add_chunks_f32)
