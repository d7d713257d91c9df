using VqVaeCuda.Device;
using static VqVaeCuda.Ops.KernelLaunch;

namespace VqVaeCuda.Ops;

/// <summary>
/// Launches of kernels/conv.cu: the layout kernels take one (channel, image) plane per blockIdx.y/z
/// (<see cref="LaunchPlanes"/>); the mask kernels are grid-stride with block 256; the bias backward is one
/// block of <see cref="BiasReductionBlock"/> per channel on a GPU. Where the cpu device runs a kernel of its own (a thread
/// per row or plane: im2col, col2im, the bias gradient), the launcher picks it by device kind, as the quantizer picks
/// its nearest-code search; ConvLayoutKernelTests hold both kernels of each pair to one reference.
/// </summary>
internal static class ConvKernels
{
    /// <summary>
    /// Threads per channel block of the GPU's bias gradient: 256 (8 warps share a channel's N·P values, enough loads in
    /// flight to hide memory latency). The cpu device runs channel_bias_backward_rows_f32 instead (see ChannelBiasBackward).
    /// </summary>
    public const int BiasReductionBlock = 256;

    /// <summary>The most blocks a plane launch puts on grid.y and grid.z; the kernels loop over more channels or images.</summary>
    public const int MaxPlanes = 65535;

    /// <summary>
    /// col [C·kh·kw, N·P] from the image [N, C, H, W]: on a GPU planes of P, grid (·, C, N); on the cpu device a thread per
    /// row of col, over every image, and for a stride s ≥ 2 where <see cref="PhaseScratchFloats"/> is not 0 through the
    /// image's phase planes held in <paramref name="phases"/> (that many floats; <c>default</c>: the strided copies).
    /// </summary>
    public static void Im2Col(IDevice device, DevicePointer image, DevicePointer col, int n, int c, int h, int w, int kh, int kw, int sh, int sw, int ph,
                              int pw, int ho, int wo, DevicePointer phases = default) =>
        Im2Col(device, FormFor(device), image, col, n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo, phases);

    /// <summary>
    /// Floats of the phase planes (the image's size) through which the cpu form's im2col and col2im run a stride-s
    /// convolution, or 0 where they do not: a GPU form, stride 1, unequal strides, s not dividing H and W, or Wo ≠ W/s
    /// (kernels/conv.cu, "stride s through phase planes"). The 4×4 stride-2 layers with padding 1 qualify.
    /// </summary>
    public static long PhaseScratchFloats(KernelForm form, int n, int c, int h, int w, int sh, int sw, int wo) =>
        form == KernelForm.Cpu && sh == sw && sh >= 2 && h % sh == 0 && w % sw == 0 && wo == w / sw ? (long)n * c * h * w : 0;

    // Which kernel of each pair runs (im2col, col2im, the bias gradient): KernelLaunch.KernelForm. The GPU forms take a
    // thread per output position, or a block reduction per channel: coalesced, parallel; the CPU forms a thread per row
    // of col, per plane, or per channel, walking contiguous memory in order. The two im2col kernels write the same bits;
    // the col2im and bias-gradient pairs add in different orders (they agree to float rounding). ConvLayoutKernelTests
    // hold both forms to one reference.

    /// <summary><see cref="Im2Col(IDevice, DevicePointer, DevicePointer, int, int, int, int, int, int, int, int, int, int, int, int, DevicePointer)"/> with a chosen kernel (tests).</summary>
    internal static void Im2Col(IDevice device, KernelForm form, DevicePointer image, DevicePointer col, int n, int c, int h, int w, int kh, int kw,
                                int sh, int sw, int ph, int pw, int ho, int wo, DevicePointer phases = default)
    {
        if (form == KernelForm.Gpu)
        {
            LaunchPlanes(device, "conv_im2col_f32", ho * wo, c, n, image, col, n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo);
            return;
        }
        // One thread per row of col, looping over the images: the row's tap, bounds and flat-copy range are found once for
        // all N images instead of once per (row, image) thread. At a block of 64 (a thread per image) that per-thread set-up
        // (three divisions, the bounds) was most of the kernel's time: 1.2-1.6 → 0.8-1.0 ms for the 3×3 128-channel layer's
        // 14.4 MB of columns (kernels/NOTES.md). The rows still spread over the worker threads as blocks.
        var rows = new Dim3(1, (uint)Math.Clamp((long)c * kh * kw, 1, MaxPlanes));
        if (phases != default && PhaseScratchFloats(form, n, c, h, w, sh, sw, wo) > 0)
        {
            // The phase planes once (one pass over the image), then every block of col one flat run from its plane: the
            // 4×4 stride-2 layers' im2col at the flat 3×3 copies' speed per byte (kernels/NOTES.md).
            LaunchGridStride(device, "conv_space_to_depth_f32", (long)n * c, image, phases, n * c, h, w, sh);
            Launch(device, "conv_im2col_phases_f32", rows, new Dim3(1), phases, col, n, c, h / sh, w / sw, kh, kw, sh, ph, pw, ho, wo);
            return;
        }
        Launch(device, "conv_im2col_planes_f32", rows, new Dim3(1), image, col, n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo);
    }

    /// <summary>
    /// image (= or +=) the col entries of each pixel, plus <paramref name="bias"/>[c] when writing (=) and a bias is given
    /// (<c>default</c>: none): on a GPU the gather, planes of H·W, grid (·, C, N); on the cpu device a thread per plane, through
    /// the phase planes in <paramref name="phases"/> as for <see cref="Im2Col(IDevice, DevicePointer, DevicePointer, int, int, int, int, int, int, int, int, int, int, int, int, DevicePointer)"/>.
    /// <paramref name="col"/> is consumed: the cpu form may set its entries that no pixel takes to zero (the stride-1 flat
    /// runs in kernels/conv.cu), so pass columns nothing reads afterwards except further col2im calls.
    /// </summary>
    /// <exception cref="ArgumentException">A bias with <paramref name="accumulate"/>: a bias is added once, to a written image.</exception>
    public static void Col2Im(IDevice device, DevicePointer col, DevicePointer image, int n, int c, int h, int w, int kh, int kw, int sh, int sw, int ph,
                              int pw, int ho, int wo, bool accumulate, DevicePointer bias = default, DevicePointer phases = default, bool relu = false) =>
        Col2Im(device, FormFor(device), col, image, n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo, accumulate, bias, phases, relu);

    /// <summary>
    /// <see cref="Col2Im(IDevice, DevicePointer, DevicePointer, int, int, int, int, int, int, int, int, int, int, int, int, bool, DevicePointer, DevicePointer, bool)"/>
    /// with a chosen kernel (tests): the gather per pixel (<c>conv_col2im_f32</c>, a GPU's) or a thread per plane adding
    /// tap after tap (<c>conv_col2im_planes_f32</c>, the cpu device's; through the phase planes in <paramref name="phases"/>
    /// for a stride s where <see cref="PhaseScratchFloats"/> is not 0); they agree to float rounding. With
    /// <paramref name="relu"/> (writing only) the image gets the ReLU of each final value, in the same pass.
    /// </summary>
    internal static void Col2Im(IDevice device, KernelForm form, DevicePointer col, DevicePointer image, int n, int c, int h, int w, int kh, int kw,
                                int sh, int sw, int ph, int pw, int ho, int wo, bool accumulate, DevicePointer bias = default,
                                DevicePointer phases = default, bool relu = false)
    {
        if (accumulate && bias != default)
            throw new ArgumentException("col2im adds a bias only when it writes the image (accumulate: false)", nameof(bias));
        if (accumulate && relu)
            throw new ArgumentException("col2im applies a ReLU only when it writes the image (accumulate: false)", nameof(relu));
        int reluFlag = relu ? 1 : 0;
        if (form == KernelForm.Gpu)
        {
            LaunchPlanes(device, "conv_col2im_f32", h * w, c, n, col, image, n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo, accumulate ? 1 : 0, bias,
                         reluFlag);
            return;
        }
        // A thread per (c, n) plane, at least 16 blocks: with few channels (the decoder's last layer has one) a block of 64
        // images would leave every worker thread but one idle.
        int block = (int)Math.Clamp(((long)n * c + 15) / 16, 1, 64);
        var grid = new Dim3((uint)Math.Clamp((n + block - 1) / block, 1, MaxGridStrideBlocks), (uint)Math.Clamp(c, 1, MaxPlanes));
        if (phases != default && PhaseScratchFloats(form, n, c, h, w, sh, sw, wo) > 0)
        {
            // Each tap one flat run into its phase plane, then the planes into the image (written or added).
            Launch(device, "conv_col2im_phases_f32", grid, new Dim3((uint)block), col, phases, n, c, h / sh, w / sw, kh, kw, sh, ph, pw, ho, wo, bias);
            LaunchGridStride(device, "conv_depth_to_space_f32", (long)n * c, phases, image, n * c, h, w, sh, accumulate ? 1 : 0, reluFlag);
            return;
        }
        Launch(device, "conv_col2im_planes_f32", grid, new Dim3((uint)block), col, image, n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo, accumulate ? 1 : 0,
               bias, reluFlag);
    }

    /// <summary>
    /// y[c][n][p] = x[n][c][p]; with <paramref name="keepWherePositive"/> (NCHW like x) only where it is &gt; 0, +0
    /// elsewhere (a fused ReLU's backward, the layer's output as the mask). Planes of P, grid (·, C, N).
    /// </summary>
    public static void NchwToCnhw(IDevice device, DevicePointer nchw, DevicePointer cnhw, int n, int c, int p, DevicePointer keepWherePositive = default) =>
        LaunchPlanes(device, "conv_nchw_to_cnhw_f32", p, c, n, nchw, cnhw, n, c, p, keepWherePositive);

    /// <summary>
    /// y[n][c][p] = x[c][n·P + p] + bias[c] (+0 without a bias), then the ReLU with <paramref name="relu"/>: a GEMM's
    /// [C][N·P] output to NCHW; planes of P, grid (·, C, N).
    /// </summary>
    public static void CnhwToNchwBias(IDevice device, DevicePointer cnhw, DevicePointer bias, DevicePointer nchw, int n, int c, int p, bool relu = false) =>
        LaunchPlanes(device, "conv_cnhw_to_nchw_bias_f32", p, c, n, cnhw, bias, nchw, n, c, p, relu ? 1 : 0);

    /// <summary>y[i] = x[i] + bias[(i / P) % C] (x == y allowed) over count = N·C·P; planes of P, grid (·, C, N).</summary>
    public static void ChannelBiasForward(IDevice device, DevicePointer x, DevicePointer bias, DevicePointer y, int c, int p, int count) =>
        LaunchPlanes(device, "channel_bias_forward_f32", p, c, count / (c * p), x, bias, y, c, p, count);

    /// <summary>
    /// One thread per element of each of <paramref name="y"/> × <paramref name="z"/> planes of <paramref name="plane"/>
    /// elements: block min(256, plane rounded up to 32), grid (ceil(plane / block), y, z), each axis at most 65535; on the
    /// cpu device one thread per y (the kernels loop over the rest).
    /// </summary>
    private static void LaunchPlanes(IDevice device, string kernel, int plane, int y, int z, params ReadOnlySpan<KernelArg> args)
    {
        if (FormFor(device) == KernelForm.Cpu)
        {
            // On the cpu device a block per (channel, image) plane of 49 elements costs more to schedule (~0.1 µs a block)
            // than to run, and a block's threads run one after another: so there ONE thread per channel walks every image
            // and every position of it (the kernels' grid-stride loops over x and z), its stores and loads contiguous.
            Launch(device, kernel, new Dim3(1, (uint)Math.Clamp(y, 1, MaxPlanes)), new Dim3(1), args);
            return;
        }
        int block = Math.Min(Block, Math.Max(32, (plane + 31) / 32 * 32));
        var grid = new Dim3((uint)Math.Clamp((plane + block - 1) / block, 1, MaxGridStrideBlocks), (uint)Math.Clamp(y, 1, MaxPlanes), (uint)Math.Clamp(z, 1, MaxPlanes));
        Launch(device, kernel, grid, new Dim3((uint)block), args);
    }

    /// <summary>dbias[c] += Σ_{n,p} dy[n, c, p]: on a GPU grid (C), block <see cref="BiasReductionBlock"/>; on the cpu device a thread per channel.</summary>
    public static void ChannelBiasBackward(IDevice device, DevicePointer dy, DevicePointer dbias, int n, int c, int p) =>
        ChannelBiasBackward(device, FormFor(device), dy, dbias, n, c, p);

    /// <summary>
    /// The bias gradient with a chosen kernel (tests): a block reduction per channel (a GPU's) or one thread per channel
    /// summing in order (the cpu device's: its fibers pay for every shuffle; ~3 % of the fashion-mnist step there).
    /// </summary>
    internal static void ChannelBiasBackward(IDevice device, KernelForm form, DevicePointer dy, DevicePointer dbias, int n, int c, int p)
    {
        if (form == KernelForm.Gpu)
            Launch(device, "channel_bias_backward_f32", new Dim3((uint)c), BiasReductionBlock, dy, dbias, n, c, p);
        else
            Launch(device, "channel_bias_backward_rows_f32", new Dim3((uint)Math.Clamp((c + 31) / 32, 1, MaxGridStrideBlocks)), new Dim3(32u), dy, dbias, n, c, p);
    }

    /// <summary>out[i] = w[i]·mask[i % maskCount].</summary>
    public static void MaskMultiply(IDevice device, DevicePointer weight, DevicePointer mask, DevicePointer output, int count, int maskCount) =>
        LaunchGridStride(device, "conv_mask_multiply_f32", count, weight, mask, output, count, maskCount);

    /// <summary>dw[i] += g[i]·mask[i % maskCount].</summary>
    public static void MaskMultiplyAdd(IDevice device, DevicePointer gradient, DevicePointer mask, DevicePointer dweight, int count, int maskCount) =>
        LaunchGridStride(device, "conv_mask_multiply_add_f32", count, gradient, mask, dweight, count, maskCount);

    /// <summary>wf[ci][co][kh−1−i][kw−1−j] = w[co][ci][i][j]: the weight whose convolution of dy is dx (stride 1).</summary>
    public static void WeightFlip(IDevice device, DevicePointer weight, DevicePointer flipped, int co, int ci, int kh, int kw) =>
        LaunchGridStride(device, "conv_weight_flip_f32", (long)co * ci, weight, flipped, co, ci, kh, kw);  // a thread per (co, ci) kernel
}
