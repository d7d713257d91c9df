using VqVaeCuda.Device;
using static VqVaeCuda.Ops.KernelLaunch;

namespace VqVaeCuda.Ops;

/// <summary>
/// Launches of kernels/activations.cu: on a GPU grid-stride over n, block 256; on the cpu device the *_chunks_f32 twins
/// (<see cref="KernelLaunch.LaunchPointwise"/>). The overloads with a <see cref="KernelLaunch.KernelForm"/> run a chosen form.
/// </summary>
internal static class ActivationKernels
{
    /// <summary>y = max(x, 0).</summary>
    public static void ReluForward(IDevice device, DevicePointer x, DevicePointer y, int n) => ReluForward(device, FormFor(device), x, y, n);

    /// <summary>y = max(x, 0), in the given form.</summary>
    public static void ReluForward(IDevice device, KernelForm form, DevicePointer x, DevicePointer y, int n) =>
        LaunchPointwise(device, form, "relu_forward_f32", "relu_forward_chunks_f32", n, x, y, n);

    /// <summary>dx += dy where y &gt; 0.</summary>
    public static void ReluBackward(IDevice device, DevicePointer y, DevicePointer dy, DevicePointer dx, int n) =>
        ReluBackward(device, FormFor(device), y, dy, dx, n);

    /// <summary>dx += dy where y &gt; 0, in the given form.</summary>
    public static void ReluBackward(IDevice device, KernelForm form, DevicePointer y, DevicePointer dy, DevicePointer dx, int n) =>
        LaunchPointwise(device, form, "relu_backward_f32", "relu_backward_chunks_f32", n, y, dy, dx, n);
}
