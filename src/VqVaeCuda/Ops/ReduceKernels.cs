using VqVaeCuda.Device;
using static VqVaeCuda.Ops.KernelLaunch;

namespace VqVaeCuda.Ops;

/// <summary>
/// Launches of kernels/reduce.cu: block 256 (VQ_REDUCE_BLOCK), grid chosen by the caller (pass 1 of the
/// two-pass sum: G blocks; pass 2: one block over the G partials).
/// </summary>
internal static class ReduceKernels
{
    /// <summary>partial[b] = Σ of block b's grid-stride slice of x, for b &lt; <paramref name="blocks"/>.</summary>
    public static void SumPartials(IDevice device, DevicePointer x, DevicePointer partials, int n, int blocks) =>
        Launch(device, "sum_f32_partials", blocks, ScalarReduction.Block, x, partials, n);

    /// <summary>*total += Σ x, one pass with float atomics across blocks (not deterministic).</summary>
    public static void SumAtomic(IDevice device, DevicePointer x, DevicePointer total, int n, int blocks) =>
        Launch(device, "sum_f32_atomic", blocks, ScalarReduction.Block, x, total, n);
}
