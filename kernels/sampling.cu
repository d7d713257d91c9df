// sampling.cu — drawing codes from the prior's logits, and the window copies of the cached sampler.
//
//   sample_position_f32   for each of N samples, the code at one position q of a code map, drawn from the
//       logits at one position p of [N, K, inner] (the prior's [N, K, H, W] with inner = H·W, or the cached
//       sampler's [N, K, 1, 1]):
//         l_k = logits[(n·K + k)·inner + p],   m = max_k l_k,   e_k = exp((l_k − m) / T)
//         code = the smallest k with e_0 + ... + e_k > u_n · Σ_j e_j          (inverse CDF)
//       with u_n = uniforms[n·uniform_stride + uniform_index] in [0, 1), drawn on the host from the seed.
//       Subtracting the max keeps exp from overflowing and puts the largest term at exp(0) = 1, so the sum
//       is ≥ 1: the stable softmax, left unnormalised (the draw compares against u·Σ instead of dividing).
//       The second pass recomputes each e_k bit for bit, so its running sum ends exactly at Σ; should
//       u·Σ round up to Σ itself, the last code of non-zero probability is taken. As T → 0 every term but
//       the largest underflows to 0 and the draw is the argmax (the first one, should several logits tie).
//       Logits that are not finite (a NaN anywhere, or +inf) give code −1, which the host reports.
//       Writes codes[n·code_inner + code_index] and chosen[n] (the new codes side by side, for their embedding).
//       One thread per sample, grid-stride over N; block (256,1,1), grid (min(ceil(N/256), 65535),1,1);
//       barrier-free. Sampling is a sliver of a generation step (N·K work against the prior's
//       convolutions), so one thread walks its sample's K logits three times (max, Σ, scan) rather than a
//       block reducing and scanning them.
//       FLOPs: ~7NK (max; subtract, divide, exp, add, twice). Bytes: 4NK logits (the later passes hit
//       cache; strided by inner, uncoalesced — N·K is small) + 4N uniforms + 8N codes written.
//
//   copy_window_f32       a window of h×w positions of every plane from src [planes, src_h, src_w] into dst
//       [planes, dst_h, dst_w]: dst[c, dst_row + i, dst_col + j] = src[c, src_row + i, src_col + j], or 0
//       where that source position lies outside src (the zero padding of a convolution). planes = N·C of
//       an NCHW tensor. The cached sampler crops the rows and columns a new position's outputs need
//       (with their padding) and writes each new output back into its layer's cache.
//       Grid-stride over m = planes·h·w; block (256,1,1), grid (min(ceil(m/256), 65535),1,1); barrier-free.
//       FLOPs: 0. Bytes: 8m (read and write; padding positions only write).
#include "common.cuh"

extern "C" __global__ void sample_position_f32(const float* __restrict__ logits, int classes, int inner, int position,
                                               const float* __restrict__ uniforms, int uniform_stride, int uniform_index,
                                               float temperature, int* __restrict__ codes, int code_inner, int code_index,
                                               int* __restrict__ chosen, int samples) {
    for (int n = vq_grid_start(samples); n < samples; n = vq_grid_next(n, samples)) {
        const float* l = logits + n * classes * inner + position;
        float m = -VQ_INFINITY;
        for (int k = 0; k < classes; k++) m = fmaxf(m, l[k * inner]);
        float sum = 0.0f;
        for (int k = 0; k < classes; k++) sum += expf((l[k * inner] - m) / temperature);
        const float target = uniforms[n * uniform_stride + uniform_index] * sum;
        int code = -1, last_positive = -1;
        float running = 0.0f;
        for (int k = 0; k < classes; k++) {
            const float e = expf((l[k * inner] - m) / temperature);
            if (e > 0.0f) last_positive = k;
            running += e;
            if (code < 0 && running > target) code = k;
        }
        // A NaN logit makes m or Σ NaN (no comparison holds); +inf makes every term NaN. Neither is a distribution.
        const bool finite = sum >= 1.0f && sum <= VQ_FLT_MAX;
        if (!finite) code = -1;
        else if (code < 0) code = last_positive;
        codes[n * code_inner + code_index] = code;
        chosen[n] = code;
    }
}
VQ_KERNEL_NO_SYNC(sample_position_f32)

extern "C" __global__ void copy_window_f32(const float* __restrict__ src, int src_h, int src_w, int src_row, int src_col,
                                           float* __restrict__ dst, int dst_h, int dst_w, int dst_row, int dst_col,
                                           int planes, int h, int w) {
    const int m = planes * h * w;
    for (int e = vq_grid_start(m); e < m; e = vq_grid_next(e, m)) {
        const int j = e % w;
        const int i = (e / w) % h;
        const int c = e / (w * h);
        const int sr = src_row + i, sc = src_col + j;
        const bool inside = sr >= 0 && sr < src_h && sc >= 0 && sc < src_w;
        dst[(c * dst_h + dst_row + i) * dst_w + dst_col + j] = inside ? src[(c * src_h + sr) * src_w + sc] : 0.0f;
    }
}
VQ_KERNEL_NO_SYNC(copy_window_f32)
