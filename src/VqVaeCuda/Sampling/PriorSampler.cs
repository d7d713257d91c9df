using VqVaeCuda.Autodiff;
using VqVaeCuda.Models;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Sampling;

// INTERIM HOST-SIDE SAMPLER. This file holds the public sampling contract (SamplingMethod, SamplingOptions,
// PriorSampler.Sample) with the plainest correct implementation, so that prior training and `vqvae sample` build
// and run before the device samplers (naive and cached, DESIGN.md "Sampling") land. The device sampler replaces
// this file whole; nothing else lives in this folder. Both methods run the same naive loop here: the whole prior
// re-run for every position, the position's logits read to the host, the draw made there.

/// <summary>How code maps are sampled: re-running the whole prior per position, or keeping each layer's activations.</summary>
public enum SamplingMethod
{
    /// <summary>The whole prior re-run for every position.</summary>
    Naive,

    /// <summary>Each layer's activations kept; only what the new position changes is computed (same samples as naive).</summary>
    Cached,
}

/// <summary>What to sample from a Gated PixelCNN prior.</summary>
public sealed record SamplingOptions
{
    /// <summary>Code maps to sample.</summary>
    public int Count { get; init; } = 64;

    /// <summary>Rows of each code map.</summary>
    public int Height { get; init; } = 7;

    /// <summary>Columns of each code map.</summary>
    public int Width { get; init; } = 7;

    /// <summary>Logits are divided by this before the softmax: below 1 sharper, above 1 flatter; must be positive.</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>Seed of the draws.</summary>
    public int Seed { get; init; }

    /// <summary>One class per sample; required exactly when the prior is class-conditional.</summary>
    public IReadOnlyList<int>? Labels { get; init; }

    /// <summary>Naive or cached (the same samples for a seed).</summary>
    public SamplingMethod Method { get; init; } = SamplingMethod.Cached;
}

/// <summary>Ancestral sampling of code maps from a <see cref="GatedPixelCnn"/>, position by position in raster order.</summary>
public static class PriorSampler
{
    /// <summary>
    /// Samples <see cref="SamplingOptions.Count"/> code maps of <see cref="SamplingOptions.Height"/>×<see cref="SamplingOptions.Width"/>:
    /// int32 codes [Count·H·W] in raster order (sample, row, column). <paramref name="progress"/> hears the number of
    /// positions done (of H·W).
    /// </summary>
    /// <exception cref="ArgumentException">An option is out of range, or labels are missing, superfluous or outside the prior's classes.</exception>
    public static int[] Sample(GatedPixelCnn prior, SamplingOptions options, IProgress<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(prior);
        ArgumentNullException.ThrowIfNull(options);
        int[]? labels = Validate(prior.Config, options);
        int n = options.Count, h = options.Height, w = options.Width, k = prior.Config.CodebookSize, positions = h * w;

        // The uniforms of the inverse-CDF draws, sample-major: draw q of sample i is uniforms[i·H·W + q].
        var random = new Random(options.Seed);
        var uniforms = new double[(long)n * positions];
        for (long i = 0; i < uniforms.LongLength; i++) uniforms[i] = random.NextDouble();

        var codes = new int[(long)n * positions];
        var device = prior.Device;
        long bytes = Arena.Measure(device, probe =>
        {
            var ctx = new OpContext(probe);
            prior.Forward(ctx, ctx.Zeros(new Shape(n, h, w), DType.Int32), labels is null ? null : ctx.Zeros(new Shape(n), DType.Int32));
        });
        using var arena = new Arena(device, bytes);
        var probabilities = new double[k];
        for (int q = 0; q < positions; q++)
        {
            arena.Reset();
            var ctx = new OpContext(arena);
            var codeTensor = ctx.NewTensor(new Shape(n, h, w), DType.Int32, "sampled code maps");
            codeTensor.CopyFrom(codes);
            Tensor? labelTensor = null;
            if (labels is not null)
            {
                labelTensor = ctx.NewTensor(new Shape(n), DType.Int32, "sample labels");
                labelTensor.CopyFrom(labels);
            }
            var logits = prior.Forward(ctx, codeTensor, labelTensor).ToArray();  // [N, K, H, W]
            for (int i = 0; i < n; i++)
            {
                double max = double.NegativeInfinity;
                for (int c = 0; c < k; c++)
                {
                    probabilities[c] = logits[((long)i * k + c) * positions + q] / (double)options.Temperature;
                    max = Math.Max(max, probabilities[c]);
                }
                double total = 0;
                for (int c = 0; c < k; c++) total += probabilities[c] = Math.Exp(probabilities[c] - max);
                codes[(long)i * positions + q] = InverseCdf(probabilities, total, uniforms[(long)i * positions + q]);
            }
            progress?.Report(q + 1);
        }
        return codes;
    }

    // The first code whose cumulative probability exceeds u·total; the last code with any mass if rounding runs out.
    private static int InverseCdf(double[] weights, double total, double u)
    {
        double target = u * total, cumulative = 0;
        int last = 0;
        for (int c = 0; c < weights.Length; c++)
        {
            if (weights[c] <= 0) continue;
            last = c;
            cumulative += weights[c];
            if (cumulative > target) return c;
        }
        return last;
    }

    private static int[]? Validate(GatedPixelCnnConfig config, SamplingOptions options)
    {
        if (options.Count < 1) throw new ArgumentException($"sampling: count = {options.Count}: must be at least 1");
        if (options.Height < 1 || options.Width < 1)
            throw new ArgumentException($"sampling: code maps of {options.Height}x{options.Width}: both sides must be at least 1");
        if (!(options.Temperature > 0) || !float.IsFinite(options.Temperature))
            throw new ArgumentException($"sampling: temperature = {options.Temperature}: must be a positive number");
        if (!Enum.IsDefined(options.Method)) throw new ArgumentException($"sampling: unknown method {options.Method}");
        if (!config.IsClassConditional)
        {
            if (options.Labels is not null) throw new ArgumentException("sampling: this prior is unconditional: it takes no labels");
            return null;
        }
        if (options.Labels is null)
            throw new ArgumentException($"sampling: this prior is class-conditional ({config.Classes} classes): give one label per sample");
        if (options.Labels.Count != options.Count)
            throw new ArgumentException($"sampling: {options.Labels.Count} labels for {options.Count} samples: give one label per sample");
        var labels = options.Labels.ToArray();
        foreach (var label in labels)
            if (label < 0 || label >= config.Classes)
                throw new ArgumentException($"sampling: class {label} is outside this prior's classes 0..{config.Classes - 1}");
        return labels;
    }
}
