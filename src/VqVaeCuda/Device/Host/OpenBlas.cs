using System.Runtime.InteropServices;
using VqVaeCuda.Device.Native;

namespace VqVaeCuda.Device.Host;

/// <summary>
/// CBLAS single-precision GEMM (OpenBLAS, or any CBLAS) for the CPU device: libvqvae_host calls <c>cblas_sgemm</c>
/// in column-major order (cuBLAS's calling convention) on its worker threads, from the address found here.
/// </summary>
internal static unsafe partial class OpenBlas
{
    static OpenBlas() => NativeLibraries.EnsureResolver();

    public static bool IsAvailable(out string? whyNot) => NativeLibraries.TryLoad(NativeLibraries.Blas, out whyNot);

    /// <summary>What runs the GEMM: OpenBLAS's kernel family and who chose it (see <see cref="OpenBlasCoreType"/>).</summary>
    public static string DescribeKernels() =>
        OpenBlasCoreType.Describe(OpenBlasCoreType.LoadedCoreName(NativeLibraries.Require(NativeLibraries.Blas)),
                                  Environment.GetEnvironmentVariable(OpenBlasCoreType.Variable));

    /// <summary>The CBLAS library loaded and its kernels: "libopenblas.so.0: Haswell kernels (OPENBLAS_CORETYPE=Haswell)".</summary>
    public static string Describe() => $"{NativeLibraries.LoadedFrom(NativeLibraries.Blas) ?? "loaded"}: {DescribeKernels()}";

    /// <summary>
    /// The address of <c>cblas_sgemm</c> for libvqvae_host, which runs it on its own worker threads; OpenBLAS is set to
    /// one thread per call first (its own threads would spin beside ours: see kernels/host/gemm.cpp). Zero when the
    /// library lacks the symbol.
    /// </summary>
    public static IntPtr SingleThreadedSgemm()
    {
        var handle = NativeLibraries.Require(NativeLibraries.Blas);
        // OpenBLAS's setter; other CBLAS libraries (the reference BLAS) have no threads to set.
        if (NativeLibrary.TryGetExport(handle, "openblas_set_num_threads", out var setThreads))
            ((delegate* unmanaged<int, void>)setThreads)(1);
        return NativeLibrary.TryGetExport(handle, "cblas_sgemm", out var sgemm) ? sgemm : IntPtr.Zero;
    }
}
