using VqVaeCuda.Autodiff;
using VqVaeCuda.Tensors;
using EmbeddingOps = VqVaeCuda.Ops.Embedding;

namespace VqVaeCuda.Modules;

/// <summary>
/// A lookup table, like <c>torch.nn.Embedding</c>: <c>weight</c> [count, dim], row v the vector of index v.
/// Starts uniform in ±√3 (unit variance, as PyTorch's N(0, 1) start). The gradient of a row is the
/// deterministic sum of the gradients of the positions that looked it up.
/// </summary>
public sealed class Embedding : Module
{
    /// <summary>A table of <paramref name="count"/> vectors of <paramref name="dim"/> components.</summary>
    public Embedding(int count, int dim)
    {
        Weight = RegisterParameter("weight", new Parameter(new Shape(count, dim), Initializer.Uniform(MathF.Sqrt(3f))));
    }

    /// <summary>[count, dim].</summary>
    public Parameter Weight { get; }

    /// <summary>Indices int32 of any shape S → [S..., dim].</summary>
    public Tensor Forward(OpContext ctx, Tensor indices) => EmbeddingOps.Lookup(ctx, Weight.Value, indices);

    /// <summary>A code map int32 [N, H, W] → [N, dim, H, W] (channel-first, a convolution's input).</summary>
    public Tensor ForwardNchw(OpContext ctx, Tensor codes) => EmbeddingOps.LookupNchw(ctx, Weight.Value, codes);
}
