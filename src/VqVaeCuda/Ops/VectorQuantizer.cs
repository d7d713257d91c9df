using VqVaeCuda.Autodiff;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Ops;

/// <summary>How the nearest codebook entry is found.</summary>
public enum NearestCodeAlgorithm
{
    /// <summary>One kernel: codebook tiles in shared memory, a running argmin in registers; the M×K distances are never stored (a GPU's default).</summary>
    Fused,
    /// <summary>The device GEMM writes the M×K matrix of z·e, a second kernel takes the argmin of each row (the cpu device's default).</summary>
    GemmThenArgmin,
}

/// <summary>Which nearest-code algorithm a device runs by default.</summary>
public static class NearestCodeAlgorithms
{
    /// <summary>
    /// <see cref="NearestCodeAlgorithm.Fused"/> on a GPU (the M×K distances never touch memory);
    /// <see cref="NearestCodeAlgorithm.GemmThenArgmin"/> on the cpu device, where the GEMM is OpenBLAS and the fused
    /// kernel's 256 fiber threads per block pay ~35 ns each at every one of its barriers: 8–10× slower there for the
    /// fashion-mnist quantizer (kernels/NOTES.md). Both are tested equal.
    /// </summary>
    public static NearestCodeAlgorithm DefaultFor(Device.IDevice device) =>
        device.Kind == Device.DeviceKind.Host ? NearestCodeAlgorithm.GemmThenArgmin : NearestCodeAlgorithm.Fused;
}

/// <summary>What <see cref="VectorQuantizer.Quantize"/> produces.</summary>
/// <param name="Quantized">
/// z_q, NCHW like z_e: z_q(n, :, h, w) = e_k with k the code of that position. Straight-through: its
/// gradient is copied to z_e (see <see cref="VectorQuantizer.Quantize"/>).
/// </param>
/// <param name="Indices">The code map k, int32 [N, H, W]: the discrete latent.</param>
/// <param name="CodebookLoss">‖sg[z_e] − e‖², mean over all N·D·H·W elements; a float32 scalar on the device.</param>
/// <param name="CommitmentLoss">‖z_e − sg[e]‖², mean over all elements (unweighted: the model's loss uses β times it); a scalar.</param>
/// <param name="Counts">How many positions chose each code, int32 [K]: the input of <see cref="CodebookUsage"/>.</param>
public sealed record QuantizeResult(Tensor Quantized, Tensor Indices, Tensor CodebookLoss, Tensor CommitmentLoss, Tensor Counts);

/// <summary>
/// The VQ-VAE's vector quantizer (kernels/nearest_code.cu; the gather of embedding.cu, the losses of losses.cu,
/// the code counts and sums of segment_sum.cu, the codebook gradient of codebook_update.cu). For each of the M = N·H·W vectors of z_e
/// ([N, D, H, W], the encoder output), k = argmin_j ‖z_e − e_j‖² over the codebook E ([K, D],
/// PyTorch's layout), ties to the lowest j; z_q = e_k.
/// <para>
/// The loss terms and where their gradients go (DESIGN.md, "The method, in brief"), with n = N·D·H·W:
/// <list type="bullet">
/// <item>reconstruction: the decoder's gradient dL/dz_q is copied unchanged to z_e (straight-through,
/// z_q = z_e + sg(z_q − z_e)): the argmin has no gradient;</item>
/// <item>codebook loss (1/n)·Σ (sg[z_e] − e_k)²: moves only E, dE[k] += 2(e_k − z_e)/n summed over the
/// positions assigned to k (not applied when the codebook is an <see cref="EmaCodebook"/>);</item>
/// <item>commitment loss (1/n)·Σ (z_e − sg[e_k])², weighted by β: moves only the encoder,
/// dz_e += β·2(z_e − z_q)/n.</item>
/// </list>
/// Both quantizer gradients are applied by z_q's backward, as if the training loss were
/// reconstruction + codebook + β·commitment with weight 1: the trainer backpropagates the reconstruction
/// loss only, and logs the two loss scalars, which are values, not tape nodes (backpropagating them
/// as well would count their gradients twice). The straight-through copy and the commitment gradient are
/// one kernel; the codebook gradient comes from deterministic per-code sums (no float atomics).
/// </para>
/// </summary>
public static class VectorQuantizer
{
    /// <summary>
    /// Quantizes <paramref name="zE"/> ([N, D, H, W]) with <paramref name="codebook"/> ([K, D]) and records the
    /// backward described on <see cref="VectorQuantizer"/>: dz_e += dz_q + β·2(z_e − z_q)/n, and, unless
    /// <paramref name="useEma"/>, dE += the codebook-loss gradient. With <paramref name="useEma"/> the codebook
    /// receives no gradient: update it with <see cref="EmaCodebook.Update"/> instead.
    /// </summary>
    /// <exception cref="OpArgumentException">Shapes, types or devices do not fit; nothing was launched.</exception>
    public static QuantizeResult Quantize(OpContext ctx, Tensor zE, Tensor codebook, float beta, bool useEma) =>
        QuantizeWith(ctx, zE, codebook, beta, useEma, NearestCodeAlgorithms.DefaultFor(ctx.Device), codeSplits: null);

    /// <summary>The name the quantizer is recorded under when the codebook is updated by EMA (no codebook gradient).</summary>
    public const string RecordedNameWithEma = "vector quantizer (EMA codebook)";

    /// <summary><see cref="Quantize"/> with a chosen nearest-code algorithm and, for the fused one, a forced code-split count (tests).</summary>
    internal static QuantizeResult QuantizeWith(OpContext ctx, Tensor zE, Tensor codebook, float beta, bool useEma,
                                            NearestCodeAlgorithm algorithm, int? codeSplits)
    {
        const string op = "vector quantizer";
        OpChecks.Rank(op, zE, 4, "z_e");
        var (m, d, hw) = CheckVectors(op, zE, codebook);
        OpChecks.Require(float.IsFinite(beta) && beta >= 0, op, $"the commitment weight beta must be finite and non-negative, got {beta}");
        int k = codebook.Shape[0];
        int n = (int)zE.Count;
        var device = ctx.Device;

        var indices = FindNearest(ctx, zE, m, d, hw, codebook, algorithm, codeSplits, new Shape(zE.Shape[0], zE.Shape[2], zE.Shape[3]));
        var zq = ctx.NewTensor(zE.Shape, purpose: op + " z_q");
        EmbeddingKernels.Gather(device, codebook.Pointer, indices.Pointer, zq.Pointer, k, d, hw, n);

        var partials = ctx.NewTensor(new Shape(LossKernels.QuantizerLossBlocks(n, device)), purpose: op + " loss partials");
        var codebookLoss = ctx.NewTensor(new Shape(), purpose: "codebook loss");
        var commitmentLoss = ctx.NewTensor(new Shape(), purpose: "commitment loss");
        LossKernels.QuantizerLosses(device, zE.Pointer, zq.Pointer, n, partials.Pointer, codebookLoss.Pointer, commitmentLoss.Pointer);

        var counts = ctx.Zeros(new Shape(k), DType.Int32, op + " code counts");
        SegmentSumKernels.Histogram(device, indices.Pointer, counts.Pointer, m, k);

        // Under EMA the codebook moves by its own update, not by a gradient: the recorded name says so (for the step's
        // work count and for messages naming ops).
        ctx.Record(useEma ? RecordedNameWithEma : op, zq, [zE, codebook], tape =>
        {
            var dzq = tape.GradOf(zq);
            if (zE.RequiresGrad)
                LossKernels.StraightThroughBackward(device, zE.Pointer, zq.Pointer, dzq.Pointer, tape.GradOf(zE).Pointer, 2f * beta / n, n);
            if (!useEma && codebook.RequiresGrad)
            {
                var sums = CodeSums(ctx, zE, m, d, hw, indices, k);
                CodebookUpdateKernels.CodebookGradient(device, codebook.Pointer, counts.Pointer, sums.Pointer, tape.GradOf(codebook).Pointer, 2f / n, k, d);
            }
        });
        return new QuantizeResult(zq, indices, codebookLoss, commitmentLoss, counts);
    }

    /// <summary>
    /// The nearest codebook entry of every vector of <paramref name="z"/>: [N, D, H, W] gives an int32 code map
    /// [N, H, W]; rows [M, D] give [M]. Ties go to the lowest index. No gradient.
    /// </summary>
    /// <exception cref="OpArgumentException">Shapes, types or devices do not fit.</exception>
    public static Tensor NearestCodes(OpContext ctx, Tensor z, Tensor codebook, NearestCodeAlgorithm? algorithm = null) =>
        NearestCodesWith(ctx, z, codebook, algorithm ?? NearestCodeAlgorithms.DefaultFor(ctx.Device), codeSplits: null);

    /// <summary><see cref="NearestCodes"/> with a forced code-split count for the fused kernel (tests).</summary>
    internal static Tensor NearestCodesWith(OpContext ctx, Tensor z, Tensor codebook, NearestCodeAlgorithm algorithm, int? codeSplits)
    {
        const string op = "nearest codes";
        OpChecks.Require(z.Shape.Rank is 2 or 4, op, $"z must be [N, D, H, W] or rows [M, D], got {z.Describe()}");
        var (m, d, hw) = CheckVectors(op, z, codebook);
        var shape = z.Shape.Rank == 4 ? new Shape(z.Shape[0], z.Shape[2], z.Shape[3]) : new Shape(m);
        return FindNearest(ctx, z, m, d, hw, codebook, algorithm, codeSplits, shape);
    }

    /// <summary>
    /// z_q for a given code map (decoding sampled codes): [N, H, W] indices give [N, D, H, W]; [M] give
    /// rows [M, D]. An index outside [0, K) yields NaN components. No gradient.
    /// </summary>
    /// <exception cref="OpArgumentException">Shapes, types or devices do not fit.</exception>
    public static Tensor Lookup(OpContext ctx, Tensor indices, Tensor codebook)
    {
        const string op = "codebook lookup";
        OpChecks.SameDevice(op, indices, codebook);
        OpChecks.DTypeIs(op, indices, DType.Int32, "indices");
        OpChecks.Require(indices.Shape.Rank is 1 or 3, op, $"indices must be a code map [N, H, W] or a list [M], got {indices.Describe()}");
        CheckCodebook(op, codebook);
        int k = codebook.Shape[0], d = codebook.Shape[1];
        OpChecks.Require(indices.Count * d <= int.MaxValue, op, $"{indices.Describe()} with D = {d} exceeds 2^31 elements");
        var shape = indices.Shape.Rank == 3
            ? new Shape(indices.Shape[0], d, indices.Shape[1], indices.Shape[2])
            : new Shape(indices.Shape[0], d);
        int hw = indices.Shape.Rank == 3 ? indices.Shape[1] * indices.Shape[2] : 1;
        var output = ctx.NewTensor(shape, purpose: op);
        EmbeddingKernels.Gather(ctx.Device, codebook.Pointer, indices.Pointer, output.Pointer, k, d, hw, (int)output.Count);
        return output;
    }

    /// <summary>How many entries of <paramref name="indices"/> hold each code: int32 [<paramref name="codebookSize"/>]. Exact (integer atomics).</summary>
    /// <exception cref="OpArgumentException">Not an int32 tensor, or fewer than 2 codes.</exception>
    public static Tensor Histogram(OpContext ctx, Tensor indices, int codebookSize)
    {
        const string op = "code histogram";
        OpChecks.DTypeIs(op, indices, DType.Int32, "indices");
        OpChecks.Require(codebookSize >= 2, op, $"the codebook needs at least 2 codes, got {codebookSize}");
        var counts = ctx.Zeros(new Shape(codebookSize), DType.Int32, op);
        SegmentSumKernels.Histogram(ctx.Device, indices.Pointer, counts.Pointer, (int)indices.Count, codebookSize);
        return counts;
    }

    /// <summary>Σ of the vectors of z assigned to each code, [K, D], deterministic (see <see cref="SegmentSumKernels.Sums"/>).</summary>
    internal static Tensor CodeSums(OpContext ctx, Tensor z, int m, int d, int hw, Tensor indices, int k) =>
        SegmentSums.ByKey(ctx, "code sums", z, m, d, hw, indices, k);

    private static Tensor FindNearest(OpContext ctx, Tensor z, int m, int d, int hw, Tensor codebook, NearestCodeAlgorithm algorithm,
                                      int? codeSplits, Shape indexShape)
    {
        var device = ctx.Device;
        int k = codebook.Shape[0];
        var indices = ctx.NewTensor(indexShape, DType.Int32, "code indices");
        var enorm = ctx.NewTensor(new Shape(k), purpose: "codebook squared norms");
        if (algorithm == NearestCodeAlgorithm.Fused)
        {
            var et = ctx.NewTensor(new Shape(d, k), purpose: "codebook transposed");
            NearestCodeKernels.PrepareCodebook(device, codebook.Pointer, et.Pointer, enorm.Pointer, k, d);
            var (splits, codesPerSplit) = NearestCodeKernels.FusedSplits(device, m, k, codeSplits);
            var keys = splits > 1 ? ctx.NewTensor(new Shape(2 * splits, m), DType.Int32, "nearest-code candidates").Pointer : indices.Pointer;
            NearestCodeKernels.NearestFused(device, z.Pointer, m, d, hw, et.Pointer, enorm.Pointer, k, indices.Pointer, keys, splits, codesPerSplit);
            return indices;
        }
        OpChecks.Require((long)m * k <= int.MaxValue, "nearest codes", $"the unfused path's {m}x{k} distance matrix exceeds 2^31 elements");
        NearestCodeKernels.PrepareCodebook(device, codebook.Pointer, default, enorm.Pointer, k, d);  // the GEMM reads E as stored
        var s = ctx.NewTensor(new Shape(m, k), purpose: "z·e matrix");
        NearestCodeKernels.DotProducts(device, z.Pointer, m, d, hw, codebook.Pointer, k, s.Pointer);
        NearestCodeKernels.ArgminRows(device, s.Pointer, enorm.Pointer, indices.Pointer, m, k);
        return indices;
    }

    /// <summary>Checks z (float32, [N, D, H, W] or [M, D]) against the codebook; returns M, D and H·W (1 for rows).</summary>
    private static (int M, int D, int Hw) CheckVectors(string op, Tensor z, Tensor codebook)
    {
        OpChecks.SameDevice(op, z, codebook);
        OpChecks.DTypeIs(op, z, DType.Float32, "z");
        CheckCodebook(op, codebook);
        int d = z.Shape[1];
        OpChecks.Require(codebook.Shape[1] == d, op,
                         $"the codebook's vectors have D = {codebook.Shape[1]} components ({codebook.Describe()}) but z has D = {d} ({z.Describe()})");
        OpChecks.Require(z.Count <= int.MaxValue, op, $"{z.Describe()} exceeds 2^31 elements");
        int hw = z.Shape.Rank == 4 ? z.Shape[2] * z.Shape[3] : 1;
        return ((int)(z.Count / d), d, hw);
    }

    private static void CheckCodebook(string op, Tensor codebook)
    {
        OpChecks.Rank(op, codebook, 2, "codebook");
        OpChecks.DTypeIs(op, codebook, DType.Float32, "codebook");
        OpChecks.Require(codebook.Shape[0] >= 2, op, $"the codebook needs at least K = 2 codes, got {codebook.Describe()}");
        OpChecks.Require(codebook.Count <= int.MaxValue, op, $"{codebook.Describe()} exceeds 2^31 elements");
    }
}
