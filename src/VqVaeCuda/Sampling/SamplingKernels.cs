using VqVaeCuda.Device;
using static VqVaeCuda.Ops.KernelLaunch;

namespace VqVaeCuda.Sampling;

/// <summary>
/// Launches of kernels/sampling.cu: the draw of one position's codes from the logits, and the window copy of
/// the cached sampler. Both grid-stride, block 256 (one thread per sample; one per copied element).
/// </summary>
internal static class SamplingKernels
{
    /// <summary>
    /// For each of <paramref name="samples"/> samples: the code drawn from logits [N, K, inner] at <paramref name="position"/>
    /// with temperature T and the uniform uniforms[n·uniformStride + uniformIndex], written to codes[n·codeInner + codeIndex]
    /// and chosen[n]; −1 where the logits are not finite.
    /// </summary>
    public static void SamplePosition(IDevice device, DevicePointer logits, int classes, int inner, int position, DevicePointer uniforms,
                                      int uniformStride, int uniformIndex, float temperature, DevicePointer codes, int codeInner, int codeIndex,
                                      DevicePointer chosen, int samples) =>
        LaunchGridStride(device, "sample_position_f32", samples, logits, classes, inner, position, uniforms, uniformStride, uniformIndex, temperature,
                         codes, codeInner, codeIndex, chosen, samples);

    /// <summary>
    /// dst[c, dstRow + i, dstCol + j] = src[c, srcRow + i, srcCol + j] (0 outside src) for every plane c and i &lt; h, j &lt; w.
    /// </summary>
    public static void CopyWindow(IDevice device, DevicePointer src, int srcH, int srcW, int srcRow, int srcCol,
                                  DevicePointer dst, int dstH, int dstW, int dstRow, int dstCol, int planes, int h, int w) =>
        LaunchGridStride(device, "copy_window_f32", (long)planes * h * w, src, srcH, srcW, srcRow, srcCol, dst, dstH, dstW, dstRow, dstCol, planes, h, w);
}
