using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Models;
using VqVaeCuda.Sampling;
using VqVaeCuda.Tensors;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Sampling;

/// <summary>PriorSampler: naive and cached agree, seeds reproduce, labels condition, T → 0 is greedy, bad options are named.</summary>
public class PriorSamplerTests(DeviceKind kind) : DeviceSpecification(kind)
{
    // Tiny: 3 layers (5×5 first, 3×3 after) reach 2 + 2 = 4 rows and columns, enough to see across a 5×6 map.
    private static GatedPixelCnnConfig Tiny(int classes = 0) =>
        new() { CodebookSize = 8, Width = 6, Layers = 3, FirstKernel = 5, Kernel = 3, HeadHidden = 12, Classes = classes };

    private static SamplingOptions Options(int seed, SamplingMethod method, int count = 3, IReadOnlyList<int>? labels = null) =>
        new() { Count = count, Height = 5, Width = 6, Seed = seed, Method = method, Labels = labels };

    /// <summary>The logits of every position given the final codes (teacher forcing): what each step of a sampler saw.</summary>
    private static float[] ForwardLogits(GatedPixelCnn prior, int[] codes, int count, int h, int w, IReadOnlyList<int>? labels)
    {
        using var arena = new Arena(prior.Device, 16L << 20);
        var ctx = new OpContext(arena);
        var labelTensor = labels is null ? null : ctx.Ints(labels.ToArray(), count);
        return prior.Forward(ctx, ctx.Ints(codes, count, h, w), labelTensor).ToArray();
    }

    private static Dictionary<int, float[]> Observe(GatedPixelCnn prior, SamplingOptions options, out int[] codes)
    {
        var seen = new Dictionary<int, float[]>();
        codes = PriorSampler.SampleObserved(prior, options, null, (q, logits) => seen[q] = logits);
        return seen;
    }

    [TestCase(1, 0)]
    [TestCase(2, 0)]
    [TestCase(3, 3)]
    [TestCase(4, 3)]
    public void Naive_and_cached_draw_the_same_codes_from_the_same_logits(int seed, int classes)
    {
        using var device = Open();
        using var prior = new GatedPixelCnn(device, Tiny(classes), seed: 10 + seed);
        int[]? labels = classes > 0 ? [2, 0, 1] : null;
        var naiveLogits = Observe(prior, Options(seed, SamplingMethod.Naive, labels: labels), out var naive);
        var cachedLogits = Observe(prior, Options(seed, SamplingMethod.Cached, labels: labels), out var cached);

        Assert.That(cached, Is.EqualTo(naive), "the same uniforms through logits equal to rounding draw the same codes");
        Assert.That(naive.Distinct().Count(), Is.GreaterThan(3), "the maps are not constant");
        // Each step's logits, against the full forward on the final maps (what every step conditioned on).
        const int k = 8, count = 3, positions = 30;
        var full = ForwardLogits(prior, naive, count, 5, 6, labels);
        for (int q = 0; q < positions; q++)
            for (int i = 0; i < count * k; i++)
            {
                float expected = full[(long)i * positions + q];
                Assert.That(naiveLogits[q][i], Is.EqualTo(expected), $"naive logits at position {q}, element {i}: the prior's forward itself");
                Assert.That(cachedLogits[q][i], Is.EqualTo(expected).Within(1e-5f * Math.Max(1f, Math.Abs(expected))),
                            $"cached logits at position {q}, element {i}");
            }
    }

    [TestCase(3, 4)]
    [TestCase(1, 5)]
    [TestCase(6, 1)]
    public void Naive_and_cached_agree_when_the_kernels_are_wider_than_the_map(int h, int w)
    {
        using var device = Open();
        var config = Tiny(classes: 2) with { FirstKernel = 7, Kernel = 5, Layers = 2 };
        using var prior = new GatedPixelCnn(device, config, seed: h * 10 + w);
        var options = new SamplingOptions { Count = 2, Height = h, Width = w, Seed = 3, Labels = [1, 0] };
        var naiveLogits = Observe(prior, options with { Method = SamplingMethod.Naive }, out var naive);
        var cachedLogits = Observe(prior, options with { Method = SamplingMethod.Cached }, out var cached);
        Assert.That(cached, Is.EqualTo(naive));
        for (int q = 0; q < h * w; q++)
            for (int i = 0; i < naiveLogits[q].Length; i++)
                Assert.That(cachedLogits[q][i], Is.EqualTo(naiveLogits[q][i]).Within(1e-5f * Math.Max(1f, Math.Abs(naiveLogits[q][i]))),
                            $"logits at position {q}, element {i}");
    }

    [Test]
    public void A_seed_reproduces_its_samples_and_another_seed_gives_others()
    {
        using var device = Open();
        using var prior = new GatedPixelCnn(device, Tiny(), seed: 3);
        var first = PriorSampler.Sample(prior, Options(7, SamplingMethod.Cached));
        var again = PriorSampler.Sample(prior, Options(7, SamplingMethod.Cached));
        var other = PriorSampler.Sample(prior, Options(8, SamplingMethod.Cached));

        Assert.That(again, Is.EqualTo(first));
        Assert.That(other, Is.Not.EqualTo(first));
        Assert.That(first, Has.Length.EqualTo(3 * 5 * 6).And.All.InRange(0, 7));
    }

    [Test]
    public void A_sample_does_not_depend_on_how_many_are_drawn_beside_it()
    {
        using var device = Open();
        using var prior = new GatedPixelCnn(device, Tiny(), seed: 4);
        var three = PriorSampler.Sample(prior, Options(5, SamplingMethod.Naive, count: 3));
        var one = PriorSampler.Sample(prior, Options(5, SamplingMethod.Naive, count: 1));
        Assert.That(three.Take(30), Is.EqualTo(one));
    }

    [Test]
    public void The_class_label_changes_the_samples()
    {
        using var device = Open();
        using var prior = new GatedPixelCnn(device, Tiny(classes: 2), seed: 6);
        // Class 1 pushes every gate of both stacks hard, to ±1 (tanh and σ saturated): its samples must differ from class 0's.
        foreach (var layer in prior.Layers)
            foreach (var table in new[] { layer.HorizontalCondition!.Weight.Value, layer.VerticalCondition!.Weight.Value })
            {
                var values = table.ToArray();
                int width = table.Shape[1];
                for (int j = 0; j < width; j++) values[width + j] = j % 3 == 0 ? -8f : 8f;
                table.CopyFrom(values);
            }
        prior.Output.Weight.Value.CopyFrom(prior.Output.Weight.Value.ToArray().Select(v => 4 * v).ToArray());  // sharper logits
        var zeros = PriorSampler.Sample(prior, Options(9, SamplingMethod.Cached, labels: [0, 0, 0]));
        var ones = PriorSampler.Sample(prior, Options(9, SamplingMethod.Cached, labels: [1, 1, 1]));
        int differing = zeros.Zip(ones).Count(p => p.First != p.Second);
        Assert.That(differing, Is.GreaterThan(zeros.Length / 4), "the same uniforms under another class draw other codes");
        var mixed = PriorSampler.Sample(prior, Options(9, SamplingMethod.Cached, labels: [0, 1, 0]));
        Assert.That(mixed.Take(30), Is.EqualTo(zeros.Take(30)), "each sample follows its own label");
        Assert.That(mixed.Skip(30).Take(30), Is.EqualTo(ones.Skip(30).Take(30)));
    }

    [TestCase(SamplingMethod.Naive)]
    [TestCase(SamplingMethod.Cached)]
    public void A_tiny_temperature_follows_the_greedy_path(SamplingMethod method)
    {
        using var device = Open();
        using var prior = new GatedPixelCnn(device, Tiny(), seed: 12);
        const int count = 2, h = 5, w = 6, k = 8, positions = h * w;
        // Greedy: at each position the argmax of the prior's logits given the codes chosen so far.
        var greedy = new int[count * positions];
        for (int q = 0; q < positions; q++)
        {
            var logits = ForwardLogits(prior, greedy, count, h, w, null);
            for (int n = 0; n < count; n++)
            {
                int best = 0;
                for (int c = 1; c < k; c++)
                    if (logits[(n * k + c) * positions + q] > logits[(n * k + best) * positions + q]) best = c;
                greedy[n * positions + q] = best;
            }
        }
        var sampled = PriorSampler.Sample(prior, Options(21, method, count) with { Temperature = 1e-20f });
        Assert.That(sampled, Is.EqualTo(greedy));
    }

    [Test]
    public void Progress_counts_the_positions_done()
    {
        using var device = Open();
        using var prior = new GatedPixelCnn(device, Tiny(), seed: 1);
        var reports = new List<int>();
        PriorSampler.Sample(prior, Options(1, SamplingMethod.Cached, count: 1), new SynchronousProgress(reports.Add));
        Assert.That(reports, Is.EqualTo(Enumerable.Range(1, 30)));
    }

    private sealed class SynchronousProgress(Action<int> report) : IProgress<int>
    {
        public void Report(int value) => report(value);
    }

    private static readonly object[] BadOptions =
    [
        new object[] { 0, new SamplingOptions { Count = 0 }, "count = 0" },
        new object[] { 0, new SamplingOptions { Count = -3 }, "count = -3" },
        new object[] { 0, new SamplingOptions { Height = 0 }, "code map size 0x7" },
        new object[] { 0, new SamplingOptions { Temperature = 0f }, "temperature = 0" },
        new object[] { 0, new SamplingOptions { Temperature = -1f }, "temperature = -1" },
        new object[] { 0, new SamplingOptions { Temperature = float.NaN }, "temperature = NaN" },
        new object[] { 0, new SamplingOptions { Temperature = float.PositiveInfinity }, "must be a finite number above 0" },
        new object[] { 0, new SamplingOptions { Labels = [0, 1] }, "this prior is unconditional" },
        new object[] { 3, new SamplingOptions { Count = 2 }, "class-conditional (3 classes): give one label per sample" },
        new object[] { 3, new SamplingOptions { Count = 2, Labels = [1] }, "1 labels for 2 samples" },
        new object[] { 3, new SamplingOptions { Count = 2, Labels = [1, 2, 0] }, "3 labels for 2 samples" },
        new object[] { 3, new SamplingOptions { Count = 2, Labels = [1, 3] }, "labels[1] = 3: must be a class in [0, 3)" },
        new object[] { 3, new SamplingOptions { Count = 2, Labels = [-1, 0] }, "labels[0] = -1" },
        new object[] { 0, new SamplingOptions { Method = (SamplingMethod)7 }, "method = 7" },
    ];

    [TestCaseSource(nameof(BadOptions))]
    public void Bad_options_are_refused_with_a_message_naming_them(int classes, SamplingOptions options, string expected)
    {
        using var device = Open();
        using var prior = new GatedPixelCnn(device, Tiny(classes), seed: 1);
        Assert.That(() => PriorSampler.Sample(prior, options), Throws.ArgumentException.With.Message.Contains(expected));
    }
}
