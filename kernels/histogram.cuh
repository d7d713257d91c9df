// histogram.cuh — the one histogram: counts[bin(i)] += 1 for every i in [0, n) whose bin lies in
// [0, bins). Integer atomics, so the counts are exact and independent of thread order.
// Grid-stride over n, barrier-free (callers register VQ_KERNEL_NO_SYNC). counts must start at zero
// (or hold counts to add to). Used by segment_sum.cu for the code histogram and the per-tile key
// counts of the counting sort.
#pragma once
#include "common.cuh"

template <class Bin>
__device__ __forceinline__ void grid_stride_histogram(int n, int bins, int* __restrict__ counts, Bin bin) {
    for (int i = vq_grid_start(n); i < n; i = vq_grid_next(i, n)) {
        const int b = bin(i);
        if ((unsigned)b < (unsigned)bins) atomicAdd(&counts[b], 1);
    }
}
