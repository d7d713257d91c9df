using VqVaeCuda.Device;
using static VqVaeCuda.Ops.KernelLaunch;

namespace VqVaeCuda.Ops;

/// <summary>
/// Launches of kernels/softmax.cu. The forward is pass 1 of the two-pass mean (<see cref="ScalarReduction"/>
/// gives its grid and runs pass 2); the backward is grid-stride over the P·K logits.
/// </summary>
internal static class SoftmaxKernels
{
    /// <summary>lse[q] for every position and partial[b] = scale·Σ of block b's losses; <paramref name="blocks"/> = G.</summary>
    public static void CrossEntropyPartials(IDevice device, DevicePointer logits, DevicePointer targets, DevicePointer lse, DevicePointer partials,
                                            int blocks, int classes, int inner, int positions, float scale) =>
        Launch(device, "softmax_xent_forward_f32", blocks, ScalarReduction.Block, logits, targets, lse, partials, classes, inner, positions, scale);

    /// <summary>dlogits += (softmax − onehot)·scale·dL.</summary>
    public static void CrossEntropyBackward(IDevice device, DevicePointer logits, DevicePointer targets, DevicePointer lse, DevicePointer dloss,
                                            DevicePointer dlogits, int classes, int inner, int positions, float scale) =>
        LaunchGridStride(device, "softmax_xent_backward_f32", (long)positions * classes, logits, targets, lse, dloss, dlogits, classes, inner, positions,
                         scale);
}
