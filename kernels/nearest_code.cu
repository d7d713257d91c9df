// nearest_code.cu — the VQ-VAE quantizer's nearest codebook entry, fused and unfused variants side by
// side (kernels/NOTES.md has their measurements). The rest of the quantizer: the gather z_q = e_k is
// embedding.cu's embedding_forward_f32, the losses and the straight-through backward are losses.cu's,
// the per-code counts and sums segment_sum.cu's, the codebook gradient and EMA update codebook_update.cu's.
//
// Layouts. z (the encoder output z_e) is NCHW [N, D, H, W]: its M = N·H·W vectors have D components in
// the [outer, D, inner] layout of gather.cuh with inner = hw = H·W; a row-major [M, D] matrix is the same
// with hw = 1, so every kernel below takes `hw` and serves both. The codebook E is [K, D] row-major
// (PyTorch's layout); indices are int32, one per vector.
//
// Nearest code. k_m = argmin_j ‖z_m − e_j‖² = argmin_j (‖e_j‖² − 2 z_m·e_j): ‖z_m‖² is the same for
// every j, so it is dropped. Ties go to the LOWEST j, exactly: every (m, j) distance is computed by
// the same sequence of float operations whichever thread computes it, so duplicate codebook rows give
// bit-identical distances, and every comparison between candidates is lexicographic on (distance, j)
// — a total order, so the result does not depend on which thread or block saw which candidate first.
// NaN distances never win (a NaN compares false and is ranked as +inf when candidates are merged).
//
// Kernels, in the order a forward pass uses them.
//
//   vq_codebook_prepare_f32   enorm[k] = ‖e_k‖², and et = Eᵀ ([D, K], codes contiguous, for coalesced tile loads)
//       when et is given: only the fused kernel reads it; the unfused path passes null and skips the transposed writes.
//       thread per code, grid-stride; block (256), grid (ceil(K/256)).            FLOPs 2KD   bytes 8KD + 4K (4KD + 4K
//                                                                                             without et)
//
// Fused variant (what the op uses on a GPU):
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
//
// Unfused variant (the cpu device's default: there the GEMM is OpenBLAS and the fused kernel's 256 fibers
// per block pay for every barrier): the device GEMM S = Z·Eᵀ ([M, K], row-major; 2MKD FLOPs, writes 4MK
// bytes) — straight from NCHW as one strided-batched GEMM over the images, z[n] read as the transpose of
// its [D, HW] rows — then
//   vq_argmin_rows_f32        idx[m] = argmin_k (enorm[k] − 2 S[m, k]). One thread per row, ascending k.
//       grid-stride, block (256), grid (ceil(M/256)).  FLOPs 2MK   bytes 4MK + 4K + 4M.
//
// Every index is an int: the ops check that M·D, M·K (unfused path) and K·D fit.
#include "common.cuh"
#include "gather.cuh"

#define VQ_NC_BM 128      // vectors per block of the fused kernel
#define VQ_NC_BN 128      // codes per tile
#define VQ_NC_BD 8        // components of D per shared-memory chunk

// ---- candidate keys ----------------------------------------------------------------------------------

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

extern "C" __global__ void vq_codebook_prepare_f32(const float* __restrict__ E, float* __restrict__ et_or_null, float* __restrict__ enorm,
                                                   int K, int D) {
    for (int k = vq_grid_start(K); k < K; k = vq_grid_next(k, K)) {
        float s = 0.0f;
        for (int d = 0; d < D; ++d) {
            const float v = E[k * D + d];
            s += v * v;
            if (et_or_null != nullptr) et_or_null[d * K + k] = v;
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
        zoff[q] = m < M ? strided_vector_offset(m, D, hw) : -1;
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
    for (int m = vq_grid_start(M); m < M; m = vq_grid_next(m, M)) {
        unsigned long long key = keys[m];
        for (int s = 1; s < splits; ++s) key = vq_min_key(key, keys[s * M + m]);
        idx[m] = (int)(key & 0xffffffffu);
    }
}
VQ_KERNEL_NO_SYNC(vq_nearest_merge_f32)

// ---- nearest code, unfused: an argmin over the rows of the GEMM's z·e matrix -------------------------------

// One thread per row, scanning its K distances in ascending order (strict < keeps the lowest index; a NaN
// never wins). Barrier-free, so the cpu device runs it as a plain loop: the earlier warp-per-row form paid
// five shuffles per lane, ~35 ns each as fibers, which made the unfused search slower than its GEMM there.
// On a GPU the lanes of a warp read rows K apart: each 128-byte line is fetched once and reused from L1 by
// the next 31 iterations of the same lane; the fused kernel is the GPU's default path in any case.
extern "C" __global__ void vq_argmin_rows_f32(const float* __restrict__ S, const float* __restrict__ enorm, int* __restrict__ idx, int M,
                                              int K) {
    for (int row = vq_grid_start(M); row < M; row = vq_grid_next(row, M)) {
        const float* s = S + row * K;
        float best = VQ_INFINITY;
        int best_k = 0;
        for (int k = 0; k < K; ++k) {
            const float dist = enorm[k] - 2.0f * s[k];
            if (dist < best) {
                best = dist;
                best_k = k;
            }
        }
        idx[row] = best_k;
    }
}
VQ_KERNEL_NO_SYNC(vq_argmin_rows_f32)
