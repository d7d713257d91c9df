using VqVaeCuda.Autodiff;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Ops;

/// <summary>
/// How much of the codebook a batch uses, from the code histogram: the number of codes chosen at least
/// once, and the perplexity exp(−Σ_k p_k log p_k) with p_k = n_k / Σn (0·log 0 = 0) — K when every code
/// is used equally, 1 when one code takes everything. Computed on the host in double precision from
/// the K counts (a K-element copy); the counting itself is on the device (<see cref="VectorQuantizer.Histogram"/>).
/// </summary>
/// <param name="CodebookSize">K.</param>
/// <param name="CodesUsed">Codes with a non-zero count.</param>
/// <param name="Perplexity">exp of the entropy of the code distribution (0 when there are no positions).</param>
/// <param name="Counts">The histogram.</param>
public sealed record CodebookUsage(int CodebookSize, int CodesUsed, double Perplexity, IReadOnlyList<int> Counts)
{
    /// <summary>Usage from a histogram held on the host.</summary>
    public static CodebookUsage FromCounts(IReadOnlyList<int> counts)
    {
        long total = 0;
        int used = 0;
        foreach (var c in counts)
        {
            if (c < 0) throw new ArgumentException($"a code count is negative ({c})", nameof(counts));
            total += c;
            if (c > 0) used++;
        }
        double entropy = 0;
        if (total > 0)
            foreach (var c in counts)
                if (c > 0)
                {
                    double p = (double)c / total;
                    entropy -= p * Math.Log(p);
                }
        return new CodebookUsage(counts.Count, used, total > 0 ? Math.Exp(entropy) : 0, counts.ToArray());
    }

    /// <summary>Usage from a device histogram (int32 [K], e.g. <see cref="QuantizeResult.Counts"/>).</summary>
    public static CodebookUsage FromCounts(Tensor counts) => FromCounts(counts.ToIntArray());

    /// <summary>Counts the codes of <paramref name="indices"/> on the device, then summarises them.</summary>
    public static CodebookUsage Measure(OpContext ctx, Tensor indices, int codebookSize) =>
        FromCounts(VectorQuantizer.Histogram(ctx, indices, codebookSize));
}
