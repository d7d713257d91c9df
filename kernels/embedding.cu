// embedding.cu — table lookup, out = table[index] (the one gather, gather.cuh), and its atomic
// scatter-add backward. The deterministic backward the op uses is segment_sum.cu's sum by key.
//
// table is [V, D]; indices are int32 [outer, inner] (any shape, seen as S = outer·inner entries).
// One forward kernel serves two layouts, chosen by `inner`:
//   rows  (inner = 1):    out[s, d]          = table[idx[s], d]           (Embedding.Lookup: [S..., D])
//   NCHW  (inner = H·W):  out[n, d, p]       = table[idx[n, p], d]         (Embedding.LookupNchw: [N, D, H, W];
//                                                                           the quantizer's z_q = e_k)
// i.e. out[(o·D + d)·inner + p] = table[idx[o·inner + p]·D + d]. An index outside [0, V) yields a
// NaN row (no out-of-bounds read, and the NaN reaches the loss, where it is seen) and contributes
// no gradient. Validating on the host would need the indices there: a device-to-host copy and a
// sync in the middle of a step, since code maps are produced on the device.
//
// Backward: dtable[v, d] += Σ_{s : idx[s] = v} dout at (s, d). Two variants side by side:
//   deterministic (what Embedding uses): segment_sum.cu's sum by key over the S vectors of dout
//   (keys = the indices; a stable counting sort, then ordered segment sums), then dtable += sums
//   (elementwise.cu's axpy_f32). The sum's order is fixed by the indices alone, so results are
//   bit-equal in every thread/block order — and training on the cpu device is repeatable run to run.
//   atomic: one thread per dout element, atomicAdd into dtable. One launch instead of six, but the
//   order of the float additions depends on timing (equal only within rounding).
//
//   kernel                           computes                                   launch                              FLOPs   bytes
//   embedding_forward_f32            out = table[idx] (layout above)            grid-stride over m = S·D outputs    0       4m + 4S + 4m (worst: table rows re-read per use)
//   embedding_forward_chunks_f32     the same; a contiguous run per thread,     grid (runs), block (1): the cpu     0       the same
//                                    no divide per element                      device's form (LaunchPointwise)
//   embedding_backward_atomic_f32    atomicAdd(dtable[idx·D + d], dout)         grid-stride over m                  m       4m + 4S + 8m (read-modify-write)
// Grid-stride launches: block (256,1,1), grid (min(ceil(count/256), 65535),1,1); both barrier-free.
#include "common.cuh"
#include "gather.cuh"

extern "C" __global__ void embedding_forward_f32(const float* __restrict__ table, const int* __restrict__ indices,
                                                 float* __restrict__ out, int rows, int dim, int inner, int m) {
    for (int e = vq_grid_start(m); e < m; e = vq_grid_next(e, m))
        out[e] = gather_element(table, indices, rows, dim, inner, e);
}
VQ_KERNEL_NO_SYNC(embedding_forward_f32)

// The same gather, one contiguous run of outputs per thread (common.cuh vq_chunk_bounds): the cpu device's form
// (KernelLaunch.LaunchPointwise). The run's first element is split into (vector block o, component d, position p)
// once; after that the position counts up and wraps, so there is no divide per element (the grid-stride form does
// two, which the cpu device runs per element). On a GPU this form would be uncoalesced; the GPU keeps the one above.
extern "C" __global__ void embedding_forward_chunks_f32(const float* __restrict__ table, const int* __restrict__ indices,
                                                        float* __restrict__ out, int rows, int dim, int inner, int m) {
    int begin, end;
    vq_chunk_bounds(m, &begin, &end);
    if (begin >= end) return;
    int p = begin % inner;
    int od = begin / inner;  // o·dim + d
    int d = od % dim, o = od / dim;
    for (int e = begin; e < end;) {
        const int* block = indices + o * inner;  // the indices of vectors o·inner … o·inner + inner − 1
        const int run = min(end - e, inner - p);
        for (int q = 0; q < run; q++) {
            const int v = block[p + q];
            out[e + q] = (unsigned)v < (unsigned)rows ? table[v * dim + d] : __int_as_float(0x7fc00000);
        }
        e += run;
        p = 0;
        if (++d == dim) {
            d = 0;
            ++o;
        }
    }
}
VQ_KERNEL_NO_SYNC(embedding_forward_chunks_f32)

extern "C" __global__ void embedding_backward_atomic_f32(const float* __restrict__ dout, const int* __restrict__ indices,
                                                         float* __restrict__ dtable, int rows, int dim, int inner, int m) {
    for (int e = vq_grid_start(m); e < m; e = vq_grid_next(e, m)) {
        int s, d;
        strided_element(e, dim, inner, s, d);
        const int v = indices[s];
        if ((unsigned)v < (unsigned)rows) atomicAdd(dtable + v * dim + d, dout[e]);
    }
}
VQ_KERNEL_NO_SYNC(embedding_backward_atomic_f32)
