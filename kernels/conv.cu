// conv.cu — the non-GEMM half of 2-D convolution (NCHW, float32): im2col / col2im, layout change,
// channel bias forward and backward, weight masks for the masked (PixelCNN) convolutions.
//
// How a convolution uses them (src/VqVaeCuda/Ops/Convolution.cs has the whole story):
//   conv2d forward      im2col(x) -> col; yᵀ = W · col (one GEMM, [Cout][N·P]); y = NCHW(yᵀ) + bias (one pass)
//   conv2d backward     dY -> dYᵀ in [Cout][N·P]; db += row sums of dYᵀ; dW += dYᵀ · colᵀ; dcol = Wᵀ · dYᵀ;
//                       col2im(dcol) += dx; on the cpu device, for stride 1 and Cout < Cin, instead
//                       dx += NCHW(wf · im2col(dY)) with wf the flipped weight (see below)
//   conv_transpose2d    the same pieces with forward and backward-data exchanged.
//
// The column matrix. For a convolution of an image [N,C,H,W] with a kh×kw kernel, stride (sh,sw),
// zero padding (ph,pw) and output Ho×Wo (P = Ho·Wo output positions per image), `col` is a row-major
// matrix of K = C·kh·kw rows and N·P columns:
//     col[(c·kh + i)·kw + j][n·P + oh·Wo + ow] = x[n, c, oh·sh − ph + i, ow·sw − pw + j]   (0 outside x)
// All images side by side in one matrix (not one matrix per image) so the weight gradient is ONE
// GEMM with inner dimension N·P, and the forward GEMM of image n reads columns n·P.. with leading
// dimension N·P (strided batched, stride P).
//
// Shapes in the table: NP = N·P, K = C·kh·kw, X = N·C·H·W (image elements). All kernels index with
// int: the op checks every count fits.
//
// Launch shapes. The layout kernels run one thread per element of one (channel, image) plane: grid
// (ceil(S/B), min(C, 65535), min(N, 65535)), block (B,1,1) with S the plane's size (P or H·W) and
// B = min(256, S rounded up to 32); all three axes loop grid-stride, so any grid is correct. The channel and image
// come from blockIdx.y/z, so a thread divides at most once (by the row length) to find its position —
// the earlier flat grid-stride form divided three to four times per element, which on the CPU device
// (idiv ≈ 25 cycles) cost more than the memory traffic, and on a GPU is ~20 instructions each. On a GPU
// the accesses are the same as before (consecutive threads, consecutive positions in a plane: coalesced);
// up to 31 threads of a block idle when S is not a multiple of 32 (15 of 64 for 7×7 planes). The mask
// kernels stay flat grid-stride:
// block (256,1,1), grid (min(ceil(count/256), 65535),1,1).
//
//   kernel                         computes                                      launch            FLOPs       bytes (fewest)
//   conv_im2col_f32                col from x, as above                          planes of P,      0           4X + 4·K·NP
//                                  (thread per (p, c, n), loops over i,j)        grid (·, C, N)
//   conv_im2col_planes_f32         the same col: one thread per row of col,      grid (1, K),      0           4X + 4·K·NP
//                                  the images in a grid-stride loop (any block   block (1)
//                                  is correct), each shifted plane copied row
//                                  by row; the cpu device's variant (stores
//                                  uncoalesced on a GPU)
//   conv_col2im_f32                x[n,c,h,w] (=|+=) Σ of the col entries that   planes of H·W,    K·NP        4·K·NP + 4X (8X
//                                  im2col copied from (n,c,h,w); one thread      grid (·, C, N)    (adds; +X   when accumulating;
//                                  gathers all of one element's contributions                      with bias;  +4C with bias)
//                                  in a fixed order: no atomics, the result does                   +X with
//                                  not depend on thread order; when writing (=),                   relu)
//                                  + bias[c] if given (the transposed conv's),
//                                  then the layer's ReLU with relu
//   conv_col2im_planes_f32         the same sums: one thread per (c, n) plane,   grid (·, C),      K·NP        4·K·NP + 4X (8X
//                                  adding tap after tap, starting from bias[c]   block (≤ 64, ≥ 16 (adds)      when accumulating;
//                                  or 0 when writing; the cpu device's variant   blocks in all)                +4C with bias)
//                                  (to float rounding of the gather); for stride
//                                  1, Wo = W a flat run per tap, col's entries
//                                  that no pixel takes set to zero first; with                     (+X with
//                                  relu (writing) the plane's ReLU at the end                      relu)
//   conv_space_to_depth_f32        the s·s phase planes of each (n, c) plane:     grid-stride over  0           8X
//                                  phases[n][c][pi·s+pj][a][b] = x[n][c][s·a+pi]  N·C planes
//                                  [s·b+pj] (the cpu device's stride-s path)
//   conv_depth_to_space_f32        the inverse, x (= or +=) phases; with relu    grid-stride over  X (adds,    8X (12X when
//                                  (writing) x = ReLU(phases)                    N·C planes        or relu)    accumulating)
//   conv_im2col_phases_f32         col from the phase planes: each tap's block   grid (1, K),      0           4X + 4·K·NP
//                                  a shifted phase plane, one flat run (thread   block (1)
//                                  per row of col, over every image)
//   conv_col2im_phases_f32         the phase planes of col2im's sums: a thread   grid (·, C),      K·NP        4·K·NP + 4X
//                                  per (c, n), from bias[c] or 0, taps added in  block (≤ 64)      (adds)      (+4C with
//                                  ascending order as flat runs (col consumed)                                 bias)
//   conv_nchw_to_cnhw_f32          y[c][n][p] = x[n][c][p] (batched transpose of  planes of P,      0 (N·C·P    8·N·C·P (12·N·C·P
//                                  the two outer axes; runs of p stay contiguous) grid (·, C, N)    compares    with keep)
//                                  or, with keep, keep[n][c][p] > 0 ? x : +0                        with keep)
//                                  (a fused ReLU's backward)
//   conv_cnhw_to_nchw_bias_f32     y[n][c][p] = x[c][n][p] + b[c] (the forward's  planes of P,      N·C·P       8·N·C·P + 4C
//                                  GEMM output to NCHW, bias fused; b = 0         grid (·, C, N)    (2·N·C·P
//                                  without one), ReLU(…) with relu                                  with relu)
//   channel_bias_forward_f32       y[i] = x[i] + b[(i / P) % C]; x == y allowed   planes of P,      n           8n + 4C
//                                                                                 grid (·, C, n/(C·P))
//   channel_bias_backward_f32      db[c] += Σ_{n,p} dy[n,c,p]                     grid (C,1,1),     N·C·P       4·N·C·P + 8C
//                                  one block per channel: reduce_two_pass.cuh's   block (B,1,1),
//                                  block_strided_sum (shuffles, one barrier);     B a multiple of
//                                  a fixed tree, so bit-identical in every order  32, ≤ 1024 (256)
//   channel_bias_backward_rows_f32 the same, one thread per channel summing in     grid-stride over  N·C·P       4·N·C·P + 8C
//                                  order: the cpu device's variant                C, block 32
//   conv_mask_multiply_f32         out[i] = w[i] · mask[i % m]                    grid-stride, n    n           8n + 4m
//   conv_mask_multiply_add_f32     dw[i] += g[i] · mask[i % m]                    grid-stride, n    2n          12n + 4m
//   conv_weight_flip_f32           wf[ci][co][kh−1−i][kw−1−j] = w[co][ci][i][j]:  grid-stride over  0           8n
//                                  the weight of the convolution whose forward    Co·Ci kernels,   (n = Co·Ci·kh·kw)
//                                  is this one's backward-data (stride 1); the    kh·kw taps each
//                                  cpu device's adjoint path for Cout < Cin (it
//                                  also flips the flipped weight's gradient back)
// (m = mask elements: the whole weight's count for a full [Cout,Cin,kh,kw] mask, kh·kw for a [kh,kw]
// mask shared by every (out, in) channel pair.)
// Backward-data as a convolution (the cpu device, stride 1, Cout < Cin): dx = conv(dy, wf) with padding kh−1−ph,
// kw−1−pw: im2col of dy has Cout·kh·kw rows instead of the Cin·kh·kw of dcol, and the GEMM's inner dimension is
// Cout·kh·kw instead of Cout (for the residual blocks' 3×3 128→32: 288 instead of 32, a quarter of the column bytes).
// For kernels larger than 1×1 the forward and the weight gradient use the same adjoint (Convolution.RunsThroughAdjoint):
// y = col2im of wfᵀ·xᵀ (the adjoint's transposed convolution), and wf's gradient is xᵀ·im2col(dy)ᵀ, flipped back by
// conv_weight_flip_f32 — x's own column matrix is never built.
#include "common.cuh"
#include "reduce_two_pass.cuh"

// The ReLU a layer fused into its output pass applies (Convolution.Conv2dRelu, ConvTranspose2dRelu): relu_forward_f32's
// values exactly (x > 0 ? x : +0; NaN and −0 give +0), so fused and unfused give the same bits. Two spellings of it, by
// the loop (common.cuh, vq_keep_or_zero): the plain select where the loop is unit-stride and GCC vectorises it, the bit
// mask where it does not (strided stores, loops over a plane that also reads col): there the select is a jump that
// mispredicts on half the values — the fused transposed convolution ran 2 ms slower than its separate ReLU pass with it.
__device__ __forceinline__ float vq_relu(float v) { return v > 0.0f ? v : 0.0f; }
__device__ __forceinline__ float vq_relu_no_branch(float v) { return vq_keep_or_zero(v, v > 0.0f); }

// a / s for a ≥ 0 and a stride s ≥ 1: the strides of these models are 1 and 2, which need no divide.
__device__ __forceinline__ int divide_by_stride(int a, int s) { return s == 1 ? a : s == 2 ? (a >> 1) : a / s; }

// The cpu forms' flat runs (im2col and col2im of a stride-1 "same" tap, or of a stride-s tap on its phase plane): a tap's
// Ho×Wo block of col is a plane of width Wo shifted by `offset` elements, and its rows [rowLo, rowHi) and columns
// [lo, hi) are the ones inside the plane.
// Copies the block from `plane`: ONE flat run from the first inside element to the last (consecutive rows of the block
// are consecutive rows of the plane), then zeros where the shift wrapped into a neighbouring row and outside.
__device__ __forceinline__ void vq_copy_shifted_block(const float* __restrict__ plane, float* __restrict__ out, int P, int Wo, int rowLo,
                                                      int rowHi, int lo, int hi, int offset) {
    for (int q = 0; q < rowLo * Wo; q++) out[q] = 0.0f;
    if (rowLo < rowHi && lo < hi) {
        const int qEnd = (rowHi - 1) * Wo + hi;
        for (int q = rowLo * Wo + lo; q < qEnd; q++) out[q] = plane[q + offset];  // every source index inside the plane
    }
    for (int oh = rowLo; oh < rowHi; oh++) {
        for (int ow = 0; ow < lo; ow++) out[oh * Wo + ow] = 0.0f;
        for (int ow = hi; ow < Wo; ow++) out[oh * Wo + ow] = 0.0f;
    }
    for (int q = rowHi * Wo; q < P; q++) out[q] = 0.0f;
}

// Adds the block into the plane, `at` being where block element 0 lands (it may lie outside the plane; only the inside
// is touched): the run's entries that no pixel takes (the wrapped columns) are set to zero in the block first, so the one
// flat run adds +0 there. The block is consumed.
__device__ __forceinline__ void vq_add_shifted_block(float* __restrict__ block, float* __restrict__ at, int Wo, int rowLo, int rowHi, int lo,
                                                     int hi) {
    if (rowLo >= rowHi || lo >= hi) return;
    for (int ow = 0; ow < lo; ow++)
        for (int q = (rowLo + 1) * Wo + ow; q < rowHi * Wo; q += Wo) block[q] = 0.0f;
    for (int ow = hi; ow < Wo; ow++)
        for (int q = rowLo * Wo + ow; q < (rowHi - 1) * Wo; q += Wo) block[q] = 0.0f;
    const int qEnd = (rowHi - 1) * Wo + hi;
    for (int q = rowLo * Wo + lo; q < qEnd; q++) at[q] += block[q];
}

extern "C" __global__ void conv_im2col_f32(const float* __restrict__ x, float* __restrict__ col, int N, int C, int H, int W,
                                           int kh, int kw, int sh, int sw, int ph, int pw, int Ho, int Wo) {
    const int P = Ho * Wo;
    const int NP = N * P;
    for (int c = blockIdx.y; c < C; c += gridDim.y)
    for (int n = blockIdx.z; n < N; n += gridDim.z)
    for (int p = vq_grid_start(P); p < P; p = vq_grid_next(p, P)) {
        const float* image = x + (n * C + c) * H * W;
        float* plane = col + (c * kh * kw) * NP + n * P;
        // Column q = n·P + p: consecutive threads write consecutive columns of every row (coalesced).
        const int oh = p / Wo;
        const int ow = p - oh * Wo;
        const int h0 = oh * sh - ph;
        const int w0 = ow * sw - pw;
        float* out = plane + p;
        for (int i = 0; i < kh; i++) {
            const int h = h0 + i;
            const bool rowInside = h >= 0 && h < H;
            for (int j = 0; j < kw; j++) {
                const int w = w0 + j;
                // Selects, not branches: the padding taps follow no pattern a CPU predicts (a quarter of them at 7×7
                // with padding 1), and a GPU predicates either form. A padding tap loads image[0], then drops it.
                const bool inside = rowInside && w >= 0 && w < W;
                const float v = image[inside ? h * W + w : 0];
                out[(i * kw + j) * NP] = inside ? v : 0.0f;
            }
        }
    }
}
VQ_KERNEL_NO_SYNC(conv_im2col_f32)

// The same col, by rows r = (c·kh + i)·kw + j: for each image n in its grid-stride loop a thread fills the Ho×Wo block
// (r, n) with the input plane shifted by the tap, row by row. The cpu device launches one thread per row (block 1),
// so the row's tap and bounds below are found once for all N images; a thread per (row, image) spent most of its time
// finding them. The cpu device's variant (ConvKernels picks it there): a
// thread's stores are contiguous and its inner loop over ow is a plain strided copy, where the per-position form
// above spends ~8 cycles of index arithmetic per element. On a GPU the lanes (consecutive n) would store Ho·Wo
// elements apart — uncoalesced — so the GPU keeps conv_im2col_f32. Both produce the same bits (pure copies).
extern "C" __global__ void conv_im2col_planes_f32(const float* __restrict__ x, float* __restrict__ col, int N, int C, int H, int W,
                                                  int kh, int kw, int sh, int sw, int ph, int pw, int Ho, int Wo) {
    const int P = Ho * Wo;
    const int NP = N * P;
    const int taps = kh * kw;
    for (int r = blockIdx.y; r < C * taps; r += gridDim.y) {
        const int c = r / taps;
        const int i = (r - c * taps) / kw;
        const int j = r - c * taps - i * kw;
        // The output columns whose source column ow·sw − pw + j lies inside the image: [lo, hi). Found once per row of
        // col, so the copy below has no bounds test per element: zeros, a plain copy (unit stride for sw = 1, which the
        // compiler vectorises), zeros. (It tested and selected per element before: ~2.5x slower, measured in NOTES.md.)
        const int lo = min(Wo, pw - j <= 0 ? 0 : divide_by_stride(pw - j + sw - 1, sw));
        const int hi = max(lo, min(Wo, W + pw - j <= 0 ? 0 : divide_by_stride(W + pw - j + sw - 1, sw)));
        // Stride 1 with as many output as input columns (the 3×3 "same" convolutions): the output rows whose source row
        // is inside, [rowLo, rowHi), copy as ONE flat run — consecutive source rows are consecutive in memory, and so
        // are the output rows of the block — and then the few columns the shift wrapped into a neighbouring row are
        // zeroed. For 7×7 maps that is one loop of ~40 floats instead of seven of 7 (the loop overhead was the cost).
        const bool flat = sw == 1 && sh == 1 && Wo == W;
        const int rowLo = min(Ho, max(0, ph - i)), rowHi = max(rowLo, min(Ho, H + ph - i));
        for (int n = vq_grid_start(N); n < N; n = vq_grid_next(n, N)) {
            const float* image = x + (n * C + c) * H * W;
            float* out = col + r * NP + n * P;
            if (flat) {
                // q = oh·W + ow reads image[q + (i − ph)·W + (j − pw)].
                vq_copy_shifted_block(image, out, P, Wo, rowLo, rowHi, lo, hi, (i - ph) * W + (j - pw));
                continue;
            }
            for (int oh = 0; oh < Ho; oh++) {
                const int h = oh * sh - ph + i;
                float* outRow = out + oh * Wo;
                if (h < 0 || h >= H) {
                    for (int ow = 0; ow < Wo; ow++) outRow[ow] = 0.0f;
                    continue;
                }
                const float* inRow = image + h * W;
                const int shift = j - pw;  // source column of output column ow: ow·sw + shift
                for (int ow = 0; ow < lo; ow++) outRow[ow] = 0.0f;
                if (sw == 1)
                    for (int ow = lo; ow < hi; ow++) outRow[ow] = inRow[ow + shift];
                else if (sw == 2)  // the 4×4 stride-2 layers: a constant stride, which the compiler vectorises (even lanes)
                    for (int ow = lo; ow < hi; ow++) outRow[ow] = inRow[2 * ow + shift];
                else
                    for (int ow = lo; ow < hi; ow++) outRow[ow] = inRow[ow * sw + shift];
                for (int ow = hi; ow < Wo; ow++) outRow[ow] = 0.0f;
            }
        }
    }
}
VQ_KERNEL_NO_SYNC(conv_im2col_planes_f32)

// accumulate != 0: x += the gathered sum (gradients); accumulate == 0: x = the sum (transposed-conv
// forward, where x is a fresh output and may hold anything).
extern "C" __global__ void conv_col2im_f32(const float* __restrict__ col, float* __restrict__ x, int N, int C, int H, int W,
                                           int kh, int kw, int sh, int sw, int ph, int pw, int Ho, int Wo, int accumulate,
                                           const float* __restrict__ bias_or_null, int relu) {
    const int P = Ho * Wo;
    const int NP = N * P;
    const int HW = H * W;
    for (int c = blockIdx.y; c < C; c += gridDim.y)
    for (int n = blockIdx.z; n < N; n += gridDim.z)
    for (int s = vq_grid_start(HW); s < HW; s = vq_grid_next(s, HW)) {
        const float* base = col + (c * kh * kw) * NP + n * P;
        float* image = x + (n * C + c) * HW;
        const int h = s / W;
        const int w = s - h * W;
        // Output rows oh that touched row h: oh·sh − ph + i = h for some tap 0 ≤ i < kh.
        const int hp = h + ph;
        const int wp = w + pw;
        const int ohLo = hp < kh ? 0 : divide_by_stride(hp - kh, sh) + 1;
        const int ohHi = min(divide_by_stride(hp, sh), Ho - 1);
        const int owLo = wp < kw ? 0 : divide_by_stride(wp - kw, sw) + 1;
        const int owHi = min(divide_by_stride(wp, sw), Wo - 1);
        float sum = 0.0f;
        for (int oh = ohLo; oh <= ohHi; oh++) {
            const int i = hp - oh * sh;
            for (int ow = owLo; ow <= owHi; ow++) {
                const int j = wp - ow * sw;
                sum += base[(i * kw + j) * NP + oh * Wo + ow];
            }
        }
        // The bias (writing only): the transposed convolution's, added to the sum col2im wrote before, as the bias pass
        // this replaces did, so the same bits. relu (writing only): the ReLU that follows the layer, on the final value.
        if (accumulate) {
            image[s] += sum;
        } else {
            const float v = bias_or_null != nullptr ? sum + bias_or_null[c] : sum;
            image[s] = relu ? vq_relu(v) : v;
        }
    }
}
VQ_KERNEL_NO_SYNC(conv_col2im_f32)

// The same sums, one thread per (channel, image) plane of x: it adds the taps' column rows into its plane one tap at
// a time, in ascending (i, j), each a strided copy-add over the rows the tap reaches (bounds computed per row, no
// per-element test). The cpu device's variant (ConvKernels picks it there); no two threads touch one element, so no
// atomics and a fixed order. On a GPU the lanes (consecutive images) would read and write H·W elements apart, so
// the GPU keeps the gather above. The additions differ in order from the gather's (x + t1 + t2 + ... instead of
// x + (t1 + t2 + ...)): the two agree to float rounding, not bit for bit.
// Stride 1 with as many output as input columns (the 3×3 "same" convolutions) adds each tap as ONE flat run, as
// im2col copies it: consecutive rows of the tap's block land on consecutive rows of the plane. The entries of the run
// that no pixel takes (the columns the shift wraps into a neighbouring row) are first set to zero in col, so the run
// adds +0 there: the same sums, one loop of ~40 floats instead of seven of 7 per tap for 7×7 planes. col is therefore
// not const here: its entries that no pixel takes may be overwritten (every caller passes columns it discards after).
extern "C" __global__ void conv_col2im_planes_f32(float* __restrict__ col, float* __restrict__ x, int N, int C, int H, int W,
                                                  int kh, int kw, int sh, int sw, int ph, int pw, int Ho, int Wo, int accumulate,
                                                  const float* __restrict__ bias_or_null, int relu) {
    const int P = Ho * Wo;
    const int NP = N * P;
    const int HW = H * W;
    for (int c = blockIdx.y; c < C; c += gridDim.y)
    for (int n = vq_grid_start(N); n < N; n = vq_grid_next(n, N)) {
        float* image = x + (n * C + c) * HW;
        if (!accumulate) {
            // A written plane starts from its bias (the transposed convolution's, in this pass) or from zero.
            const float start = bias_or_null != nullptr ? bias_or_null[c] : 0.0f;
            for (int s = 0; s < HW; s++) image[s] = start;
        }
        const bool flat = sw == 1 && sh == 1 && Wo == W;
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++) {
                float* row = col + ((c * kh + i) * kw + j) * NP + n * P;
                // Output columns ow whose input column w = ow·sw − pw + j lies in [0, W).
                const int owLo = pw - j <= 0 ? 0 : divide_by_stride(pw - j + sw - 1, sw);
                const int owHi = W - 1 + pw - j < 0 ? -1 : min(Wo - 1, divide_by_stride(W - 1 + pw - j, sw));
                if (flat) {
                    // Output rows whose input row h = oh − ph + i is inside: [rowLo, rowHi); columns [owLo, owHi]. q = oh·W + ow
                    // adds into image[q + (i − ph)·W + (j − pw)].
                    const int rowLo = min(Ho, max(0, ph - i)), rowHi = max(rowLo, min(Ho, H + ph - i));
                    vq_add_shifted_block(row, image + (i - ph) * W + (j - pw), Wo, rowLo, rowHi, owLo, owHi + 1);
                    continue;
                }
                for (int oh = 0; oh < Ho; oh++) {
                    const int h = oh * sh - ph + i;
                    if (h < 0 || h >= H) continue;
                    float* out = image + h * W + (owLo * sw - pw + j);
                    const float* in = row + oh * Wo;
                    // Constant strides for the strides these models use, so the compiler vectorises the add.
                    if (sw == 1)
                        for (int ow = owLo; ow <= owHi; ow++) out[ow - owLo] += in[ow];
                    else if (sw == 2)
                        for (int ow = owLo; ow <= owHi; ow++) out[2 * (ow - owLo)] += in[ow];
                    else
                        for (int ow = owLo; ow <= owHi; ow++) out[(ow - owLo) * sw] += in[ow];
                }
            }
        // The ReLU that follows the layer (writing only), once the plane holds its final sums: the plane is still in L1.
        if (relu && !accumulate)
            for (int s = 0; s < HW; s++) image[s] = vq_relu_no_branch(image[s]);
    }
}
VQ_KERNEL_NO_SYNC(conv_col2im_planes_f32)

// ---- stride s through phase planes (the cpu device) ------------------------------------------------------------------
// A stride-s convolution reads, for tap (i, j), every s-th row and column of the image: input row s·oh − ph + i. Split
// i − ph = s·di + pi (0 ≤ pi < s): the row is s·(oh + di) + pi, row oh + di of PHASE plane pi, the plane of the rows
// ≡ pi (mod s). So with the image split into its s·s phase planes (H/s × W/s each; space to depth), every tap's block of
// col is a phase plane shifted by (di, dj): the stride-1 flat copy of conv_im2col_planes_f32 (one run per block, the
// wrapped columns zeroed) where the strided path copies seven runs of seven strided elements per 7×7 block. col2im is
// the mirror: each tap added into its phase plane as one flat run (conv_col2im_planes_f32's), then depth to space. For
// s | H, s | W and Wo = W/s (the 4×4 stride-2 layers with padding 1); ConvKernels picks this path on the cpu device, where
// the phase planes are one temporary tensor (the x's size) and one pass more. On a GPU the strided gathers coalesce as
// well as these and save the passes: the GPU keeps conv_im2col_f32 / conv_col2im_f32.

// floor(a / s) for any sign of a (s ≥ 1): the tap's phase-plane shift.
__device__ __forceinline__ int floor_divide_by_stride(int a, int s) { return a >= 0 ? a / s : -((-a + s - 1) / s); }

// phases[n][c][pi·s + pj][a][b] = x[n][c][s·a + pi][s·b + pj] for a < H/s, b < W/s. Grid-stride over the N·C planes.
extern "C" __global__ void conv_space_to_depth_f32(const float* __restrict__ x, float* __restrict__ phases, int planes, int H, int W, int s) {
    const int Hp = H / s, Wp = W / s;
    for (int plane = vq_grid_start(planes); plane < planes; plane = vq_grid_next(plane, planes)) {
        const float* in = x + plane * H * W;
        float* out = phases + plane * H * W;
        for (int pi = 0; pi < s; pi++)
            for (int pj = 0; pj < s; pj++) {
                float* phase = out + (pi * s + pj) * Hp * Wp;
                for (int a = 0; a < Hp; a++) {
                    const float* row = in + (s * a + pi) * W + pj;
                    for (int b = 0; b < Wp; b++) phase[a * Wp + b] = row[s * b];
                }
            }
    }
}
VQ_KERNEL_NO_SYNC(conv_space_to_depth_f32)

// x[n][c][s·a + pi][s·b + pj] (= or +=) phases[n][c][pi·s + pj][a][b]: the inverse, accumulating for gradients.
extern "C" __global__ void conv_depth_to_space_f32(const float* __restrict__ phases, float* __restrict__ x, int planes, int H, int W, int s,
                                                   int accumulate, int relu) {
    const int Hp = H / s, Wp = W / s;
    for (int plane = vq_grid_start(planes); plane < planes; plane = vq_grid_next(plane, planes)) {
        const float* in = phases + plane * H * W;
        float* out = x + plane * H * W;
        for (int pi = 0; pi < s; pi++)
            for (int pj = 0; pj < s; pj++) {
                const float* phase = in + (pi * s + pj) * Hp * Wp;
                for (int a = 0; a < Hp; a++) {
                    float* row = out + (s * a + pi) * W + pj;
                    if (accumulate)
                        for (int b = 0; b < Wp; b++) row[s * b] += phase[a * Wp + b];
                    else if (relu)
                        for (int b = 0; b < Wp; b++) row[s * b] = vq_relu_no_branch(phase[a * Wp + b]);
                    else
                        for (int b = 0; b < Wp; b++) row[s * b] = phase[a * Wp + b];
                }
            }
    }
}
VQ_KERNEL_NO_SYNC(conv_depth_to_space_f32)

// col from the phase planes (Hp × Wp = H/s × W/s, Wo = Wp): a thread per row of col, over every image, as
// conv_im2col_planes_f32's flat path with the tap's phase plane and shift.
extern "C" __global__ void conv_im2col_phases_f32(const float* __restrict__ phases, float* __restrict__ col, int N, int C, int Hp, int Wp,
                                                  int kh, int kw, int s, int ph, int pw, int Ho, int Wo) {
    const int P = Ho * Wo;
    const int NP = N * P;
    const int taps = kh * kw;
    const int plane = Hp * Wp;
    for (int r = blockIdx.y; r < C * taps; r += gridDim.y) {
        const int c = r / taps;
        const int i = (r - c * taps) / kw;
        const int j = r - c * taps - i * kw;
        const int di = floor_divide_by_stride(i - ph, s), pi = i - ph - s * di;
        const int dj = floor_divide_by_stride(j - pw, s), pj = j - pw - s * dj;
        // Block (oh, ow) reads phase (oh + di, ow + dj): rows [rowLo, rowHi) and columns [lo, hi) are inside.
        const int rowLo = min(Ho, max(0, -di)), rowHi = max(rowLo, min(Ho, Hp - di));
        const int lo = min(Wo, max(0, -dj)), hi = max(lo, min(Wo, Wp - dj));
        const int offset = di * Wp + dj;
        for (int n = vq_grid_start(N); n < N; n = vq_grid_next(n, N)) {
            const float* phase = phases + ((n * C + c) * s * s + pi * s + pj) * plane;
            vq_copy_shifted_block(phase, col + r * NP + n * P, P, Wo, rowLo, rowHi, lo, hi, offset);
        }
    }
}
VQ_KERNEL_NO_SYNC(conv_im2col_phases_f32)

// The phase planes of x's gradient or output from col: a thread per (c, n), which starts its s·s phase planes from
// bias[c] or 0 and adds the taps in ascending (i, j), each as one flat run into its phase plane (the run's wrapped
// entries of col zeroed first, as conv_col2im_planes_f32 does: col is consumed). conv_depth_to_space_f32 then writes or
// adds the planes into x. Every pixel gets its taps in the planes form's order; accumulating adds their sum to x at the
// end instead of one by one (the two agree to float rounding).
extern "C" __global__ void conv_col2im_phases_f32(float* __restrict__ col, float* __restrict__ phases, int N, int C, int Hp, int Wp,
                                                  int kh, int kw, int s, int ph, int pw, int Ho, int Wo,
                                                  const float* __restrict__ bias_or_null) {
    const int P = Ho * Wo;
    const int NP = N * P;
    const int plane = Hp * Wp;
    for (int c = blockIdx.y; c < C; c += gridDim.y)
    for (int n = vq_grid_start(N); n < N; n = vq_grid_next(n, N)) {
        float* planes = phases + (n * C + c) * s * s * plane;
        const float start = bias_or_null != nullptr ? bias_or_null[c] : 0.0f;
        for (int e = 0; e < s * s * plane; e++) planes[e] = start;
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++) {
                float* row = col + ((c * kh + i) * kw + j) * NP + n * P;
                const int di = floor_divide_by_stride(i - ph, s), pi = i - ph - s * di;
                const int dj = floor_divide_by_stride(j - pw, s), pj = j - pw - s * dj;
                const int rowLo = min(Ho, max(0, -di)), rowHi = max(rowLo, min(Ho, Hp - di));
                const int lo = min(Wo, max(0, -dj)), hi = max(lo, min(Wo, Wp - dj));
                vq_add_shifted_block(row, planes + (pi * s + pj) * plane + di * Wp + dj, Wo, rowLo, rowHi, lo, hi);
            }
    }
}
VQ_KERNEL_NO_SYNC(conv_col2im_phases_f32)

// One thread along x (the cpu device's plane launch, ConvKernels.LaunchPlanes): the run of p is a plain loop, which the
// compiler vectorises; the grid-stride loop it replaces there was scalar. A GPU launch has ≥ 32 threads along x, so the
// branch is uniform there and never taken.
__device__ __forceinline__ bool vq_one_thread_along_x() { return gridDim.x * blockDim.x == 1; }

// With keep_or_null (an NCHW tensor of x's shape: the output of a convolution whose ReLU was fused into it), an element
// is kept where keep is positive and +0 elsewhere: the ReLU's backward (relu_backward_f32's rule, y > 0) in the same pass
// that lays the output gradient out for the GEMMs.
extern "C" __global__ void conv_nchw_to_cnhw_f32(const float* __restrict__ x, float* __restrict__ y, int N, int C, int P,
                                                 const float* __restrict__ keep_or_null) {
    for (int c = blockIdx.y; c < C; c += gridDim.y)
    for (int n = blockIdx.z; n < N; n += gridDim.z) {
        const float* from = x + (n * C + c) * P;
        float* to = y + (c * N + n) * P;
        if (keep_or_null != nullptr) {
            const float* keep = keep_or_null + (n * C + c) * P;
            if (vq_one_thread_along_x())
                for (int p = 0; p < P; p++) {
                    const float g = from[p];  // loaded whatever keep says: a load under the condition would not vectorise
                    to[p] = keep[p] > 0.0f ? g : 0.0f;
                }
            else
                for (int p = vq_grid_start(P); p < P; p = vq_grid_next(p, P)) to[p] = vq_keep_or_zero(from[p], keep[p] > 0.0f);
        } else if (vq_one_thread_along_x()) {
            for (int p = 0; p < P; p++) to[p] = from[p];
        } else {
            for (int p = vq_grid_start(P); p < P; p = vq_grid_next(p, P)) to[p] = from[p];
        }
    }
}
VQ_KERNEL_NO_SYNC(conv_nchw_to_cnhw_f32)

// The way back from the GEMM's [C][N·P] layout, fused with what follows it: the convolution's forward adds its bias
// (+0 without one: x + 0 differs from x only for −0, which the ReLU maps to +0 anyway; a convolution with neither
// takes the plain transpose) and, with relu, applies the ReLU that follows the layer.
extern "C" __global__ void conv_cnhw_to_nchw_bias_f32(const float* __restrict__ x, const float* __restrict__ bias_or_null, float* __restrict__ y,
                                                      int N, int C, int P, int relu) {
    for (int c = blockIdx.y; c < C; c += gridDim.y)
    for (int n = blockIdx.z; n < N; n += gridDim.z) {
        const float* from = x + (c * N + n) * P;
        float* to = y + (n * C + c) * P;
        const float b = bias_or_null != nullptr ? bias_or_null[c] : 0.0f;
        if (relu) {
            if (vq_one_thread_along_x())
                for (int p = 0; p < P; p++) to[p] = vq_relu(from[p] + b);
            else
                for (int p = vq_grid_start(P); p < P; p = vq_grid_next(p, P)) to[p] = vq_relu(from[p] + b);
        } else if (vq_one_thread_along_x()) {
            for (int p = 0; p < P; p++) to[p] = from[p] + b;
        } else {
            for (int p = vq_grid_start(P); p < P; p = vq_grid_next(p, P)) to[p] = from[p] + b;
        }
    }
}
VQ_KERNEL_NO_SYNC(conv_cnhw_to_nchw_bias_f32)


// No __restrict__: x == y is allowed (an in-place bias; ChannelBias itself writes a new tensor).
// n = N·C·P.
extern "C" __global__ void channel_bias_forward_f32(const float* x, const float* bias, float* y, int C, int P, int n) {
    const int N = n / (C * P);
    for (int c = blockIdx.y; c < C; c += gridDim.y)
    for (int image = blockIdx.z; image < N; image += gridDim.z)
        for (int p = vq_grid_start(P); p < P; p = vq_grid_next(p, P)) {
            const int i = (image * C + c) * P + p;
            y[i] = x[i] + bias[c];
        }
}
VQ_KERNEL_NO_SYNC(channel_bias_forward_f32)

extern "C" __global__ void channel_bias_backward_f32(const float* __restrict__ dy, float* __restrict__ dbias, int N, int C, int P) {
    const int c = blockIdx.x;
    const int count = N * P;
    const float acc = block_strided_sum(count, [&](int i) {
        const int n = i / P;
        return dy[(n * C + c) * P + (i - n * P)];
    });
    if (threadIdx.x == 0) dbias[c] += acc;
}
VQ_KERNEL_SYNC(channel_bias_backward_f32)

// The same sums, one thread per channel walking its N·P values in order (no shuffles, no barrier). The cpu device's
// variant (ConvKernels picks it there), where the block reduction's 32 fibers pay ~35 ns per shuffle each; on a GPU C
// threads walking N·P values one by one would leave the machine idle, so the GPU keeps the block reduction.
// Eight running sums, position p of each row going to sum p mod 8, added pairwise at the end: one running sum waits
// for the previous add (~4 cycles a value, latency-bound: 1% of the cpu step); eight independent ones vectorise. The
// order is fixed by the shape alone, so every thread order gives the same bits.
extern "C" __global__ void channel_bias_backward_rows_f32(const float* __restrict__ dy, float* __restrict__ dbias, int N, int C, int P) {
    for (int c = vq_grid_start(C); c < C; c = vq_grid_next(c, C)) {
        float lanes[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        for (int n = 0; n < N; n++) {
            const float* row = dy + (n * C + c) * P;
            int p = 0;
            for (; p + 8 <= P; p += 8)
                for (int l = 0; l < 8; l++) lanes[l] += row[p + l];
            for (; p < P; p++) lanes[p & 7] += row[p];
        }
        dbias[c] += ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    }
}
VQ_KERNEL_NO_SYNC(channel_bias_backward_rows_f32)

extern "C" __global__ void conv_mask_multiply_f32(const float* __restrict__ w, const float* __restrict__ mask, float* __restrict__ out,
                                                  int n, int m) {
    for (int i = vq_grid_start(n); i < n; i = vq_grid_next(i, n)) out[i] = w[i] * mask[i % m];
}
VQ_KERNEL_NO_SYNC(conv_mask_multiply_f32)

extern "C" __global__ void conv_mask_multiply_add_f32(const float* __restrict__ g, const float* __restrict__ mask, float* __restrict__ dw,
                                                      int n, int m) {
    for (int i = vq_grid_start(n); i < n; i = vq_grid_next(i, n)) dw[i] += g[i] * mask[i % m];
}
VQ_KERNEL_NO_SYNC(conv_mask_multiply_add_f32)

extern "C" __global__ void conv_weight_flip_f32(const float* __restrict__ w, float* __restrict__ wf, int co, int ci, int kh, int kw) {
    // Tap t = i·kw + j goes to (kh−1−i)·kw + (kw−1−j) = taps−1−t: each kernel's run of taps is copied reversed. A thread per
    // (o, c) kernel: two divides per kernel instead of four per element (the cpu device ran ~3 ns an element before).
    const int taps = kh * kw, pairs = co * ci;
    for (int pair = vq_grid_start(pairs); pair < pairs; pair = vq_grid_next(pair, pairs)) {
        const int o = pair / ci, c = pair - o * ci;  // pair = o·Ci + c
        const float* from = w + pair * taps;
        float* to = wf + (c * co + o) * taps + (taps - 1);
        for (int t = 0; t < taps; t++) to[-t] = from[t];
    }
}
VQ_KERNEL_NO_SYNC(conv_weight_flip_f32)
