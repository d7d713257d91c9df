using VqVaeCuda.Device;
using static VqVaeCuda.Ops.KernelLaunch;

namespace VqVaeCuda.Ops;

/// <summary>
/// Launches of kernels/gating.cu: grid-stride, block 256; m = output elements [N, C, inner], rows = N·2C
/// condition entries.
/// </summary>
internal static class GatingKernels
{
    /// <summary>y = tanh(a)·σ(b), x = [a; b] along axis 1.</summary>
    public static void Forward(IDevice device, DevicePointer x, DevicePointer y, int channels, int inner, int m) =>
        LaunchGridStride(device, "gated_tanh_sigmoid_forward_f32", m, x, y, channels, inner, m);

    /// <summary>dx += the gate's gradient.</summary>
    public static void Backward(IDevice device, DevicePointer x, DevicePointer dy, DevicePointer dx, int channels, int inner, int m) =>
        LaunchGridStride(device, "gated_tanh_sigmoid_backward_f32", m, x, dy, dx, channels, inner, m);

    /// <summary>y = tanh(a + h_a)·σ(b + h_b).</summary>
    public static void ConditionalForward(IDevice device, DevicePointer x, DevicePointer condition, DevicePointer y, int channels, int inner, int m) =>
        LaunchGridStride(device, "gated_tanh_sigmoid_cond_forward_f32", m, x, condition, y, channels, inner, m);

    /// <summary>dx += the conditional gate's gradient with respect to x.</summary>
    public static void ConditionalBackward(IDevice device, DevicePointer x, DevicePointer condition, DevicePointer dy, DevicePointer dx, int channels,
                                           int inner, int m) =>
        LaunchGridStride(device, "gated_tanh_sigmoid_cond_backward_f32", m, x, condition, dy, dx, channels, inner, m);

    /// <summary>dcondition += the gradient summed over each (n, channel) row's positions in a fixed order; a thread per row.</summary>
    public static void ConditionBackward(IDevice device, DevicePointer x, DevicePointer condition, DevicePointer dy, DevicePointer dcondition,
                                         int channels, int inner, int rows) =>
        LaunchGridStride(device, "gate_condition_backward_f32", rows, x, condition, dy, dcondition, channels, inner, rows);

    /// <summary>
    /// <see cref="ConditionalBackward"/> and <see cref="ConditionBackward"/> in one pass (a thread per (n, c) pair of rows), for when
    /// both gradients are wanted: the same bits, half the transcendentals.
    /// </summary>
    public static void ConditionalBackwardBoth(IDevice device, DevicePointer x, DevicePointer condition, DevicePointer dy, DevicePointer dx,
                                               DevicePointer dcondition, int channels, int inner, int pairs) =>
        LaunchGridStride(device, "gated_tanh_sigmoid_cond_backward_rows_f32", pairs, x, condition, dy, dx, dcondition, channels, inner, pairs);
}
