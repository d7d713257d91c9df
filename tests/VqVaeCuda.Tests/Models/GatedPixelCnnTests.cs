using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Models;
using VqVaeCuda.Optim;
using VqVaeCuda.Tensors;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Models;

/// <summary>
/// The Gated PixelCNN prior as a specification: causal in raster order, no blind spot once deep enough, exact
/// gradients for every parameter, and able to learn (it overfits a few code maps).
/// </summary>
public class GatedPixelCnnTests(DeviceKind kind) : DeviceSpecification(kind)
{
    private static GatedPixelCnnConfig Config(int first, int kernel, int layers, int classes, int k = 6, int width = 4) =>
        new() { CodebookSize = k, Width = width, Layers = layers, FirstKernel = first, Kernel = kernel, HeadHidden = 8, Classes = classes };

    private static int[] Codes(Random random, int count, int k) => Enumerable.Range(0, count).Select(_ => random.Next(k)).ToArray();

    private static float[] Logits(GatedPixelCnn prior, Arena arena, int[] codes, int n, int h, int w, int[]? labels)
    {
        arena.Reset();
        var ctx = new OpContext(arena);
        return prior.Forward(ctx, ctx.Ints(codes, n, h, w), labels is null ? null : ctx.Ints(labels, n)).ToArray();
    }

    // ---- causality --------------------------------------------------------------------------------------

    [TestCase(3, 3, 1, 0)]   // mask A alone
    [TestCase(7, 3, 1, 2)]
    [TestCase(3, 3, 2, 0)]
    [TestCase(5, 3, 3, 0)]
    [TestCase(7, 5, 2, 0)]
    [TestCase(7, 3, 3, 2)]
    [TestCase(5, 5, 2, 3)]
    [TestCase(3, 5, 3, 0)]
    public void Changing_a_code_changes_no_logit_at_or_before_it_and_some_logit_after_it(int first, int kernel, int layers, int classes)
    {
        const int n = 2, h = 5, w = 8, k = 6, positions = h * w;
        using var device = Open();
        using var prior = new GatedPixelCnn(device, Config(first, kernel, layers, classes, k), seed: first * 100 + kernel * 10 + layers);
        using var arena = new Arena(device, 8L << 20);
        var random = new Random(first + kernel + layers);
        var codes = Codes(random, n * positions, k);
        int[]? labels = classes > 0 ? [0, classes - 1] : null;
        var before = Logits(prior, arena, codes, n, h, w, labels);

        for (int q = 0; q < positions; q++)
        {
            var changed = (int[])codes.Clone();
            changed[q] = (changed[q] + 1) % k;                        // sample 0 only: sample 1 must not move at all
            var after = Logits(prior, arena, changed, n, h, w, labels);
            bool laterMoved = false;
            for (int c = 0; c < k; c++)
                for (int p = 0; p < positions; p++)
                {
                    int i = c * positions + p;                         // sample 0's logit of code c at position p
                    if (p <= q) Assert.That(after[i], Is.EqualTo(before[i]), $"logit {c} at position {p} moved when the code at {q} changed");
                    else laterMoved |= after[i] != before[i];
                    int j = (k + c) * positions + p;                   // sample 1
                    Assert.That(after[j], Is.EqualTo(before[j]), "another sample's logits moved");
                }
            if (q < positions - 1) Assert.That(laterMoved, Is.True, $"no later logit saw the code at position {q}");
        }
    }

    // ---- receptive field ----------------------------------------------------------------------------------

    /// <summary>
    /// For the logits at <paramref name="target"/> (a seed gradient of random signs on its K logits), the positions whose
    /// embedded code receives a non-zero gradient, as a [H·W] mask.
    /// </summary>
    private static bool[] Seen(GatedPixelCnn prior, int h, int w, int target)
    {
        var config = prior.Config;
        using var arena = new Arena(prior.Device, 8L << 20);
        var tape = new Tape(arena);
        var ctx = new OpContext(arena, tape);
        var random = new Random(target);
        var codes = ctx.Ints(Codes(random, h * w, config.CodebookSize), 1, h, w);
        // GatedPixelCnn.Forward step by step, to hold on to the embedding's output.
        var x = prior.EmbeddingLayer.ForwardNchw(ctx, codes);
        Tensor? v = x;
        Tensor hStack = x;
        foreach (var layer in prior.Layers) (v, hStack) = layer.Forward(ctx, v!, hStack, null);
        var logits = prior.Head(ctx, hStack);
        var seed = new float[logits.Count];
        for (int c = 0; c < config.CodebookSize; c++) seed[c * h * w + target] = random.Next(2) == 0 ? -1f : 1f;
        tape.Backward(logits, ctx.Floats(seed, 1, config.CodebookSize, h, w));
        var grad = tape.GradOf(x).ToArray();
        var seen = new bool[h * w];
        for (int c = 0; c < config.Width; c++)
            for (int p = 0; p < h * w; p++)
                seen[p] |= grad[c * h * w + p] != 0f;
        return seen;
    }

    [Test]
    public void A_deep_enough_prior_sees_every_earlier_position_and_nothing_else()
    {
        const int h = 5, w = 8;
        var config = Config(7, 3, 5, 0);
        Assert.That(config.ReceptiveReach, Is.GreaterThanOrEqualTo(Math.Max(h, w) - 1), "the test needs a reach across the map");
        using var device = Open();
        using var prior = new GatedPixelCnn(device, config, seed: 8);
        for (int target = 0; target < h * w; target++)
        {
            var seen = Seen(prior, h, w, target);
            for (int p = 0; p < h * w; p++)
                Assert.That(seen[p], Is.EqualTo(p < target),
                            $"position {p} ({p / w},{p % w}) seen by the logits at {target} ({target / w},{target % w}): no blind spot, no future");
        }
    }

    [Test]
    public void A_one_layer_prior_does_not_see_far_earlier_positions()
    {
        // The reverse of the test above, so that it can fail: one 3×3 layer sees one row up and one column left.
        const int h = 5, w = 8, target = h * w - 1;
        using var device = Open();
        using var prior = new GatedPixelCnn(device, Config(3, 3, 1, 0), seed: 8);
        var seen = Seen(prior, h, w, target);
        Assert.That(seen[0], Is.False, "the top-left corner is out of a one-layer prior's reach");
        Assert.That(seen[target - 1], Is.True, "the left neighbour is in reach");
        Assert.That(seen[target - w], Is.True, "the position above is in reach");
        Assert.That(seen.Count(s => s), Is.EqualTo(3), "(r−1, c−1), (r−1, c) and (r, c−1): the last column has no right neighbour");
    }

    // ---- gradients ------------------------------------------------------------------------------------------

    [Test]
    public void Every_parameter_tensor_has_the_gradient_of_the_loss_by_finite_differences()
    {
        const int n = 3, h = 4, w = 5, k = 6;
        using var device = Open();
        using var prior = new GatedPixelCnn(device, Config(5, 3, 3, 2, k), seed: 17);
        using var arena = new Arena(device, 8L << 20);
        var random = new Random(23);
        var codes = Codes(random, n * h * w, k);
        int[] labels = [1, 0, 1];

        // The summed NLL, in double on the host from the device's logits: its rounding noise is that of the logits alone
        // (~1e-7 relative), not that of a float32 loss.
        double Loss()
        {
            var logits = Logits(prior, arena, codes, n, h, w, labels);
            double sum = 0;
            for (int b = 0; b < n; b++)
                for (int q = 0; q < h * w; q++)
                {
                    double max = double.NegativeInfinity, exp = 0;
                    for (int c = 0; c < k; c++) max = Math.Max(max, logits[(b * k + c) * h * w + q]);
                    for (int c = 0; c < k; c++) exp += Math.Exp(logits[(b * k + c) * h * w + q] - max);
                    sum += max + Math.Log(exp) - logits[(b * k + codes[b * h * w + q]) * h * w + q];
                }
            return sum;
        }

        arena.Reset();
        prior.ZeroGrad();
        var tape = new Tape(arena);
        var ctx = new OpContext(arena, tape);
        var codesT = ctx.Ints(codes, n, h, w);
        tape.Backward(GatedPixelCnn.Loss(ctx, prior.Forward(ctx, codesT, ctx.Ints(labels, n)), codesT));
        const int positions = n * h * w;   // the loss op is the mean NLL: its gradient times the positions is the sum's

        // Central differences: h = 5e-3 keeps the truncation error (∝ h²) small, and the noise — a few 1e-7 of the
        // logits over 2h, ~3e-5 — far below the gradients checked, which are at least 3e-3.
        const float step = 5e-3f;
        double loss0 = Loss();
        const double relative = 3e-2, smallest = 3e-3, noise = 1e-4;
        var checkedTensors = new List<string>();
        int comparedInAll = 0, skippedInAll = 0;
        foreach (var (name, p) in prior.NamedParameters())
        {
            var analytic = p.Grad.ToArray().Select(g => g * positions).ToArray();
            var values = p.Value.ToArray();
            if (name == "layers.2.vertical_condition.weight")
            {
                // The last layer's vertical output feeds nothing (the head reads the horizontal stack), so neither does its gate's bias.
                Assert.That(analytic, Is.All.Zero, name);
                p.Value.CopyFrom(values.Select(v => v + 1f).ToArray());
                Assert.That(Loss(), Is.EqualTo(loss0), $"{name} changes the loss");
                p.Value.CopyFrom(values);
                checkedTensors.Add(name);
                continue;
            }
            double largest = analytic.Max(Math.Abs);
            // Only gradients clearly above zero (masked taps and unused rows have none), so no sample passes vacuously.
            var candidates = Enumerable.Range(0, values.Length)
                                       .Where(j => Math.Abs(analytic[j]) >= Math.Max(smallest, 0.05 * largest)).ToArray();
            Assert.That(candidates, Is.Not.Empty, $"{name}: no element has a gradient of {smallest} or more to check (largest {largest:G3})");
            int compared = 0;
            foreach (int j in candidates.OrderBy(_ => random.Next()))
            {
                double Difference(float hStep) => GradientCheck.CentralDifference(p, values, j, hStep, Loss);
                double numeric = Difference(step), half = Difference(step / 2);
                // A ReLU of the head that switches inside ±h makes the loss non-smooth there: the two steps disagree, and a
                // finite difference measures nothing. Such an element is skipped (at least two per tensor must be compared).
                if (Math.Abs(numeric - half) > relative * Math.Max(Math.Abs(numeric), Math.Abs(half)) / 2 + 2 * noise)
                {
                    skippedInAll++;
                    continue;
                }
                double a = analytic[j];
                Assert.That(Math.Abs(a - numeric), Is.LessThanOrEqualTo(relative * Math.Max(Math.Abs(a), Math.Abs(numeric)) + noise),
                            $"d loss / d {name}[{j}]: analytic {a:G6}, finite difference {numeric:G6}");
                comparedInAll++;
                if (++compared == 3) break;
            }
            Assert.That(compared, Is.GreaterThanOrEqualTo(Math.Min(2, candidates.Length)), $"{name}: too few smooth elements to compare");
            Assert.That(compared, Is.GreaterThanOrEqualTo(1), $"{name}: no element compared");
            checkedTensors.Add(name);
        }
        TestContext.Out.WriteLine($"{comparedInAll} gradients compared, {skippedInAll} skipped at a kink");
        // Every kind of tensor was among them: embedding, each layer's four convolutions and two conditions, the head.
        Assert.That(checkedTensors, Has.Count.EqualTo(1 + 3 * 10 + 4));
        Assert.That(checkedTensors, Does.Contain("layers.2.vertical_condition.weight").And.Contain("output.bias").And.Contain("embedding.weight"));
    }

    // ---- learning ------------------------------------------------------------------------------------------

    [Test]
    public void The_prior_overfits_four_code_maps()
    {
        const int n = 4, h = 7, w = 7, k = 8, maxSteps = 400;
        using var device = Open();
        var config = new GatedPixelCnnConfig { CodebookSize = k, Width = 16, Layers = 5, FirstKernel = 7, Kernel = 3, HeadHidden = 32 };
        using var prior = new GatedPixelCnn(device, config, seed: 2);
        var random = new Random(5);
        var codes = Codes(random, n * h * w, k);
        for (int i = 0; i < n; i++) codes[i * h * w] = i;   // distinct first codes: after position 0 each map is known
        using var adam = new Adam(prior.Parameters(), learningRate: 3e-3);
        using var arena = new Arena(device, 16L << 20);
        double loss = double.NaN;
        int steps = 0;
        while (steps < maxSteps)
        {
            arena.Reset();
            adam.ZeroGrad();
            var tape = new Tape(arena);
            var ctx = new OpContext(arena, tape);
            var target = ctx.Ints(codes, n, h, w);
            var lossTensor = GatedPixelCnn.Loss(ctx, prior.Forward(ctx, target), target);
            tape.Backward(lossTensor);
            adam.Step();
            steps++;
            loss = lossTensor.ToArray()[0];
            if (loss < 0.1) break;
        }
        // The first position carries log 4 ≈ 1.39 nats that no prior can remove: 0.028 of the mean over 49 positions.
        Assert.That(loss, Is.LessThan(0.1), $"mean NLL after {steps} Adam steps");
        TestContext.Out.WriteLine($"mean NLL {loss:F4} nats/position after {steps} steps");
    }
}
