// segment_sum.cu — code statistics by key: the histogram of keys, and the deterministic sum by key
// (segment_sum.cuh has the algorithm). The quantizer's per-code counts and sums (codebook gradient,
// EMA update) and the embedding's backward (table-row gradients) are these kernels.
//
// Keys are int32 [M] (the codes of the M vectors, or the embedding's indices); values are M vectors
// of D float components in the [outer, D, inner] layout (gather.cuh): z_e as NCHW with inner = H·W,
// the embedding's output gradient, or rows with inner = 1. K = number of keys (codes, table rows);
// T = ceil(M / 256) tiles; C = ceil(M / 64) chunks. Keys outside [0, K) are counted nowhere and summed
// nowhere. Every index is an int: the ops check that M·D and K·D fit.
//
//   kernel                    computes                                        launch                               FLOPs        bytes
//   key_histogram_i32         counts[k] += #{m : key[m] = k} (int atomics:    grid-stride over M                   0            4M + atomics on 4K
//                             exact, order-free); counts zeroed by the caller
//   segment_tile_counts_i32   tile_counts[b·T + t] = #vectors of tile t in    grid-stride over M                   0            4M + atomics
//                             bucket b (b = K: out-of-range keys); zeroed
//                             first, (K+1)·T ints
//   exclusive_scan_i32        base = exclusive scan of tile_counts, with      ONE block of 1024 threads            (K+1)T       8(K+1)T + 4
//                             base[(K+1)T] = M (scan.cuh)                     (barriers)                           int adds
//   segment_sort_i32          stable placement: order[p] = m and              block (256) = one tile, grid (T)     ≤ 256²/2     4M + 8M + 4(K+1)T
//                             sorted_buckets[p] = bucket of m, p = base[b·T   (one barrier)                        compares
//                             + t] + rank of m in its tile                                                         per tile
//   segment_chunk_sums_f32    ordered run sums per (chunk, component); runs   grid-stride over C·D                 MD           read 4MD + 8M, write
//                             cut by a chunk edge go to head/tail [C, D]                                                        ≤ 4KD + 8CD
//   segment_sums_fixup_f32    sums[k, d] for empty keys (0) and keys whose    grid-stride over K·D                 ≤ MD/64      8K + 4KD + (partials of
//                             run spans chunks (tail + heads, in order)                                                         the split runs, ≤ 8CD)
// Grid-stride launches: block (256,1,1), grid (min(ceil(count/256), 65535),1,1).
// The sums are bit-identical whatever the thread or block order: the additions' order is the sorted
// position's, then the chunk's (VectorQuantizerTests, PrimitiveKernelTests, EmbeddingTests check it
// in several orders).
#include "common.cuh"
#include "gather.cuh"
#include "histogram.cuh"
#include "scan.cuh"
#include "segment_sum.cuh"

extern "C" __global__ void key_histogram_i32(const int* __restrict__ keys, int* __restrict__ counts, int M, int K) {
    grid_stride_histogram(M, K, counts, [&](int m) { return keys[m]; });
}
VQ_KERNEL_NO_SYNC(key_histogram_i32)

extern "C" __global__ void segment_tile_counts_i32(const int* __restrict__ keys, int* __restrict__ tile_counts, int M, int K, int tiles) {
    grid_stride_histogram(M, (K + 1) * tiles, tile_counts,
                          [&](int m) { return segment_bucket(keys[m], K) * tiles + m / VQ_SEGMENT_TILE; });
}
VQ_KERNEL_NO_SYNC(segment_tile_counts_i32)

extern "C" __global__ void exclusive_scan_i32(const int* __restrict__ in, int* __restrict__ out, int n) {
    block_exclusive_scan_i32(in, out, n);
}
VQ_KERNEL_SYNC(exclusive_scan_i32)

extern "C" __global__ void segment_sort_i32(const int* __restrict__ keys, const int* __restrict__ base, int* __restrict__ order,
                                            int* __restrict__ sorted_buckets, int M, int K, int tiles) {
    __shared__ int buckets[VQ_SEGMENT_TILE];
    const int t = threadIdx.x;
    const int m = blockIdx.x * VQ_SEGMENT_TILE + t;
    const int b = m < M ? segment_bucket(keys[m], K) : -1;
    buckets[t] = b;
    __syncthreads();
    if (m < M) {
        const int position = base[b * tiles + blockIdx.x] + segment_stable_rank(buckets, t, b);
        order[position] = m;
        sorted_buckets[position] = b;
    }
}
VQ_KERNEL_SYNC(segment_sort_i32)

extern "C" __global__ void segment_chunk_sums_f32(const float* __restrict__ values, const int* __restrict__ order,
                                                  const int* __restrict__ sorted_buckets, float* __restrict__ sums, float* __restrict__ head,
                                                  float* __restrict__ tail, int M, int K, int D, int inner) {
    const int chunks = (M + VQ_SEGMENT_CHUNK - 1) / VQ_SEGMENT_CHUNK;
    for (int i = vq_grid_start(chunks * D); i < chunks * D; i = vq_grid_next(i, chunks * D)) {
        const int d = i % D;
        segment_chunk_sum(i / D, d, M, K, D, sorted_buckets, sums, head, tail,
                          [&](int j) { return values[strided_vector_offset(order[j], D, inner) + d * inner]; });
    }
}
VQ_KERNEL_NO_SYNC(segment_chunk_sums_f32)

extern "C" __global__ void segment_sums_fixup_f32(const int* __restrict__ base, const float* __restrict__ head, const float* __restrict__ tail,
                                                  float* __restrict__ sums, int K, int D, int tiles) {
    for (int i = vq_grid_start(K * D); i < K * D; i = vq_grid_next(i, K * D))
        segment_fixup_sum(i / D, i % D, D, tiles, base, head, tail, sums);
}
VQ_KERNEL_NO_SYNC(segment_sums_fixup_f32)
