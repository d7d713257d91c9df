using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Device.Host;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Ops;

/// <summary>
/// Convolution ops (src/VqVaeCuda/Ops/Convolution.cs, kernels/conv.cu): forwards against direct C#
/// loops accumulated in double, backwards against finite differences, the causal masks, and the argument
/// checks, on each device; equal results in every thread order of the cpu device.
/// </summary>
public class ConvolutionTests(DeviceKind kind) : DeviceSpecification(kind)
{
    // Arenas as small as these tests allow: on the checked CPU device every fresh arena is NaN-filled,
    // and the finite differences build one per evaluation.
    private const long SmallArena = 1L << 20;

    /// <summary>One convolution's sizes. For a transposed convolution, H×W is its input and Cin its input channels.</summary>
    public sealed record Case(int N, int Cin, int Cout, int H, int W, int Kh, int Kw, int Sh, int Sw, int Ph, int Pw)
    {
        public int ConvHo => (H + 2 * Ph - Kh) / Sh + 1;
        public int ConvWo => (W + 2 * Pw - Kw) / Sw + 1;
        public int TransposedHo => (H - 1) * Sh - 2 * Ph + Kh;
        public int TransposedWo => (W - 1) * Sw - 2 * Pw + Kw;
        public Shape X => new(N, Cin, H, W);
        public Shape ConvWeight => new(Cout, Cin, Kh, Kw);
        public Shape TransposedWeight => new(Cin, Cout, Kh, Kw);
        public Shape Bias => new(Cout);
    }

    // ---- references: direct loops, double accumulation ---------------------------------------

    private static float[] ReferenceConv2d(Case c, float[] x, float[] w, float[]? b, float[]? mask = null)
    {
        int ho = c.ConvHo, wo = c.ConvWo;
        var y = new float[c.N * c.Cout * ho * wo];
        for (int n = 0; n < c.N; n++)
            for (int o = 0; o < c.Cout; o++)
                for (int oh = 0; oh < ho; oh++)
                    for (int ow = 0; ow < wo; ow++)
                    {
                        double s = b?[o] ?? 0;
                        for (int ci = 0; ci < c.Cin; ci++)
                            for (int i = 0; i < c.Kh; i++)
                                for (int j = 0; j < c.Kw; j++)
                                {
                                    int h = oh * c.Sh - c.Ph + i, col = ow * c.Sw - c.Pw + j;
                                    if (h < 0 || h >= c.H || col < 0 || col >= c.W) continue;
                                    int wi = ((o * c.Cin + ci) * c.Kh + i) * c.Kw + j;
                                    double m = mask is null ? 1 : mask[wi % mask.Length];
                                    s += (double)x[((n * c.Cin + ci) * c.H + h) * c.W + col] * w[wi] * m;
                                }
                        y[((n * c.Cout + o) * ho + oh) * wo + ow] = (float)s;
                    }
        return y;
    }

    // Scatter form, written independently of the gather form the kernels use.
    private static float[] ReferenceConvTranspose2d(Case c, float[] x, float[] w, float[]? b)
    {
        int ho = c.TransposedHo, wo = c.TransposedWo;
        var y = new double[c.N * c.Cout * ho * wo];
        for (int n = 0; n < c.N; n++)
            for (int o = 0; o < c.Cout; o++)
                for (int p = 0; p < ho * wo; p++)
                    y[(n * c.Cout + o) * ho * wo + p] = b?[o] ?? 0;
        for (int n = 0; n < c.N; n++)
            for (int ci = 0; ci < c.Cin; ci++)
                for (int ih = 0; ih < c.H; ih++)
                    for (int iw = 0; iw < c.W; iw++)
                        for (int o = 0; o < c.Cout; o++)
                            for (int i = 0; i < c.Kh; i++)
                                for (int j = 0; j < c.Kw; j++)
                                {
                                    int oh = ih * c.Sh - c.Ph + i, ow = iw * c.Sw - c.Pw + j;
                                    if (oh < 0 || oh >= ho || ow < 0 || ow >= wo) continue;
                                    y[((n * c.Cout + o) * ho + oh) * wo + ow] +=
                                        (double)x[((n * c.Cin + ci) * c.H + ih) * c.W + iw] * w[((ci * c.Cout + o) * c.Kh + i) * c.Kw + j];
                                }
        return y.Select(v => (float)v).ToArray();
    }

    // ---- helpers --------------------------------------------------------------------------------

    private static Tensor Upload(OpContext ctx, float[] values, Shape shape)
    {
        var t = ctx.NewTensor(shape);
        t.CopyFrom(values);
        return t;
    }

    private static float[] ZeroOne(int n, double keep = 0.6)
    {
        var r = TestData.Random;
        return Enumerable.Range(0, n).Select(_ => r.NextDouble() < keep ? 1f : 0f).ToArray();
    }

    /// <summary>Forward, then backward seeded with fixed pseudo-random values: [output, gradient of each input].</summary>
    private static float[][] ForwardBackward(IDevice device, IReadOnlyList<(float[] Values, Shape Shape)> inputs, Func<OpContext, Tensor[], Tensor> forward)
    {
        using var arena = new Arena(device, SmallArena);
        var tape = new Tape(arena);
        var ctx = new OpContext(arena, tape);
        var leaves = inputs.Select(i =>
        {
            var t = Upload(ctx, i.Values, i.Shape);
            t.RequiresGrad = true;
            return t;
        }).ToArray();
        var y = forward(ctx, leaves);
        var r = new Random(17);
        var seed = Upload(ctx, Enumerable.Range(0, (int)y.Count).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray(), y.Shape);
        tape.Backward(y, seed);
        return [y.ToArray(), .. leaves.Select(l => tape.GradOf(l).ToArray())];
    }

    private static readonly ThreadOrder[] OtherOrders = [ThreadOrder.Descending, ThreadOrder.Shuffled];

    private static void AssertSameInEveryOrder(IReadOnlyList<(float[] Values, Shape Shape)> inputs, Func<OpContext, Tensor[], Tensor> forward)
    {
        using var ascending = TestDevices.Cpu(ThreadOrder.Ascending);
        var expected = ForwardBackward(ascending, inputs, forward);
        foreach (var order in OtherOrders)
        {
            using var device = TestDevices.Cpu(order);
            var actual = ForwardBackward(device, inputs, forward);
            for (int k = 0; k < expected.Length; k++)
                Assert.That(actual[k], Is.EqualTo(expected[k]), $"{(k == 0 ? "output" : $"gradient of input {k - 1}")} in order {order}");
        }
    }

    // ---- forward against the references -------------------------------------------------------

    //        N  Cin Cout H   W  kh kw sh sw ph pw
    [TestCase(2, 3, 5, 7, 9, 3, 3, 1, 1, 1, 1)]
    [TestCase(2, 3, 4, 8, 8, 4, 4, 2, 2, 1, 1)]      // the VQ-VAE's downsampling convolution
    [TestCase(1, 4, 3, 9, 7, 1, 1, 1, 1, 0, 0)]      // 1×1 (residual blocks)
    [TestCase(3, 2, 6, 11, 10, 3, 3, 2, 2, 0, 0)]    // odd sizes, stride 2, no padding
    [TestCase(2, 3, 2, 5, 7, 4, 4, 2, 2, 1, 1)]      // odd sizes, the last column/row left over
    [TestCase(2, 2, 3, 6, 7, 2, 3, 1, 2, 1, 0)]      // non-square kernel, unequal strides and paddings
    [TestCase(1, 2, 3, 5, 5, 1, 5, 1, 1, 0, 2)]      // 1×5 (horizontal stack shape)
    [TestCase(1, 1, 1, 2, 2, 3, 3, 1, 1, 1, 1)]      // kernel larger than the image
    [TestCase(2, 6, 3, 7, 5, 3, 3, 1, 1, 1, 1)]      // Cout < Cin, stride 1: without a tape the cpu device runs the adjoint's convT
    [TestCase(1, 5, 2, 6, 8, 3, 2, 1, 1, 2, 0)]      // the same, non-square kernel, padding up to the kernel's edge
    [TestCase(2, 4, 1, 4, 6, 2, 2, 1, 1, 0, 1)]      // the same, even kernel, output larger than the input in width
    public void Conv2d_forward_equals_the_direct_loop(int n, int cin, int cout, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw)
    {
        var c = new Case(n, cin, cout, h, w, kh, kw, sh, sw, ph, pw);
        using var device = Open();
        using var arena = new Arena(device, SmallArena);
        var ctx = new OpContext(arena);
        float[] x = TestData.Floats((int)c.X.Count), wt = TestData.Floats((int)c.ConvWeight.Count), b = TestData.Floats(cout);
        var y = Convolution.Conv2d(ctx, Upload(ctx, x, c.X), Upload(ctx, wt, c.ConvWeight), Upload(ctx, b, c.Bias), sh, sw, ph, pw);
        Assert.That(y.Shape, Is.EqualTo(new Shape(n, cout, c.ConvHo, c.ConvWo)));
        Assert.That(y.ToArray(), Is.EqualTo(ReferenceConv2d(c, x, wt, b)).Within(1e-4f));
        if (sh == sw && ph == pw)
        {
            var noBias = Convolution.Conv2d(ctx, Upload(ctx, x, c.X), Upload(ctx, wt, c.ConvWeight), null, sh, ph);
            Assert.That(noBias.ToArray(), Is.EqualTo(ReferenceConv2d(c, x, wt, null)).Within(1e-4f), "without bias, square stride/padding overload");
        }
    }

    [Test]
    public void Conv2d_forward_equals_the_direct_loop_on_random_shapes()
    {
        var r = TestData.Random;
        using var device = Open();
        for (int trial = 0; trial < 6; trial++)
        {
            int k = new[] { 1, 3, 4 }[r.Next(3)], s = r.Next(1, 3), p = r.Next(0, 2);
            var c = new Case(r.Next(1, 4), r.Next(1, 5), r.Next(1, 6), r.Next(Math.Max(1, k - 2 * p), 12), r.Next(Math.Max(1, k - 2 * p), 12), k, k, s, s, p, p);
            using var arena = new Arena(device, SmallArena);
            var ctx = new OpContext(arena);
            float[] x = TestData.Floats((int)c.X.Count), wt = TestData.Floats((int)c.ConvWeight.Count), b = TestData.Floats(c.Cout);
            var y = Convolution.Conv2d(ctx, Upload(ctx, x, c.X), Upload(ctx, wt, c.ConvWeight), Upload(ctx, b, c.Bias), s, p);
            Assert.That(y.ToArray(), Is.EqualTo(ReferenceConv2d(c, x, wt, b)).Within(1e-4f), c.ToString());
        }
    }

    //        N  Cin Cout H  W  kh kw sh sw ph pw
    [TestCase(2, 3, 4, 4, 5, 4, 4, 2, 2, 1, 1)]      // the VQ-VAE's upsampling: 4×5 → 8×10
    [TestCase(2, 3, 2, 5, 5, 3, 3, 1, 1, 1, 1)]
    [TestCase(1, 4, 3, 3, 4, 1, 1, 1, 1, 0, 0)]
    [TestCase(2, 2, 3, 3, 3, 3, 3, 2, 2, 0, 0)]      // 3×3 → 7×7
    [TestCase(2, 2, 3, 4, 3, 2, 3, 2, 1, 0, 1)]      // non-square kernel, unequal strides and paddings
    [TestCase(1, 2, 2, 3, 3, 3, 3, 1, 1, 2, 2)]      // padding beyond the kernel's half: 1×1 output
    public void ConvTranspose2d_forward_equals_the_direct_loop(int n, int cin, int cout, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw)
    {
        var c = new Case(n, cin, cout, h, w, kh, kw, sh, sw, ph, pw);
        using var device = Open();
        using var arena = new Arena(device, SmallArena);
        var ctx = new OpContext(arena);
        float[] x = TestData.Floats((int)c.X.Count), wt = TestData.Floats((int)c.TransposedWeight.Count), b = TestData.Floats(cout);
        var y = Convolution.ConvTranspose2d(ctx, Upload(ctx, x, c.X), Upload(ctx, wt, c.TransposedWeight), Upload(ctx, b, c.Bias), sh, sw, ph, pw);
        Assert.That(y.Shape, Is.EqualTo(new Shape(n, cout, c.TransposedHo, c.TransposedWo)));
        Assert.That(y.ToArray(), Is.EqualTo(ReferenceConvTranspose2d(c, x, wt, b)).Within(1e-4f));
        if (sh == sw && ph == pw)
        {
            var noBias = Convolution.ConvTranspose2d(ctx, Upload(ctx, x, c.X), Upload(ctx, wt, c.TransposedWeight), null, sh, ph);
            Assert.That(noBias.ToArray(), Is.EqualTo(ReferenceConvTranspose2d(c, x, wt, null)).Within(1e-4f), "without bias");
        }
    }

    [TestCase(2, 3, 4, 8, 8, 4, 4, 2, 1)]
    [TestCase(2, 2, 3, 7, 9, 3, 3, 2, 1)]
    [TestCase(1, 3, 2, 5, 6, 3, 3, 1, 0)]
    public void ConvTranspose2d_is_the_adjoint_of_Conv2d_with_the_same_weight(int n, int cin, int cout, int h, int w, int kh, int kw, int s, int p)
    {
        // ⟨conv(x), y⟩ = ⟨x, convT(y)⟩: conv's weight [Cout,Cin,kh,kw] is convT's [Cin',Cout',kh,kw] mapping Cout → Cin.
        var c = new Case(n, cin, cout, h, w, kh, kw, s, s, p, p);
        Assume.That((h + 2 * p - kh) % s + (w + 2 * p - kw) % s, Is.Zero, "the transposed convolution returns to H×W only when the stride divides evenly");
        using var device = Open();
        using var arena = new Arena(device, SmallArena);
        var ctx = new OpContext(arena);
        float[] x = TestData.Floats((int)c.X.Count), wt = TestData.Floats((int)c.ConvWeight.Count);
        var yShape = new Shape(n, cout, c.ConvHo, c.ConvWo);
        var y = TestData.Floats((int)yShape.Count);
        var weight = Upload(ctx, wt, c.ConvWeight);
        var convX = Convolution.Conv2d(ctx, Upload(ctx, x, c.X), weight, null, s, p).ToArray();
        var convTy = Convolution.ConvTranspose2d(ctx, Upload(ctx, y, yShape), weight, null, s, p);
        Assert.That(convTy.Shape, Is.EqualTo(c.X));
        double left = convX.Zip(y, (a, b) => (double)a * b).Sum(), right = convTy.ToArray().Zip(x, (a, b) => (double)a * b).Sum();
        Assert.That(left, Is.EqualTo(right).Within(1e-4 * (1 + Math.Abs(left))));
    }

    //        N  Cin Cout H  W  kh kw sh sw ph pw
    [TestCase(2, 6, 3, 7, 5, 3, 3, 1, 1, 1, 1)]      // Cout < Cin, stride 1: the transposed convolution without a tape (cpu device)
    [TestCase(1, 5, 2, 6, 8, 3, 2, 1, 1, 2, 0)]
    [TestCase(2, 3, 5, 6, 6, 3, 3, 1, 1, 1, 1)]      // Cout > Cin: im2col either way
    [TestCase(2, 5, 3, 9, 9, 3, 3, 2, 2, 1, 1)]      // stride 2: im2col either way
    [TestCase(1, 4, 3, 5, 5, 1, 1, 1, 1, 0, 0)]      // 1×1: im2col either way
    public void Conv2d_without_a_tape_gives_the_recorded_output_and_keeps_only_its_output(int n, int cin, int cout, int h, int w, int kh, int kw,
                                                                                          int sh, int sw, int ph, int pw)
    {
        var c = new Case(n, cin, cout, h, w, kh, kw, sh, sw, ph, pw);
        float[] x = TestData.Floats((int)c.X.Count), wt = TestData.Floats((int)c.ConvWeight.Count), b = TestData.Floats(cout);
        using var device = Open();
        var recorded = ForwardBackward(device, [(x, c.X), (wt, c.ConvWeight), (b, c.Bias)], (ctx, t) => Convolution.Conv2d(ctx, t[0], t[1], t[2], sh, sw, ph, pw))[0];

        using var arena = new Arena(device, SmallArena);
        var plain = new OpContext(arena);
        var inputs = new[] { Upload(plain, x, c.X), Upload(plain, wt, c.ConvWeight), Upload(plain, b, c.Bias) };
        var before = arena.Mark();
        var y = Convolution.Conv2d(plain, inputs[0], inputs[1], inputs[2], sh, sw, ph, pw);
        // The columns, the flipped weight and the layout copies are freed once y is written: only y stays.
        Assert.That(arena.Used - before.Offset, Is.LessThanOrEqualTo(y.Bytes + Arena.Alignment), "arena bytes kept by an unrecorded forward");
        Assert.That(arena.HighWater, Is.GreaterThan(arena.Used), "the forward had temporaries");
        // The two paths sum in different orders (GEMM then col2im against im2col then GEMM): equal to float rounding.
        double scale = recorded.Max(v => Math.Abs(v));
        var actual = y.ToArray();
        for (int i = 0; i < actual.Length; i++)
            Assert.That(actual[i], Is.EqualTo(recorded[i]).Within(1e-5 * scale), $"y[{i}]");
    }

    //        N  Cin Cout H  W  kh kw sh sw ph pw
    [TestCase(2, 6, 3, 7, 5, 3, 3, 1, 1, 1, 1)]      // Cout < Cin, stride 1: dx by a convolution of dy on the cpu device
    [TestCase(1, 5, 2, 6, 8, 3, 2, 1, 1, 1, 0)]
    [TestCase(2, 4, 3, 5, 5, 1, 1, 1, 1, 0, 0)]
    [TestCase(2, 3, 1, 4, 6, 2, 2, 1, 1, 1, 1)]      // output larger than the input
    [TestCase(2, 3, 5, 6, 6, 3, 3, 1, 1, 1, 1)]      // Cout > Cin: dcol and col2im on every device
    [TestCase(2, 5, 3, 9, 9, 3, 3, 2, 2, 1, 1)]      // stride 2: dcol and col2im on every device
    public void Conv2d_input_gradient_is_the_transposed_convolution_of_the_output_gradient(int n, int cin, int cout, int h, int w, int kh, int kw,
                                                                                            int sh, int sw, int ph, int pw)
    {
        // dx = convT(dy, W) exactly (the adjoint), whichever way the op computes it; convT's forward is GEMM then col2im.
        var c = new Case(n, cin, cout, h, w, kh, kw, sh, sw, ph, pw);
        Assume.That(((h + 2 * ph - kh) % sh, (w + 2 * pw - kw) % sw), Is.EqualTo((0, 0)), "convT returns to H×W only when the stride divides evenly");
        using var device = Open();
        using var arena = new Arena(device, SmallArena);
        var tape = new Tape(arena);
        var ctx = new OpContext(arena, tape);
        var x = Upload(ctx, TestData.Floats((int)c.X.Count), c.X);
        x.RequiresGrad = true;
        var weight = Upload(ctx, TestData.Floats((int)c.ConvWeight.Count), c.ConvWeight);
        var y = Convolution.Conv2d(ctx, x, weight, null, sh, sw, ph, pw);
        var dyValues = TestData.Floats((int)y.Count);
        tape.Backward(y, Upload(ctx, dyValues, y.Shape));
        var expected = Convolution.ConvTranspose2d(new OpContext(arena), Upload(ctx, dyValues, y.Shape), weight, null, sh, sw, ph, pw).ToArray();
        var dx = tape.GradOf(x).ToArray();
        double scale = expected.Max(v => Math.Abs(v));
        Assert.That(scale, Is.GreaterThan(0.1), "a gradient worth comparing");
        for (int i = 0; i < dx.Length; i++)
            Assert.That(dx[i], Is.EqualTo(expected[i]).Within(1e-5 * scale), $"dx[{i}]");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void MaskedConv2d_forward_equals_the_direct_loop_with_the_weight_masked(bool fullMask)
    {
        var c = new Case(2, 3, 4, 6, 7, 3, 3, 1, 1, 1, 1);
        using var device = Open();
        using var arena = new Arena(device, SmallArena);
        var ctx = new OpContext(arena);
        float[] x = TestData.Floats((int)c.X.Count), wt = TestData.Floats((int)c.ConvWeight.Count), b = TestData.Floats(c.Cout);
        var mask = ZeroOne(fullMask ? wt.Length : c.Kh * c.Kw);
        var maskShape = fullMask ? c.ConvWeight : new Shape(c.Kh, c.Kw);
        var y = Convolution.MaskedConv2d(ctx, Upload(ctx, x, c.X), Upload(ctx, wt, c.ConvWeight), Upload(ctx, b, c.Bias), Upload(ctx, mask, maskShape), 1);
        Assert.That(y.ToArray(), Is.EqualTo(ReferenceConv2d(c, x, wt, b, mask)).Within(1e-4f));
    }

    [TestCase(2, 5, 4, 3)]
    [TestCase(3, 7, 1, 1)]
    [TestCase(4, 3, 0, 0)]
    public void ChannelBias_forward_adds_one_value_per_channel(int n, int c, int h, int w)
    {
        // h = w = 0 means a rank-2 [N,C] input (a linear layer's output).
        var shape = h == 0 ? new Shape(n, c) : new Shape(n, c, h, w);
        int p = h == 0 ? 1 : h * w;
        using var device = Open();
        using var arena = new Arena(device, 1 << 20);
        var ctx = new OpContext(arena);
        float[] x = TestData.Floats((int)shape.Count), b = TestData.Floats(c);
        var y = Convolution.ChannelBias(ctx, Upload(ctx, x, shape), Upload(ctx, b, new Shape(c)));
        Assert.That(y.ToArray(), Is.EqualTo(x.Select((v, i) => v + b[i / p % c]).ToArray()));
    }

    // ---- backward against finite differences ------------------------------------------------

    //        N  Cin Cout H  W  kh kw sh sw ph pw
    [TestCase(2, 3, 4, 6, 7, 3, 3, 1, 1, 1, 1)]
    [TestCase(2, 2, 3, 7, 8, 4, 4, 2, 2, 1, 1)]
    [TestCase(1, 3, 2, 5, 6, 1, 1, 1, 1, 0, 0)]
    [TestCase(2, 2, 3, 6, 7, 2, 3, 2, 1, 0, 1)]
    [TestCase(2, 5, 2, 6, 5, 3, 3, 1, 1, 1, 1)]      // Cout < Cin, stride 1: the cpu device's input gradient by convolution
    [TestCase(1, 4, 3, 5, 7, 3, 2, 1, 1, 2, 0)]      // the same with a non-square kernel and padding up to the kernel's edge
    public void Conv2d_gradients_match_finite_differences(int n, int cin, int cout, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw)
    {
        var c = new Case(n, cin, cout, h, w, kh, kw, sh, sw, ph, pw);
        using var device = Open();
        GradientCheck.Check(device,
            [new(TestData.Floats((int)c.X.Count), c.X, "x"), new(TestData.Floats((int)c.ConvWeight.Count), c.ConvWeight, "weight"),
             new(TestData.Floats(cout), c.Bias, "bias")],
            (ctx, t) => Convolution.Conv2d(ctx, t[0], t[1], t[2], sh, sw, ph, pw), samplesPerInput: 8, arenaBytes: SmallArena);
    }

    //        N  Cin Cout H  W  kh kw sh sw ph pw
    [TestCase(2, 3, 2, 3, 4, 4, 4, 2, 2, 1, 1)]
    [TestCase(2, 2, 3, 4, 4, 3, 3, 1, 1, 1, 1)]
    [TestCase(1, 3, 2, 3, 3, 1, 1, 1, 1, 0, 0)]
    [TestCase(2, 2, 3, 3, 4, 2, 3, 2, 1, 0, 1)]
    public void ConvTranspose2d_gradients_match_finite_differences(int n, int cin, int cout, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw)
    {
        var c = new Case(n, cin, cout, h, w, kh, kw, sh, sw, ph, pw);
        using var device = Open();
        GradientCheck.Check(device,
            [new(TestData.Floats((int)c.X.Count), c.X, "x"), new(TestData.Floats((int)c.TransposedWeight.Count), c.TransposedWeight, "weight"),
             new(TestData.Floats(cout), c.Bias, "bias")],
            (ctx, t) => Convolution.ConvTranspose2d(ctx, t[0], t[1], t[2], sh, sw, ph, pw), samplesPerInput: 8, arenaBytes: SmallArena);
    }

    // ---- both products of each convolution ---------------------------------------------------
    // The cpu device writes some convolutions as other products than a GPU does (through the adjoint, the transposed
    // convolution over N·P columns). With Convolution.PathFormOverride each device takes each path in turn, its kernels in
    // their own forms, against the same direct loops and finite differences: the GPU's products are checked here too.

    //        N  Cin Cout H  W  kh kw sh sw ph pw
    [TestCase(2, 3, 4, 4, 5, 4, 4, 2, 2, 1, 1)]      // the decoder's upsampling
    [TestCase(2, 2, 3, 4, 3, 2, 3, 2, 1, 0, 1)]      // non-square kernel, unequal strides and paddings
    [TestCase(2, 6, 3, 7, 5, 3, 3, 1, 1, 1, 1)]      // Cout < Cin, stride 1: the convolution through its adjoint on the cpu device
    public void Both_products_of_each_convolution_equal_the_direct_loop_and_finite_differences(int n, int cin, int cout, int h, int w, int kh, int kw,
                                                                                              int sh, int sw, int ph, int pw)
    {
        var c = new Case(n, cin, cout, h, w, kh, kw, sh, sw, ph, pw);
        float[] x = TestData.Floats((int)c.X.Count), b = TestData.Floats(cout);
        float[] convWeight = TestData.Floats((int)c.ConvWeight.Count), transposedWeight = TestData.Floats((int)c.TransposedWeight.Count);
        using var device = Open();
        OnEachPath(form =>
        {
            using (var arena = new Arena(device, SmallArena))
            {
                var ctx = new OpContext(arena);
                var y = Convolution.Conv2d(ctx, Upload(ctx, x, c.X), Upload(ctx, convWeight, c.ConvWeight), Upload(ctx, b, c.Bias), sh, sw, ph, pw);
                Assert.That(y.ToArray(), Is.EqualTo(ReferenceConv2d(c, x, convWeight, b)).Within(1e-4f), $"conv2d, {form} products");
                var yT = Convolution.ConvTranspose2d(ctx, Upload(ctx, x, c.X), Upload(ctx, transposedWeight, c.TransposedWeight), Upload(ctx, b, c.Bias),
                                                     sh, sw, ph, pw);
                Assert.That(yT.ToArray(), Is.EqualTo(ReferenceConvTranspose2d(c, x, transposedWeight, b)).Within(1e-4f), $"conv_transpose2d, {form} products");
            }
            GradientCheck.Check(device,
                [new(x, c.X, "x"), new(convWeight, c.ConvWeight, "weight"), new(b, c.Bias, "bias")],
                (ctx, t) => Convolution.Conv2d(ctx, t[0], t[1], t[2], sh, sw, ph, pw), samplesPerInput: 6, arenaBytes: SmallArena);
            GradientCheck.Check(device,
                [new(x, c.X, "x"), new(transposedWeight, c.TransposedWeight, "weight"), new(b, c.Bias, "bias")],
                (ctx, t) => Convolution.ConvTranspose2d(ctx, t[0], t[1], t[2], sh, sw, ph, pw), samplesPerInput: 6, arenaBytes: SmallArena);
        });
    }

    // Runs body once with each path forced (Convolution.PathFormOverride), and leaves the device to choose again after.
    private static void OnEachPath(Action<KernelLaunch.KernelForm> body)
    {
        try
        {
            foreach (var form in KernelForms.Both)
            {
                Convolution.PathFormOverride = form;
                body(form);
            }
        }
        finally
        {
            Convolution.PathFormOverride = null;
        }
    }

    // ---- the ReLU fused into a convolution ------------------------------------------------------
    // Conv2dRelu and ConvTranspose2dRelu must be Relu(Conv2d) and Relu(ConvTranspose2d) exactly: the same bits forward, the
    // same gradients (the ReLU's backward moved into the transpose of dy, or into a masking pass), on each path's products.

    //        N  Cin Cout H  W  k  s  p
    [TestCase(2, 3, 4, 8, 8, 4, 2, 1)]      // the encoder's strided layers: im2col (through phase planes on the cpu device)
    [TestCase(2, 6, 3, 7, 5, 3, 1, 1)]      // Cout < Cin, 3×3: the cpu device's adjoint path (col2im writes y)
    [TestCase(2, 6, 3, 5, 4, 1, 1, 0)]      // Cout < Cin, 1×1: the input gradient by convolution reads dy as NCHW
    [TestCase(2, 3, 5, 6, 7, 3, 1, 1)]      // Cout > Cin, 3×3: the plain im2col path, the mask in dy's transpose
    public void Conv2dRelu_is_Relu_of_Conv2d_bit_for_bit_forward_and_backward(int n, int cin, int cout, int h, int w, int k, int s, int p)
    {
        var c = new Case(n, cin, cout, h, w, k, k, s, s, p, p);
        (float[], Shape)[] inputs = [(TestData.Floats((int)c.X.Count), c.X), (TestData.Floats((int)c.ConvWeight.Count), c.ConvWeight), (TestData.Floats(cout), c.Bias)];
        using var device = Open();
        OnEachPath(form =>
        {
            var unfused = ForwardBackward(device, inputs, (ctx, t) => Activations.Relu(ctx, Convolution.Conv2d(ctx, t[0], t[1], t[2], s, p)));
            var fused = ForwardBackward(device, inputs, (ctx, t) => Convolution.Conv2dRelu(ctx, t[0], t[1], t[2], s, p));
            AssertFusedEqualsUnfused(fused, unfused, $"conv2d, {form} products");
        });
    }

    //        N  Cin Cout H  W  k  s  p
    [TestCase(2, 3, 4, 4, 5, 4, 2, 1)]      // the decoder's upsampling (phase planes on the cpu device)
    [TestCase(2, 4, 3, 5, 5, 3, 1, 1)]      // stride 1
    public void ConvTranspose2dRelu_is_Relu_of_ConvTranspose2d_bit_for_bit_forward_and_backward(int n, int cin, int cout, int h, int w, int k,
                                                                                                 int s, int p)
    {
        var c = new Case(n, cin, cout, h, w, k, k, s, s, p, p);
        (float[], Shape)[] inputs =
            [(TestData.Floats((int)c.X.Count), c.X), (TestData.Floats((int)c.TransposedWeight.Count), c.TransposedWeight), (TestData.Floats(cout), c.Bias)];
        using var device = Open();
        OnEachPath(form =>
        {
            var unfused = ForwardBackward(device, inputs, (ctx, t) => Activations.Relu(ctx, Convolution.ConvTranspose2d(ctx, t[0], t[1], t[2], s, p)));
            var fused = ForwardBackward(device, inputs, (ctx, t) => Convolution.ConvTranspose2dRelu(ctx, t[0], t[1], t[2], s, p));
            AssertFusedEqualsUnfused(fused, unfused, $"conv_transpose2d, {form} products");
        });
    }

    private static void AssertFusedEqualsUnfused(float[][] fused, float[][] unfused, string what)
    {
        // Not vacuous: the ReLU zeroes some outputs and keeps others, so the mask decides some of each gradient.
        Assert.That(fused[0].Count(v => v > 0), Is.GreaterThan(0), $"{what}: some outputs positive");
        Assert.That(fused[0].Count(v => v == 0), Is.GreaterThan(0), $"{what}: some outputs zeroed");
        Assert.That(fused[0], Is.EqualTo(unfused[0]), $"{what}: output");
        for (int i = 1; i < fused.Length; i++)
            Assert.That(fused[i], Is.EqualTo(unfused[i]), $"{what}: gradient of input {i - 1}");
    }

    [Test]
    public void A_fused_ReLU_costs_no_launch_in_the_forward_and_saves_one_in_the_backward()
    {
        // Relu(Conv2d) launches the ReLU's forward and backward kernels; Conv2dRelu neither (on the im2col path, where the
        // mask rides on the transpose of dy), on each path's products.
        var c = new Case(2, 3, 5, 6, 7, 3, 3, 1, 1, 1, 1);
        using var device = Open();
        (long Forward, long Total) Launches(Func<OpContext, Tensor, Tensor, Tensor, Tensor> layer)
        {
            using var arena = new Arena(device, SmallArena);
            var tape = new Tape(arena);
            var ctx = new OpContext(arena, tape);
            var x = Upload(ctx, TestData.Floats((int)c.X.Count), c.X);
            var weight = Upload(ctx, TestData.Floats((int)c.ConvWeight.Count), c.ConvWeight);
            var bias = Upload(ctx, TestData.Floats(c.Cout), c.Bias);
            x.RequiresGrad = weight.RequiresGrad = bias.RequiresGrad = true;
            long before = device.KernelLaunches;
            var y = layer(ctx, x, weight, bias);
            long forward = device.KernelLaunches - before;
            tape.Backward(y, Upload(ctx, TestData.Floats((int)y.Count), y.Shape));
            return (forward, device.KernelLaunches - before);
        }
        OnEachPath(form =>
        {
            var unfused = Launches((ctx, x, w, b) => Activations.Relu(ctx, Convolution.Conv2d(ctx, x, w, b, 1, 1)));
            var conv = Launches((ctx, x, w, b) => Convolution.Conv2d(ctx, x, w, b, 1, 1));
            var fused = Launches((ctx, x, w, b) => Convolution.Conv2dRelu(ctx, x, w, b, 1, 1));
            Assert.That(fused.Forward, Is.EqualTo(conv.Forward), $"{form}: the forward launches what the convolution alone does");
            Assert.That(fused.Total, Is.EqualTo(unfused.Total - 2), $"{form}: the ReLU's two launches are gone");
        });
    }

    [Test]
    public void The_path_override_changes_the_products_a_transposed_convolution_runs()
    {
        // A guard for the test above: if the override did nothing, both of its passes would check one path. The cpu
        // device's transposed convolution transposes x first (one kernel more than the GPU's, which GEMMs x as stored).
        var c = new Case(2, 3, 4, 4, 5, 4, 4, 2, 2, 1, 1);
        using var device = Open();
        var launches = new Dictionary<KernelLaunch.KernelForm, long>();
        OnEachPath(form =>
        {
            using var arena = new Arena(device, SmallArena);
            var ctx = new OpContext(arena);
            var x = Upload(ctx, TestData.Floats((int)c.X.Count), c.X);
            var weight = Upload(ctx, TestData.Floats((int)c.TransposedWeight.Count), c.TransposedWeight);
            long before = device.KernelLaunches;
            Convolution.ConvTranspose2d(ctx, x, weight, null, 2, 1);
            launches[form] = device.KernelLaunches - before;
        });
        Assert.That(launches[KernelLaunch.KernelForm.Cpu], Is.EqualTo(launches[KernelLaunch.KernelForm.Gpu] + 1));
    }

    [Test]
    public void MaskedConv2d_gradients_match_finite_differences()
    {
        var c = new Case(2, 3, 4, 5, 6, 3, 3, 1, 1, 1, 1);
        var mask = ConvMasks.PixelCnn(3, MaskType.B).ToArray();
        using var device = Open();
        GradientCheck.Check(device,
            [new(TestData.Floats((int)c.X.Count), c.X, "x"), new(TestData.Floats((int)c.ConvWeight.Count), c.ConvWeight, "weight"),
             new(TestData.Floats(c.Cout), c.Bias, "bias")],
            (ctx, t) => Convolution.MaskedConv2d(ctx, t[0], t[1], t[2], Upload(ctx, mask, new Shape(3, 3)), 1), samplesPerInput: 8, arenaBytes: SmallArena);
    }

    [Test]
    public void ChannelBias_gradients_match_finite_differences()
    {
        var shape = new Shape(3, 4, 5, 6);
        using var device = Open();
        GradientCheck.Check(device, [new(TestData.Floats((int)shape.Count), shape, "x"), new(TestData.Floats(4), new Shape(4), "bias")],
                            (ctx, t) => Convolution.ChannelBias(ctx, t[0], t[1]), arenaBytes: SmallArena);
    }

    [Test]
    public void Gradients_accumulate_when_input_weight_and_bias_are_used_twice()
    {
        // y = f(f(x)) + x with one weight and bias: every backward must add (+=), never overwrite.
        var shape = new Shape(2, 3, 5, 6);
        using var device = Open();
        GradientCheck.Check(device,
            [new(TestData.Floats((int)shape.Count), shape, "x"), new(TestData.Floats(3 * 3 * 9), new Shape(3, 3, 3, 3), "weight"),
             new(TestData.Floats(3), new Shape(3), "bias")],
            (ctx, t) =>
            {
                var once = Convolution.Conv2d(ctx, t[0], t[1], t[2], 1, 1);
                var twice = Convolution.ConvTranspose2d(ctx, Convolution.MaskedConv2d(ctx, once, t[1], t[2], Upload(ctx, ZeroOne(9, 1.0), new Shape(3, 3)), 1),
                                                        t[1], t[2], 1, 1);
                return Elementwise.Add(ctx, Convolution.ChannelBias(ctx, twice, t[2]), t[0]);
            }, samplesPerInput: 8, arenaBytes: SmallArena);
    }

    //        N  Cin Cout H  W  kh kw ph pw
    [TestCase(2, 6, 3, 7, 5, 3, 3, 1, 1)]      // Cout < Cin, stride 1: through the adjoint on the cpu device
    [TestCase(2, 3, 4, 5, 6, 3, 3, 1, 1)]      // im2col
    public void A_convolution_used_twice_gets_twice_its_gradients(int n, int cin, int cout, int h, int w, int kh, int kw, int ph, int pw)
    {
        // Every gradient must be added (+=) into what is there: y = conv(x, W, b) + conv(x, W, b) doubles each one.
        var c = new Case(n, cin, cout, h, w, kh, kw, 1, 1, ph, pw);
        (float[], Shape)[] inputs = [(TestData.Floats((int)c.X.Count), c.X), (TestData.Floats((int)c.ConvWeight.Count), c.ConvWeight), (TestData.Floats(cout), c.Bias)];
        using var device = Open();
        var once = ForwardBackward(device, inputs, (ctx, t) => Convolution.Conv2d(ctx, t[0], t[1], t[2], 1, 1, ph, pw));
        var twice = ForwardBackward(device, inputs, (ctx, t) =>
            Elementwise.Add(ctx, Convolution.Conv2d(ctx, t[0], t[1], t[2], 1, 1, ph, pw), Convolution.Conv2d(ctx, t[0], t[1], t[2], 1, 1, ph, pw)));
        for (int k = 1; k < once.Length; k++)
        {
            Assert.That(once[k].Max(v => Math.Abs(v)), Is.GreaterThan(0.1f), $"a gradient worth comparing for input {k - 1}");
            Assert.That(twice[k], Is.EqualTo(once[k].Select(v => 2 * v).ToArray()).Within(1e-5f), $"gradient of input {k - 1}");
        }
    }

    [Test]
    public void An_input_that_needs_no_gradient_gets_none_and_the_weight_gradient_is_unchanged()
    {
        // The first layer of the encoder: the images need no gradient, so no column gradient or col2im runs.
        var c = new Case(2, 3, 4, 6, 6, 3, 3, 1, 1, 1, 1);
        float[] x = TestData.Floats((int)c.X.Count), wt = TestData.Floats((int)c.ConvWeight.Count);
        using var device = Open();
        var both = ForwardBackward(device, [(x, c.X), (wt, c.ConvWeight)], (ctx, t) => Convolution.Conv2d(ctx, t[0], t[1], null, 1, 1));
        using var arena = new Arena(device, SmallArena);
        var tape = new Tape(arena);
        var ctx = new OpContext(arena, tape);
        var xt = Upload(ctx, x, c.X);
        var weight = Upload(ctx, wt, c.ConvWeight);
        weight.RequiresGrad = true;
        var y = Convolution.Conv2d(ctx, xt, weight, null, 1, 1);
        var r = new Random(17);
        tape.Backward(y, Upload(ctx, Enumerable.Range(0, (int)y.Count).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray(), y.Shape));
        Assert.That(tape.TryGradOf(xt), Is.Null);
        Assert.That(tape.GradOf(weight).ToArray(), Is.EqualTo(both[2]));
    }

    // ---- masks ------------------------------------------------------------------------------

    [TestCase(false)]
    [TestCase(true)]
    public void Masked_taps_do_not_affect_the_output(bool fullMask)
    {
        var c = new Case(2, 3, 4, 6, 7, 3, 3, 1, 1, 1, 1);
        float[] x = TestData.Floats((int)c.X.Count), wt = TestData.Floats((int)c.ConvWeight.Count);
        var mask = ZeroOne(fullMask ? wt.Length : 9);
        mask[0] = 0f;  // at least one masked tap: 9 random taps all kept (0.6^9, 1% of runs) would test nothing
        var maskShape = fullMask ? c.ConvWeight : new Shape(3, 3);
        // Change every masked tap of the weight to something else: the output must not move a bit.
        var other = TestData.Floats(wt.Length, 5f, 9f);
        var changed = wt.Select((v, i) => mask[i % mask.Length] == 0 ? other[i] : v).ToArray();
        Assume.That(changed, Is.Not.EqualTo(wt));
        using var device = Open();
        using var arena = new Arena(device, SmallArena);
        var ctx = new OpContext(arena);
        var m = Upload(ctx, mask, maskShape);
        var y1 = Convolution.MaskedConv2d(ctx, Upload(ctx, x, c.X), Upload(ctx, wt, c.ConvWeight), null, m, 1).ToArray();
        var y2 = Convolution.MaskedConv2d(ctx, Upload(ctx, x, c.X), Upload(ctx, changed, c.ConvWeight), null, m, 1).ToArray();
        Assert.That(y2, Is.EqualTo(y1));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void Masked_taps_get_exactly_zero_weight_gradient(bool fullMask)
    {
        var c = new Case(2, 3, 4, 6, 7, 3, 3, 1, 1, 1, 1);
        float[] x = TestData.Floats((int)c.X.Count), wt = TestData.Floats((int)c.ConvWeight.Count), b = TestData.Floats(c.Cout);
        var mask = ZeroOne(fullMask ? wt.Length : 9);
        var maskShape = fullMask ? c.ConvWeight : new Shape(3, 3);
        using var device = Open();
        var masked = ForwardBackward(device, [(x, c.X), (wt, c.ConvWeight), (b, c.Bias)],
                                     (ctx, t) => Convolution.MaskedConv2d(ctx, t[0], t[1], t[2], Upload(ctx, mask, maskShape), 1));
        var plain = ForwardBackward(device, [(x, c.X), (wt, c.ConvWeight), (b, c.Bias)],
                                    (ctx, t) => Convolution.Conv2d(ctx, t[0], t[1], t[2], 1, 1));
        // A convolution's weight gradient does not depend on the weight: the masked one is the plain one times the mask.
        var dw = masked[2];
        for (int i = 0; i < dw.Length; i++)
        {
            if (mask[i % mask.Length] == 0) Assert.That(dw[i], Is.Zero, $"masked tap {i}");
            else Assert.That(dw[i], Is.EqualTo(plain[2][i]), $"kept tap {i}");
        }
        Assert.That(masked[3], Is.EqualTo(plain[3]), "bias gradient");
    }

    // ---- causality --------------------------------------------------------------------------

    private const int CausalH = 5, CausalW = 6, CausalC = 2;

    /// <summary>
    /// For every position p of a [1,C,5,6] input: replaces the inputs at raster positions ≥ p
    /// (<paramref name="includingP"/>) or &gt; p with other values and asserts that every channel of the
    /// output at p is bit-identical. Also asserts that the output at p does depend on the input at the
    /// position <paramref name="dependsOn"/>(p) when that exists — so the check cannot pass vacuously.
    /// </summary>
    private void AssertCausal(Func<OpContext, Tensor, Tensor> network, bool includingP, Func<int, int, (int H, int W)> dependsOn)
    {
        var shape = new Shape(1, CausalC, CausalH, CausalW);
        var x = TestData.Floats((int)shape.Count);
        var noise = TestData.Floats((int)shape.Count, 2f, 3f);
        using var device = Open();
        using var arena = new Arena(device, 4 * SmallArena);
        var ctx = new OpContext(arena);
        var y0 = network(ctx, Upload(ctx, x, shape)).ToArray();
        int outC = y0.Length / (CausalH * CausalW);
        float[] At(float[] y, int h, int w) => Enumerable.Range(0, outC).Select(o => y[(o * CausalH + h) * CausalW + w]).ToArray();
        for (int h = 0; h < CausalH; h++)
            for (int w = 0; w < CausalW; w++)
            {
                int p = h * CausalW + w;
                var future = (float[])x.Clone();
                for (int ch = 0; ch < CausalC; ch++)
                    for (int q = includingP ? p : p + 1; q < CausalH * CausalW; q++)
                        future[ch * CausalH * CausalW + q] = noise[ch * CausalH * CausalW + q];
                var y1 = network(ctx, Upload(ctx, future, shape)).ToArray();
                Assert.That(At(y1, h, w), Is.EqualTo(At(y0, h, w)), $"output at ({h},{w}) saw the future");

                var (dh, dw) = dependsOn(h, w);
                if (dh < 0 || dh >= CausalH || dw < 0 || dw >= CausalW) continue;
                var past = (float[])x.Clone();
                past[dh * CausalW + dw] += 1f;
                var y2 = network(ctx, Upload(ctx, past, shape)).ToArray();
                Assert.That(At(y2, h, w), Is.Not.EqualTo(At(y0, h, w)), $"output at ({h},{w}) ignores the input at ({dh},{dw})");
            }
    }

    private static Tensor Masked(OpContext ctx, Tensor x, ConvMask mask, int cout, int seed)
    {
        var r = new Random(seed);
        var shape = new Shape(cout, x.Shape[1], mask.Height, mask.Width);
        var weight = Upload(ctx, Enumerable.Range(0, (int)shape.Count).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray(), shape);
        return Convolution.MaskedConv2d(ctx, x, weight, null, Upload(ctx, mask.ToArray(), mask.Shape), mask.Height / 2, mask.Width / 2);
    }

    [Test]
    public void PixelCnn_mask_A_output_does_not_see_its_own_position_or_later_ones()
    {
        // Mask A: output p depends on the input just before p, not on p itself or anything after.
        AssertCausal((ctx, x) => Masked(ctx, x, ConvMasks.PixelCnn(3, MaskType.A), 3, 1), includingP: true, (h, w) => (h, w - 1));
    }

    [Test]
    public void PixelCnn_mask_B_output_sees_its_own_position_but_no_later_one()
    {
        AssertCausal((ctx, x) => Masked(ctx, x, ConvMasks.PixelCnn(3, MaskType.B), 3, 2), includingP: false, (h, w) => (h, w));
    }

    [Test]
    public void A_PixelCnn_stack_of_mask_A_then_mask_B_layers_stays_strictly_causal()
    {
        AssertCausal((ctx, x) =>
        {
            var h1 = Masked(ctx, x, ConvMasks.PixelCnn(3, MaskType.A), 3, 3);
            var h2 = Masked(ctx, h1, ConvMasks.PixelCnn(5, MaskType.B), 3, 4);
            return Masked(ctx, h2, ConvMasks.PixelCnn(3, MaskType.B), 2, 5);
        }, includingP: true, (h, w) => (h - 2, w + 1));
    }

    [Test]
    public void Gated_stacks_A_then_B_are_strictly_causal_with_no_blind_spot()
    {
        // Two gated layers without the gates (causality depends only on the masks and the wiring):
        //   v1 = vA(x), h1 = hA(x) + v1;  v2 = vB(v1), h2 = hB(h1) + v2.
        // h2 at (i,j) must not see (i,j) or later, and must see (i−1, j+2): a pixel in PixelCNN's blind
        // spot (stacked 3×3 masks only ever reach (i−1, j+1) in the row above), reached here through v1 at (i, j+1).
        AssertCausal((ctx, x) =>
        {
            var v1 = Masked(ctx, x, ConvMasks.VerticalStack(3, MaskType.A), 3, 6);
            var h1 = Elementwise.Add(ctx, Masked(ctx, x, ConvMasks.HorizontalStack(3, MaskType.A), 3, 7), v1);
            var v2 = Masked(ctx, v1, ConvMasks.VerticalStack(3, MaskType.B), 3, 8);
            return Elementwise.Add(ctx, Masked(ctx, h1, ConvMasks.HorizontalStack(3, MaskType.B), 3, 9), v2);
        }, includingP: true, (h, w) => (h - 1, w + 2));
    }

    [Test]
    public void The_vertical_stack_never_sees_its_own_row()
    {
        // vA then vB: output row i depends on input rows < i only, however many layers follow.
        var shape = new Shape(1, CausalC, CausalH, CausalW);
        var x = TestData.Floats((int)shape.Count);
        using var device = Open();
        using var arena = new Arena(device, SmallArena);
        var ctx = new OpContext(arena);
        Tensor Stack(float[] input) =>
            Masked(ctx, Masked(ctx, Upload(ctx, input, shape), ConvMasks.VerticalStack(3, MaskType.A), 3, 10), ConvMasks.VerticalStack(3, MaskType.B), 2, 11);
        var y0 = Stack(x).ToArray();
        for (int row = 0; row < CausalH; row++)
        {
            var changed = (float[])x.Clone();
            for (int ch = 0; ch < CausalC; ch++)
                for (int w = 0; w < CausalW; w++) changed[(ch * CausalH + row) * CausalW + w] += 1f;
            var y1 = Stack(changed).ToArray();
            for (int o = 0; o < 2; o++)
                for (int r = 0; r <= row; r++)
                    for (int w = 0; w < CausalW; w++)
                        Assert.That(y1[(o * CausalH + r) * CausalW + w], Is.EqualTo(y0[(o * CausalH + r) * CausalW + w]),
                                    $"output ({r},{w}) changed with input row {row}");
        }
    }

    // ---- argument checks ----------------------------------------------------------------------

    private static void AssertRefused(Arena arena, string op, Action call, string fragment)
    {
        long used = arena.Used;
        var error = Assert.Throws<OpArgumentException>(() => call())!;
        Assert.That(error.Message, Does.StartWith(op + ":").And.Contain(fragment));
        Assert.That(arena.Used, Is.EqualTo(used), $"{op} allocated (or launched) before refusing: {error.Message}");
    }

    [Test]
    public void Conv2d_refuses_bad_arguments_before_launching_anything()
    {
        using var device = Open();
        using var other = Open();
        using var arena = new Arena(device, 1 << 20);
        using var otherArena = new Arena(other, 1 << 20);
        var ctx = new OpContext(arena);
        Tensor T(params int[] dims) => arena.Allocate(new Shape(dims));
        Tensor x = T(2, 3, 5, 5), w = T(4, 3, 3, 3), b = T(4);
        Tensor x3 = T(3, 5, 5), w3 = T(4, 3, 3), wCin = T(4, 2, 3, 3), b3 = T(3), w7 = T(4, 3, 7, 7), xInt = arena.Allocate(x.Shape, DType.Int32);
        var wElsewhere = otherArena.Allocate(w.Shape);
        const string op = "conv2d";
        AssertRefused(arena, op, () => Convolution.Conv2d(ctx, x3, w, b, 1, 1), "rank 4");
        AssertRefused(arena, op, () => Convolution.Conv2d(ctx, x, w3, b, 1, 1), "rank 4");
        AssertRefused(arena, op, () => Convolution.Conv2d(ctx, x, wCin, b, 1, 1), "[2,3,5,5]");
        AssertRefused(arena, op, () => Convolution.Conv2d(ctx, x, w, b3, 1, 1), "bias [3]");
        AssertRefused(arena, op, () => Convolution.Conv2d(ctx, x, w7, b, 1, 0), "7x7");
        AssertRefused(arena, op, () => Convolution.Conv2d(ctx, x, w, b, 0, 1), "stride");
        AssertRefused(arena, op, () => Convolution.Conv2d(ctx, x, w, b, 1, -1), "padding");
        AssertRefused(arena, op, () => Convolution.Conv2d(ctx, x, wElsewhere, b, 1, 1), "is on");
        AssertRefused(arena, op, () => Convolution.Conv2d(ctx, xInt, w, b, 1, 1), "float32");
    }

    [Test]
    public void ConvTranspose2d_refuses_bad_arguments_before_launching_anything()
    {
        using var device = Open();
        using var arena = new Arena(device, 1 << 20);
        var ctx = new OpContext(arena);
        Tensor T(params int[] dims) => arena.Allocate(new Shape(dims));
        Tensor x = T(2, 3, 4, 4), w = T(3, 5, 4, 4);  // weight [Cin,Cout,kh,kw]
        Tensor wConvLayout = T(5, 3, 4, 4), b3 = T(3), x1 = T(2, 3, 1, 1), w1 = T(3, 5, 1, 1), x3 = T(2, 3, 4);
        const string op = "conv_transpose2d";
        AssertRefused(arena, op, () => Convolution.ConvTranspose2d(ctx, x, wConvLayout, null, 2, 1), "[Cin,Cout,kh,kw]");
        AssertRefused(arena, op, () => Convolution.ConvTranspose2d(ctx, x, w, b3, 2, 1), "must be [5]");
        AssertRefused(arena, op, () => Convolution.ConvTranspose2d(ctx, x1, w1, null, 1, 1), "at least 1x1");
        AssertRefused(arena, op, () => Convolution.ConvTranspose2d(ctx, x3, w, null, 2, 1), "rank 4");
    }

    [Test]
    public void MaskedConv2d_and_ChannelBias_refuse_bad_arguments_before_launching_anything()
    {
        using var device = Open();
        using var other = Open();
        using var arena = new Arena(device, 1 << 20);
        using var otherArena = new Arena(other, 1 << 20);
        var ctx = new OpContext(arena);
        Tensor T(params int[] dims) => arena.Allocate(new Shape(dims));
        Tensor x = T(2, 3, 5, 5), w = T(4, 3, 3, 3), mask = T(3, 3);
        Tensor mask34 = T(3, 4), mask4331 = T(4, 3, 3, 1), wCin = T(4, 2, 3, 3), x1 = T(6), b6 = T(6), b4 = T(4);
        var maskElsewhere = otherArena.Allocate(new Shape(3, 3));
        AssertRefused(arena, "masked_conv2d", () => Convolution.MaskedConv2d(ctx, x, w, null, mask34, 1), "mask [3,4]");
        AssertRefused(arena, "masked_conv2d", () => Convolution.MaskedConv2d(ctx, x, w, null, mask4331, 1), "mask [4,3,3,1]");
        AssertRefused(arena, "masked_conv2d", () => Convolution.MaskedConv2d(ctx, x, w, null, maskElsewhere, 1), "is on");
        AssertRefused(arena, "masked_conv2d", () => Convolution.MaskedConv2d(ctx, x, wCin, null, mask, 1), "input channels");
        AssertRefused(arena, "channel_bias", () => Convolution.ChannelBias(ctx, x1, b6), "rank 2");
        AssertRefused(arena, "channel_bias", () => Convolution.ChannelBias(ctx, x, b4), "must be [3]");
    }

    /// <summary>The cpu device's thread orders: a GPU has one order, its own.</summary>
    [TestFixture, Category("Cpu")]
    public class ThreadOrders
    {
        [Test]
        public void Conv2d_forward_and_backward_are_bit_identical_in_every_thread_order()
        {
            var c = new Case(3, 3, 5, 9, 10, 3, 3, 1, 1, 1, 1);  // N·P = 270 > one block of the bias reduction
            AssertSameInEveryOrder(
                [(TestData.Floats((int)c.X.Count), c.X), (TestData.Floats((int)c.ConvWeight.Count), c.ConvWeight), (TestData.Floats(c.Cout), c.Bias)],
                (ctx, t) => Convolution.Conv2d(ctx, t[0], t[1], t[2], 1, 1));
        }

        [Test]
        public void Conv2d_with_its_input_gradient_by_convolution_is_bit_identical_in_every_thread_order()
        {
            var c = new Case(3, 6, 2, 9, 10, 3, 3, 1, 1, 1, 1);  // Cout < Cin, stride 1: the weight flip, im2col of dy, transpose, add
            AssertSameInEveryOrder(
                [(TestData.Floats((int)c.X.Count), c.X), (TestData.Floats((int)c.ConvWeight.Count), c.ConvWeight), (TestData.Floats(c.Cout), c.Bias)],
                (ctx, t) => Convolution.Conv2d(ctx, t[0], t[1], t[2], 1, 1));
        }

        [Test]
        public void Conv2d_without_a_tape_is_bit_identical_in_every_thread_order()
        {
            var c = new Case(3, 6, 2, 9, 10, 3, 3, 1, 1, 1, 1);  // Cout < Cin, stride 1: the weight flip, per-image GEMMs, col2im, bias
            float[] x = TestData.Floats((int)c.X.Count), wt = TestData.Floats((int)c.ConvWeight.Count), b = TestData.Floats(c.Cout);
            float[] Forward(ThreadOrder order)
            {
                using var device = TestDevices.Cpu(order);
                using var arena = new Arena(device, SmallArena);
                var ctx = new OpContext(arena);
                return Convolution.Conv2d(ctx, Upload(ctx, x, c.X), Upload(ctx, wt, c.ConvWeight), Upload(ctx, b, c.Bias), 1, 1).ToArray();
            }
            var expected = Forward(ThreadOrder.Ascending);
            foreach (var order in OtherOrders) Assert.That(Forward(order), Is.EqualTo(expected), $"order {order}");
        }

        [Test]
        public void ConvTranspose2d_forward_and_backward_are_bit_identical_in_every_thread_order()
        {
            var c = new Case(3, 3, 4, 5, 6, 4, 4, 2, 2, 1, 1);
            AssertSameInEveryOrder(
                [(TestData.Floats((int)c.X.Count), c.X), (TestData.Floats((int)c.TransposedWeight.Count), c.TransposedWeight), (TestData.Floats(c.Cout), c.Bias)],
                (ctx, t) => Convolution.ConvTranspose2d(ctx, t[0], t[1], t[2], 2, 1));
        }

        [Test]
        public void Fused_ReLU_convolutions_are_bit_identical_in_every_thread_order()
        {
            var c = new Case(3, 6, 2, 9, 10, 3, 3, 1, 1, 1, 1);  // Cout < Cin: the adjoint path's col2im applies the ReLU
            AssertSameInEveryOrder(
                [(TestData.Floats((int)c.X.Count), c.X), (TestData.Floats((int)c.ConvWeight.Count), c.ConvWeight), (TestData.Floats(c.Cout), c.Bias)],
                (ctx, t) => Convolution.Conv2dRelu(ctx, t[0], t[1], t[2], 1, 1));
            var t2 = new Case(3, 3, 4, 5, 6, 4, 4, 2, 2, 1, 1);  // the phase planes' depth to space applies it
            AssertSameInEveryOrder(
                [(TestData.Floats((int)t2.X.Count), t2.X), (TestData.Floats((int)t2.TransposedWeight.Count), t2.TransposedWeight),
                 (TestData.Floats(t2.Cout), t2.Bias)],
                (ctx, t) => Convolution.ConvTranspose2dRelu(ctx, t[0], t[1], t[2], 2, 1));
        }

        [Test]
        public void ChannelBias_forward_and_backward_are_bit_identical_in_every_thread_order()
        {
            var shape = new Shape(5, 3, 17, 19);  // 1615 values per channel: every thread of the reduction adds several
            AssertSameInEveryOrder([(TestData.Floats((int)shape.Count), shape), (TestData.Floats(3), new Shape(3))],
                                   (ctx, t) => Convolution.ChannelBias(ctx, t[0], t[1]));
        }
    }

    /// <summary>The masks themselves: host values, no device.</summary>
    [TestFixture, Category("Cpu")]
    public class Masks
    {
        [Test]
        public void Masks_keep_exactly_the_documented_taps()
        {
            Assert.Multiple(() =>
            {
                Assert.That(ConvMasks.PixelCnn(5, MaskType.A).ToString(), Is.EqualTo("xxxxx\nxxxxx\nxx...\n.....\n....."));
                Assert.That(ConvMasks.PixelCnn(5, MaskType.B).ToString(), Is.EqualTo("xxxxx\nxxxxx\nxxx..\n.....\n....."));
                Assert.That(ConvMasks.PixelCnn(3, MaskType.A).ToString(), Is.EqualTo("xxx\nx..\n..."));
                Assert.That(ConvMasks.PixelCnn(1, MaskType.B).ToString(), Is.EqualTo("x"));
                Assert.That(ConvMasks.VerticalStack(5, MaskType.A).ToString(), Is.EqualTo("xxxxx\nxxxxx\n.....\n.....\n....."));
                Assert.That(ConvMasks.VerticalStack(5, MaskType.B).ToString(), Is.EqualTo("xxxxx\nxxxxx\nxxxxx\n.....\n....."));
                Assert.That(ConvMasks.HorizontalStack(5, MaskType.A).ToString(), Is.EqualTo("xx..."));
                Assert.That(ConvMasks.HorizontalStack(5, MaskType.B).ToString(), Is.EqualTo("xxx.."));
                Assert.That(ConvMasks.HorizontalStack(3, MaskType.A).Shape, Is.EqualTo(new Shape(1, 3)));
                Assert.That(ConvMasks.PixelCnn(3, MaskType.B).ToArray(), Is.EqualTo(new[] { 1f, 1f, 1f, 1f, 1f, 0f, 0f, 0f, 0f }));
            });
            Assert.Throws<ArgumentOutOfRangeException>(() => ConvMasks.PixelCnn(4, MaskType.A), "an even kernel has no centre");
        }
    }
}
