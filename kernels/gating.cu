// gating.cu — the gated activation of the Gated PixelCNN (van den Oord et al., 2016):
//   y = tanh(a) · σ(b),   x = [a; b] split in two halves along the channel axis.
// x is [N, 2C, inner...] (inner = H·W for feature maps, 1 for vectors); y is [N, C, inner...]:
//   a = x[n, c, p],  b = x[n, C + c, p],  y[n, c, p] = tanh(a) · σ(b).
// With class conditioning, a per-sample vector h = cond[n, 0..2C) (the label embedding) is added
// to every position before the gate: a = x[n, c, p] + h[n, c], b = x[n, C + c, p] + h[n, C + c].
//
// Backward (t = tanh(a), s = σ(b), dy upstream):  da = dy · (1 − t²) · s,   db = dy · t · s · (1 − s);
// dh[n, j] = Σ_p d(pre-activation)[n, j, p]. Everything is recomputed from x (no saved
// activations: two transcendentals are cheaper than storing and re-reading y).
// σ(b) = 1/(1 + e^(−b)): for b → −∞ e^(−b) = inf and σ = 0; no NaN for finite inputs.
//
// Element kernels are grid-stride loops over the m = N·C·inner outputs: block (256,1,1), grid
// (min(ceil(m/256), 65535),1,1); barrier-free. FLOPs count tanh and exp as one each.
//
//   kernel                                computes                                   FLOPs  bytes
//   gated_tanh_sigmoid_forward_f32        y = tanh(a)·σ(b)                           5m     12m
//   gated_tanh_sigmoid_backward_f32       dx[a] += da, dx[b] += db                    12m    28m (x 2, dy, dx 2 read; dx 2 written)
//   gated_tanh_sigmoid_cond_forward_f32   as forward with h added                    7m     12m + 8NC
//   gated_tanh_sigmoid_cond_backward_f32  as backward with h added (into dx only)    14m    28m + 8NC
//   gate_condition_backward_f32           dh[n,j] += Σ_p d(pre)[n,j,p]: one thread   16m    12m + 8NC (x 2, dy per output; h, dh)
//                                         per (n, j) row of 2NC rows, summing its
//                                         inner positions in order (deterministic, no
//                                         barrier); grid-stride over rows, block 256.
//   gated_tanh_sigmoid_cond_backward_rows_f32  both backward kernels above in one pass, when x and the 7m     28m + 8NC
//                                         condition both need gradients: one thread per (n, c) pair of
//                                         rows (c, C + c), N·C threads; each position's t and s once,
//                                         dx[a] += da, dx[b] += db, and the two row sums in ascending
//                                         p (the same order and bits as gate_condition_backward_f32).
//                                         Grid-stride over pairs, block 256; barrier-free.
//     Against the pair it replaces (14m + 16m FLOPs, 40m bytes, two launches): half the transcendentals
//     (4 tanh/exp per element become 2), 12m fewer bytes, one launch. Its accesses are the row kernel's
//     (a thread walks its rows), so on a GPU it is no less coalesced than the slower of the two was.
#include "common.cuh"

__device__ __forceinline__ float sigmoid_f32(float b) { return 1.0f / (1.0f + expf(-b)); }

// Output element e of [N, C, inner] (half = C·inner elements per sample): its sample n, its offset r inside the
// sample, and the offset of its a in x (its b is at + half).
__device__ __forceinline__ int gate_input_offset(int e, int half, int& n, int& r) {
    n = e / half;
    r = e - n * half;
    return 2 * n * half + r;
}

// The pre-activation gradients of one gate output with upstream gradient g: da = g·(1 − t²)·s, db = g·t·s·(1 − s),
// t = tanh(a), s = σ(b). Shared by the three backward kernels.
__device__ __forceinline__ void gate_gradients(float a, float b, float g, float& da, float& db) {
    const float t = tanhf(a);
    const float s = sigmoid_f32(b);
    da = g * (1.0f - t * t) * s;
    db = g * t * s * (1.0f - s);
}

extern "C" __global__ void gated_tanh_sigmoid_forward_f32(const float* __restrict__ x, float* __restrict__ y, int channels,
                                                          int inner, int m) {
    const int half = channels * inner;  // elements of one half of one sample
    for (int e = vq_grid_start(m); e < m; e = vq_grid_next(e, m)) {
        int n, r;
        const int ia = gate_input_offset(e, half, n, r);
        y[e] = tanhf(x[ia]) * sigmoid_f32(x[ia + half]);
    }
}
VQ_KERNEL_NO_SYNC(gated_tanh_sigmoid_forward_f32)

extern "C" __global__ void gated_tanh_sigmoid_backward_f32(const float* __restrict__ x, const float* __restrict__ dy,
                                                           float* __restrict__ dx, int channels, int inner, int m) {
    const int half = channels * inner;
    for (int e = vq_grid_start(m); e < m; e = vq_grid_next(e, m)) {
        int n, r;
        const int ia = gate_input_offset(e, half, n, r);
        float da, db;
        gate_gradients(x[ia], x[ia + half], dy[e], da, db);
        dx[ia] += da;
        dx[ia + half] += db;
    }
}
VQ_KERNEL_NO_SYNC(gated_tanh_sigmoid_backward_f32)

extern "C" __global__ void gated_tanh_sigmoid_cond_forward_f32(const float* __restrict__ x, const float* __restrict__ cond,
                                                               float* __restrict__ y, int channels, int inner, int m) {
    const int half = channels * inner;
    for (int e = vq_grid_start(m); e < m; e = vq_grid_next(e, m)) {
        int n, r;
        const int ia = gate_input_offset(e, half, n, r);
        const float* h = cond + 2 * n * channels + r / inner;
        y[e] = tanhf(x[ia] + h[0]) * sigmoid_f32(x[ia + half] + h[channels]);
    }
}
VQ_KERNEL_NO_SYNC(gated_tanh_sigmoid_cond_forward_f32)

extern "C" __global__ void gated_tanh_sigmoid_cond_backward_f32(const float* __restrict__ x, const float* __restrict__ cond,
                                                                const float* __restrict__ dy, float* __restrict__ dx,
                                                                int channels, int inner, int m) {
    const int half = channels * inner;
    for (int e = vq_grid_start(m); e < m; e = vq_grid_next(e, m)) {
        int n, r;
        const int ia = gate_input_offset(e, half, n, r);
        const float* h = cond + 2 * n * channels + r / inner;
        float da, db;
        gate_gradients(x[ia] + h[0], x[ia + half] + h[channels], dy[e], da, db);
        dx[ia] += da;
        dx[ia + half] += db;
    }
}
VQ_KERNEL_NO_SYNC(gated_tanh_sigmoid_cond_backward_f32)

// One thread per row (n, j) of dh: sums the row's inner positions in ascending order. Rows of the
// tanh half (j < C) take da, rows of the sigmoid half db; both need a and b of the position.
extern "C" __global__ void gate_condition_backward_f32(const float* __restrict__ x, const float* __restrict__ cond,
                                                       const float* __restrict__ dy, float* __restrict__ dcond,
                                                       int channels, int inner, int rows) {
    for (int row = vq_grid_start(rows); row < rows; row = vq_grid_next(row, rows)) {
        const int n = row / (2 * channels);
        const int j = row - n * 2 * channels;
        const int c = j < channels ? j : j - channels;
        const float ha = cond[2 * n * channels + c];
        const float hb = cond[2 * n * channels + channels + c];
        const float* xa = x + (2 * n * channels + c) * inner;
        const float* xb = xa + channels * inner;
        const float* g = dy + (n * channels + c) * inner;
        float acc = 0.0f;
        for (int p = 0; p < inner; p++) {
            float da, db;
            gate_gradients(xa[p] + ha, xb[p] + hb, g[p], da, db);
            acc += j < channels ? da : db;
        }
        dcond[row] += acc;
    }
}
VQ_KERNEL_NO_SYNC(gate_condition_backward_f32)

extern "C" __global__ void gated_tanh_sigmoid_cond_backward_rows_f32(const float* __restrict__ x, const float* __restrict__ cond,
                                                                     const float* __restrict__ dy, float* __restrict__ dx,
                                                                     float* __restrict__ dcond, int channels, int inner, int pairs) {
    for (int pair = vq_grid_start(pairs); pair < pairs; pair = vq_grid_next(pair, pairs)) {
        const int n = pair / channels;
        const int c = pair - n * channels;
        const float ha = cond[2 * n * channels + c];
        const float hb = cond[2 * n * channels + channels + c];
        const int a_row = (2 * n * channels + c) * inner, b_row = a_row + channels * inner;
        const float* g = dy + (n * channels + c) * inner;
        float acc_a = 0.0f, acc_b = 0.0f;
        for (int p = 0; p < inner; p++) {
            float da, db;
            gate_gradients(x[a_row + p] + ha, x[b_row + p] + hb, g[p], da, db);
            dx[a_row + p] += da;
            dx[b_row + p] += db;
            acc_a += da;
            acc_b += db;
        }
        dcond[2 * n * channels + c] += acc_a;
        dcond[2 * n * channels + channels + c] += acc_b;
    }
}
VQ_KERNEL_NO_SYNC(gated_tanh_sigmoid_cond_backward_rows_f32)
