using VqVaeCuda.Device;
using static VqVaeCuda.Ops.KernelLaunch;

namespace VqVaeCuda.Ops;

/// <summary>
/// Launches of kernels/conv.cu: grid-stride kernels with block 256 over the counts the file's header
/// states; the bias backward is one block of <see cref="BiasReductionBlock"/> per channel.
/// </summary>
internal static class ConvKernels
{
    /// <summary>Threads per channel block of the bias gradient (a multiple of 32, at most 1024).</summary>
    public const int BiasReductionBlock = 256;

    /// <summary>col [C·kh·kw, N·P] from the image [N, C, H, W]; grid-stride over C·N·P.</summary>
    public static void Im2Col(IDevice device, DevicePointer image, DevicePointer col, int n, int c, int h, int w, int kh, int kw, int sh, int sw, int ph,
                              int pw, int ho, int wo) =>
        LaunchGridStride(device, "conv_im2col_f32", (long)c * n * ho * wo, image, col, n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo);

    /// <summary>image (= or +=) the gathered col entries; grid-stride over N·C·H·W.</summary>
    public static void Col2Im(IDevice device, DevicePointer col, DevicePointer image, int n, int c, int h, int w, int kh, int kw, int sh, int sw, int ph,
                              int pw, int ho, int wo, bool accumulate) =>
        LaunchGridStride(device, "conv_col2im_f32", (long)n * c * h * w, col, image, n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo, accumulate ? 1 : 0);

    /// <summary>y[c][n][p] = x[n][c][p]; grid-stride over N·C·P.</summary>
    public static void NchwToCnhw(IDevice device, DevicePointer nchw, DevicePointer cnhw, int n, int c, int p) =>
        LaunchGridStride(device, "conv_nchw_to_cnhw_f32", (long)n * c * p, nchw, cnhw, n, c, p);

    /// <summary>y[i] = x[i] + bias[(i / P) % C] (x == y allowed); grid-stride over count.</summary>
    public static void ChannelBiasForward(IDevice device, DevicePointer x, DevicePointer bias, DevicePointer y, int c, int p, int count) =>
        LaunchGridStride(device, "channel_bias_forward_f32", count, x, bias, y, c, p, count);

    /// <summary>dbias[c] += Σ_{n,p} dy[n, c, p]: grid (C), block <see cref="BiasReductionBlock"/>.</summary>
    public static void ChannelBiasBackward(IDevice device, DevicePointer dy, DevicePointer dbias, int n, int c, int p) =>
        Launch(device, "channel_bias_backward_f32", new Dim3((uint)c), BiasReductionBlock, dy, dbias, n, c, p);

    /// <summary>out[i] = w[i]·mask[i % maskCount].</summary>
    public static void MaskMultiply(IDevice device, DevicePointer weight, DevicePointer mask, DevicePointer output, int count, int maskCount) =>
        LaunchGridStride(device, "conv_mask_multiply_f32", count, weight, mask, output, count, maskCount);

    /// <summary>dw[i] += g[i]·mask[i % maskCount].</summary>
    public static void MaskMultiplyAdd(IDevice device, DevicePointer gradient, DevicePointer mask, DevicePointer dweight, int count, int maskCount) =>
        LaunchGridStride(device, "conv_mask_multiply_add_f32", count, gradient, mask, dweight, count, maskCount);
}
