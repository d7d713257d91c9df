// embedding.cu — table lookup, out = table[index], and its scatter-add backward.
//
// table is [V, D]; indices are int32 [outer, inner] (any shape, seen as S = outer·inner entries).
// One forward kernel serves two layouts, chosen by `inner`:
//   rows  (inner = 1):    out[s, d]          = table[idx[s], d]           (Embedding.Lookup: [S..., D])
//   NCHW  (inner = H·W):  out[n, d, p]       = table[idx[n, p], d]         (Embedding.LookupNchw: [N, D, H, W])
// i.e. out[(o·D + d)·inner + p] = table[idx[o·inner + p]·D + d]. An index outside [0, V) yields a
// NaN row (no out-of-bounds read, and the NaN reaches the loss, where it is seen) and contributes
// no gradient. Validating on the host would need the indices there: a device-to-host copy and a
// sync in the middle of a step, since code maps are produced on the device.
//
// Backward: dtable[v, d] += Σ_{s : idx[s] = v} dout at (s, d). Two variants side by side:
//   deterministic (what Embedding uses): build, for every row v, the list of positions s with
//   idx[s] = v in ascending order (a CSR: counts → offsets → positions), then one thread per
//   (v, d) adds its positions in that order. The sum's order is fixed, so results are bit-equal
//   in every thread/block order — and training on the cpu device is repeatable run to run.
//   atomic: one thread per dout element, atomicAdd into dtable. One launch instead of four, but the
//   order of the float additions depends on timing (equal only within rounding).
//
//   kernel                           computes                                   launch                              FLOPs   bytes
//   embedding_forward_f32            out = table[idx] (layout above)            grid-stride over m = S·D outputs    0       4m + 4S + 4m (worst: table rows re-read per use)
//   embedding_count_rows             counts[idx[s]] += 1 (int atomics: exact)   grid-stride over S, counts zeroed   S       4S + 8V
//   embedding_row_offsets            offsets = exclusive scan of counts,        ONE block of 256 (barriers)         V       4V + 4(V+1)
//                                    offsets[V] = Σ counts
//   embedding_fill_rows              positions[offsets[v] + k] = k-th s with    grid-stride over V rows (a thread   V·S     4·V·S (cached reads of idx) + 4S
//                                    idx[s] = v, ascending                      per row scans all S indices)
//   embedding_backward_rows_f32      dtable[v,d] += Σ over v's positions, in    grid-stride over V·D                S·D     4S·D + 4S + 8V·D
//                                    order, of dout at (s, d)
//   embedding_backward_atomic_f32    atomicAdd(dtable[idx·D + d], dout)         grid-stride over m                  m       4m + 4S + 8m (read-modify-write)
// Grid-stride launches: block (256,1,1), grid (min(ceil(count/256), 65535),1,1); all barrier-free
// except embedding_row_offsets.
// The V·S scan of embedding_fill_rows is the price of a fixed order without a sort: for the models
// here (V = 512 codes or 10 classes, S ≤ 128·32·32) it is a few million cached int compares.
#include "common.cuh"

// Output element e of an embedding lookup, laid out [outer, dim, inner]: the table row v it reads
// (the index at (outer, inner)) and the component d. Shared by the forward and the atomic backward.
__device__ __forceinline__ void embedding_element(const int* __restrict__ indices, int e, int dim, int inner, int& v, int& d) {
    const int p = e % inner;
    const int od = e / inner;
    d = od % dim;
    v = indices[(od / dim) * inner + p];
}

extern "C" __global__ void embedding_forward_f32(const float* __restrict__ table, const int* __restrict__ indices,
                                                 float* __restrict__ out, int rows, int dim, int inner, int m) {
    for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < m; e += blockDim.x * gridDim.x) {
        int v, d;
        embedding_element(indices, e, dim, inner, v, d);
        out[e] = (v >= 0 && v < rows) ? table[v * dim + d] : __int_as_float(0x7fc00000);
    }
}
VQ_KERNEL_NO_SYNC(embedding_forward_f32)

extern "C" __global__ void embedding_count_rows(const int* __restrict__ indices, int* __restrict__ counts, int rows, int s) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < s; i += blockDim.x * gridDim.x) {
        const int v = indices[i];
        if (v >= 0 && v < rows) atomicAdd(counts + v, 1);
    }
}
VQ_KERNEL_NO_SYNC(embedding_count_rows)

// One block scans the counts in chunks of blockDim.x: an inclusive scan inside each warp with
// shuffles, the warp totals scanned by warp 0, a running carry between chunks.
extern "C" __global__ void embedding_row_offsets(const int* __restrict__ counts, int* __restrict__ offsets, int rows) {
    __shared__ int warp_totals[32];
    __shared__ int chunk_total;
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = (blockDim.x + 31) >> 5;
    int carry = 0;
    for (int base = 0; base < rows; base += blockDim.x) {
        const int i = base + threadIdx.x;
        const int x = i < rows ? counts[i] : 0;
        int inclusive = x;
        for (int delta = 1; delta < 32; delta <<= 1) {
            const int up = __shfl_up_sync(VQ_FULL_WARP_MASK, inclusive, delta);
            if (lane >= delta) inclusive += up;
        }
        if (lane == 31) warp_totals[warp] = inclusive;
        __syncthreads();
        if (warp == 0) {
            int t = lane < warps ? warp_totals[lane] : 0;
            for (int delta = 1; delta < 32; delta <<= 1) {
                const int up = __shfl_up_sync(VQ_FULL_WARP_MASK, t, delta);
                if (lane >= delta) t += up;
            }
            warp_totals[lane] = t;  // inclusive scan of the warp totals
            if (lane == 31) chunk_total = t;
        }
        __syncthreads();
        const int before_warp = warp > 0 ? warp_totals[warp - 1] : 0;
        if (i < rows) offsets[i] = carry + before_warp + inclusive - x;
        carry += chunk_total;
        __syncthreads();  // the next chunk rewrites warp_totals and chunk_total
    }
    if (threadIdx.x == 0) offsets[rows] = carry;
}
VQ_KERNEL_SYNC(embedding_row_offsets)

extern "C" __global__ void embedding_fill_rows(const int* __restrict__ indices, const int* __restrict__ offsets,
                                               int* __restrict__ positions, int rows, int s) {
    for (int v = blockIdx.x * blockDim.x + threadIdx.x; v < rows; v += blockDim.x * gridDim.x) {
        int slot = offsets[v];
        for (int i = 0; i < s; i++)
            if (indices[i] == v) positions[slot++] = i;
    }
}
VQ_KERNEL_NO_SYNC(embedding_fill_rows)

extern "C" __global__ void embedding_backward_rows_f32(const float* __restrict__ dout, const int* __restrict__ positions,
                                                       const int* __restrict__ offsets, float* __restrict__ dtable,
                                                       int rows, int dim, int inner) {
    const int m = rows * dim;
    for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < m; e += blockDim.x * gridDim.x) {
        const int v = e / dim;
        const int d = e - v * dim;
        const int end = offsets[v + 1];
        float acc = 0.0f;
        for (int k = offsets[v]; k < end; k++) {
            const int s = positions[k];
            const int o = s / inner;
            const int p = s - o * inner;
            acc += dout[(o * dim + d) * inner + p];
        }
        if (end > offsets[v]) dtable[e] += acc;
    }
}
VQ_KERNEL_NO_SYNC(embedding_backward_rows_f32)

extern "C" __global__ void embedding_backward_atomic_f32(const float* __restrict__ dout, const int* __restrict__ indices,
                                                         float* __restrict__ dtable, int rows, int dim, int inner, int m) {
    for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < m; e += blockDim.x * gridDim.x) {
        int v, d;
        embedding_element(indices, e, dim, inner, v, d);
        if (v >= 0 && v < rows) atomicAdd(dtable + v * dim + d, dout[e]);
    }
}
VQ_KERNEL_NO_SYNC(embedding_backward_atomic_f32)
