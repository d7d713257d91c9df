using VqVaeCuda.Device;
using static VqVaeCuda.Ops.KernelLaunch;

namespace VqVaeCuda.Ops;

/// <summary>
/// Launches of kernels/losses.cu: the MSE's pass 1 (grid G from <see cref="ScalarReduction"/>, block 256 on a GPU, 1 on the cpu device),
/// its grid-stride backward, and the quantizer's loss pass 2 (one block) and straight-through backward.
/// </summary>
internal static class LossKernels
{
    /// <summary>
    /// Blocks of the quantizer loss's pass 1: at most 256, not <see cref="ScalarReduction.MaxBlocks"/>. The
    /// quantizer's losses have always been reduced with this cap; changing it changes their bits.
    /// </summary>
    public const int QuantizerLossMaxBlocks = 256;

    /// <summary>Pass-1 blocks of the quantizer losses for <paramref name="count"/> elements.</summary>
    public static int QuantizerLossBlocks(long count, IDevice device) => ScalarReduction.Blocks(count, device, QuantizerLossMaxBlocks);

    /// <summary>partial[b] = scale·Σ (p − t)² over block b's slice, b &lt; <paramref name="blocks"/>.</summary>
    public static void MsePartials(IDevice device, DevicePointer prediction, DevicePointer target, DevicePointer partials, float scale, int n, int blocks) =>
        MsePartials(device, FormFor(device), prediction, target, partials, scale, n, blocks);

    /// <summary>
    /// <see cref="MsePartials(IDevice, DevicePointer, DevicePointer, DevicePointer, float, int, int)"/> in a chosen form (tests,
    /// verify): a GPU's grid-stride slices folded by the block (<c>mse_partials_f32</c>), or the cpu device's contiguous run
    /// per block summed by one thread without barriers (<c>mse_partials_chunks_f32</c>, <see cref="ChunkLength"/> elements).
    /// </summary>
    internal static void MsePartials(IDevice device, KernelForm form, DevicePointer prediction, DevicePointer target, DevicePointer partials,
                                     float scale, int n, int blocks)
    {
        if (form == KernelForm.Gpu)
            Launch(device, "mse_partials_f32", blocks, ScalarReduction.Block, prediction, target, partials, scale, n);
        else
            Launch(device, "mse_partials_chunks_f32", blocks, 1, prediction, target, partials, scale, n);
    }

    /// <summary>
    /// The run each block of <c>mse_partials_chunks_f32</c> sums (common.cuh's vq_chunk_bounds for <paramref name="blocks"/>
    /// single-thread blocks): ⌊n / blocks⌋ + 16 rounded down to a multiple of 16, at least ⌈n / blocks⌉.
    /// </summary>
    public static int ChunkLength(int n, int blocks) => (int)Math.Min((n / blocks + 16L) & ~15L, int.MaxValue);

    /// <summary>grad += alpha·dL·(p − t), dL read from <paramref name="dloss"/>[0].</summary>
    public static void MseBackward(IDevice device, DevicePointer prediction, DevicePointer target, DevicePointer dloss, DevicePointer grad, float alpha,
                                   int n) =>
        LaunchGridStride(device, "mse_backward_f32", n, prediction, target, dloss, grad, alpha, n);

    /// <summary>
    /// Both quantizer loss scalars = mean over the n elements of (z_e − z_q)²: pass 1 with scale 1, then one block
    /// divides the sum of the partials by n. <paramref name="partials"/> holds <see cref="QuantizerLossBlocks"/> floats.
    /// </summary>
    public static void QuantizerLosses(IDevice device, DevicePointer ze, DevicePointer zq, int n, DevicePointer partials, DevicePointer codebookLoss,
                                       DevicePointer commitmentLoss)
    {
        int blocks = QuantizerLossBlocks(n, device);
        MsePartials(device, ze, zq, partials, 1f, n, blocks);
        Launch(device, "vq_losses_f32", 1, ScalarReduction.Block, partials, codebookLoss, commitmentLoss, blocks, 1f / n);
    }

    /// <summary>dz_e += dz_q + coef·(z_e − z_q).</summary>
    public static void StraightThroughBackward(IDevice device, DevicePointer ze, DevicePointer zq, DevicePointer dzq, DevicePointer dze, float coef,
                                               int n) =>
        LaunchGridStride(device, "vq_straight_through_backward_f32", n, ze, zq, dzq, dze, coef, n);
}
