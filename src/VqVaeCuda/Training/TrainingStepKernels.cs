using VqVaeCuda.Device;
using static VqVaeCuda.Ops.KernelLaunch;

namespace VqVaeCuda.Training;

/// <summary>Launches of kernels/training_step.cu: the step's bookkeeping, kept on the device. No checks: <see cref="CapturableStep"/> owns the buffers.</summary>
internal static class TrainingStepKernels
{
    /// <summary>sums[0..2] += the three losses, sums[3] += 1; a non-finite loss or gradient norm is counted in nonfinite[0], its step kept in nonfinite[1].</summary>
    public static void Accumulate(IDevice device, DevicePointer reconstruction, DevicePointer codebook, DevicePointer commitment,
                                  DevicePointer gradNorm, DevicePointer step, DevicePointer sums, DevicePointer nonfinite) =>
        Launch(device, "step_accumulate_f32", 1, 1, reconstruction, codebook, commitment, gradNorm, step, sums, nonfinite);

    /// <summary>interval_counts[k] += counts[k]; last_used[k] = *step where counts[k] &gt; 0.</summary>
    public static void Usage(IDevice device, DevicePointer counts, DevicePointer step, DevicePointer intervalCounts, DevicePointer lastUsed, int codes) =>
        LaunchGridStride(device, "usage_accumulate_i32", codes, counts, step, intervalCounts, lastUsed, codes);
}
