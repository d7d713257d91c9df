using VqVaeCuda.Device;
using static VqVaeCuda.Ops.KernelLaunch;

namespace VqVaeCuda.Optim;

/// <summary>Launches of kernels/adam.cu: the grid-stride shape its header states. No checks: <see cref="Adam"/> validates.</summary>
internal static class AdamKernels
{
    /// <summary>
    /// One Adam update of <paramref name="n"/> elements: values θ, gradients g, moments m and v (all flat,
    /// same offsets), with the step's bias corrections precomputed by the caller.
    /// </summary>
    public static void Step(IDevice device, DevicePointer values, DevicePointer grads, DevicePointer m, DevicePointer v, int n,
                            float oneMinusBeta1, float beta2, float oneMinusBeta2, float epsilon, float weightDecay, float stepSize,
                            float biasCorrection2Sqrt) =>
        LaunchGridStride(device, "adam_step_f32", n, values, grads, m, v, oneMinusBeta1, beta2, oneMinusBeta2, epsilon, weightDecay,
                         stepSize, biasCorrection2Sqrt, n);

    /// <summary>
    /// <see cref="Step"/> with the step size and sqrt(bc2) read from <paramref name="schedule"/>[0..1] on the device (the
    /// form a captured graph replays: its arguments are frozen at capture, the schedule's contents are not).
    /// </summary>
    public static void StepScheduled(IDevice device, DevicePointer values, DevicePointer grads, DevicePointer m, DevicePointer v,
                                     DevicePointer schedule, int n, float oneMinusBeta1, float beta2, float oneMinusBeta2, float epsilon,
                                     float weightDecay) =>
        LaunchGridStride(device, "adam_step_scheduled_f32", n, values, grads, m, v, schedule, oneMinusBeta1, beta2, oneMinusBeta2,
                         epsilon, weightDecay, n);
}
