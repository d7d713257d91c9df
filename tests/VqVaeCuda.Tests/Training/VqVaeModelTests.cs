using VqVaeCuda.Autodiff;
using VqVaeCuda.Models;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Training;

/// <summary>The VQ-VAE's forward/backward against finite differences, on a very small model.</summary>
[TestFixture, Category("Cpu")]
public class VqVaeModelTests
{
    // Smaller than the tiny preset so that each finite difference (a whole forward pass) is cheap.
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

    [Test]
    public void Decoder_gradients_match_finite_differences_of_the_reconstruction_loss()
    {
        using var device = TestDevices.Cpu();
        using var model = new VqVae(device, Small, seed: 3);
        var pixels = TestData.Floats(2 * 64, 0, 1);
        using var arena = new Arena(device, 16 << 20);

        double Loss()
        {
            arena.Reset();
            var c = new OpContext(arena);
            var x = Input(c, pixels);
            return VqVae.ReconstructionLoss(c, x, model.Forward(c, x)).ToArray()[0];
        }

        arena.Reset();
        model.ZeroGrad();
        var tape = new Tape(arena);
        var ctx = new OpContext(arena, tape);
        var input = Input(ctx, pixels);
        tape.Backward(VqVae.ReconstructionLoss(ctx, input, model.Forward(ctx, input)));
        foreach (var name in new[] { "decoder.conv1.weight", "decoder.residual.0.conv3.bias", "decoder.deconv1.weight", "decoder.deconv2.bias" })
            CheckParameter(model.ParameterStore[name], Loss, tolerance: 2e-2);
    }

    [Test]
    public void Encoder_gradients_are_the_straight_through_gradient_plus_the_commitment_gradient()
    {
        // With the code map held fixed, the straight-through estimator is the exact gradient of
        //   S(θ) = recon(decoder(z_e(θ) + (z_q0 − z_e0))) + β·mean((z_e(θ) − z_q0)²)
        // where z_e0, z_q0 are the values at the current θ. Finite differences of S check the
        // encoder's analytic gradients end to end through the quantizer's backward.
        using var device = TestDevices.Cpu();
        using var model = new VqVae(device, Small, seed: 5);
        var pixels = TestData.Floats(2 * 64, 0, 1);
        using var arena = new Arena(device, 16 << 20);

        arena.Reset();
        model.ZeroGrad();
        var tape = new Tape(arena);
        var ctx = new OpContext(arena, tape);
        var input = Input(ctx, pixels);
        var output = model.Forward(ctx, input);
        var zE0 = output.EncoderOutput.ToArray();
        var zQ0 = output.Quantized.Quantized.ToArray();
        tape.Backward(VqVae.ReconstructionLoss(ctx, input, output));
        var offset = zQ0.Zip(zE0, (q, e) => q - e).ToArray();

        double Surrogate()
        {
            arena.Reset();
            var c = new OpContext(arena);
            var x = Input(c, pixels);
            var zE = model.EncodeToZe(c, x);
            var shift = c.NewTensor(zE.Shape);
            shift.CopyFrom(offset);
            var zQ = c.NewTensor(zE.Shape);
            zQ.CopyFrom(zQ0);
            var reconstruction = Losses.Mse(c, model.DecodeFromZq(c, Elementwise.Add(c, zE, shift)), x).ToArray()[0];
            var commitment = Losses.Mse(c, zE, zQ).ToArray()[0];
            return reconstruction + Small.Beta * commitment;
        }

        foreach (var name in new[] { "encoder.conv1.weight", "encoder.conv3.bias", "encoder.pre_quantize.weight" })
            CheckParameter(model.ParameterStore[name], Surrogate, tolerance: 3e-2);
    }

    private static void CheckParameter(Parameter p, Func<double> loss, double tolerance)
    {
        var analytic = p.Grad.ToArray();
        var values = p.Value.ToArray();
        var random = TestData.Random;
        const float h = 2e-3f;
        for (int s = 0; s < 4; s++)
        {
            int j = random.Next(values.Length);
            double numeric = GradientCheck.CentralDifference(p, values, j, h, loss);
            double scale = Math.Max(Math.Abs(numeric), Math.Max(Math.Abs(analytic[j]), 1e-3));
            Assert.That(Math.Abs(analytic[j] - numeric), Is.LessThanOrEqualTo(tolerance * scale + 2e-4),
                        $"d/d{p.Name}[{j}]: analytic {analytic[j]:G6}, finite difference {numeric:G6}");
        }
    }

    [TestCase(1, 28, 8, 1, "K (codebook size) = 1")]
    [TestCase(64, 28, 0, 1, "D (embedding dim) = 0")]
    [TestCase(64, 30, 8, 1, "image size = 30")]
    [TestCase(64, 28, 8, 2, "input channels = 2")]
    public void Out_of_range_config_values_are_named(int k, int size, int d, int channels, string expected)
    {
        var config = new VqVaeConfig { CodebookSize = k, ImageSize = size, EmbeddingDim = d, InputChannels = channels };
        Assert.That(() => config.Validate(), Throws.TypeOf<ConfigException>().With.Message.Contains(expected));
    }
}
