using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Models;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Training;

/// <summary>The VQ-VAE's forward/backward against finite differences, on a very small model: every parameter tensor.</summary>
public class VqVaeModelTests(DeviceKind kind) : DeviceSpecification(kind)
{
    // Smaller than the tiny preset so that each finite difference (a whole forward pass) is cheap. Its 8×8 images give
    // 2×2 latents: 8 vectors, one per code of K = 8.
    private static readonly VqVaeConfig Small = new()
    {
        InputChannels = 1, ImageSize = 8, Hidden = 8, ResidualHidden = 4, ResidualLayers = 1, CodebookSize = 8, EmbeddingDim = 4,
        UseEma = false,
    };

    private static Tensor Input(OpContext ctx, float[] pixels)
    {
        var x = ctx.NewTensor(new Shape(2, 1, 8, 8));
        x.CopyFrom(pixels);
        return x;
    }

    /// <summary>
    /// Weights drawn uniform in ±√(6 / fan-in) (He), biases in ±0.1, so that every layer passes signal on. With the
    /// model's own small initialisation (seed 3) most ReLUs of this tiny model are dead and whole channels carry nothing:
    /// 400 of decoder.deconv1.weight's 512 gradients are exactly 0 (its input, the residual stack's final ReLU, is 0 on 4
    /// of its 8 channels, and the ReLU after it on one of its 4 output channels and on parts of two others; finite
    /// differences there are exactly 0 too), every latent vector picks the same code, and the gradients of the
    /// residual convolutions (~3e-5) sit at float32's finite-difference noise (ulp(loss) / 2h ≈ 1e-5): no step resolves them.
    /// </summary>
    private static void InitialiseForGradientCheck(VqVae model, int seed)
    {
        var random = new Random(seed);
        foreach (var (name, p) in model.NamedParameters())
        {
            var dims = p.Shape.Dims.ToArray();
            double bound = 0.1;
            if (name.EndsWith(".weight"))
            {
                int taps = dims.Length == 4 ? dims[2] * dims[3] : 1;
                // A transposed convolution [in, out, kh, kw] of stride 2 sums in·kh·kw/4 terms per output; a convolution [out, in, kh, kw] in·kh·kw.
                double fanIn = name.Contains("deconv") ? dims[0] * taps / 4.0 : dims[1] * taps;
                bound = Math.Sqrt(6 / fanIn);
            }
            p.Value.CopyFrom(Enumerable.Range(0, (int)p.Shape.Count).Select(_ => (float)((random.NextDouble() * 2 - 1) * bound)).ToArray());
        }
    }

    [Test]
    public void Every_parameter_gradient_matches_finite_differences()
    {
        using var device = Open();
        using var model = new VqVae(device, Small, seed: 3);
        InitialiseForGradientCheck(model, seed: 3);
        // Fixed images, whose 8 latent vectors are known to lie well apart (random ones now and then give two within 1e-2).
        var pixelRandom = new Random(7);
        var pixels = Enumerable.Range(0, 2 * 64).Select(_ => (float)pixelRandom.NextDouble()).ToArray();
        using var arena = new Arena(device, 16 << 20);

        // Codebook: the 8 latent vectors plus noise of a fifth of their least distance apart, so that each vector has a code
        // of its own (its row is nearer than any other by at least 3/5 of that distance) and every row gets a gradient.
        arena.Reset();
        var zE = model.EncodeToZe(new OpContext(arena), Input(new OpContext(arena), pixels)).ToArray();
        const int d = 4, hw = 4;
        var vectors = Enumerable.Range(0, 8).Select(m => Enumerable.Range(0, d).Select(c => zE[m / hw * d * hw + c * hw + m % hw]).ToArray()).ToArray();
        double least = vectors.SelectMany((u, i) => vectors.Skip(i + 1).Select(v => Math.Sqrt(u.Zip(v, (a, b) => (double)(a - b) * (a - b)).Sum()))).Min();
        Assert.That(least, Is.GreaterThan(1e-2), "the latent vectors are distinct");
        var codebook = model.ParameterStore["quantizer.codebook"];
        var r = new Random(11);
        double noise = least / 5 / Math.Sqrt(d);
        codebook.Value.CopyFrom(vectors.SelectMany(v => v.Select(x => x + (float)((r.NextDouble() * 2 - 1) * noise))).ToArray());

        arena.Reset();
        model.ZeroGrad();
        var tape = new Tape(arena);
        var ctx = new OpContext(arena, tape);
        var input = Input(ctx, pixels);
        var output = model.Forward(ctx, input);
        var zE0 = output.EncoderOutput.ToArray();
        var zQ0 = output.Quantized.Quantized.ToArray();
        var codes0 = output.Quantized.Indices.ToIntArray();
        Assert.That(codes0.Distinct().Count(), Is.EqualTo(8), "every vector has a code of its own");
        tape.Backward(VqVae.ReconstructionLoss(ctx, input, output));
        var analytic = model.NamedParameters().ToDictionary(np => np.Name, np => np.Parameter.Grad.ToArray());
        var offset = zQ0.Zip(zE0, (q, e) => q - e).ToArray();

        Tensor Constant(OpContext c, float[] values, Shape shape)
        {
            var t = c.NewTensor(shape);
            t.CopyFrom(values);
            return t;
        }

        // The losses below are summed in double on the host from the device's float32 outputs: a float32 loss would
        // round to its ulp (3e-8 at 0.3), which over 2h is already a tenth of the smallest gradients checked.
        static double MeanSquaredError(float[] a, float[] b) => a.Zip(b, (p, q) => ((double)p - q) * ((double)p - q)).Sum() / a.Length;

        var relus = new GradientCheck.ReluPattern();
        OpContext Evaluation()
        {
            arena.Reset();
            relus.Clear();
            return new OpContext(arena) { Observer = relus };
        }

        // Decoder: the reconstruction loss; its parameters do not move the code map.
        double Reconstruction()
        {
            var c = Evaluation();
            return MeanSquaredError(model.Forward(c, Input(c, pixels)).Reconstruction.ToArray(), pixels);
        }

        // Encoder: with the code map held fixed, the straight-through estimator is the exact gradient of
        //   S(θ) = recon(decoder(z_e(θ) + (z_q0 − z_e0))) + β·mean((z_e(θ) − z_q0)²)
        // where z_e0, z_q0 are the values at the current θ.
        double Surrogate()
        {
            var c = Evaluation();
            var x = Input(c, pixels);
            var ze = model.EncodeToZe(c, x);
            var shifted = Elementwise.Add(c, ze, Constant(c, offset, ze.Shape));
            return MeanSquaredError(model.DecodeFromZq(c, shifted).ToArray(), pixels) + Small.Beta * MeanSquaredError(ze.ToArray(), zQ0);
        }

        // Codebook: the codebook loss mean((sg[z_e] − e_k)²) with the code map held fixed (the decoder's gradient goes
        // straight through to z_e, not to the codebook).
        double CodebookLoss()
        {
            var c = Evaluation();
            return MeanSquaredError(VectorQuantizer.Lookup(c, c.Ints(codes0, 2, 2, 2), codebook.Value).ToArray(), zE0);
        }

        var random = TestData.Random;
        var report = new List<GradientCheck.ParameterCheck>();
        foreach (var (name, p) in model.NamedParameters())
        {
            Func<double> loss = name.StartsWith("decoder.") ? Reconstruction : name.StartsWith("encoder.") ? Surrogate : CodebookLoss;
            // h = 2e-3 keeps truncation (∝ h²) small. The forward's float32 rounding moves the reconstruction loss (~0.3) by
            // about 1e-8, ~3e-6 over 2h: elements under 2e-4 are not sampled, so rounding stays under 1.5% of what is
            // compared. The codebook loss is ~1e-4 and rounds ~1e4 times finer: there 1e-6 is as safe.
            try
            {
                report.Add(GradientCheck.CheckParameter(p, analytic[name], () => (loss(), relus.Snapshot()), h: 2e-3f, relativeTolerance: 2e-2,
                                                        samples: 4, required: 2, random, smallest: name == "quantizer.codebook" ? 1e-6 : 2e-4));
            }
            catch (GradientMismatchException e)
            {
                Assert.Fail(e.Message);
            }
        }
        foreach (var c in report)
            TestContext.Out.WriteLine($"{c.Name}: {c.Compared} compared of {c.Candidates} clearly non-zero, {c.SkippedAtKinks} at kinks, worst relative error {c.LargestRelativeError:G2}, largest |g| {analytic[c.Name].Max(Math.Abs):G3}");
        Assert.That(report.Select(c => c.Name), Is.EquivalentTo(model.NamedParameters().Select(np => np.Name)), "every parameter tensor was checked");
    }
}

/// <summary>The VQ-VAE's configuration checks (no device).</summary>
public class VqVaeConfigTests
{
    [TestCase(1, 28, 8, 1, "K (codebook size) = 1")]
    [TestCase(64, 28, 0, 1, "D (embedding dim) = 0")]
    [TestCase(64, 28, 8, 2, "input channels = 2")]
    [TestCase(64, 30, 8, 1, "image size = 30")]
    public void Out_of_range_config_values_are_named(int k, int size, int d, int channels, string expected)
    {
        var config = new VqVaeConfig { CodebookSize = k, ImageSize = size, EmbeddingDim = d, InputChannels = channels };
        Assert.That(() => config.Validate(), Throws.TypeOf<ConfigException>().With.Message.Contains(expected));
    }
}
