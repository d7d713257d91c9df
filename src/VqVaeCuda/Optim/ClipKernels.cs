using VqVaeCuda.Device;
using VqVaeCuda.Ops;
using static VqVaeCuda.Ops.KernelLaunch;

namespace VqVaeCuda.Optim;

/// <summary>
/// Launches of kernels/clip.cu: the norm's two passes (grid G from <see cref="ScalarReduction"/>, block 256;
/// pass 2 one block) and the grid-stride scaling.
/// </summary>
internal static class ClipKernels
{
    /// <summary>partial[b] = Σ g² over block b's slice, b &lt; <paramref name="blocks"/>.</summary>
    public static void SumOfSquaresPartials(IDevice device, DevicePointer gradients, DevicePointer partials, int n, int blocks) =>
        Launch(device, "sumsq_partials_f32", blocks, ScalarReduction.Block, gradients, partials, n);

    /// <summary>norm[0] = sqrt(Σ partials), one block.</summary>
    public static void SqrtOfSum(IDevice device, DevicePointer partials, DevicePointer norm, int count) =>
        Launch(device, "sqrt_of_sum_f32", 1, ScalarReduction.Block, partials, norm, count);

    /// <summary>g *= max_norm / (norm[0] + 1e-6) where that is below 1.</summary>
    public static void Scale(IDevice device, DevicePointer gradients, DevicePointer norm, float maxNorm, int n) =>
        LaunchGridStride(device, "clip_scale_f32", n, gradients, norm, maxNorm, n);
}
