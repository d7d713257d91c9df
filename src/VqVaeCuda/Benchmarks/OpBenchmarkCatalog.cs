using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Benchmarks;

/// <summary>The sizes the op catalogue builds its cases from: a VQ-VAE (encoder, quantizer, decoder) and its prior.</summary>
/// <param name="Batch">Images per batch.</param>
/// <param name="ImageSize">Side of the input images.</param>
/// <param name="InputChannels">Channels of the input images.</param>
/// <param name="Hidden">Channels of the encoder's second convolution (its first has half).</param>
/// <param name="Residual">Channels inside a residual block.</param>
/// <param name="EmbeddingDim">D, the length of a code vector.</param>
/// <param name="CodebookSize">K, the number of codes.</param>
/// <param name="LatentSize">Side of the code map.</param>
/// <param name="PriorChannels">Channels of the prior's masked convolution input.</param>
public sealed record OpCatalogShapes(int Batch, int ImageSize, int InputChannels, int Hidden, int Residual, int EmbeddingDim, int CodebookSize,
                                     int LatentSize, int PriorChannels)
{
    /// <summary>The <c>fashion-mnist</c> model (batch 64, 28×28 inputs, hidden 128, residual 32, D 64, K 512) and its prior: what <c>bench --ops</c> times.</summary>
    public static OpCatalogShapes FashionMnist { get; } = new(64, 28, 1, 128, 32, 64, 512, 7, 64);
}

/// <summary>
/// The ops timed by <c>vqvae bench --ops</c>, at the shapes of the <c>fashion-mnist</c> model
/// (batch 64, 28×28 inputs, hidden 128, residual 32, D 64, K 512) and of its prior; <c>vqvae verify</c> builds the same
/// cases at other (odd) sizes. FLOPs count multiply-adds as 2; bytes are the fewest each pass must read and write.
/// </summary>
public static class OpBenchmarkCatalog
{
    /// <summary>Every case, at the fashion-mnist sizes or at <paramref name="shapes"/>.</summary>
    public static IEnumerable<OpBenchmarkCase> All(OpCatalogShapes? shapes = null)
    {
        var s = shapes ?? OpCatalogShapes.FashionMnist;
        int batch = s.Batch;
        // Activation tensor of the encoder after the first convolution: [64,128,14,14] for fashion-mnist.
        var hidden = new Shape(batch, s.Hidden, s.ImageSize / 2, s.ImageSize / 2);
        double n = hidden.Count;
        yield return new OpBenchmarkCase($"relu {hidden}", [hidden], (ctx, t) => Activations.Relu(ctx, t[0]),
                                         n, 8 * n, n, 16 * n);
        foreach (var c in Convolutions(s)) yield return c;
        foreach (var c in QuantizerAndLosses(s)) yield return c;
        foreach (var c in Prior(s)) yield return c;
        yield return new OpBenchmarkCase($"residual add {hidden}", [hidden, hidden], (ctx, t) => Elementwise.Add(ctx, t[0], t[1]),
                                         n, 12 * n, 2 * n, 24 * n);
    }

    // The fashion-mnist encoder's and decoder's convolutions. A convolution with Cin·k² inputs per
    // output does 2·N·Cout·Ho·Wo·Cin·k² FLOPs forward, twice that backward (input and weight
    // gradients); bytes are the input, weight and output once each (the im2col copy is overhead the
    // floor does not include).
    private static IEnumerable<OpBenchmarkCase> Convolutions(OpCatalogShapes s)
    {
        int batch = s.Batch, half = s.Hidden / 2, size2 = (s.ImageSize + 2 - 4) / 2 + 1, size4 = (size2 + 2 - 4) / 2 + 1;
        (string Name, int Cin, int Cout, int K, int S, int P, int Size, bool Transposed)[] layers =
        [
            ("encoder conv 4x4/2", s.InputChannels, half, 4, 2, 1, s.ImageSize, false),
            ("encoder conv 4x4/2", half, s.Hidden, 4, 2, 1, size2, false),
            ("encoder conv 3x3", s.Hidden, s.Hidden, 3, 1, 1, size4, false),
            ("residual conv 3x3", s.Hidden, s.Residual, 3, 1, 1, size4, false),
            ("residual conv 1x1", s.Residual, s.Hidden, 1, 1, 0, size4, false),
            ("decoder convT 4x4/2", s.Hidden, half, 4, 2, 1, size4, true),
            ("decoder convT 4x4/2", half, s.InputChannels, 4, 2, 1, size2, true),
        ];
        foreach (var l in layers)
        {
            var x = new Shape(batch, l.Cin, l.Size, l.Size);
            var w = l.Transposed ? new Shape(l.Cin, l.Cout, l.K, l.K) : new Shape(l.Cout, l.Cin, l.K, l.K);
            var b = new Shape(l.Cout);
            int outSize = l.Transposed ? (l.Size - 1) * l.S - 2 * l.P + l.K : (l.Size + 2 * l.P - l.K) / l.S + 1;
            // For the transposed conv the multiply-adds are counted on its input side.
            double macs = l.Transposed
                ? (double)batch * l.Cin * l.Size * l.Size * l.Cout * l.K * l.K
                : (double)batch * l.Cout * outSize * outSize * l.Cin * l.K * l.K;
            double bytes = 4.0 * (x.Count + w.Count + b.Count + (double)batch * l.Cout * outSize * outSize);
            string name = $"{l.Name} {x}->[{batch},{l.Cout},{outSize},{outSize}]";
            yield return l.Transposed
                ? new OpBenchmarkCase(name, [x, w, b], (ctx, t) => Convolution.ConvTranspose2d(ctx, t[0], t[1], t[2], l.S, l.P), 2 * macs, bytes, 4 * macs, 2 * bytes)
                : new OpBenchmarkCase(name, [x, w, b], (ctx, t) => Convolution.Conv2d(ctx, t[0], t[1], t[2], l.S, l.P), 2 * macs, bytes, 4 * macs, 2 * bytes);
        }
    }

    // The quantizer at the fashion-mnist latents (M = 64·7·7 = 3136 vectors, D = 64, K = 512), with the
    // loss-based codebook so that its backward includes the codebook gradient; the reconstruction loss.
    private static IEnumerable<OpBenchmarkCase> QuantizerAndLosses(OpCatalogShapes s)
    {
        int batch = s.Batch, d = s.EmbeddingDim, k = s.CodebookSize, side = s.LatentSize;
        var zE = new Shape(batch, d, side, side);
        var codebook = new Shape(k, d);
        double m = batch * side * side, n = zE.Count;
        yield return new OpBenchmarkCase($"vector quantizer z_e {zE}, E {codebook}", [zE, codebook],
            (ctx, t) => VectorQuantizer.Quantize(ctx, t[0], t[1], 0.25f, useEma: false).Quantized,
            2 * m * k * d, 4 * (2 * n + k * d + m), 4 * n + 3 * k * d, 4 * (5 * n + 4 * k * d));
        var image = new Shape(batch, s.InputChannels, s.ImageSize, s.ImageSize);
        double p = image.Count;
        yield return new OpBenchmarkCase($"mse loss {image}", [image, image], (ctx, t) => Losses.Mse(ctx, t[0], t[1]),
                                         3 * p, 8 * p, 3 * p, 16 * p);
    }

    // The Gated PixelCNN prior over 7×7 code maps: code embedding, a masked convolution, the gate and
    // the softmax cross-entropy over K = 512 codes. Integer inputs (codes) are constants made in the arena.
    private static IEnumerable<OpBenchmarkCase> Prior(OpCatalogShapes s)
    {
        int batch = s.Batch, k = s.CodebookSize, side = s.LatentSize, channels = s.PriorChannels;
        var codes = Enumerable.Range(0, batch * side * side).Select(i => (i * 7919) % k).ToArray();
        Tensor Codes(Autodiff.OpContext ctx)
        {
            var t = ctx.NewTensor(new Shape(batch, side, side), DType.Int32);
            t.CopyFrom(codes);
            return t;
        }
        var table = new Shape(k, channels);
        double positions = batch * side * side;
        yield return new OpBenchmarkCase($"code embedding {table} -> [{batch},{channels},{side},{side}]", [table],
            (ctx, t) => Embedding.LookupNchw(ctx, t[0], Codes(ctx)),
            0, 4 * (positions * channels + positions), positions * channels, 4 * (2 * positions * channels + table.Count));

        var x = new Shape(batch, channels, side, side);
        var w = new Shape(2 * channels, channels, 3, 3);
        var b = new Shape(2 * channels);
        var mask = ConvMasks.PixelCnn(3, MaskType.B);
        double macs = positions * 2 * channels * channels * 9;
        yield return new OpBenchmarkCase($"masked conv 3x3 B {x}->[{batch},{2 * channels},{side},{side}]", [x, w, b],
            (ctx, t) =>
            {
                var m = ctx.NewTensor(new Shape(3, 3));
                m.CopyFrom(mask.ToArray());
                return Convolution.MaskedConv2d(ctx, t[0], t[1], t[2], m, 1);
            },
            2 * macs, 4 * (x.Count + w.Count + 2.0 * x.Count), 4 * macs, 8 * (x.Count + w.Count + 2.0 * x.Count));

        var gated = new Shape(batch, 2 * channels, side, side);
        double g = gated.Count / 2;
        yield return new OpBenchmarkCase($"gated tanh*sigmoid {gated}", [gated], (ctx, t) => Gating.GatedTanhSigmoid(ctx, t[0]),
                                         5 * g, 12 * g, 12 * g, 28 * g);

        var logits = new Shape(batch, k, side, side);
        double l = logits.Count;
        yield return new OpBenchmarkCase($"softmax cross-entropy {logits}", [logits],
            (ctx, t) => CrossEntropy.SoftmaxCrossEntropy(ctx, t[0], Codes(ctx)),
            4 * l, 4 * l + 12 * positions, 5 * l, 12 * l + 8 * positions);
    }
}
