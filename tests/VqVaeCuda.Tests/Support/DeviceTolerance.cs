using VqVaeCuda.Device;

namespace VqVaeCuda.Tests.Support;

/// <summary>
/// The one place where a specification's tolerance depends on the device. The cpu device runs the kernels as C++
/// built without floating-point contraction and in a fixed summation order, so some tests demand its results bit for
/// bit from a C# model of that order (<see cref="KernelOrderModels"/>). A GPU need not reproduce those bits: a build with
/// FMA contraction (CudaDeviceOptions.FusedMultiplyAdd, off by default) makes a·b + c one rounding instead of two, a GPU grid has other
/// block counts and per-thread strides than the cpu device's, and cuBLAS picks its own GEMM blocking. On the cuda
/// device such results are held to float rounding of the same sums instead.
/// </summary>
public static class DeviceTolerance
{
    /// <summary>
    /// Relative error allowed, against the sum of the magnitudes of the terms, for a float32 sum (or dot product) that
    /// the cpu device reproduces exactly: 0 on the cpu; on a GPU 1e-5, about 80 float32 epsilons — the worst case of
    /// a reordered two-level reduction tree of up to ~10⁶ terms is far larger, but its typical error (√depth ε) is far
    /// smaller, and 1e-5 still fails any wrong term of relative size 1e-5 or more.
    /// </summary>
    public static double OrderedSum(DeviceKind kind) => kind == DeviceKind.Host ? 0 : 1e-5;

    /// <summary>The absolute tolerance for a sum of terms whose magnitudes add to <paramref name="sumOfMagnitudes"/>.</summary>
    public static double OrderedSum(DeviceKind kind, double sumOfMagnitudes) => OrderedSum(kind) * sumOfMagnitudes;
}
