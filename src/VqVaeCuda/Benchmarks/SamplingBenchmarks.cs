using System.Diagnostics;
using VqVaeCuda.Device;
using VqVaeCuda.Models;
using VqVaeCuda.Sampling;

namespace VqVaeCuda.Benchmarks;

/// <summary>What <see cref="SamplingBenchmarks.Run"/> measures.</summary>
public sealed record SamplingBenchmarkOptions
{
    /// <summary>The prior's architecture (<see cref="GatedPixelCnnConfig.Presets"/>); randomly initialised: speed does not depend on training.</summary>
    public string PriorPreset { get; init; } = "fashion-mnist";

    /// <summary>K, the codes of the prior (the VQ-VAE presets' 512).</summary>
    public int CodebookSize { get; init; } = 512;

    /// <summary>Code maps sampled at once, by each method.</summary>
    public int Count { get; init; } = 64;

    /// <summary>Code map sizes, one comparison each: 7×7 (28×28 images) and 8×8 (32×32).</summary>
    public IReadOnlyList<(int Height, int Width)> MapSizes { get; init; } = [(7, 7), (8, 8)];

    /// <summary>Seeds the prior's parameters and the draws.</summary>
    public int Seed { get; init; } = 1;
}

/// <summary>One map size: both methods timed on the same prior, seed and count.</summary>
/// <param name="Map">"7x7".</param>
/// <param name="Device">"cpu" or "cuda:0".</param>
/// <param name="Count">Code maps sampled by each method.</param>
/// <param name="NaiveSeconds">Wall time of the naive method (H·W full forward passes).</param>
/// <param name="CachedSeconds">Wall time of the cached method.</param>
/// <param name="SameCodes">Whether the two drew the same code maps (they compute the same logits up to GEMM rounding).</param>
public sealed record SamplingBenchmarkResult(string Map, string Device, int Count, double NaiveSeconds, double CachedSeconds, bool SameCodes)
{
    /// <summary>Code maps per second, naive.</summary>
    public double NaiveSamplesPerSecond => Count / NaiveSeconds;

    /// <summary>Code maps per second, cached.</summary>
    public double CachedSamplesPerSecond => Count / CachedSeconds;

    /// <summary>Naive time over cached time: above 1, caching wins.</summary>
    public double CachedSpeedup => NaiveSeconds / CachedSeconds;
}

/// <summary>
/// Sampling speed, naive against cached (<see cref="SamplingMethod"/>), side by side for each map size: the same
/// prior, the same seed and count, one timed run each after an untimed warm-up that compiles and loads the kernels.
/// Per position the naive method runs the whole prior on the whole maps (H·W positions of every layer and of the
/// head); the cached one one position of the horizontal stacks and the head, and a row of the vertical stacks once
/// per row — so the speedup approaches H·W as the fixed costs per step (launches, small GEMMs) shrink.
/// </summary>
public static class SamplingBenchmarks
{
    /// <summary>Runs the comparison for every map size; <paramref name="progress"/> hears what is being timed.</summary>
    public static IReadOnlyList<SamplingBenchmarkResult> Run(IDevice device, SamplingBenchmarkOptions? options = null, Action<string>? progress = null)
    {
        options ??= new SamplingBenchmarkOptions();
        if (options.Count < 1) throw new ArgumentException($"count = {options.Count}: sample at least 1 code map");
        var config = GatedPixelCnnConfig.Preset(options.PriorPreset) with { CodebookSize = options.CodebookSize };
        using var prior = new GatedPixelCnn(device, config, options.Seed);
        foreach (var method in new[] { SamplingMethod.Naive, SamplingMethod.Cached })
            PriorSampler.Sample(prior, new SamplingOptions { Count = 1, Height = 2, Width = 2, Seed = options.Seed, Method = method });

        var results = new List<SamplingBenchmarkResult>();
        foreach (var (h, w) in options.MapSizes)
        {
            var sampling = new SamplingOptions { Count = options.Count, Height = h, Width = w, Seed = options.Seed };
            progress?.Invoke($"naive, {options.Count} maps of {h}x{w}");
            var (naiveCodes, naive) = Time(() => PriorSampler.Sample(prior, sampling with { Method = SamplingMethod.Naive }));
            progress?.Invoke($"cached, {options.Count} maps of {h}x{w}");
            var (cachedCodes, cached) = Time(() => PriorSampler.Sample(prior, sampling with { Method = SamplingMethod.Cached }));
            results.Add(new SamplingBenchmarkResult($"{h}x{w}", device.Name, options.Count, naive, cached, naiveCodes.AsSpan().SequenceEqual(cachedCodes)));
        }
        return results;
    }

    private static (int[] Codes, double Seconds) Time(Func<int[]> sample)
    {
        var clock = Stopwatch.StartNew();
        var codes = sample();  // the codes come back to the host: the device has finished
        return (codes, clock.Elapsed.TotalSeconds);
    }
}
