using System.Runtime.InteropServices;
using VqVaeCuda.Device.Native;

namespace VqVaeCuda.Device.Host;

/// <summary>
/// CBLAS single-precision GEMM (OpenBLAS, or any CBLAS), called in column-major order so that the CPU
/// device's GEMM has exactly cuBLAS's calling convention.
/// </summary>
internal static unsafe partial class OpenBlas
{
    private const int ColMajor = 102;
    private const int NoTrans = 111;
    private const int Trans = 112;

    static OpenBlas() => NativeLibraries.EnsureResolver();

    public static bool IsAvailable(out string? whyNot) => NativeLibraries.TryLoad(NativeLibraries.Blas, out whyNot);

    [LibraryImport(NativeLibraries.Blas)]
    private static partial void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, float* a, int lda,
                                            float* b, int ldb, float beta, float* c, int ldc);

    /// <summary>C = alpha·op(A)·op(B) + beta·C, column-major, as cublasSgemm.</summary>
    public static void Sgemm(GemmOp transA, GemmOp transB, int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb,
                             float beta, float* c, int ldc) =>
        cblas_sgemm(ColMajor, transA == GemmOp.Transpose ? Trans : NoTrans, transB == GemmOp.Transpose ? Trans : NoTrans,
                    m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
