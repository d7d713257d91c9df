using VqVaeCuda.Device;
using static VqVaeCuda.Ops.KernelLaunch;

namespace VqVaeCuda.Ops;

/// <summary>
/// Launches of kernels/codebook_update.cu: the codebook-loss gradient and the EMA update, from the per-code
/// counts and sums of <see cref="SegmentSumKernels"/>. Grid-stride over K·D, block 256; the EMA counts run
/// as one block.
/// </summary>
internal static class CodebookUpdateKernels
{
    /// <summary>dE += coef·(counts[k]·e_k − sums_k).</summary>
    public static void CodebookGradient(IDevice device, DevicePointer codebook, DevicePointer counts, DevicePointer sums, DevicePointer grad,
                                        float coef, int k, int d) =>
        LaunchGridStride(device, "vq_codebook_grad_f32", (long)k * d, codebook, counts, sums, grad, coef, k, d);

    /// <summary>The EMA update: cluster sizes (and their total), then the running sums and the codebook.</summary>
    public static void EmaUpdate(IDevice device, DevicePointer counts, DevicePointer sums, DevicePointer clusterSizes, DevicePointer total,
                                 DevicePointer emaSums, DevicePointer codebook, float decay, float epsilon, int k, int d)
    {
        Launch(device, "vq_ema_counts_f32", 1, Block, counts, clusterSizes, total, decay, k);
        LaunchGridStride(device, "vq_ema_codebook_f32", (long)k * d, sums, clusterSizes, total, emaSums, codebook, decay, epsilon, k, d);
    }
}
