// scan.cuh — the one scan: out[i] = Σ_{j<i} in[j] for i in [0, n], out[n] = the total, over int32,
// by ONE block (blockDim.x a multiple of 32, at most 1024; segment_sum.cu launches 1024 threads).
// Thread t owns the contiguous run [t·per, (t+1)·per) with per = ceil(n / blockDim.x): it sums its
// run serially, the run totals are scanned with shuffles (an inclusive scan inside each warp, then
// warp 0 scans the warp totals), and each thread writes its run's prefixes. Integer additions are
// exact, so any order gives the same result. Two barriers: every thread of the block must call it
// (register the kernel VQ_KERNEL_SYNC). Work: n additions twice, 8n + 4 bytes.
#pragma once
#include "common.cuh"

__device__ __forceinline__ void block_exclusive_scan_i32(const int* __restrict__ in, int* __restrict__ out, int n) {
    __shared__ int warp_totals[32];
    const int tid = threadIdx.x;
    const int lane = tid & 31;
    const int warp = tid >> 5;
    const int per = (n + blockDim.x - 1) / blockDim.x;
    const int begin = min(n, tid * per);
    const int end = min(n, begin + per);
    int local = 0;
    for (int i = begin; i < end; ++i) local += in[i];
    int inclusive = local;
    for (int offset = 1; offset < 32; offset <<= 1) {
        const int v = __shfl_up_sync(VQ_FULL_WARP_MASK, inclusive, offset);
        if (lane >= offset) inclusive += v;
    }
    if (lane == 31) warp_totals[warp] = inclusive;
    __syncthreads();
    if (warp == 0) {
        const int warps = blockDim.x >> 5;
        int t = lane < warps ? warp_totals[lane] : 0;
        int scanned = t;
        for (int offset = 1; offset < 32; offset <<= 1) {
            const int v = __shfl_up_sync(VQ_FULL_WARP_MASK, scanned, offset);
            if (lane >= offset) scanned += v;
        }
        warp_totals[lane] = scanned - t;  // exclusive prefix of the warp totals
    }
    __syncthreads();
    int running = warp_totals[warp] + inclusive - local;
    for (int i = begin; i < end; ++i) {
        const int v = in[i];
        out[i] = running;
        running += v;
    }
    if (tid == (int)blockDim.x - 1) out[n] = running;
}
