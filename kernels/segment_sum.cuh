// segment_sum.cuh — the one deterministic sum by key: s_k = Σ_{m : key[m] = k} v_m for vectors v_m
// of D components, with no float atomics, so the same bits on every run and every thread or block
// order. The algorithm (the kernels are segment_sum.cu's; the launch sequence is
// src/VqVaeCuda/Ops/SegmentSumKernels.cs):
//
//   1. a stable counting sort of the M vectors by key:
//        per-tile key counts  tile_counts[b·T + t] = #vectors of tile t (VQ_SEGMENT_TILE consecutive
//                             vectors) in bucket b (histogram.cuh);
//        exclusive scan       base = scan(tile_counts) (scan.cuh), key-major, so base[b·T + t] is
//                             where tile t's vectors of bucket b start in the sorted order;
//        placement            vector m goes to base[b·T + t] + its rank among the earlier vectors of
//                             its tile with the same bucket (segment_stable_rank);
//   2. ordered segment sums: the sorted order cut into chunks of VQ_SEGMENT_CHUNK positions; a
//      (chunk, component) thread sums each run of equal key in sorted order (segment_chunk_sum). A
//      run wholly inside the chunk is a finished s_k; a run cut by a chunk edge leaves a partial in
//      head[c] (it began before the chunk) or tail[c] (it goes on after it), and the fix-up adds
//      tail[c0] + head[c0 + 1] + ... + head[c1] in that order (segment_fixup_sum).
//
// The order of every addition is fixed by the data alone (sorted position, then chunk). Keys
// outside [0, K) go to a bucket K after every valid key and are summed nowhere: they contribute
// to no s_k (the embedding's out-of-range indices) and never address memory by their value.
// A collapsed key distribution (every vector on one key) costs about what a spread one does: the
// fix-up's work per thread is at most M / VQ_SEGMENT_CHUNK + 1.
#pragma once
#include "common.cuh"

#define VQ_SEGMENT_TILE 256   // vectors per tile of the counting sort (= the placement kernel's block)
#define VQ_SEGMENT_CHUNK 64   // sorted positions per chunk of the segment sums

// The sort bucket of a key: itself when in [0, keys), else keys (the dropped bucket, sorted last).
__device__ __forceinline__ int segment_bucket(int key, int keys) { return (unsigned)key < (unsigned)keys ? key : keys; }

// How many of tile_buckets[0 .. t) equal `bucket`: the stable rank of thread t's vector in its tile.
__device__ __forceinline__ int segment_stable_rank(const int* tile_buckets, int t, int bucket) {
    int rank = 0;
    for (int u = 0; u < t; ++u) rank += tile_buckets[u] == bucket;
    return rank;
}

// Chunk c, component d: the ordered sums of the runs of equal bucket in sorted positions
// [c·CHUNK, min(M, (c+1)·CHUNK)). value(j) is component d of the vector at sorted position j.
// Finished runs of a valid key k go to sums[k·D + d]; cut runs to head/tail[c·D + d].
template <class Value>
__device__ __forceinline__ void segment_chunk_sum(int c, int d, int M, int K, int D, const int* __restrict__ sorted_buckets,
                                                  float* __restrict__ sums, float* __restrict__ head, float* __restrict__ tail, Value value) {
    const int j0 = c * VQ_SEGMENT_CHUNK;
    const int j1 = min(M, j0 + VQ_SEGMENT_CHUNK);
    int run_key = sorted_buckets[j0];
    int run_start = j0;
    float acc = 0.0f;
    for (int j = j0; j <= j1; ++j) {
        const int k = j < j1 ? sorted_buckets[j] : -1;
        if (k != run_key) {
            // Flush the run [run_start, j) of bucket run_key.
            const bool began_before = run_start == j0 && j0 > 0 && sorted_buckets[j0 - 1] == run_key;
            const bool goes_on = j == j1 && j1 < M && sorted_buckets[j1] == run_key;
            if (began_before) head[c * D + d] = acc;
            else if (goes_on) tail[c * D + d] = acc;
            else if (run_key < K) sums[run_key * D + d] = acc;
            if (j == j1) break;
            run_key = k;
            run_start = j;
            acc = 0.0f;
        }
        acc += value(j);
    }
}

// Key k, component d: writes sums[k·D + d] for a key with no vectors (0) or a run spread over chunks
// c0 < c1 (tail[c0] + head[c0+1] + ... + head[c1]); a run inside one chunk was written by
// segment_chunk_sum. base is the scan of the per-tile counts (T tiles).
__device__ __forceinline__ void segment_fixup_sum(int k, int d, int D, int tiles, const int* __restrict__ base, const float* __restrict__ head,
                                                  const float* __restrict__ tail, float* __restrict__ sums) {
    const int begin = base[k * tiles];
    const int end = base[(k + 1) * tiles];
    if (begin == end) {
        sums[k * D + d] = 0.0f;
        return;
    }
    const int c0 = begin / VQ_SEGMENT_CHUNK;
    const int c1 = (end - 1) / VQ_SEGMENT_CHUNK;
    if (c0 == c1) return;
    float s = tail[c0 * D + d];
    for (int c = c0 + 1; c <= c1; ++c) s += head[c * D + d];
    sums[k * D + d] = s;
}
