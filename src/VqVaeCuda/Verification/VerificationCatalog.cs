using VqVaeCuda.Autodiff;
using VqVaeCuda.Benchmarks;
using VqVaeCuda.Data;
using VqVaeCuda.Device;
using VqVaeCuda.Models;
using VqVaeCuda.Ops;
using VqVaeCuda.Optim;
using VqVaeCuda.Sampling;
using VqVaeCuda.Tensors;
using VqVaeCuda.Training;
using static VqVaeCuda.Verification.CaseInputs;

namespace VqVaeCuda.Verification;

/// <summary>
/// The checks of <c>vqvae verify</c>, by group. Sizes are odd on purpose (not multiples of 32 or of any block or tile
/// size), so that every kernel's tail handling runs; one VQ-VAE-sized set (K 512, D 64) runs the full tiles.
/// </summary>
internal static class VerificationCatalog
{
    /// <summary>The op catalogue's shape sets: two odd ones and one with full tiles.</summary>
    public static IReadOnlyList<OpCatalogShapes> OpShapes { get; } =
    [
        new(Batch: 3, ImageSize: 13, InputChannels: 1, Hidden: 22, Residual: 7, EmbeddingDim: 9, CodebookSize: 37, LatentSize: 5, PriorChannels: 11),
        new(Batch: 2, ImageSize: 21, InputChannels: 3, Hidden: 38, Residual: 13, EmbeddingDim: 19, CodebookSize: 101, LatentSize: 9, PriorChannels: 17),
        new(Batch: 2, ImageSize: 28, InputChannels: 1, Hidden: 64, Residual: 32, EmbeddingDim: 64, CodebookSize: 512, LatentSize: 7, PriorChannels: 32),
    ];

    // ---- ops: every op forward and backward (OpBenchmarkCatalog's cases, and the ops it does not time) ----------------

    public static IEnumerable<VerificationCase> Ops(int seed)
    {
        foreach (var shapes in OpShapes)
        {
            foreach (var c in OpBenchmarkCatalog.All(shapes))
            {
                var (op, shape) = SplitName(c.Name);
                int s = seed++;
                yield return new VerificationCase("ops", op, shape, ToleranceOf(op), d => RunOp(d, c.Inputs, c.Forward, s));
            }
            foreach (var c in OpsNotInTheCatalogue(shapes, seed))
            {
                seed++;
                yield return c;
            }
        }
    }

    // The ops bench --ops does not time (variants of timed ones): they still need checking.
    private static IEnumerable<VerificationCase> OpsNotInTheCatalogue(OpCatalogShapes s, int seed)
    {
        int n = s.Batch, side = s.LatentSize, c = s.PriorChannels, k = s.CodebookSize, d = s.EmbeddingDim;
        var x = new Shape(n, c, side, side);
        yield return Op("channel bias", $"{x} + [{c}]", Tolerances.Reduction, [x, new Shape(c)],
                        (ctx, t) => Convolution.ChannelBias(ctx, t[0], t[1]), seed++);
        var mask = ConvMasks.PixelCnn(3, MaskType.A).ToArray();
        yield return Op("masked conv 3x3 A", $"{x}->[{n},{2 * c},{side},{side}]", Tolerances.Gemm,
                        [x, new Shape(2 * c, c, 3, 3), new Shape(2 * c)], (ctx, t) =>
                        {
                            var m = ctx.NewTensor(new Shape(3, 3));
                            m.CopyFrom(mask);
                            return Convolution.MaskedConv2d(ctx, t[0], t[1], t[2], m, 1);
                        }, seed++);
        // Without a bias, strides and paddings differing by axis (the catalogue's layers are square, with biases).
        var image = new Shape(n, c, 2 * side + 1, side + 2);
        var w = new Shape(c + 2, c, 3, 2);
        yield return Op("conv2d 3x2, stride 2x1, padding 1x0, no bias", $"{image} * {w}", Tolerances.Gemm, [image, w],
                        (ctx, t) => Convolution.Conv2d(ctx, t[0], t[1], null, 2, 1, 1, 0), seed++);
        var wt = new Shape(c, c + 2, 3, 2);
        yield return Op("conv_transpose2d 3x2, stride 2x1, padding 1x0, no bias", $"{x} * {wt}", Tolerances.Gemm, [x, wt],
                        (ctx, t) => Convolution.ConvTranspose2d(ctx, t[0], t[1], null, 2, 1, 1, 0), seed++);
        // The ReLU fused into a convolution's output pass and into the transpose (or the masking pass) of its output gradient:
        // a strided layer (im2col), a stride-1 one with fewer output channels (the cpu device's adjoint path), a 1×1 one with
        // fewer output channels (its input gradient by convolution), and a transposed one.
        var wide = new Shape(n, 2 * c, side, side);
        yield return Op("conv2d+relu 4x4, stride 2", $"{image} * [{c},{c},4,4]", Tolerances.Gemm, [image, new Shape(c, c, 4, 4), new Shape(c)],
                        (ctx, t) => Convolution.Conv2dRelu(ctx, t[0], t[1], t[2], 2, 1), seed++);
        yield return Op("conv2d+relu 3x3, fewer output channels", $"{wide} * [{c},{2 * c},3,3]", Tolerances.Gemm,
                        [wide, new Shape(c, 2 * c, 3, 3), new Shape(c)], (ctx, t) => Convolution.Conv2dRelu(ctx, t[0], t[1], t[2], 1, 1), seed++);
        yield return Op("conv2d+relu 1x1, fewer output channels", $"{wide} * [{c},{2 * c},1,1]", Tolerances.Gemm,
                        [wide, new Shape(c, 2 * c, 1, 1), new Shape(c)], (ctx, t) => Convolution.Conv2dRelu(ctx, t[0], t[1], t[2], 1, 0), seed++);
        yield return Op("conv_transpose2d+relu 4x4, stride 2", $"{x} * [{c},{c},4,4]", Tolerances.Gemm, [x, new Shape(c, c, 4, 4), new Shape(c)],
                        (ctx, t) => Convolution.ConvTranspose2dRelu(ctx, t[0], t[1], t[2], 2, 1), seed++);
        var gated = new Shape(n, 2 * c, side, side);
        yield return Op("gated tanh*sigmoid + condition", $"{gated} + [{n},{2 * c}]", Tolerances.Transcendental, [gated, new Shape(n, 2 * c)],
                        (ctx, t) => Gating.GatedTanhSigmoid(ctx, t[0], t[1]), seed++);
        // With one of the two gradients wanted, the gate's backward takes its two-kernel form (both: one pass).
        yield return Op("gated tanh*sigmoid + condition, d input only", $"{gated} + [{n},{2 * c}]", Tolerances.Transcendental,
                        [gated, new Shape(n, 2 * c)], (ctx, t) =>
                        {
                            t[1].RequiresGrad = false;
                            return Gating.GatedTanhSigmoid(ctx, t[0], t[1]);
                        }, seed++);
        yield return Op("gated tanh*sigmoid + condition, d condition only", $"{gated} + [{n},{2 * c}]", Tolerances.Transcendental,
                        [gated, new Shape(n, 2 * c)], (ctx, t) =>
                        {
                            t[0].RequiresGrad = false;
                            return Gating.GatedTanhSigmoid(ctx, t[0], t[1]);
                        }, seed++);
        int classes = 10;
        var labels = Enumerable.Range(0, n).Select(i => (i * 7) % classes).ToArray();
        yield return Op("label embedding", $"[{classes},{2 * c}] -> [{n},{2 * c}]", Tolerances.Reduction, [new Shape(classes, 2 * c)], (ctx, t) =>
        {
            var l = ctx.NewTensor(new Shape(n), DType.Int32);
            l.CopyFrom(labels);
            return Embedding.LookupLabels(ctx, t[0], l);
        }, seed++);
        var rows = Enumerable.Range(0, n * side).Select(i => (i * 31) % k).ToArray();
        yield return Op("row embedding", $"[{k},{d}] -> [{n * side},{d}]", Tolerances.Reduction, [new Shape(k, d)], (ctx, t) =>
        {
            var r = ctx.NewTensor(new Shape(rows.Length), DType.Int32);
            r.CopyFrom(rows);
            return Embedding.Lookup(ctx, t[0], r);
        }, seed++);
        var zE = new Shape(n, d, side, side);
        yield return Op("vector quantizer (EMA codebook)", $"z_e {zE}, E [{k},{d}]", Tolerances.Gemm, [zE, new Shape(k, d)],
                        (ctx, t) => VectorQuantizer.Quantize(ctx, t[0], t[1], 0.25f, useEma: true).Quantized, seed++);
    }

    private static VerificationCase Op(string op, string shape, Tolerance tolerance, Shape[] inputs, Func<OpContext, Tensor[], Tensor> forward, int seed) =>
        new("ops", op, shape, tolerance, d => RunOp(d, inputs, forward, seed));

    // "relu [3,22,6,6]" → ("relu", "[3,22,6,6]").
    private static (string Op, string Shape) SplitName(string name)
    {
        int bracket = name.IndexOf('[');
        return bracket <= 0 ? (name, "") : (name[..bracket].TrimEnd(), name[bracket..]);
    }

    private static Tolerance ToleranceOf(string op) => op switch
    {
        _ when op.StartsWith("relu") || op.StartsWith("residual add") => Tolerances.Elementwise,
        _ when op.Contains("conv") || op.StartsWith("vector quantizer") => Tolerances.Gemm,
        _ when op.StartsWith("gated") || op.StartsWith("softmax") => Tolerances.Transcendental,
        _ => Tolerances.Reduction,  // mse, code embedding (its backward sums by code)
    };

    // ---- kernels: the ones no op reaches on this device, launched directly ---------------------------------------------

    public static IEnumerable<VerificationCase> Kernels(int seed)
    {
        const int n = 100_003;
        yield return Kernel("fill_f32 / scale_f32 / axpy_f32 / add_f32", $"[{n}]", Tolerances.Elementwise, seed++, (s, random) =>
        {
            var x = s.Floats(Uniform(random, n));
            var y = s.Floats(Uniform(random, n));
            var filled = s.Zeros(n);
            var scaled = s.Zeros(n);
            var sum = s.Zeros(n);
            ElementwiseKernels.Fill(s.Device, filled.Pointer, 0.7f, n);
            ElementwiseKernels.Scale(s.Device, x.Pointer, scaled.Pointer, -1.3f, n);
            ElementwiseKernels.Add(s.Device, x.Pointer, y.Pointer, sum.Pointer, n);
            ElementwiseKernels.Axpy(s.Device, x.Pointer, y.Pointer, 0.37f, n);
            return Floats(("fill", filled), ("scale", scaled), ("add", sum), ("axpy", y));
        });
        foreach (var (rows, cols, batch) in new[] { (67, 129, 3), (33, 31, 1) })
            yield return Kernel("transpose_f32_naive / transpose_f32_tiled", $"{batch}x[{rows},{cols}]", Tolerances.Exact, seed++, (s, random) =>
            {
                var x = s.Floats(Uniform(random, rows * cols * batch));
                var naive = s.Zeros(rows * cols * batch);
                var tiled = s.Zeros(rows * cols * batch);
                TransposeKernels.Naive(s.Device, x.Pointer, naive.Pointer, rows, cols, batch);
                TransposeKernels.Tiled(s.Device, x.Pointer, tiled.Pointer, rows, cols, batch);
                return Floats(("naive", naive), ("tiled", tiled));
            });
        // A fixed block count: the ops pick one from the device's size, which would make the partials incomparable.
        const int blocks = 37, count = 77_777;
        yield return Kernel("sum_f32_partials / sum_f32_atomic", $"[{count}] in {blocks} blocks", Tolerances.Reduction, seed++, (s, random) =>
        {
            var x = s.Floats(Uniform(random, count));
            var partials = s.Zeros(blocks);
            var total = s.Zeros(1);
            ReduceKernels.SumPartials(s.Device, x.Pointer, partials.Pointer, count, blocks);
            ReduceKernels.SumAtomic(s.Device, x.Pointer, total.Pointer, count, blocks);
            return Floats(("partials", partials), ("atomic total", total));
        });
        const int parameters = 10_007;
        yield return Kernel("adam_step_f32", $"[{parameters}]", Tolerances.Elementwise, seed++, (s, random) =>
        {
            var values = s.Floats(Uniform(random, parameters));
            var grads = s.Floats(Uniform(random, parameters, -0.1f, 0.1f));
            var m = s.Floats(Uniform(random, parameters, -0.01f, 0.01f));
            var v = s.Floats(Uniform(random, parameters, 0f, 1e-4f));
            // Step 3 of lr 1e-3, betas (0.9, 0.999), weight decay 0.01: the values the kernel is given by Adam.Step.
            float stepSize = 1e-3f / (1f - MathF.Pow(0.9f, 3)), correction2 = MathF.Sqrt(1f - MathF.Pow(0.999f, 3));
            AdamKernels.Step(s.Device, values.Pointer, grads.Pointer, m.Pointer, v.Pointer, parameters, 0.1f, 0.999f, 0.001f, 1e-8f, 0.01f,
                             stepSize, correction2);
            return Floats(("values", values), ("m", m), ("v", v));
        });
        yield return Kernel("gradient clipping (sumsq_partials_f32, sqrt_of_sum_f32, clip_scale_f32)", $"[{parameters}]", Tolerances.Reduction,
                            seed++, (s, random) =>
        {
            var grads = s.Floats(Uniform(random, parameters));
            var norm = WithArena(s.Device, arena => GradientClipping.ClipByGlobalNorm(new OpContext(arena), grads, 1.5f).ToArray());
            var result = Floats(("clipped gradients", grads));
            result.Forward.Add(("norm", norm));
            return result;
        });
        foreach (var (m, k, d, hw) in new[] { (3 * 25, 37, 9, 25), (2 * 49, 512, 64, 49) })
            yield return Kernel("EMA codebook update (vq_ema_counts_f32, vq_ema_codebook_f32)", $"M {m}, K {k}, D {d}", Tolerances.Reduction, seed++,
                                (s, random) =>
            {
                var codebook = Tensor.FromArray(s.Device, Uniform(random, k * d), new Shape(k, d));
                var zE = Tensor.FromArray(s.Device, Uniform(random, m * d), new Shape(m / hw, d, (int)Math.Sqrt(hw), (int)Math.Sqrt(hw)));
                var indices = Tensor.FromArray(s.Device, Integers(random, m, k), new Shape(m / hw, (int)Math.Sqrt(hw), (int)Math.Sqrt(hw)));
                using (codebook)
                using (zE)
                using (indices)
                using (var ema = new EmaCodebook(codebook))
                {
                    WithArena(s.Device, arena =>
                    {
                        ema.Update(new OpContext(arena), zE, indices);
                        return 0;
                    });
                    var result = new CaseOutput();
                    result.Forward.Add(("codebook", codebook.ToArray()));
                    result.Forward.Add(("cluster sizes", ema.ClusterSizes.ToArray()));
                    result.Forward.Add(("embedding sums", ema.EmbeddingSums.ToArray()));
                    return result;
                }
            });
        yield return Kernel("embedding_backward_atomic_f32", "dout [5,13,7] by 37 rows", Tolerances.Reduction, seed++, (s, random) =>
        {
            const int rows = 37, dim = 13, inner = 7, outer = 5, total = outer * dim * inner;
            var dout = s.Floats(Uniform(random, total));
            var indices = s.Ints(Integers(random, outer * inner, rows));
            var dtable = s.Zeros(rows * dim);
            EmbeddingKernels.BackwardAtomic(s.Device, dout.Pointer, indices.Pointer, dtable.Pointer, rows, dim, inner, total);
            return Floats(("dtable", dtable));
        });
        foreach (var (samples, classes, inner) in new[] { (101, 37, 25), (3, 512, 1) })
            yield return Kernel("sample_position_f32", $"{samples} samples of K {classes}, inner {inner}", Tolerances.Exact, seed++, (s, random) =>
            {
                var logits = s.Floats(Uniform(random, samples * classes * inner, -3f, 3f));
                var uniforms = s.Floats(Uniform(random, samples * 2, 0f, 1f));
                var codes = s.Zeros(samples * inner, DType.Int32);
                var chosen = s.Zeros(samples, DType.Int32);
                SamplingKernels.SamplePosition(s.Device, logits.Pointer, classes, inner, inner / 2, uniforms.Pointer, 2, 1, 0.9f, codes.Pointer, inner,
                                               inner / 2, chosen.Pointer, samples);
                var result = new CaseOutput();
                result.Integers.Add(("codes", codes.ToIntArray()));
                result.Integers.Add(("chosen", chosen.ToIntArray()));
                return result;
            });
        yield return Kernel("copy_window_f32", "7 planes of 9x11, window 5x6 at (-1, 7)", Tolerances.Exact, seed++, (s, random) =>
        {
            const int planes = 7, h = 9, w = 11;
            var src = s.Floats(Uniform(random, planes * h * w));
            var dst = s.Floats(Uniform(random, planes * 6 * 8));
            // The window reaches past the top and the right edge: those positions are written as 0 (padding).
            SamplingKernels.CopyWindow(s.Device, src.Pointer, h, w, -1, 7, dst.Pointer, 6, 8, 1, 1, planes, 5, 6);
            return Floats(("dst", dst));
        });
        foreach (var c in ConvLayoutForms(seed)) yield return c;
        foreach (var c in ConvPhasePlanes(seed + 300)) yield return c;
        foreach (var c in PointwiseForms(seed + 200)) yield return c;
        // The cpu device's input gradient by convolution flips the weight; a GPU reaches the kernel only here.
        yield return Kernel("conv_weight_flip_f32", "[7,5,3,4] -> [5,7,3,4]", Tolerances.Exact, seed + 100, (s, random) =>
        {
            var weight = s.Floats(Uniform(random, 7 * 5 * 3 * 4));
            var flipped = s.Zeros(7 * 5 * 3 * 4);
            ConvKernels.WeightFlip(s.Device, weight.Pointer, flipped.Pointer, 7, 5, 3, 4);
            return Floats(("flipped", flipped));
        });
    }

    // The two forms of a kernel pair (KernelLaunch.KernelForm), each with the name verify's tables give it.
    private static readonly (KernelLaunch.KernelForm Form, string Name)[] BothForms =
        [(KernelLaunch.KernelForm.Gpu, "GPU form"), (KernelLaunch.KernelForm.Cpu, "CPU form")];

    // Each device runs one kernel of each pointwise pair (KernelLaunch.LaunchPointwise: grid-stride on a GPU, a contiguous
    // run per thread on the cpu device): run both forms everywhere. 10007 elements: a ragged last run, and several runs.
    private static IEnumerable<VerificationCase> PointwiseForms(int seed)
    {
        const int n = 10007;
        string shape = $"{n} floats";
        foreach (var (form, name) in BothForms)
        {
            yield return Kernel($"fill ({name})", shape, Tolerances.Exact, seed++, (s, random) =>
            {
                var output = s.Floats(Uniform(random, n));
                ElementwiseKernels.Fill(s.Device, form, output.Pointer, -2.5f, n);
                return Floats(("out", output));
            });
            yield return Kernel($"scale ({name})", shape, Tolerances.Exact, seed++, (s, random) =>
            {
                var x = s.Floats(Uniform(random, n));
                var output = s.Zeros(n);
                ElementwiseKernels.Scale(s.Device, form, x.Pointer, output.Pointer, 0.37f, n);
                return Floats(("out", output));
            });
            yield return Kernel($"axpy ({name})", shape, Tolerances.Exact, seed++, (s, random) =>
            {
                var x = s.Floats(Uniform(random, n));
                var y = s.Floats(Uniform(random, n));
                ElementwiseKernels.Axpy(s.Device, form, x.Pointer, y.Pointer, -1.75f, n);
                return Floats(("y", y));
            });
            yield return Kernel($"add ({name})", shape, Tolerances.Exact, seed++, (s, random) =>
            {
                var a = s.Floats(Uniform(random, n));
                var b = s.Floats(Uniform(random, n));
                var output = s.Zeros(n);
                ElementwiseKernels.Add(s.Device, form, a.Pointer, b.Pointer, output.Pointer, n);
                return Floats(("out", output));
            });
            yield return Kernel($"relu forward and backward ({name})", shape, Tolerances.Exact, seed++, (s, random) =>
            {
                var x = s.Floats(Uniform(random, n));
                var y = s.Zeros(n);
                var dy = s.Floats(Uniform(random, n));
                var dx = s.Floats(Uniform(random, n));
                ActivationKernels.ReluForward(s.Device, form, x.Pointer, y.Pointer, n);
                ActivationKernels.ReluBackward(s.Device, form, y.Pointer, dy.Pointer, dx.Pointer, n);
                return Floats(("y", y), ("dx", dx));
            });
            yield return Kernel($"mse partial sums ({name})", $"{n} floats, 3 blocks", Tolerances.Reduction, seed++, (s, random) =>
            {
                const int blocks = 3;
                var prediction = s.Floats(Uniform(random, n));
                var target = s.Floats(Uniform(random, n));
                var partials = s.Zeros(blocks);
                LossKernels.MsePartials(s.Device, form, prediction.Pointer, target.Pointer, partials.Pointer, 0.5f, n, blocks);
                return Floats(("partials", partials));
            });
            yield return Kernel($"embedding gather ({name})", "out [5,13,7] from 37 rows", Tolerances.Exact, seed++, (s, random) =>
            {
                const int rows = 37, dim = 13, inner = 7, outer = 5, total = outer * dim * inner;
                var table = s.Floats(Uniform(random, rows * dim));
                var indices = s.Ints(Integers(random, outer * inner, rows));
                var output = s.Zeros(total);
                EmbeddingKernels.Gather(s.Device, form, table.Pointer, indices.Pointer, output.Pointer, rows, dim, inner, total);
                return Floats(("out", output));
            });
        }
    }

    // The cpu device's stride-s path through phase planes (ConvKernels.PhaseScratchFloats), run on every device: a 4×4
    // stride-2 layer with padding 1, as the VQ-VAE's, on a non-square image.
    private static IEnumerable<VerificationCase> ConvPhasePlanes(int seed)
    {
        const int n = 3, c = 4, h = 10, w = 12, k = 4, stride = 2, pad = 1;
        const int ho = (h + 2 * pad - k) / stride + 1, wo = (w + 2 * pad - k) / stride + 1, rows = c * k * k, columns = n * ho * wo;
        const KernelLaunch.KernelForm form = KernelLaunch.KernelForm.Cpu;
        string shape = $"[{n},{c},{h},{w}], kernel {k}x{k}, stride {stride}, padding {pad}";
        yield return Kernel("im2col through phase planes (CPU form)", shape, Tolerances.Exact, seed++, (s, random) =>
        {
            var image = s.Floats(Uniform(random, n * c * h * w));
            var col = s.Zeros(rows * columns);
            var phases = s.Zeros(checked((int)ConvKernels.PhaseScratchFloats(form, n, c, h, w, stride, stride, wo)));
            ConvKernels.Im2Col(s.Device, form, image.Pointer, col.Pointer, n, c, h, w, k, k, stride, stride, pad, pad, ho, wo, phases.Pointer);
            return Floats(("col", col));
        });
        yield return Kernel("col2im through phase planes, = with bias and += (CPU form)", shape, Tolerances.Reduction, seed++, (s, random) =>
        {
            var col = s.Floats(Uniform(random, rows * columns));
            var biased = s.Zeros(n * c * h * w);
            var bias = s.Floats(Uniform(random, c));
            var added = s.Floats(Uniform(random, n * c * h * w));
            var phases = s.Zeros(checked((int)ConvKernels.PhaseScratchFloats(form, n, c, h, w, stride, stride, wo)));
            ConvKernels.Col2Im(s.Device, form, col.Pointer, biased.Pointer, n, c, h, w, k, k, stride, stride, pad, pad, ho, wo, accumulate: false, bias.Pointer,
                               phases.Pointer);
            ConvKernels.Col2Im(s.Device, form, col.Pointer, added.Pointer, n, c, h, w, k, k, stride, stride, pad, pad, ho, wo, accumulate: true,
                               phases: phases.Pointer);
            return Floats(("image + bias", biased), ("image += col", added));
        });
    }

    // Each device runs one kernel of each conv layout pair (KernelLaunch.KernelForm): run both forms everywhere.
    private static IEnumerable<VerificationCase> ConvLayoutForms(int seed)
    {
        const int n = 3, c = 5, h = 11, w = 9, kh = 3, kw = 4, sh = 2, sw = 1, ph = 1, pw = 2;
        const int ho = (h + 2 * ph - kh) / sh + 1, wo = (w + 2 * pw - kw) / sw + 1, rows = c * kh * kw, columns = n * ho * wo;
        string shape = $"[{n},{c},{h},{w}], kernel {kh}x{kw}, stride {sh}x{sw}, padding {ph}x{pw}";
        foreach (var (form, name) in BothForms)
        {
            yield return Kernel($"im2col ({name})", shape, Tolerances.Exact, seed++, (s, random) =>
            {
                var image = s.Floats(Uniform(random, n * c * h * w));
                var col = s.Zeros(rows * columns);
                ConvKernels.Im2Col(s.Device, form, image.Pointer, col.Pointer, n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo);
                return Floats(("col", col));
            });
            yield return Kernel($"col2im, =, = with bias and += ({name})", shape, Tolerances.Reduction, seed++, (s, random) =>
            {
                var col = s.Floats(Uniform(random, rows * columns));
                var set = s.Zeros(n * c * h * w);
                var biased = s.Zeros(n * c * h * w);
                var bias = s.Floats(Uniform(random, c));
                var added = s.Floats(Uniform(random, n * c * h * w));
                ConvKernels.Col2Im(s.Device, form, col.Pointer, set.Pointer, n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo, accumulate: false);
                ConvKernels.Col2Im(s.Device, form, col.Pointer, biased.Pointer, n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo, accumulate: false, bias.Pointer);
                ConvKernels.Col2Im(s.Device, form, col.Pointer, added.Pointer, n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo, accumulate: true);
                return Floats(("image", set), ("image + bias", biased), ("image += col", added));
            });
            yield return Kernel($"channel bias gradient ({name})", $"[{n},{c * 7},{h * w}]", Tolerances.Reduction, seed++, (s, random) =>
            {
                var dy = s.Floats(Uniform(random, n * c * 7 * h * w));
                var dbias = s.Floats(Uniform(random, c * 7));
                ConvKernels.ChannelBiasBackward(s.Device, form, dy.Pointer, dbias.Pointer, n, c * 7, h * w);
                return Floats(("dbias", dbias));
            });
        }
    }

    private static VerificationCase Kernel(string op, string shape, Tolerance tolerance, int seed, Func<DeviceScratch, Random, CaseOutput> body,
                                           string group = "kernels") =>
        new(group, op, shape, tolerance, device =>
        {
            using var scratch = new DeviceScratch(device);
            return body(scratch, new Random(seed));
        });

    private static CaseOutput Floats(params (string Name, Tensor Tensor)[] outputs)
    {
        var result = new CaseOutput();
        foreach (var (name, t) in outputs) result.Forward.Add((name, t.ToArray()));
        return result;
    }

    // ---- nearest codes: fused and unfused, on both devices --------------------------------------------------------------

    /// <summary>
    /// The fused search (one kernel, and split over code ranges with a merge) and the unfused one (GEMM then argmin), on
    /// the device under test, each against the reference's unfused search. Codes must be equal; where one differs, it
    /// passes only as a near tie: its distance (computed here in double) exceeds the smallest by at most
    /// <see cref="Tolerances.CodeDistance"/>. One codebook holds exact duplicates and rows 1 ulp apart, so that ties happen:
    /// exact ones must go to the lowest index in every search.
    /// </summary>
    public static IEnumerable<VerificationCase> NearestCodes(int seed)
    {
        foreach (var (n, d, side, k, ties) in new[] { (3, 9, 5, 37, false), (2, 19, 9, 101, true), (4, 64, 7, 512, false), (2, 3, 3, 130, true) })
        {
            int caseSeed = seed++;
            var zShape = new Shape(n, d, side, side);
            string shape = $"z {zShape}, E [{k},{d}]{(ties ? ", with tied codes" : "")}";
            (float[] Z, float[] E) Inputs()
            {
                var random = new Random(caseSeed);
                var z = Uniform(random, n * d * side * side);
                var e = Uniform(random, k * d);
                if (ties)
                    for (int j = 1; j < k; j += 3)
                        for (int i = 0; i < d; i++)
                            e[j * d + i] = j % 2 == 0 ? e[(j - 1) * d + i] : MathF.BitIncrement(e[(j - 1) * d + i]);
                return (z, e);
            }
            foreach (var (name, algorithm, splits) in new (string, NearestCodeAlgorithm, int?)[]
                     {
                         ("fused", NearestCodeAlgorithm.Fused, 1), ("fused, 3 code splits + merge", NearestCodeAlgorithm.Fused, 3),
                         ("unfused (GEMM then argmin)", NearestCodeAlgorithm.GemmThenArgmin, null),
                     })
            {
                // The device under test runs the named search; the reference always runs the unfused one.
                yield return new VerificationCase("nearest codes", $"nearest codes, {name}", shape, Tolerances.CodeDistance,
                    device => Search(device, Inputs(), zShape, k, algorithm, splits), (tested, reference) => CompareCodes(tested.Integers[0].Values,
                        reference.Integers[0].Values, Inputs(), n, d, side * side, k))
                {
                    RunReference = device => Search(device, Inputs(), zShape, k, NearestCodeAlgorithm.GemmThenArgmin, null),
                };
            }
        }
    }

    private static CaseOutput Search(IDevice device, (float[] Z, float[] E) inputs, Shape z, int k, NearestCodeAlgorithm algorithm, int? splits) =>
        WithArena(device, arena =>
        {
            var ctx = new OpContext(arena);
            var zt = ctx.NewTensor(z);
            zt.CopyFrom(inputs.Z);
            var et = ctx.NewTensor(new Shape(k, z[1]));
            et.CopyFrom(inputs.E);
            var result = new CaseOutput();
            result.Integers.Add(("codes", VectorQuantizer.NearestCodesWith(ctx, zt, et, algorithm, splits).ToIntArray()));
            return result;
        });

    private static CaseComparison CompareCodes(int[] tested, int[] reference, (float[] Z, float[] E) inputs, int n, int d, int hw, int k)
    {
        double worst = 0;
        int differing = 0;
        for (int m = 0; m < tested.Length; m++)
        {
            if (tested[m] == reference[m]) continue;
            differing++;
            if (tested[m] < 0 || tested[m] >= k) return new CaseComparison(double.PositiveInfinity, null, $"code {tested[m]} at vector {m} is outside [0, {k})");
            // An exact tie (the same row twice) is no excuse: it goes to the lowest index, as the reference's does.
            if (inputs.E.AsSpan(tested[m] * d, d).SequenceEqual(inputs.E.AsSpan(reference[m] * d, d)))
                return new CaseComparison(double.PositiveInfinity, null,
                                          $"vector {m}: code {tested[m]} where the reference chose {reference[m]}, an identical row: exact ties go to the lowest index");
            double zz = 0, best = double.PositiveInfinity, bestScale = 1;
            var distance = new double[k];
            for (int j = 0; j < k; j++)
            {
                double dist = 0, ee = 0;
                zz = 0;
                for (int i = 0; i < d; i++)
                {
                    double zi = inputs.Z[((m / hw) * d + i) * hw + m % hw], ei = inputs.E[j * d + i];
                    dist += (zi - ei) * (zi - ei);
                    zz += zi * zi;
                    ee += ei * ei;
                }
                distance[j] = dist;
                if (dist < best)
                {
                    best = dist;
                    bestScale = zz + ee;
                }
            }
            worst = Math.Max(worst, (distance[tested[m]] - best) / bestScale);
        }
        return new CaseComparison(worst, null, differing == 0 ? null : $"{differing} of {tested.Length} codes differ from the reference's, as near ties");
    }

    // ---- the execution model: the kernels that test it, exactly equal ------------------------------------------------

    private const string ExecutionModelGroup = "execution model";

    public static IEnumerable<VerificationCase> ExecutionModel(int seed)
    {
        yield return Kernel("test_shared_per_block", "grid 5, block 96", Tolerances.Exact, seed++, (s, _) =>
        {
            var output = s.Zeros(5 * 96, DType.Int32);
            s.Device.Launch(s.Device.GetKernel("test_shared_per_block"), 5, 96, 0, output.Pointer);
            return Ints(("out", output));
        }, ExecutionModelGroup);
        yield return Kernel("test_dynamic_shared", "grid 3, block 160", Tolerances.Exact, seed++, (s, random) =>
        {
            var x = s.Floats(Uniform(random, 3 * 160));
            var y = s.Zeros(3 * 160);
            s.Device.Launch(s.Device.GetKernel("test_dynamic_shared"), 3, 160, 160 * sizeof(float), x.Pointer, y.Pointer);
            return Floats(("out", y));
        }, ExecutionModelGroup);
        yield return Kernel("test_neighbour_read (with its barrier)", "grid 4, block 224", Tolerances.Exact, seed++, (s, random) =>
        {
            var x = s.Floats(Uniform(random, 4 * 224));
            var y = s.Zeros(4 * 224);
            s.Device.Launch(s.Device.GetKernel("test_neighbour_read"), 4, 224, 0, x.Pointer, y.Pointer, 1);
            return Floats(("out", y));
        }, ExecutionModelGroup);
        // Full warps only: on a GPU a shuffle that names a lane absent from a partial warp is undefined.
        foreach (var divergent in new[] { 0, 1 })
            yield return Kernel("test_warp_ops", $"grid 3, block 128{(divergent == 1 ? ", odd warps divergent" : "")}", Tolerances.Exact, seed++,
                                (s, random) =>
            {
                var x = s.Ints(Integers(random, 3 * 128, 100));
                var y = s.Zeros(8 * 3 * 128, DType.Int32);
                s.Device.Launch(s.Device.GetKernel("test_warp_ops"), 3, 128, 0, x.Pointer, y.Pointer, 5, 3, 16, 50, divergent);
                return Ints(("out", y));
            }, ExecutionModelGroup);
        yield return Kernel("test_atomics", "1000 threads", Tolerances.Exact, seed++, (s, _) =>
        {
            const int n = 1000;
            var counter = s.Zeros(1, DType.Int32);
            var max = s.Ints([-1]);
            var min = s.Ints([int.MaxValue]);
            var cas = s.Zeros(1, DType.Int32);
            var sum = s.Zeros(1);
            s.Device.Launch(s.Device.GetKernel("test_atomics"), Dim3.Cover(n, 128), 128, 0, counter.Pointer, max.Pointer, min.Pointer, cas.Pointer,
                            sum.Pointer, n);
            var result = Ints(("counter", counter), ("max", max), ("min", min), ("cas", cas));
            result.Forward.Add(("float sum", sum.ToArray()));
            return result;
        }, ExecutionModelGroup);
        yield return Kernel("test_barrier_loop", "grid 2, block 64, 100 barriers", Tolerances.Exact, seed++, (s, _) =>
        {
            var y = s.Zeros(2);
            s.Device.Launch(s.Device.GetKernel("test_barrier_loop"), 2, 64, 0, y.Pointer, 100);
            return Floats(("out", y));
        }, ExecutionModelGroup);
    }

    /// <summary>Kernels verify does not run, on purpose.</summary>
    public static IReadOnlyList<KernelExemption> Exempt { get; } =
    [
        new("test_write_past_end", "writes one element past its buffer on purpose, so that the cpu device's canaries catch it; on a GPU it would corrupt memory"),
        new("test_barrier_in_no_sync", "registered barrier-free yet calls __syncthreads, so that the cpu device refuses it; it has no result to compare"),
    ];

    private static CaseOutput Ints(params (string Name, Tensor Tensor)[] outputs)
    {
        var result = new CaseOutput();
        foreach (var (name, t) in outputs) result.Integers.Add((name, t.ToIntArray()));
        return result;
    }

    // ---- training: the tiny model's first steps ------------------------------------------------------------------------

    /// <summary>
    /// <paramref name="steps"/> training steps of the <c>tiny</c> preset (the trainer's step: forward, backward, Adam, EMA
    /// update, dead-code restarts) from the same weights and batch on each device; the reconstruction loss of every step
    /// compared as |loss − reference| / reference.
    /// </summary>
    public static IEnumerable<VerificationCase> Training(int seed, int steps, int batch)
    {
        yield return new VerificationCase("training", $"{steps} training steps, tiny preset", $"batch {batch} of 28x28x1", Tolerances.Training, device =>
        {
            var config = VqVaeConfig.Preset("tiny");
            var data = SyntheticShapes.Generate(batch, seed, size: config.ImageSize, channels: config.InputChannels);
            using var step = new BenchmarkStep(device, config, data, new StepBenchmarkOptions { Preset = "tiny", Batch = batch, Seed = seed });
            var losses = new float[steps];
            for (int i = 0; i < steps; i++) losses[i] = step.Run(null);
            var result = new CaseOutput();
            result.Forward.Add(("reconstruction losses", losses));
            return result;
        }, (tested, reference) =>
        {
            var (a, b) = (tested.Forward[0].Values, reference.Forward[0].Values);
            var (worst, at) = WorstStep(a, b);
            return new CaseComparison(worst, null, $"step {at + 1}: {a[at]:G6} vs {b[at]:G6}; last step {a[^1]:G6} vs {b[^1]:G6}");
        });
    }

    // The largest per-step relative difference of two loss traces, and its step. A non-finite loss on either side is an
    // infinite error, which no later finite step can replace.
    private static (double Worst, int At) WorstStep(float[] a, float[] b)
    {
        double worst = 0;
        int at = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double e = float.IsFinite(a[i]) && float.IsFinite(b[i]) ? Math.Abs(a[i] - b[i]) / Math.Abs(b[i]) : double.PositiveInfinity;
            if (!(e <= worst)) (worst, at) = (e, i);
        }
        return (worst, at);
    }

    // ---- graph replay: the captured training step against the same step launch by launch ------------------------------

    /// <summary>Steps of the graph-replay check: the first runs launch by launch, the second is captured, the rest replay it.</summary>
    public const int GraphReplaySteps = 8;

    /// <summary>
    /// The trainer's graph-shaped step (<see cref="CapturableStep"/>) on the device under test, captured from its second step
    /// and replayed, against the same step with capture off on the same device, from the same weights and batches: the
    /// losses read back after every step must agree (<see cref="Tolerances.GraphReplay"/>). The reference device runs
    /// the step launch by launch, so its output is the eager one. Fails where the device can capture but did not.
    /// </summary>
    public static IEnumerable<VerificationCase> GraphReplay(int seed, int batch)
    {
        yield return new VerificationCase("graph replay", $"{GraphReplaySteps} captured training steps against the same steps launch by launch, tiny preset",
            $"batch {batch} of 28x28x1", Tolerances.GraphReplay, device =>
        {
            var (replayed, execution, captured) = GraphStepLosses(device, seed, batch, capture: true);
            var (eager, _, _) = GraphStepLosses(device, seed, batch, capture: false);
            bool canCapture = device is KernelRecordingDevice r ? r.Inner is IGraphCapture : device is IGraphCapture;
            if (canCapture && !captured)
                throw new InvalidOperationException($"the device can capture but the step did not: {execution}");
            var result = new CaseOutput();
            result.Forward.Add(("replayed losses", replayed));
            result.Forward.Add(("launch-by-launch losses", eager));
            result.Notes = execution;
            return result;
        }, (tested, _) =>
        {
            var (a, b) = (tested.Forward[0].Values, tested.Forward[1].Values);
            var (worst, at) = WorstStep(a, b);
            var exact = a.AsSpan().SequenceEqual(b) ? "bit for bit" : $"worst at step {at + 1}: {a[at]:G9} vs {b[at]:G9}";
            return new CaseComparison(worst, null, $"{exact}; {tested.Notes}");
        })
        {
            RunReference = device => new CaseOutput(),
        };
    }

    private static (float[] Losses, string Execution, bool Captured) GraphStepLosses(IDevice device, int seed, int batch, bool capture)
    {
        var config = VqVaeConfig.Preset("tiny");
        var data = SyntheticShapes.Generate(batch * GraphReplaySteps, seed, size: config.ImageSize, channels: config.InputChannels);
        using var model = new VqVae(device, config, seed: seed);
        using var adam = new Adam(model.Parameters(), 1e-3);
        using var arena = VqVaeTrainer.SizeArena(model, batch);
        using var step = new CapturableStep(model, adam, arena, batch, maxGradNorm: 1f) { Capture = capture };
        var losses = new float[GraphReplaySteps];
        int imageFloats = config.InputChannels * config.ImageSize * config.ImageSize;
        for (int i = 0; i < GraphReplaySteps; i++)
        {
            step.Run(data.Pixels.AsSpan(i * batch * imageFloats, batch * imageFloats), i + 1);
            losses[i] = (float)step.ReadInterval().ReconstructionMseSum;  // one step per read: the sum is the step's loss
        }
        return (losses, step.Execution, step.IsCaptured);
    }
}
