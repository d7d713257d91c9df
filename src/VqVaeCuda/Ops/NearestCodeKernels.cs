using VqVaeCuda.Device;
using static VqVaeCuda.Ops.KernelLaunch;

namespace VqVaeCuda.Ops;

/// <summary>
/// Launches of kernels/nearest_code.cu on raw device pointers, with their launch shapes in one place: the
/// <see cref="VectorQuantizer"/> ops and the quantizer benchmark both go through here. The fused variant and
/// the unfused one (device GEMM, row argmin) side by side. No checks: callers validate (the ops
/// through <see cref="OpChecks"/>).
/// </summary>
internal static class NearestCodeKernels
{
    /// <summary>Vectors per block of the fused nearest-code kernel (VQ_NC_BM).</summary>
    public const int FusedRows = 128;

    /// <summary>Codes per tile of the fused kernel (VQ_NC_BN); code splits are whole tiles.</summary>
    public const int FusedCodeTile = 128;

    /// <summary>enorm[k] = ‖e_k‖², and et = Eᵀ ([D, K]) unless <paramref name="etOrNull"/> is <c>default</c> (only the fused kernel reads it).</summary>
    public static void PrepareCodebook(IDevice device, DevicePointer codebook, DevicePointer etOrNull, DevicePointer enorm, int k, int d) =>
        LaunchGridStride(device, "vq_codebook_prepare_f32", k, codebook, etOrNull, enorm, k, d);

    /// <summary>
    /// How many code splits (grid.y of the fused kernel) to use: enough blocks for two per multiprocessor,
    /// at most one split per code tile. <paramref name="requested"/> overrides the heuristic (tests).
    /// Returns the split count actually used and the codes per split (whole tiles).
    /// </summary>
    public static (int Splits, int CodesPerSplit) FusedSplits(IDevice device, int m, int k, int? requested = null)
    {
        int rowTiles = (m + FusedRows - 1) / FusedRows;
        int codeTiles = (k + FusedCodeTile - 1) / FusedCodeTile;
        int wanted = requested ?? (int)Math.Ceiling(2.0 * Math.Max(1, device.Capabilities.Multiprocessors) / rowTiles);
        int splits = Math.Clamp(wanted, 1, codeTiles);
        int tilesPerSplit = (codeTiles + splits - 1) / splits;
        splits = (codeTiles + tilesPerSplit - 1) / tilesPerSplit;
        return (splits, tilesPerSplit * FusedCodeTile);
    }

    /// <summary>
    /// The fused nearest-code kernel (plus the merge over splits when <paramref name="splits"/> &gt; 1).
    /// z holds M vectors of D components in the [N, D, HW] layout (hw = 1: rows); <paramref name="keys"/>
    /// must hold 8·splits·M bytes when splits &gt; 1 and is unused otherwise.
    /// </summary>
    public static void NearestFused(IDevice device, DevicePointer z, int m, int d, int hw, DevicePointer et, DevicePointer enorm, int k,
                                    DevicePointer indices, DevicePointer keys, int splits, int codesPerSplit)
    {
        var grid = new Dim3((uint)((m + FusedRows - 1) / FusedRows), (uint)splits);
        Launch(device, "vq_nearest_fused_f32", grid, Block, z, et, enorm, indices, splits > 1 ? keys : indices, m, k, d, hw, codesPerSplit);
        if (splits > 1) LaunchGridStride(device, "vq_nearest_merge_f32", m, keys, indices, m, splits);
    }

    /// <summary>
    /// S = Z·Eᵀ ([M, K] row-major) with the device GEMM, Z the M vectors of z ([N, D, HW], hw = 1: rows [M, D]) and E
    /// the codebook [K, D]. In cuBLAS's column-major terms the row-major S is the K×M matrix Sᵀ = E·Zᵀ: E's memory
    /// read column-major is the D×K matrix Eᵀ (so op(A) = Transpose gives E, K×D). Rows: Z's memory read
    /// column-major is Zᵀ (D×M), one GEMM. NCHW: image n's block of S (HW×K, row-major) is the K×HW matrix
    /// E·z[n], and z[n] ([D, HW] row-major) read column-major is the HW×D matrix z[n]ᵀ, so op(B) = Transpose gives
    /// D×HW: one strided-batched GEMM over the images, no transpose of z.
    /// </summary>
    public static void DotProducts(IDevice device, DevicePointer z, int m, int d, int hw, DevicePointer codebook, int k, DevicePointer s)
    {
        if (hw == 1)
        {
            device.Gemm(GemmOp.Transpose, GemmOp.None, k, m, d, 1f, codebook, d, z, d, 0f, s, k);
            return;
        }
        device.GemmStridedBatched(GemmOp.Transpose, GemmOp.Transpose, k, hw, d, 1f, codebook, d, 0, z, hw, (long)d * hw, 0f, s, k, (long)hw * k,
                                  m / hw);
    }

    /// <summary>idx[m] = argmin_k (enorm[k] − 2 S[m, k]), ties to the lowest k: one thread per row, grid-stride.</summary>
    public static void ArgminRows(IDevice device, DevicePointer s, DevicePointer enorm, DevicePointer indices, int m, int k) =>
        LaunchGridStride(device, "vq_argmin_rows_f32", m, s, enorm, indices, m, k);
}
