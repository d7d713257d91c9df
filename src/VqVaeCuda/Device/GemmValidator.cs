namespace VqVaeCuda.Device;

/// <summary>cuBLAS's argument rules for GEMM, checked on both devices so a bad call fails the same way everywhere.</summary>
internal static class GemmValidator
{
    public static void Validate(GemmOp transA, GemmOp transB, int m, int n, int k, int lda, int ldb, int ldc, int batch = 1)
    {
        if (m < 0 || n < 0 || k < 0)
            throw new ArgumentException($"GEMM: sizes must be non-negative (m={m}, n={n}, k={k})");
        if (batch < 0) throw new ArgumentException($"GEMM: batch count {batch} is negative");
        int rowsA = transA == GemmOp.None ? m : k;
        int rowsB = transB == GemmOp.None ? k : n;
        if (lda < Math.Max(1, rowsA))
            throw new ArgumentException($"GEMM: lda={lda} is less than the {rowsA} rows of A as stored (m={m}, k={k}, transA={transA})");
        if (ldb < Math.Max(1, rowsB))
            throw new ArgumentException($"GEMM: ldb={ldb} is less than the {rowsB} rows of B as stored (k={k}, n={n}, transB={transB})");
        if (ldc < Math.Max(1, m))
            throw new ArgumentException($"GEMM: ldc={ldc} is less than the m={m} rows of C");
    }
}
