using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Modules;

/// <summary>
/// The EMA state of a <see cref="VectorQuantizer"/>'s codebook (the paper's appendix A.1; the arithmetic is
/// <see cref="EmaCodebook"/>): buffers <c>cluster_sizes</c> N_k [K] and <c>embedding_sums</c> m_k [K, D],
/// starting as if every code had been chosen once at its initial value (N_k = 1, m_k = e_k).
/// </summary>
public sealed class CodebookEma : Module
{
    private readonly Parameter _codebook;
    private EmaCodebook? _ema;

    /// <summary>EMA state for <paramref name="codebook"/>, with decay γ and Laplace smoothing ε.</summary>
    public CodebookEma(Parameter codebook, float decay, float epsilon)
    {
        _codebook = codebook;
        Decay = decay;
        Epsilon = epsilon;
    }

    /// <summary>γ.</summary>
    public float Decay { get; }

    /// <summary>ε.</summary>
    public float Epsilon { get; }

    /// <summary>N_k [K].</summary>
    public Tensor ClusterSizes => State.ClusterSizes;

    /// <summary>m_k [K, D].</summary>
    public Tensor EmbeddingSums => State.EmbeddingSums;

    private EmaCodebook State => _ema ?? throw new InvalidOperationException("the codebook EMA is not allocated");

    /// <inheritdoc />
    protected override void OnAllocated(IDevice device)
    {
        _ema = new EmaCodebook(_codebook.Value, Decay, Epsilon);
        RegisterBuffer("cluster_sizes", _ema.ClusterSizes);
        RegisterBuffer("embedding_sums", _ema.EmbeddingSums);
    }

    /// <summary>One EMA step from z_e [N, D, h, w] and its code map [N, h, w]; rewrites the codebook.</summary>
    public void Update(OpContext ctx, Tensor zE, Tensor indices) => State.Update(ctx, zE, indices);

    /// <summary>Restarts code <paramref name="k"/> as a fresh code at <paramref name="vector"/>: N_k = 1, m_k = vector.</summary>
    public void RestartCode(int k, ReadOnlySpan<float> vector)
    {
        int d = _codebook.Shape[1];
        Device.CopyToDevice(vector, EmbeddingSums.Pointer.OffsetFloats((long)k * d));
        Device.CopyToDevice<float>([1f], ClusterSizes.Pointer.OffsetFloats(k));
    }

    /// <summary>Restarts every code at the codebook's current values (after the codebook was replaced, e.g. by k-means).</summary>
    public void RestartFromCodebook()
    {
        Device.Copy(_codebook.Value.Pointer, EmbeddingSums.Pointer, EmbeddingSums.Bytes);
        ClusterSizes.CopyFrom(Enumerable.Repeat(1f, _codebook.Shape[0]).ToArray());
    }

    /// <inheritdoc />
    protected override void DisposeOwned() => _ema?.Dispose();
}
