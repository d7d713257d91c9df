// quantize.cu — the VQ-VAE vector quantizer: nearest codebook entry, gather, losses, gradients,
// code statistics (histogram, per-code sums) and the EMA codebook update.
//
// Layouts. z (the encoder output z_e) is NCHW [N, D, H, W]: its M = N·H·W vectors have D components,
// vector m = n·HW + p has component d at  (m / HW)·D·HW + d·HW + m % HW.  A row-major [M, D] matrix
// is the same formula with HW = 1, so every per-vector kernel below takes `hw` and serves both.
// The codebook E is [K, D] row-major (PyTorch's layout); indices are int32, one per vector.
//
// Nearest code. k_m = argmin_j ‖z_m − e_j‖² = argmin_j (‖e_j‖² − 2 z_m·e_j): ‖z_m‖² is the same for
// every j, so it is dropped. Ties go to the LOWEST j, exactly: every (m, j) distance is computed by
// the same sequence of float operations whichever thread computes it, so duplicate codebook rows give
// bit-identical distances, and every comparison between candidates is lexicographic on (distance, j)
// — a total order, so the result does not depend on which thread or block saw which candidate first.
// NaN distances never win (a NaN compares false and is ranked as +inf when candidates are merged).
//
// Kernels, in the order a training step uses them. n = number of elements of z (= M·D).
//
//   vq_codebook_prepare_f32   enorm[k] = ‖e_k‖², et = Eᵀ ([D, K], codes contiguous, for coalesced tile loads).
//       thread per code, grid-stride; block (256), grid (ceil(K/256)).            FLOPs 2KD   bytes 8KD + 4K
//   vq_nearest_fused_f32      THE FUSED KERNEL: a GEMM-shaped loop with an argmin epilogue; the M×K
//       distance matrix is never written. A block owns 128 vectors and walks 128-code tiles of its code
//       range; per 8-component chunk of D, a 128×8 slab of z and an 8×128 slab of Eᵀ are staged in shared
//       memory and each thread accumulates an 8×8 register tile of z·e (rows ty+16i, codes tx+16j: conflict-
//       free shared reads). After each code tile a thread folds its 8×8 distances into a running best per
//       row (codes visited in ascending order, strict < keeps the lowest); at the end the 16 threads that
//       share a row merge their candidates through shared memory as 64-bit (distance, index) keys.
//       block (256) = 16×16 threads, grid (ceil(M/128), S): blockIdx.y = code split. S = 1 writes idx
//       directly; S > 1 (more blocks when M is small next to the GPU) writes one key per (split, vector)
//       and vq_nearest_merge_f32 takes the minimum. Static shared memory 25.7 KiB.
//       FLOPs 2MKD (+3MK epilogue). Fewest bytes: read z 4MD and E 4KD (+4K norms), write 4M indices
//       (+8SM keys when split). Eᵀ is re-read from L2 by each of the ceil(M/128) row tiles.
//   vq_nearest_merge_f32      idx[m] = index of min over splits of key[s·M + m]. thread per vector,
//       block (256), grid (ceil(M/256)).                                          FLOPs 0     bytes 8SM + 4M
//   vq_nchw_to_rows_f32       rows[m, d] = z(m, d): NCHW → [M, D], a batched 32×33-tile transpose so both
//       the read and the write are coalesced. block (32, 8), grid (ceil(HW/32), ceil(D/32), N).
//       FLOPs 0, bytes 8n. Used by the unfused path only (the fused kernel reads NCHW directly).
//   vq_argmin_rows_f32        UNFUSED PATH, after a GEMM S = Z·Eᵀ ([M, K], row-major): idx[m] =
//       argmin_k (enorm[k] − 2 S[m, k]). One warp per row: lanes stride over k (coalesced), then a 5-step
//       shuffle min over 64-bit keys. block (256) = 8 rows, grid (ceil(M/8)).
//       FLOPs 2MK   bytes 4MK + 4K + 4M.  (The GEMM itself: 2MKD FLOPs, writes the 4MK bytes read here.)
//   vq_gather_nchw_f32        zq(m, d) = E[idx[m], d], written in z's layout (NCHW, or rows with hw = 1);
//       an index outside [0, K) gives NaN rather than a wild read. grid-stride over n, block (256).
//       FLOPs 0     bytes 4n write + 4M idx (E, 4KD, stays in cache)
//   vq_sq_error_partials_f32  partial[b] = Σ (a − b)² over block b's grid-stride slice (pass 1 of the loss).
//       block (256), grid (G ≤ 256, fixed by n: deterministic).                  FLOPs 3n    bytes 8n + 4G
//   vq_losses_f32             codebook_loss = commitment_loss = Σ partial / n (pass 2; one block of 256).
//       The two losses have the same value, mean over all n = M·D elements of (z_e − z_q)² (PyTorch's
//       F.mse_loss); they differ only in where their gradients go (see the ops layer).   bytes 4G + 8
//   vq_straight_through_backward_f32   dz_e += dz_q + coef·(z_e − z_q), coef = 2β/n: the straight-through
//       copy of the decoder's gradient fused with the gradient of β·commitment_loss. grid-stride over n.
//       FLOPs 4n    bytes 20n (read z_e, z_q, dz_q, dz_e; write dz_e)
//   vq_code_histogram_i32     counts[idx[m]] += 1 (int atomics: exact, order-free). grid-stride over M.
//       FLOPs 0     bytes 4M + atomics on 4K
//
// Per-code sums s_k = Σ_{m: idx[m]=k} z_m, for the codebook gradient and the EMA update, computed
// DETERMINISTICALLY (no float atomics: the same bits on every run and every device schedule) by a
// stable counting sort of the vectors by code followed by ordered segment sums:
//   vq_tile_code_counts_i32   tile_counts[k·T + t] = #vectors of tile t (256 consecutive vectors) with code k
//       (int atomics). grid-stride over M.                                        bytes 4M + atomics
//   vq_exclusive_scan_i32     out[i] = Σ_{j<i} in[j], out[n] = total; one block of 1024 threads, each a
//       contiguous run (serial), the 1024 run totals scanned with shuffles. Applied to tile_counts
//       (k-major), it gives base[k·T + t] = where tile t's vectors of code k start in the sorted order.
//       bytes 8(KT) + 4
//   vq_sort_by_code_i32       stable placement: vector m of tile t with code k goes to base[k·T + t] + (number
//       of earlier vectors of its tile with code k, counted in shared memory). block (256) = one tile,
//       grid (T).                                                   FLOPs ≤ 256²/2 compares per tile; bytes 4M + 8M + 4KT
//   vq_code_chunk_sums_f32    the sorted order cut into chunks of 64 positions; thread (chunk c, component d)
//       sums its chunk's runs of equal code in order. A run wholly inside the chunk is a finished s_k;
//       a run cut by a chunk edge leaves a partial: head[c] (run began before the chunk) or tail[c] (run
//       continues after it). grid-stride over ceil(M/64)·D.
//       FLOPs MD    bytes read 4MD + 8M, write ≤ 4KD + 8·ceil(M/64)·D
//   vq_code_sums_fixup_f32    thread (k, d): empty code → 0; code spread over chunks c0..c1 →
//       tail[c0] + head[c0+1] + ... + head[c1], in that order. Work per thread ≤ M/64 + 1, so a collapsed
//       codebook (every vector on one code) costs about what a spread one does. grid-stride over K·D.
//       FLOPs ≤ M·D/64   bytes 8K + 4KD + (partials of the split runs, ≤ 8·ceil(M/64)·D)
// The sums' order of addition is fixed by the data alone (sorted position, then chunk), so they are
// bit-identical whatever the thread or block order; indices must lie in [0, K) (they come from the
// nearest-code kernels).
//   vq_codebook_grad_f32      dE[k, d] += coef·(counts[k]·E[k, d] − s_k[d]), coef = 2/n: the gradient of the
//       codebook loss (1/n)Σ_m ‖sg[z_m] − e_{k_m}‖², i.e. Σ over the vectors on k of 2(e_k − z_m)/n.
//       grid-stride over KD.                                                     FLOPs 3KD   bytes 16KD + 4K
//
// The EMA codebook (the paper's appendix), γ = decay, ε = Laplace smoothing:
//   vq_ema_counts_f32         N_k ← γN_k + (1−γ)n_k; total = Σ_k N_k (block sum, fixed order). One block (256).
//       FLOPs 4K    bytes 12K + 4
//   vq_ema_codebook_f32       m_k ← γm_k + (1−γ)s_k; Ñ_k = (N_k + ε)/(total + Kε)·total; e_k = m_k / Ñ_k.
//       grid-stride over KD.                                                     FLOPs 8KD   bytes 16KD + 4K
//
// Every index is an int: the ops check that M·D, M·K (unfused path) and K·D fit.
#include "common.cuh"
#include "block_reduce.cuh"

#define VQ_NC_BM 128      // vectors per block of the fused kernel
#define VQ_NC_BN 128      // codes per tile
#define VQ_NC_BD 8        // components of D per shared-memory chunk
#define VQ_SORT_TILE 256  // vectors per tile of the counting sort (= its block size)
#define VQ_SUM_CHUNK 64   // sorted positions per chunk of the segment sums

// ---- shared helpers ------------------------------------------------------------------------------

// Offset of component 0 of vector m in the [N, D, HW] layout (component d is at + d·hw).
__device__ __forceinline__ int vq_vector_offset(int m, int D, int hw) { return (m / hw) * D * hw + m % hw; }

// A 64-bit key whose unsigned order is the lexicographic order of (distance, index): the distance's
// bits mapped so that unsigned comparison follows float order (negatives flipped), in the high word.
// +0.0 is added to map −0 to +0 (they compare equal as floats); NaN is ranked as +inf.
__device__ __forceinline__ unsigned long long vq_dist_key(float dist, int index) {
    dist = dist != dist ? VQ_INFINITY : dist + 0.0f;
    unsigned bits = __float_as_uint(dist);
    bits = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
    return ((unsigned long long)bits << 32) | (unsigned)index;
}

__device__ __forceinline__ unsigned long long vq_min_key(unsigned long long a, unsigned long long b) { return b < a ? b : a; }

// ---- codebook norms ------------------------------------------------------------------------------

extern "C" __global__ void vq_codebook_prepare_f32(const float* __restrict__ E, float* __restrict__ et, float* __restrict__ enorm,
                                                   int K, int D) {
    for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < K; k += blockDim.x * gridDim.x) {
        float s = 0.0f;
        for (int d = 0; d < D; ++d) {
            const float v = E[k * D + d];
            s += v * v;
            et[d * K + k] = v;
        }
        enorm[k] = s;
    }
}
VQ_KERNEL_NO_SYNC(vq_codebook_prepare_f32)

// ---- nearest code, fused ----------------------------------------------------------------------------

extern "C" __global__ __launch_bounds__(256) void vq_nearest_fused_f32(
    const float* __restrict__ z, const float* __restrict__ et, const float* __restrict__ enorm, int* __restrict__ idx,
    unsigned long long* __restrict__ keys, int M, int K, int D, int hw, int codes_per_split) {
    // zs rows padded by 4: the rows-layout load (8 components × 4 vectors per warp) hits 32 distinct banks.
    __shared__ float zs[VQ_NC_BD][VQ_NC_BM + 4];
    __shared__ float es[VQ_NC_BD][VQ_NC_BN];
    __shared__ unsigned long long best_keys[VQ_NC_BM][17];

    const int tid = threadIdx.x;
    const int tx = tid & 15;   // code column: codes k0 + tx + 16j
    const int ty = tid >> 4;   // vector row: vectors m0 + ty + 16i
    const int m0 = blockIdx.x * VQ_NC_BM;
    const int k_begin = blockIdx.y * codes_per_split;
    const int k_end = min(K, k_begin + codes_per_split);

    // Which z elements this thread stages: NCHW → consecutive threads take consecutive vectors (contiguous
    // in memory); rows (hw = 1) → consecutive threads take consecutive components of a vector.
    const bool rows = hw == 1;
    const int load_r = rows ? (tid >> 3) : (tid & (VQ_NC_BM - 1));
    const int load_c = rows ? (tid & 7) : (tid >> 7);
    int zoff[4];
    for (int q = 0; q < 4; ++q) {
        const int m = m0 + load_r + (rows ? 32 * q : 0);
        zoff[q] = m < M ? vq_vector_offset(m, D, hw) : -1;
    }

    float best[8];
    int best_k[8];
    for (int i = 0; i < 8; ++i) {
        best[i] = VQ_INFINITY;
        best_k[i] = k_begin;
    }

    for (int k0 = k_begin; k0 < k_end; k0 += VQ_NC_BN) {
        float acc[8][8];
        for (int i = 0; i < 8; ++i)
            for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;

        for (int d0 = 0; d0 < D; d0 += VQ_NC_BD) {
            for (int q = 0; q < 4; ++q) {
                const int c = load_c + (rows ? 0 : 2 * q);
                const int r = load_r + (rows ? 32 * q : 0);
                const int d = d0 + c;
                zs[c][r] = (zoff[q] >= 0 && d < D) ? z[zoff[q] + d * hw] : 0.0f;
            }
            for (int q = 0; q < 4; ++q) {
                const int c = (tid >> 7) + 2 * q;
                const int kk = tid & (VQ_NC_BN - 1);
                const int d = d0 + c;
                const int k = k0 + kk;
                es[c][kk] = (d < D && k < k_end) ? et[d * K + k] : 0.0f;
            }
            __syncthreads();
#pragma unroll
            for (int dd = 0; dd < VQ_NC_BD; ++dd) {
                float a[8], b[8];
#pragma unroll
                for (int i = 0; i < 8; ++i) a[i] = zs[dd][ty + 16 * i];
#pragma unroll
                for (int j = 0; j < 8; ++j) b[j] = es[dd][tx + 16 * j];
#pragma unroll
                for (int i = 0; i < 8; ++i)
#pragma unroll
                    for (int j = 0; j < 8; ++j) acc[i][j] += a[i] * b[j];
            }
            __syncthreads();
        }

        // Epilogue: codes in ascending order (j, then tiles), so strict < keeps the lowest index.
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            const int k = k0 + tx + 16 * j;
            if (k < k_end) {
                const float en = enorm[k];
#pragma unroll
                for (int i = 0; i < 8; ++i) {
                    const float dist = en - 2.0f * acc[i][j];
                    if (dist < best[i]) {
                        best[i] = dist;
                        best_k[i] = k;
                    }
                }
            }
        }
    }

    // The 16 threads of a row hold interleaved codes: merge their candidates by (distance, index).
    for (int i = 0; i < 8; ++i) best_keys[ty + 16 * i][tx] = vq_dist_key(best[i], best_k[i]);
    __syncthreads();
    if (tid < VQ_NC_BM && m0 + tid < M) {
        unsigned long long key = best_keys[tid][0];
        for (int x = 1; x < 16; ++x) key = vq_min_key(key, best_keys[tid][x]);
        if (gridDim.y == 1)
            idx[m0 + tid] = (int)(key & 0xffffffffu);
        else
            keys[blockIdx.y * M + m0 + tid] = key;
    }
}
VQ_KERNEL_SYNC(vq_nearest_fused_f32)

extern "C" __global__ void vq_nearest_merge_f32(const unsigned long long* __restrict__ keys, int* __restrict__ idx, int M, int splits) {
    for (int m = blockIdx.x * blockDim.x + threadIdx.x; m < M; m += blockDim.x * gridDim.x) {
        unsigned long long key = keys[m];
        for (int s = 1; s < splits; ++s) key = vq_min_key(key, keys[s * M + m]);
        idx[m] = (int)(key & 0xffffffffu);
    }
}
VQ_KERNEL_NO_SYNC(vq_nearest_merge_f32)

// ---- nearest code, unfused: layout transpose for the GEMM, then an argmin over rows -------------------

extern "C" __global__ void vq_nchw_to_rows_f32(const float* __restrict__ x, float* __restrict__ rows_out, int D, int hw) {
    __shared__ float tile[32][33];
    const int n = blockIdx.z;
    const float* xn = x + n * D * hw;
    int p = blockIdx.x * 32 + threadIdx.x;
    int d = blockIdx.y * 32 + threadIdx.y;
    for (int j = 0; j < 32; j += 8)
        if (p < hw && d + j < D) tile[threadIdx.y + j][threadIdx.x] = xn[(d + j) * hw + p];
    __syncthreads();
    d = blockIdx.y * 32 + threadIdx.x;
    p = blockIdx.x * 32 + threadIdx.y;
    for (int j = 0; j < 32; j += 8)
        if (d < D && p + j < hw) rows_out[(n * hw + p + j) * D + d] = tile[threadIdx.x][threadIdx.y + j];
}
VQ_KERNEL_SYNC(vq_nchw_to_rows_f32)

extern "C" __global__ void vq_argmin_rows_f32(const float* __restrict__ S, const float* __restrict__ enorm, int* __restrict__ idx, int M,
                                              int K) {
    const int lane = threadIdx.x & 31;
    const int row = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    float best = VQ_INFINITY;
    int best_k = 0;
    if (row < M) {
        const float* s = S + row * K;
        for (int k = lane; k < K; k += 32) {
            const float dist = enorm[k] - 2.0f * s[k];
            if (dist < best) {
                best = dist;
                best_k = k;
            }
        }
    }
    // Every lane takes part in the shuffles, including those of a row past M.
    unsigned long long key = vq_dist_key(best, best_k);
    for (int offset = 16; offset > 0; offset >>= 1) key = vq_min_key(key, __shfl_xor_sync(VQ_FULL_WARP_MASK, key, offset));
    if (lane == 0 && row < M) idx[row] = (int)(key & 0xffffffffu);
}
VQ_KERNEL_SYNC(vq_argmin_rows_f32)

// ---- z_q, losses, straight-through gradient ---------------------------------------------------------

extern "C" __global__ void vq_gather_nchw_f32(const float* __restrict__ E, const int* __restrict__ idx, float* __restrict__ out, int K,
                                              int D, int hw, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
        const int p = i % hw;
        const int t = i / hw;
        const int d = t % D;
        const int m = (t / D) * hw + p;
        const int k = idx[m];
        out[i] = (unsigned)k < (unsigned)K ? E[k * D + d] : __int_as_float(0x7fc00000);
    }
}
VQ_KERNEL_NO_SYNC(vq_gather_nchw_f32)

extern "C" __global__ void vq_sq_error_partials_f32(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ partial,
                                                    int n) {
    float acc = 0.0f;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
        const float diff = a[i] - b[i];
        acc += diff * diff;
    }
    acc = block_sum_f32(acc);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}
VQ_KERNEL_SYNC(vq_sq_error_partials_f32)

extern "C" __global__ void vq_losses_f32(const float* __restrict__ partial, float* __restrict__ codebook_loss,
                                         float* __restrict__ commitment_loss, int partials, float inv_count) {
    float acc = 0.0f;
    for (int i = threadIdx.x; i < partials; i += blockDim.x) acc += partial[i];
    acc = block_sum_f32(acc);
    if (threadIdx.x == 0) {
        const float mean = acc * inv_count;
        codebook_loss[0] = mean;
        commitment_loss[0] = mean;
    }
}
VQ_KERNEL_SYNC(vq_losses_f32)

extern "C" __global__ void vq_straight_through_backward_f32(const float* __restrict__ ze, const float* __restrict__ zq,
                                                            const float* __restrict__ dzq, float* __restrict__ dze, float coef, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
        dze[i] += dzq[i] + coef * (ze[i] - zq[i]);
}
VQ_KERNEL_NO_SYNC(vq_straight_through_backward_f32)

extern "C" __global__ void vq_code_histogram_i32(const int* __restrict__ idx, int* __restrict__ counts, int M, int K) {
    for (int m = blockIdx.x * blockDim.x + threadIdx.x; m < M; m += blockDim.x * gridDim.x) {
        const int k = idx[m];
        if ((unsigned)k < (unsigned)K) atomicAdd(&counts[k], 1);
    }
}
VQ_KERNEL_NO_SYNC(vq_code_histogram_i32)

// ---- per-code sums: stable counting sort, then ordered segment sums -----------------------------------

extern "C" __global__ void vq_tile_code_counts_i32(const int* __restrict__ idx, int* __restrict__ tile_counts, int M, int tiles) {
    for (int m = blockIdx.x * blockDim.x + threadIdx.x; m < M; m += blockDim.x * gridDim.x)
        atomicAdd(&tile_counts[idx[m] * tiles + m / VQ_SORT_TILE], 1);
}
VQ_KERNEL_NO_SYNC(vq_tile_code_counts_i32)

extern "C" __global__ void vq_exclusive_scan_i32(const int* __restrict__ in, int* __restrict__ out, int n) {
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
    if (tid == blockDim.x - 1) out[n] = running;
}
VQ_KERNEL_SYNC(vq_exclusive_scan_i32)

extern "C" __global__ void vq_sort_by_code_i32(const int* __restrict__ idx, const int* __restrict__ base, int* __restrict__ order,
                                               int* __restrict__ sorted_codes, int M, int tiles) {
    __shared__ int codes[VQ_SORT_TILE];
    const int t = threadIdx.x;
    const int m = blockIdx.x * VQ_SORT_TILE + t;
    const int k = m < M ? idx[m] : -1;
    codes[t] = k;
    __syncthreads();
    if (m < M) {
        int rank = 0;
        for (int u = 0; u < t; ++u) rank += codes[u] == k;
        const int position = base[k * tiles + blockIdx.x] + rank;
        order[position] = m;
        sorted_codes[position] = k;
    }
}
VQ_KERNEL_SYNC(vq_sort_by_code_i32)

extern "C" __global__ void vq_code_chunk_sums_f32(const float* __restrict__ z, const int* __restrict__ order,
                                                  const int* __restrict__ sorted_codes, float* __restrict__ sums, float* __restrict__ head,
                                                  float* __restrict__ tail, int M, int D, int hw) {
    const int chunks = (M + VQ_SUM_CHUNK - 1) / VQ_SUM_CHUNK;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < chunks * D; i += blockDim.x * gridDim.x) {
        const int c = i / D;
        const int d = i % D;
        const int j0 = c * VQ_SUM_CHUNK;
        const int j1 = min(M, j0 + VQ_SUM_CHUNK);
        int run_code = sorted_codes[j0];
        int run_start = j0;
        float acc = 0.0f;
        for (int j = j0; j <= j1; ++j) {
            const int k = j < j1 ? sorted_codes[j] : -1;
            if (k != run_code) {
                // Flush the run [run_start, j) of code run_code.
                const bool began_before = run_start == j0 && j0 > 0 && sorted_codes[j0 - 1] == run_code;
                const bool goes_on = j == j1 && j1 < M && sorted_codes[j1] == run_code;
                if (began_before) head[c * D + d] = acc;
                else if (goes_on) tail[c * D + d] = acc;
                else sums[run_code * D + d] = acc;
                if (j == j1) break;
                run_code = k;
                run_start = j;
                acc = 0.0f;
            }
            acc += z[vq_vector_offset(order[j], D, hw) + d * hw];
        }
    }
}
VQ_KERNEL_NO_SYNC(vq_code_chunk_sums_f32)

extern "C" __global__ void vq_code_sums_fixup_f32(const int* __restrict__ base, const float* __restrict__ head,
                                                  const float* __restrict__ tail, float* __restrict__ sums, int K, int D, int tiles) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < K * D; i += blockDim.x * gridDim.x) {
        const int k = i / D;
        const int d = i % D;
        const int begin = base[k * tiles];
        const int end = base[(k + 1) * tiles];
        if (begin == end) {
            sums[i] = 0.0f;
            continue;
        }
        const int c0 = begin / VQ_SUM_CHUNK;
        const int c1 = (end - 1) / VQ_SUM_CHUNK;
        if (c0 == c1) continue;  // the chunk kernel wrote the whole run
        float s = tail[c0 * D + d];
        for (int c = c0 + 1; c <= c1; ++c) s += head[c * D + d];
        sums[i] = s;
    }
}
VQ_KERNEL_NO_SYNC(vq_code_sums_fixup_f32)

extern "C" __global__ void vq_codebook_grad_f32(const float* __restrict__ E, const int* __restrict__ counts, const float* __restrict__ sums,
                                                float* __restrict__ dE, float coef, int K, int D) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < K * D; i += blockDim.x * gridDim.x)
        dE[i] += coef * ((float)counts[i / D] * E[i] - sums[i]);
}
VQ_KERNEL_NO_SYNC(vq_codebook_grad_f32)

// ---- EMA codebook ----------------------------------------------------------------------------------------

extern "C" __global__ void vq_ema_counts_f32(const int* __restrict__ counts, float* __restrict__ cluster_size, float* __restrict__ total,
                                             float decay, int K) {
    float acc = 0.0f;
    for (int k = threadIdx.x; k < K; k += blockDim.x) {
        const float n = decay * cluster_size[k] + (1.0f - decay) * (float)counts[k];
        cluster_size[k] = n;
        acc += n;
    }
    acc = block_sum_f32(acc);
    if (threadIdx.x == 0) total[0] = acc;
}
VQ_KERNEL_SYNC(vq_ema_counts_f32)

extern "C" __global__ void vq_ema_codebook_f32(const float* __restrict__ sums, const float* __restrict__ cluster_size,
                                               const float* __restrict__ total, float* __restrict__ ema_sums, float* __restrict__ E,
                                               float decay, float epsilon, int K, int D) {
    const float n_total = total[0];
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < K * D; i += blockDim.x * gridDim.x) {
        const float w = decay * ema_sums[i] + (1.0f - decay) * sums[i];
        ema_sums[i] = w;
        const float smoothed = (cluster_size[i / D] + epsilon) / (n_total + (float)K * epsilon) * n_total;
        E[i] = w / smoothed;
    }
}
VQ_KERNEL_NO_SYNC(vq_ema_codebook_f32)
