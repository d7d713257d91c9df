using VqVaeCuda.Device;
using static VqVaeCuda.Ops.KernelLaunch;

namespace VqVaeCuda.Ops;

/// <summary>Launches of kernels/activations.cu: grid-stride over n, block 256.</summary>
internal static class ActivationKernels
{
    /// <summary>y = max(x, 0).</summary>
    public static void ReluForward(IDevice device, DevicePointer x, DevicePointer y, int n) => LaunchGridStride(device, "relu_forward_f32", n, x, y, n);

    /// <summary>dx += dy where y &gt; 0.</summary>
    public static void ReluBackward(IDevice device, DevicePointer y, DevicePointer dy, DevicePointer dx, int n) =>
        LaunchGridStride(device, "relu_backward_f32", n, y, dy, dx, n);
}
