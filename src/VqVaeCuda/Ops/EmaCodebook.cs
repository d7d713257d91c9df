using VqVaeCuda.Autodiff;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Ops;

/// <summary>
/// The paper's alternative to the codebook loss (appendix A.1): the codebook follows exponential moving
/// averages of the encoder outputs assigned to each code. With n_k the positions assigned to code k in a
/// step and s_k the sum of their z_e vectors:
/// <code>
///   N_k ← γ·N_k + (1 − γ)·n_k            (cluster sizes, <see cref="ClusterSizes"/>)
///   m_k ← γ·m_k + (1 − γ)·s_k            (running sums, <see cref="EmbeddingSums"/>)
///   Ñ_k = (N_k + ε) / (Σ_j N_j + K·ε) · Σ_j N_j      (Laplace smoothing: an unused code keeps Ñ_k &gt; 0)
///   e_k = m_k / Ñ_k
/// </code>
/// The state starts as if every code had been chosen once at its initial value (N_k = 1, m_k = e_k), so
/// the first update moves the codebook by the usual (1 − γ) step instead of replacing it. Use with
/// <see cref="VectorQuantizer.Quantize"/>(useEma: true), which then gives the codebook no gradient; call
/// <see cref="Update"/> once per training step with that step's z_e and code map. N_k and m_k are
/// persistent device tensors owned by this object (checkpoint them with the codebook).
/// </summary>
public sealed class EmaCodebook : IDisposable
{
    /// <summary>EMA state for <paramref name="codebook"/> ([K, D], updated in place by <see cref="Update"/>).</summary>
    /// <param name="codebook">The codebook; its current values become m_k.</param>
    /// <param name="decay">γ in (0, 1); the paper uses 0.99.</param>
    /// <param name="epsilon">ε &gt; 0 of the Laplace smoothing.</param>
    /// <exception cref="OpArgumentException">A bad codebook, decay or epsilon.</exception>
    public EmaCodebook(Tensor codebook, float decay = 0.99f, float epsilon = 1e-5f)
    {
        const string op = "ema codebook";
        OpChecks.Rank(op, codebook, 2, "codebook");
        OpChecks.DTypeIs(op, codebook, DType.Float32, "codebook");
        OpChecks.Require(codebook.Shape[0] >= 2, op, $"the codebook needs at least K = 2 codes, got {codebook.Describe()}");
        OpChecks.Require(decay > 0 && decay < 1, op, $"the decay must lie in (0, 1), got {decay}");
        OpChecks.Require(epsilon > 0 && float.IsFinite(epsilon), op, $"epsilon must be positive, got {epsilon}");
        Codebook = codebook;
        Decay = decay;
        Epsilon = epsilon;
        var device = codebook.Device;
        ClusterSizes = Tensor.Allocate(device, new Shape(codebook.Shape[0]));
        EmbeddingSums = Tensor.Allocate(device, codebook.Shape);
        var ones = new float[codebook.Shape[0]];
        Array.Fill(ones, 1f);
        ClusterSizes.CopyFrom(ones);
        device.Copy(codebook.Pointer, EmbeddingSums.Pointer, codebook.Bytes);
    }

    /// <summary>The codebook E [K, D], overwritten by each update.</summary>
    public Tensor Codebook { get; }

    /// <summary>N_k, the smoothed-by-EMA number of positions per code, [K].</summary>
    public Tensor ClusterSizes { get; }

    /// <summary>m_k, the EMA of the sum of the z_e vectors assigned to each code, [K, D].</summary>
    public Tensor EmbeddingSums { get; }

    /// <summary>γ.</summary>
    public float Decay { get; }

    /// <summary>ε.</summary>
    public float Epsilon { get; }

    /// <summary>
    /// One EMA step from a batch: <paramref name="zE"/> [N, D, H, W] and its code map <paramref name="indices"/>
    /// [N, H, W] (from <see cref="VectorQuantizer.Quantize"/>, whose indices lie in [0, K)). Updates N_k, m_k
    /// and the codebook in place. The per-code sums are deterministic (no float atomics).
    /// </summary>
    /// <exception cref="OpArgumentException">Shapes, types or devices do not fit; nothing was launched.</exception>
    public void Update(OpContext ctx, Tensor zE, Tensor indices)
    {
        const string op = "ema codebook";
        OpChecks.SameDevice(op, zE, indices, Codebook);
        OpChecks.Rank(op, zE, 4, "z_e");
        OpChecks.DTypeIs(op, zE, DType.Float32, "z_e");
        OpChecks.DTypeIs(op, indices, DType.Int32, "indices");
        int k = Codebook.Shape[0], d = Codebook.Shape[1];
        OpChecks.Require(zE.Shape[1] == d, op, $"z_e has D = {zE.Shape[1]} ({zE.Describe()}) but the codebook has D = {d} ({Codebook.Describe()})");
        OpChecks.Require(indices.Shape == new Shape(zE.Shape[0], zE.Shape[2], zE.Shape[3]), op,
                         $"indices {indices.Describe()} must be the code map [N, H, W] of z_e {zE.Describe()}");
        OpChecks.Require(zE.Count <= int.MaxValue, op, $"{zE.Describe()} exceeds 2^31 elements");
        int m = (int)indices.Count, hw = zE.Shape[2] * zE.Shape[3];
        var device = ctx.Device;
        var counts = VectorQuantizer.Histogram(ctx, indices, k);
        var sums = VectorQuantizer.CodeSums(ctx, zE, m, d, hw, indices, k);
        var total = ctx.NewTensor(new Shape(), purpose: op + " total count");
        CodebookUpdateKernels.EmaUpdate(device, counts.Pointer, sums.Pointer, ClusterSizes.Pointer, total.Pointer, EmbeddingSums.Pointer, Codebook.Pointer,
                                   Decay, Epsilon, k, d);
    }

    /// <summary>Frees N_k and m_k (the codebook belongs to the caller).</summary>
    public void Dispose()
    {
        ClusterSizes.Dispose();
        EmbeddingSums.Dispose();
    }
}
