using VqVaeCuda.Autodiff;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;
using VqOps = VqVaeCuda.Ops.VectorQuantizer;

namespace VqVaeCuda.Modules;

/// <summary>
/// The VQ-VAE's quantizer as a module: it owns the codebook <c>codebook</c> [K, D] (a parameter), with EMA
/// updates its statistics (child <c>ema</c>: <c>ema.cluster_sizes</c>, <c>ema.embedding_sums</c>), and the
/// per-code record of when each code was last chosen, which drives dead-code restarts. The arithmetic is
/// the functional <see cref="VqOps"/> (Ops layer).
/// <para>
/// Codebook learning. With the codebook loss (<c>useEma: false</c>) the codebook learns through its
/// gradient like any parameter. With EMA (the default) the codebook gets no gradient: call
/// <see cref="UpdateCodebook"/> once per training step, after the optimizer step, with that step's
/// forward result. The update is an explicit call rather than a side effect of <see cref="Forward"/>, so
/// a forward never changes state: it can be repeated (evaluation, finite differences, memory probes)
/// without moving the codebook. In EMA mode the codebook is still in the parameter store, with a zero
/// gradient: Adam without weight decay leaves it unchanged.
/// </para>
/// <para>
/// Codebook health, all public: <see cref="RecordUsage"/> notes which codes a batch chose;
/// <see cref="RestartDeadCodes"/> moves codes unused for a number of steps onto encoder outputs of the
/// current batch; <see cref="InitialiseByKMeans"/> places every code by k-means over encoder outputs.
/// </para>
/// </summary>
public sealed class VectorQuantizer : Module
{
    private readonly int[] _codeLastUsed;

    /// <summary>A quantizer of <paramref name="codebookSize"/> codes of dimension <paramref name="embeddingDim"/>.</summary>
    /// <param name="codebookSize">K ≥ 2.</param>
    /// <param name="embeddingDim">D ≥ 1.</param>
    /// <param name="beta">β, the commitment weight (0.25 in the paper).</param>
    /// <param name="useEma">EMA codebook updates (true) or the codebook loss (false).</param>
    /// <param name="emaDecay">γ of the EMA.</param>
    /// <param name="emaEpsilon">ε of the EMA's Laplace smoothing.</param>
    public VectorQuantizer(int codebookSize, int embeddingDim, float beta = 0.25f, bool useEma = true, float emaDecay = 0.99f, float emaEpsilon = 1e-5f)
    {
        if (codebookSize < 2) throw new ArgumentOutOfRangeException(nameof(codebookSize), codebookSize, "the codebook needs at least 2 codes");
        if (embeddingDim < 1) throw new ArgumentOutOfRangeException(nameof(embeddingDim), embeddingDim, "the code dimension must be at least 1");
        if (!(beta >= 0 && float.IsFinite(beta))) throw new ArgumentOutOfRangeException(nameof(beta), beta, "beta must be finite and >= 0");
        CodebookSize = codebookSize;
        EmbeddingDim = embeddingDim;
        Beta = beta;
        // nn.Embedding-style start, small against encoder outputs, as in the common PyTorch ports.
        Codebook = RegisterParameter("codebook", new Parameter(new Shape(codebookSize, embeddingDim), Initializer.Uniform(1f / codebookSize)));
        if (useEma) Ema = RegisterModule("ema", new CodebookEma(Codebook, emaDecay, emaEpsilon));
        _codeLastUsed = new int[codebookSize];
    }

    /// <summary>K.</summary>
    public int CodebookSize { get; }

    /// <summary>D.</summary>
    public int EmbeddingDim { get; }

    /// <summary>β.</summary>
    public float Beta { get; }

    /// <summary>E [K, D].</summary>
    public Parameter Codebook { get; }

    /// <summary>The EMA statistics when the codebook follows moving averages; null with the codebook loss.</summary>
    public CodebookEma? Ema { get; }

    /// <summary>
    /// Quantizes z_e [N, D, h, w]: z_q, the code map, the codebook and commitment losses (values), the code
    /// counts. Backward: straight-through to z_e plus β·commitment gradient; the codebook-loss gradient to
    /// the codebook unless EMA (see <see cref="VqOps"/>).
    /// </summary>
    public QuantizeResult Forward(OpContext ctx, Tensor zE) => VqOps.Quantize(ctx, zE, Codebook.Value, Beta, Ema is not null);

    /// <summary>The code map of z [N, D, h, w] (int32 [N, h, w]); no gradient.</summary>
    public Tensor NearestCodes(OpContext ctx, Tensor z) => VqOps.NearestCodes(ctx, z, Codebook.Value);

    /// <summary>z_q [N, D, h, w] of a code map [N, h, w]; no gradient.</summary>
    public Tensor Lookup(OpContext ctx, Tensor codes) => VqOps.Lookup(ctx, codes, Codebook.Value);

    /// <summary>
    /// The EMA codebook step for one training step (call after the optimizer step): N_k, m_k and the
    /// codebook move toward this batch's assignments. Does nothing with the codebook loss, whose codebook
    /// learns through the optimizer.
    /// </summary>
    /// <exception cref="InvalidOperationException">The module is in eval mode.</exception>
    public void UpdateCodebook(OpContext ctx, Tensor zE, QuantizeResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        RequireTraining("UpdateCodebook");
        Ema?.Update(ctx, zE, result.Indices);
    }

    /// <summary>For each code, the last step at which a batch chose it (0 = never since the start).</summary>
    public IReadOnlyList<int> CodeLastUsed => _codeLastUsed;

    /// <summary>Restores <see cref="CodeLastUsed"/> (resuming a run).</summary>
    public void LoadCodeLastUsed(IReadOnlyList<int> steps)
    {
        if (steps.Count != CodebookSize) throw new ArgumentException($"{steps.Count} last-use steps for a codebook of {CodebookSize} codes");
        for (int k = 0; k < CodebookSize; k++) _codeLastUsed[k] = steps[k];
    }

    /// <summary>Marks every code with a non-zero count in <paramref name="counts"/> ([K], e.g. <see cref="QuantizeResult.Counts"/> read back) as used at <paramref name="step"/>.</summary>
    public CodebookUsage RecordUsage(IReadOnlyList<int> counts, int step)
    {
        if (counts.Count != CodebookSize) throw new ArgumentException($"{counts.Count} counts for a codebook of {CodebookSize} codes");
        for (int k = 0; k < CodebookSize; k++)
            if (counts[k] > 0)
                _codeLastUsed[k] = step;
        return CodebookUsage.FromCounts(counts);
    }

    /// <summary>The codes not chosen during the last <paramref name="deadAfterSteps"/> steps before <paramref name="step"/>.</summary>
    public int[] DeadCodes(int step, int deadAfterSteps) =>
        Enumerable.Range(0, CodebookSize).Where(k => step - _codeLastUsed[k] >= deadAfterSteps).ToArray();

    /// <summary>
    /// Dead-code restart: each code unused for <paramref name="deadAfterSteps"/> steps is moved onto a randomly
    /// chosen vector of <paramref name="zE"/> (this step's encoder output), so it lands where the data is and
    /// starts winning assignments again; with EMA its statistics restart as a fresh code (N_k = 1, m_k = e_k),
    /// and it counts as used at <paramref name="step"/>. The choice is seeded by (<paramref name="seed"/>,
    /// <paramref name="step"/>), so a resumed run draws the same vectors. Returns the number of codes restarted.
    /// </summary>
    /// <exception cref="InvalidOperationException">The module is in eval mode.</exception>
    public int RestartDeadCodes(Tensor zE, int step, int deadAfterSteps, int seed)
    {
        RequireTraining("RestartDeadCodes");
        if (deadAfterSteps < 1) throw new ArgumentOutOfRangeException(nameof(deadAfterSteps), deadAfterSteps, "must be at least 1");
        var dead = DeadCodes(step, deadAfterSteps);
        if (dead.Length == 0) return 0;
        int d = EmbeddingDim, n = zE.Shape[0], hw = zE.Shape[2] * zE.Shape[3];
        var z = zE.ToArray();  // [N, D, h, w]
        // Not HashCode.Combine: its seed changes per process, and a resumed run must draw the same vectors.
        var random = new Random(unchecked(seed * 1_000_003 + step * 7_919 + 0x0DEAD));
        var row = new float[d];
        foreach (int k in dead)
        {
            EncoderVectors.Copy(z, random.Next(n * hw), d, hw, row);
            Device.CopyToDevice<float>(row, Codebook.Value.Pointer.OffsetFloats((long)k * d));
            Ema?.RestartCode(k, row);
            _codeLastUsed[k] = step;
        }
        return dead.Length;
    }

    /// <summary>
    /// Places the codebook by k-means (k-means++ seeding, then <paramref name="iterations"/> Lloyd iterations) over
    /// <paramref name="vectors"/> (encoder outputs, each of D components; see <see cref="VectorsOf"/>), drawing
    /// from <paramref name="random"/>; with EMA the statistics restart at the new codebook. Runs on the host.
    /// </summary>
    public void InitialiseByKMeans(IReadOnlyList<float[]> vectors, Random random, int iterations = 10)
    {
        if (vectors.Count < CodebookSize)
            throw new ArgumentException($"k-means needs at least K = {CodebookSize} vectors, got {vectors.Count}");
        if (vectors.Any(v => v.Length != EmbeddingDim)) throw new ArgumentException($"every vector must have D = {EmbeddingDim} components");
        var centres = KMeans.Cluster(vectors, CodebookSize, EmbeddingDim, random, iterations);
        Codebook.Value.CopyFrom(centres.SelectMany(v => v).ToArray());
        Ema?.RestartFromCodebook();
    }

    /// <summary>The M = N·h·w vectors of z [N, D, h, w] on the host, in the quantizer's order (image, then position).</summary>
    public static IEnumerable<float[]> VectorsOf(Tensor z)
    {
        int n = z.Shape[0], d = z.Shape[1], hw = z.Shape[2] * z.Shape[3];
        var host = z.ToArray();
        for (int m = 0; m < n * hw; m++)
        {
            var v = new float[d];
            EncoderVectors.Copy(host, m, d, hw, v);
            yield return v;
        }
    }

    private void RequireTraining(string what)
    {
        if (!IsTraining) throw new InvalidOperationException($"{what}: the quantizer is in eval mode; call Train() to change its codebook");
    }
}
