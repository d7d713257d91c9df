using System.Runtime.InteropServices;

namespace VqVaeCuda.Device.Host;

/// <summary>
/// Which of OpenBLAS's kernel families runs the cpu device's GEMM, for `vqvae info` and the bench. A DYNAMIC_ARCH
/// OpenBLAS picks one when it loads, or takes the <c>OPENBLAS_CORETYPE</c> environment variable. The family sets the
/// sgemm rate (on a 2-core AMD Zen 5, `vqvae bench --kernels`: sgemm 1024³ at 251 GFLOP/s with the AVX2 "Haswell"
/// kernels, 480 with the AVX-512 "SkylakeX" ones) and the bits of every GEMM, so a benchmark or a bit-exact
/// comparison must name it. The project never sets the variable: older OpenBLAS builds are known to compute wrong
/// results or crash with some families on some newer CPUs (README, "CPU GEMM"), and which is safe is the machine's call.
/// </summary>
internal static class OpenBlasCoreType
{
    /// <summary>The variable OpenBLAS reads.</summary>
    public const string Variable = "OPENBLAS_CORETYPE";

    /// <summary>The family the loaded OpenBLAS runs (<c>openblas_get_corename</c>), or null for another CBLAS.</summary>
    public static string? LoadedCoreName(IntPtr blasHandle)
    {
        if (!NativeLibrary.TryGetExport(blasHandle, "openblas_get_corename", out var getCoreName)) return null;
        unsafe
        {
            return Marshal.PtrToStringUTF8(((delegate* unmanaged<IntPtr>)getCoreName)());
        }
    }

    /// <summary>The family and who chose it: "Haswell kernels (OPENBLAS_CORETYPE=Haswell)" or "… (OpenBLAS's own choice)".</summary>
    public static string Describe(string? coreName, string? variableValue) => coreName is null
        ? "not OpenBLAS (no kernel family to report)"
        : $"{coreName} kernels ({(string.IsNullOrEmpty(variableValue) ? "OpenBLAS's own choice" : $"{Variable}={variableValue}")})";
}
