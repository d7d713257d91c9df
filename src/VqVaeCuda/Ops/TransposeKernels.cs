using VqVaeCuda.Device;
using static VqVaeCuda.Ops.KernelLaunch;

namespace VqVaeCuda.Ops;

/// <summary>
/// Launches of kernels/transpose.cu: out = inᵀ for a batch of row-major rows×cols matrices
/// stored one after another; block (32,8,1), grid.z = batch.
/// </summary>
internal static class TransposeKernels
{
    /// <summary>One element per thread: grid (ceil(cols/32), ceil(rows/8), batch).</summary>
    public static void Naive(IDevice device, DevicePointer input, DevicePointer output, int rows, int cols, int batch = 1) =>
        Launch(device, "transpose_f32_naive", new Dim3((uint)((cols + 31) / 32), (uint)((rows + 7) / 8), (uint)batch), new Dim3(32, 8), input, output,
               rows, cols);

    /// <summary>32×32 tiles through shared memory: grid (ceil(cols/32), ceil(rows/32), batch).</summary>
    public static void Tiled(IDevice device, DevicePointer input, DevicePointer output, int rows, int cols, int batch = 1) =>
        Launch(device, "transpose_f32_tiled", new Dim3((uint)((cols + 31) / 32), (uint)((rows + 31) / 32), (uint)batch), new Dim3(32, 8), input, output,
               rows, cols);
}
