using VqVaeCuda.Device;

namespace VqVaeCuda.Ops;

/// <summary>
/// Launches of kernels/quantize.cu on raw device pointers, with their launch shapes in one place: the
/// <see cref="VectorQuantizer"/> ops and the quantizer benchmark both go through here. No checks: callers
/// validate (the ops through <see cref="OpChecks"/>).
/// </summary>
internal static class QuantizerKernels
{
    /// <summary>Threads per block of the grid-stride kernels.</summary>
    public const int Block = 256;

    /// <summary>Vectors per block of the fused nearest-code kernel (VQ_NC_BM).</summary>
    public const int FusedRows = 128;

    /// <summary>Codes per tile of the fused kernel (VQ_NC_BN); code splits are whole tiles.</summary>
    public const int FusedCodeTile = 128;

    /// <summary>Vectors per tile of the counting sort (VQ_SORT_TILE).</summary>
    public const int SortTile = 256;

    /// <summary>Sorted positions per chunk of the segment sums (VQ_SUM_CHUNK).</summary>
    public const int SumChunk = 64;

    /// <summary>Blocks of the loss's first pass: fixed by the element count, so the sum's tree is too.</summary>
    public static int LossPartials(long count) => (int)Math.Clamp((count + Block - 1) / Block, 1, 256);

    private static void Launch(IDevice device, string kernel, Dim3 grid, Dim3 block, params ReadOnlySpan<KernelArg> args) =>
        device.Launch(device.GetKernel(kernel), grid, block, 0, args);

    private static Dim3 GridStride(long count) => new((uint)Math.Clamp((count + Block - 1) / Block, 1, 65535));

    /// <summary>enorm[k] = ‖e_k‖² and et = Eᵀ ([D, K]).</summary>
    public static void PrepareCodebook(IDevice device, DevicePointer codebook, DevicePointer et, DevicePointer enorm, int k, int d) =>
        Launch(device, "vq_codebook_prepare_f32", GridStride(k), Block, codebook, et, enorm, k, d);

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
        if (splits > 1) Launch(device, "vq_nearest_merge_f32", GridStride(m), Block, keys, indices, m, splits);
    }

    /// <summary>NCHW [N, D, HW] → rows [N·HW, D].</summary>
    public static void NchwToRows(IDevice device, DevicePointer x, DevicePointer rows, int n, int d, int hw) =>
        Launch(device, "vq_nchw_to_rows_f32", new Dim3((uint)((hw + 31) / 32), (uint)((d + 31) / 32), (uint)n), new Dim3(32, 8), x, rows, d, hw);

    /// <summary>
    /// S = Z·Eᵀ ([M, K] row-major) with the device GEMM. Z is rows [M, D], E is [K, D]. In cuBLAS's
    /// column-major terms the row-major S is the K×M matrix Sᵀ = E·Zᵀ: E's memory read column-major is
    /// the D×K matrix Eᵀ (so op(A) = Transpose gives E, K×D), Z's memory read column-major is Zᵀ (D×M).
    /// </summary>
    public static void DotProducts(IDevice device, DevicePointer rows, int m, int d, DevicePointer codebook, int k, DevicePointer s) =>
        device.Gemm(GemmOp.Transpose, GemmOp.None, k, m, d, 1f, codebook, d, rows, d, 0f, s, k);

    /// <summary>idx[m] = argmin_k (enorm[k] − 2 S[m, k]), ties to the lowest k: one warp per row.</summary>
    public static void ArgminRows(IDevice device, DevicePointer s, DevicePointer enorm, DevicePointer indices, int m, int k) =>
        Launch(device, "vq_argmin_rows_f32", new Dim3((uint)((m + 7) / 8)), Block, s, enorm, indices, m, k);

    /// <summary>out(m, d) = E[idx[m], d] in the [N, D, HW] layout (n = M·D elements).</summary>
    public static void Gather(IDevice device, DevicePointer codebook, DevicePointer indices, DevicePointer output, int k, int d, int hw, int n) =>
        Launch(device, "vq_gather_nchw_f32", GridStride(n), Block, codebook, indices, output, k, d, hw, n);

    /// <summary>Both loss scalars = mean over the n elements of (a − b)²; <paramref name="partials"/> holds <see cref="LossPartials"/> floats.</summary>
    public static void Losses(IDevice device, DevicePointer a, DevicePointer b, int n, DevicePointer partials, DevicePointer codebookLoss,
                              DevicePointer commitmentLoss)
    {
        int g = LossPartials(n);
        Launch(device, "vq_sq_error_partials_f32", g, Block, a, b, partials, n);
        Launch(device, "vq_losses_f32", 1, Block, partials, codebookLoss, commitmentLoss, g, 1f / n);
    }

    /// <summary>dz_e += dz_q + coef·(z_e − z_q).</summary>
    public static void StraightThroughBackward(IDevice device, DevicePointer ze, DevicePointer zq, DevicePointer dzq, DevicePointer dze,
                                               float coef, int n) =>
        Launch(device, "vq_straight_through_backward_f32", GridStride(n), Block, ze, zq, dzq, dze, coef, n);

    /// <summary>counts[idx[m]] += 1 (counts must start at zero).</summary>
    public static void Histogram(IDevice device, DevicePointer indices, DevicePointer counts, int m, int k) =>
        Launch(device, "vq_code_histogram_i32", GridStride(m), Block, indices, counts, m, k);

    /// <summary>Scratch sizes (in 4-byte elements) of <see cref="CodeSums"/>.</summary>
    public static (int Tiles, int TileCounts, int Base, int Chunks) CodeSumsScratch(int m, int k)
    {
        int tiles = (m + SortTile - 1) / SortTile;
        int chunks = (m + SumChunk - 1) / SumChunk;
        return (tiles, k * tiles, k * tiles + 1, chunks);
    }

    /// <summary>
    /// sums[k, :] = Σ of the vectors assigned to code k, deterministically: stable counting sort by code,
    /// then ordered chunk sums and a fix-up for the runs that cross chunks (kernels/quantize.cu).
    /// <paramref name="tileCounts"/> must be zero on entry (k·tiles ints); the other scratch is overwritten.
    /// </summary>
    public static void CodeSums(IDevice device, DevicePointer z, int m, int d, int hw, DevicePointer indices, int k, DevicePointer sums,
                                DevicePointer tileCounts, DevicePointer @base, DevicePointer order, DevicePointer sortedCodes,
                                DevicePointer head, DevicePointer tail)
    {
        var (tiles, tileCountLength, _, chunks) = CodeSumsScratch(m, k);
        Launch(device, "vq_tile_code_counts_i32", GridStride(m), Block, indices, tileCounts, m, tiles);
        Launch(device, "vq_exclusive_scan_i32", 1, 1024, tileCounts, @base, tileCountLength);
        Launch(device, "vq_sort_by_code_i32", tiles, SortTile, indices, @base, order, sortedCodes, m, tiles);
        Launch(device, "vq_code_chunk_sums_f32", GridStride((long)chunks * d), Block, z, order, sortedCodes, sums, head, tail, m, d, hw);
        Launch(device, "vq_code_sums_fixup_f32", GridStride((long)k * d), Block, @base, head, tail, sums, k, d, tiles);
    }

    /// <summary>dE += coef·(counts[k]·e_k − sums_k).</summary>
    public static void CodebookGradient(IDevice device, DevicePointer codebook, DevicePointer counts, DevicePointer sums, DevicePointer grad,
                                        float coef, int k, int d) =>
        Launch(device, "vq_codebook_grad_f32", GridStride((long)k * d), Block, codebook, counts, sums, grad, coef, k, d);

    /// <summary>The EMA update: cluster sizes (and their total), then the running sums and the codebook.</summary>
    public static void EmaUpdate(IDevice device, DevicePointer counts, DevicePointer sums, DevicePointer clusterSizes, DevicePointer total,
                                 DevicePointer emaSums, DevicePointer codebook, float decay, float epsilon, int k, int d)
    {
        Launch(device, "vq_ema_counts_f32", 1, Block, counts, clusterSizes, total, decay, k);
        Launch(device, "vq_ema_codebook_f32", GridStride((long)k * d), Block, sums, clusterSizes, total, emaSums, codebook, decay, epsilon, k, d);
    }
}
