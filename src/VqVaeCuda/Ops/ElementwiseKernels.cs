using VqVaeCuda.Device;
using static VqVaeCuda.Ops.KernelLaunch;

namespace VqVaeCuda.Ops;

/// <summary>Launches of kernels/elementwise.cu: grid-stride over n, block 256 (the file's header).</summary>
internal static class ElementwiseKernels
{
    /// <summary>out[i] = value.</summary>
    public static void Fill(IDevice device, DevicePointer output, float value, int n) => LaunchGridStride(device, "fill_f32", n, output, value, n);

    /// <summary>out[i] = alpha·x[i].</summary>
    public static void Scale(IDevice device, DevicePointer x, DevicePointer output, float alpha, int n) =>
        LaunchGridStride(device, "scale_f32", n, x, output, alpha, n);

    /// <summary>y[i] += alpha·x[i].</summary>
    public static void Axpy(IDevice device, DevicePointer x, DevicePointer y, float alpha, int n) => LaunchGridStride(device, "axpy_f32", n, x, y, alpha, n);

    /// <summary>out[i] = a[i] + b[i].</summary>
    public static void Add(IDevice device, DevicePointer a, DevicePointer b, DevicePointer output, int n) =>
        LaunchGridStride(device, "add_f32", n, a, b, output, n);
}
