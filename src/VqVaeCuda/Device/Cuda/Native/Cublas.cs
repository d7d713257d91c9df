using System.Runtime.InteropServices;
using VqVaeCuda.Device.Native;

namespace VqVaeCuda.Device.Cuda.Native;

/// <summary>
/// Raw bindings to cuBLAS (v2 API). Methods are named after the exported symbols: cublas_v2.h maps
/// <c>cublasCreate</c>, <c>cublasSgemm</c>, ... to <c>_v2</c> symbols with macros, while the unsuffixed
/// exports are the legacy (handle-less) API, so binding the wrong name would call a different function.
/// Routines introduced after the v2 split (<c>cublasSetMathMode</c>, <c>cublasGemmEx</c>,
/// <c>cublasSgemmStridedBatched</c>) have no suffix.
/// </summary>
/// <remarks>
/// <para><c>cublasHandle_t</c> and <c>cudaStream_t</c> are opaque pointers → <see cref="nint"/>; a
/// <c>cudaStream_t</c> is the same object as a driver <c>CUstream</c>. Device matrices are passed as
/// <see cref="ulong"/> <c>CUdeviceptr</c> values where the C signature has <c>const float*</c>: on the
/// 64-bit platforms CUDA supports, both are one 64-bit integer argument, so the ABI is identical.</para>
/// <para>alpha/beta are host pointers: a new handle is in <c>CUBLAS_POINTER_MODE_HOST</c> and we never
/// change it. cuBLAS reads them before the call returns, so <c>in float</c> (a pinned reference to a
/// local) is safe even though the GEMM itself runs asynchronously on the handle's stream.</para>
/// <para>cuBLAS uses the CUDA context current on the calling thread (normally the primary context)
/// when the handle is created; create it after making that context current.</para>
/// </remarks>
internal static unsafe partial class Cublas
{
    private const string Lib = NativeLibraries.Cublas;

    // Explicit static constructor so the resolver is installed before the first stub runs (see CudaDriver); the soname list
    // keeps only the majors the driver supports, newest first (CudaCompatibility.CublasSonames).
    static Cublas()
    {
        NativeLibraries.EnsureResolver();
        NativeLibraries.SetCandidateProvider(NativeLibraries.Cublas, () =>
        {
            var driver = CudaDriver.TryGetDriverVersion();
            return (CudaCompatibility.CublasSonames(driver),
                    driver is int v ? $"the driver supports CUDA {CudaCompatibility.FormatVersion(v)}, so only majors up to {v / 1000} were tried" : null);
        });
    }

    /// <summary>True when libcublas can be loaded; otherwise <paramref name="whyNot"/> says what was tried and what to install.</summary>
    public static bool IsAvailable(out string? whyNot) => NativeLibraries.TryLoad(Lib, out whyNot);

    /// <summary>Throws <see cref="CublasException"/> unless <paramref name="status"/> is <see cref="cublasStatus_t.CUBLAS_STATUS_SUCCESS"/>.</summary>
    /// <param name="status">The status returned by the cuBLAS call.</param>
    /// <param name="call">The exported symbol that was called, e.g. <c>nameof(cublasSgemm_v2)</c>.</param>
    internal static void Check(cublasStatus_t status, string call)
    {
        if (status != cublasStatus_t.CUBLAS_STATUS_SUCCESS) throw new CublasException(call, status);
    }

    /// <summary>
    /// <c>cublasGetStatusName</c>, or the enum name when the library is missing or predates 11.4 (the
    /// function does not exist there: <see cref="EntryPointNotFoundException"/>). Never throws.
    /// </summary>
    internal static string StatusName(cublasStatus_t status)
    {
        try
        {
            var p = cublasGetStatusName(status);
            if (p != 0) return Marshal.PtrToStringUTF8(p) ?? status.ToString();
        }
        catch (Exception) // EntryPointNotFoundException (cuBLAS < 11.4) or DllNotFoundException.
        {
        }
        return status.ToString();
    }

    /// <summary><c>cublasGetStatusString</c>, or a text derived from the enum name under the same conditions as <see cref="StatusName"/>. Never throws.</summary>
    internal static string StatusText(cublasStatus_t status)
    {
        try
        {
            var p = cublasGetStatusString(status);
            if (p != 0) return Marshal.PtrToStringUTF8(p) ?? FallbackText(status);
        }
        catch (Exception) // See StatusName.
        {
        }
        return FallbackText(status);
    }

    private static string FallbackText(cublasStatus_t status)
    {
        if (!Enum.IsDefined(status)) return "unrecognized cuBLAS status";
        const string prefix = "CUBLAS_STATUS_";
        var name = status.ToString();
        if (name.StartsWith(prefix, StringComparison.Ordinal)) name = name[prefix.Length..];
        return name.Replace('_', ' ').ToLowerInvariant();
    }

    // ---------------------------------------------------------------- handle management

    /// <summary>Creates a handle bound to the current CUDA context; allocates cuBLAS workspace on that device.</summary>
    [LibraryImport(Lib)] internal static partial cublasStatus_t cublasCreate_v2(out nint handle);

    /// <summary>Destroys a handle; synchronises the device first.</summary>
    [LibraryImport(Lib)] internal static partial cublasStatus_t cublasDestroy_v2(nint handle);

    /// <summary>cuBLAS library version, encoded like the header's <c>CUBLAS_VERSION</c> (12.x: major*10000 + minor*100 + patch).</summary>
    [LibraryImport(Lib)] internal static partial cublasStatus_t cublasGetVersion_v2(nint handle, out int version);

    /// <summary>
    /// A library property without a handle (0 = major, 1 = minor, 2 = patch version), so the version can be
    /// reported on a machine where no GPU exists to create a handle on.
    /// </summary>
    [LibraryImport(Lib)] internal static partial cublasStatus_t cublasGetProperty(int type, out int value);

    /// <summary>Makes subsequent calls on <paramref name="handle"/> run on <paramref name="stream"/> (0 = legacy default stream).</summary>
    [LibraryImport(Lib)] internal static partial cublasStatus_t cublasSetStream_v2(nint handle, nint stream);

    /// <summary>Sets the handle's math mode, e.g. <see cref="cublasMath_t.CUBLAS_TF32_TENSOR_OP_MATH"/>.</summary>
    [LibraryImport(Lib)] internal static partial cublasStatus_t cublasSetMathMode(nint handle, cublasMath_t mode);

    /// <summary>
    /// Gives the handle a caller-owned workspace of <paramref name="workspaceSizeInBytes"/> bytes (cuda.h-style macro
    /// <c>cublasSetWorkspace</c> → <c>cublasSetWorkspace_v2</c>, cuBLAS ≥ 11.4). With it cuBLAS allocates nothing during a
    /// stream capture; NVIDIA recommends 32 MiB on Hopper, 4 MiB before. Must stay allocated while the handle uses it.
    /// </summary>
    [LibraryImport(Lib)] internal static partial cublasStatus_t cublasSetWorkspace_v2(nint handle, ulong workspace, nuint workspaceSizeInBytes);

    /// <summary>Static name of a status (cuBLAS ≥ 11.4). Raw pointer: library-owned, must not be freed. Use <see cref="StatusName"/>.</summary>
    [LibraryImport(Lib)] internal static partial nint cublasGetStatusName(cublasStatus_t status);

    /// <summary>Static description of a status (cuBLAS ≥ 11.4). Raw pointer: library-owned, must not be freed. Use <see cref="StatusText"/>.</summary>
    [LibraryImport(Lib)] internal static partial nint cublasGetStatusString(cublasStatus_t status);

    // ---------------------------------------------------------------- GEMM

    /// <summary>
    /// C = alpha·op(A)·op(B) + beta·C in FP32, column-major. op(A) is m×k, op(B) is k×n, C is m×n;
    /// lda/ldb/ldc are the leading dimensions (rows of the stored matrices).
    /// </summary>
    [LibraryImport(Lib)]
    internal static partial cublasStatus_t cublasSgemm_v2(
        nint handle, cublasOperation_t transa, cublasOperation_t transb,
        int m, int n, int k,
        in float alpha, ulong A, int lda,
        ulong B, int ldb,
        in float beta, ulong C, int ldc);

    /// <summary>
    /// <paramref name="batchCount"/> independent FP32 GEMMs whose i-th operands start at
    /// A + i·strideA, B + i·strideB, C + i·strideC (strides in elements, not bytes).
    /// </summary>
    [LibraryImport(Lib)]
    internal static partial cublasStatus_t cublasSgemmStridedBatched(
        nint handle, cublasOperation_t transa, cublasOperation_t transb,
        int m, int n, int k,
        in float alpha, ulong A, int lda, long strideA,
        ulong B, int ldb, long strideB,
        in float beta, ulong C, int ldc, long strideC,
        int batchCount);

    /// <summary>
    /// Mixed-precision GEMM: operand types and the compute type are chosen per call. alpha/beta point
    /// at host values whose type follows <paramref name="computeType"/> (float for the <c>32F*</c> types,
    /// half for <c>16F</c>), hence <c>void*</c>.
    /// </summary>
    [LibraryImport(Lib)]
    internal static partial cublasStatus_t cublasGemmEx(
        nint handle, cublasOperation_t transa, cublasOperation_t transb,
        int m, int n, int k,
        void* alpha,
        ulong A, cudaDataType Atype, int lda,
        ulong B, cudaDataType Btype, int ldb,
        void* beta,
        ulong C, cudaDataType Ctype, int ldc,
        cublasComputeType_t computeType, cublasGemmAlgo_t algo);
}
