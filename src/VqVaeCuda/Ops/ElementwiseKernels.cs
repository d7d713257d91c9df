using VqVaeCuda.Device;
using static VqVaeCuda.Ops.KernelLaunch;

namespace VqVaeCuda.Ops;

/// <summary>
/// Launches of kernels/elementwise.cu: on a GPU grid-stride over n, block 256 (the file's header); on the cpu device the
/// *_chunks_f32 twins, a contiguous run per thread (<see cref="KernelLaunch.LaunchPointwise"/>). The overloads with a
/// <see cref="KernelLaunch.KernelForm"/> run a chosen form (verify runs both on every device).
/// </summary>
internal static class ElementwiseKernels
{
    /// <summary>out[i] = value.</summary>
    public static void Fill(IDevice device, DevicePointer output, float value, int n) => Fill(device, FormFor(device), output, value, n);

    /// <summary>out[i] = value, in the given form.</summary>
    public static void Fill(IDevice device, KernelForm form, DevicePointer output, float value, int n) =>
        LaunchPointwise(device, form, "fill_f32", "fill_chunks_f32", n, output, value, n);

    /// <summary>out[i] = alpha·x[i].</summary>
    public static void Scale(IDevice device, DevicePointer x, DevicePointer output, float alpha, int n) => Scale(device, FormFor(device), x, output, alpha, n);

    /// <summary>out[i] = alpha·x[i], in the given form.</summary>
    public static void Scale(IDevice device, KernelForm form, DevicePointer x, DevicePointer output, float alpha, int n) =>
        LaunchPointwise(device, form, "scale_f32", "scale_chunks_f32", n, x, output, alpha, n);

    /// <summary>y[i] += alpha·x[i].</summary>
    public static void Axpy(IDevice device, DevicePointer x, DevicePointer y, float alpha, int n) => Axpy(device, FormFor(device), x, y, alpha, n);

    /// <summary>y[i] += alpha·x[i], in the given form.</summary>
    public static void Axpy(IDevice device, KernelForm form, DevicePointer x, DevicePointer y, float alpha, int n) =>
        LaunchPointwise(device, form, "axpy_f32", "axpy_chunks_f32", n, x, y, alpha, n);

    /// <summary>out[i] = a[i] + b[i].</summary>
    public static void Add(IDevice device, DevicePointer a, DevicePointer b, DevicePointer output, int n) => Add(device, FormFor(device), a, b, output, n);

    /// <summary>out[i] = a[i] + b[i], in the given form.</summary>
    public static void Add(IDevice device, KernelForm form, DevicePointer a, DevicePointer b, DevicePointer output, int n) =>
        LaunchPointwise(device, form, "add_f32", "add_chunks_f32", n, a, b, output, n);
}
