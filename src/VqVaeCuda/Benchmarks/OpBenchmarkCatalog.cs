using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Benchmarks;

/// <summary>
/// The ops timed by <c>vqvae bench --ops</c>, at the shapes of the <c>fashion-mnist</c> model
/// (batch 64, 28×28 inputs, hidden 128, residual 32, D 64, K 512) and of its prior.
/// FLOPs count multiply-adds as 2; bytes are the fewest each pass must read and write.
/// </summary>
public static class OpBenchmarkCatalog
{
    private const int Batch = 64;

    /// <summary>Every case.</summary>
    public static IEnumerable<OpBenchmarkCase> All()
    {
        // Activation tensor of the encoder after the first convolution: [64,128,14,14].
        var hidden = new Shape(Batch, 128, 14, 14);
        double n = hidden.Count;
        yield return new OpBenchmarkCase($"relu {hidden}", [hidden], (ctx, t) => Activations.Relu(ctx, t[0]),
                                         n, 8 * n, n, 16 * n);
        yield return new OpBenchmarkCase($"residual add {hidden}", [hidden, hidden], (ctx, t) => Elementwise.Add(ctx, t[0], t[1]),
                                         n, 12 * n, 2 * n, 24 * n);
    }
}
