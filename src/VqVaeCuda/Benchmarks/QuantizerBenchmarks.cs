using VqVaeCuda.Device;
using VqVaeCuda.Ops;

namespace VqVaeCuda.Benchmarks;

/// <summary>Sizes and repetitions of <see cref="QuantizerBenchmarks.Run"/>.</summary>
public sealed record QuantizerBenchmarkOptions
{
    /// <summary>M, the vectors to quantize (default 8192: a batch of 128 CIFAR-10 images at 8×8 latents).</summary>
    public int Vectors { get; init; } = 8192;

    /// <summary>D, components per vector (default 64).</summary>
    public int Dimensions { get; init; } = 64;

    /// <summary>K values, one comparison each (default 512, the paper's, and 4096).</summary>
    public IReadOnlyList<int> CodebookSizes { get; init; } = [512, 4096];

    /// <summary>Timed repetitions per variant (median reported).</summary>
    public int Repetitions { get; init; } = 5;

    /// <summary>Untimed runs first.</summary>
    public int Warmup { get; init; } = 1;

    /// <summary>The GPU whose floor is reported beside each time.</summary>
    public ReferenceGpu Reference { get; init; } = ReferenceGpu.H100Sxm;
}

/// <summary>
/// The nearest-code search two ways, side by side: the fused kernel (vq_nearest_fused_f32: codebook tiles
/// in shared memory, running argmin in registers, the M×K distances never stored) against the device
/// GEMM writing the M×K matrix of z·e followed by vq_argmin_rows_f32 reading it back. Both start from the
/// same [M, D] rows and the same ‖e‖² (computed once per step for either path, so not timed). Per K the
/// results are: fused (with <see cref="BenchmarkResult.FusedSpeedup"/> = unfused ms / fused ms), unfused,
/// and the unfused path's two halves.
/// <para>
/// FLOPs 2·M·K·D for both. Fewest bytes: fused reads z (4MD) and E (4KD, plus 4K norms) and writes the
/// M indices (4M) — plus 16·S·M when the codes are split S ways to fill a large GPU; unfused moves the
/// same plus 4MK written by the GEMM and 4MK read by the argmin. At M = 8192, D = 64 the M×K matrix is
/// 16 MiB (K = 512) or 128 MiB (K = 4096) against ~2 MiB of inputs: the unfused path is bound by memory,
/// the fused one by arithmetic.
/// </para>
/// </summary>
public static class QuantizerBenchmarks
{
    /// <summary>Runs the comparison for every K of <paramref name="options"/>; <paramref name="progress"/> receives each result as measured.</summary>
    public static IReadOnlyList<BenchmarkResult> Run(IDevice device, QuantizerBenchmarkOptions? options = null, Action<BenchmarkResult>? progress = null)
    {
        options ??= new QuantizerBenchmarkOptions();
        var results = new List<BenchmarkResult>();
        foreach (int k in options.CodebookSizes)
            foreach (var r in Compare(device, options, k))
            {
                results.Add(r);
                progress?.Invoke(r);
            }
        return results;
    }

    private static IEnumerable<BenchmarkResult> Compare(IDevice device, QuantizerBenchmarkOptions o, int k)
    {
        int m = o.Vectors, d = o.Dimensions;
        var random = new Random(1234);
        var z = new float[(long)m * d];
        var e = new float[(long)k * d];
        for (int i = 0; i < z.Length; i++) z[i] = (float)(random.NextDouble() * 2 - 1);
        for (int i = 0; i < e.Length; i++) e[i] = (float)(random.NextDouble() * 2 - 1);
        var (splits, codesPerSplit) = NearestCodeKernels.FusedSplits(device, m, k);

        using var zBuffer = device.Allocate(z.LongLength * sizeof(float));
        using var eBuffer = device.Allocate(e.LongLength * sizeof(float));
        using var et = device.Allocate(e.LongLength * sizeof(float));
        using var enorm = device.Allocate((long)k * sizeof(float));
        using var fusedIndices = device.Allocate((long)m * sizeof(int));
        using var unfusedIndices = device.Allocate((long)m * sizeof(int));
        using var keys = device.Allocate(Math.Max(1, splits > 1 ? 8L * splits * m : 1));
        using var s = device.Allocate((long)m * k * sizeof(float));
        device.CopyToDevice<float>(z, zBuffer.Pointer);
        device.CopyToDevice<float>(e, eBuffer.Pointer);
        NearestCodeKernels.PrepareCodebook(device, eBuffer.Pointer, et.Pointer, enorm.Pointer, k, d);

        void Fused() => NearestCodeKernels.NearestFused(device, zBuffer.Pointer, m, d, 1, et.Pointer, enorm.Pointer, k, fusedIndices.Pointer, keys.Pointer,
                                                       splits, codesPerSplit);
        void Gemm() => NearestCodeKernels.DotProducts(device, zBuffer.Pointer, m, d, 1, eBuffer.Pointer, k, s.Pointer);
        void Argmin() => NearestCodeKernels.ArgminRows(device, s.Pointer, enorm.Pointer, unfusedIndices.Pointer, m, k);

        double fusedMs = Timing.MedianMilliseconds(device, Fused, o.Warmup, o.Repetitions);
        double unfusedMs = Timing.MedianMilliseconds(device, () =>
        {
            Gemm();
            Argmin();
        }, o.Warmup, o.Repetitions);
        double gemmMs = Timing.MedianMilliseconds(device, Gemm, o.Warmup, o.Repetitions);
        double argminMs = Timing.MedianMilliseconds(device, Argmin, o.Warmup, o.Repetitions);

        // Both paths must find the same codes (up to near-ties, where the two summation orders round differently).
        var a = new int[m];
        var b = new int[m];
        device.CopyToHost<int>(fusedIndices.Pointer, a);
        device.CopyToHost<int>(unfusedIndices.Pointer, b);
        int agree = a.Zip(b).Count(p => p.First == p.Second);

        double flops = 2.0 * m * k * d;
        double inputs = 4.0 * m * d + 4.0 * k * d + 4.0 * k;
        double fusedBytes = inputs + 4.0 * m + (splits > 1 ? 16.0 * splits * m : 0);
        double matrix = 4.0 * m * k;
        double unfusedBytes = inputs + 4.0 * m + 2 * matrix;
        string group = $"nearest code M={m} K={k} D={d}";
        BenchmarkResult Result(string variant, double ms, double f, double bytes, string? note = null) =>
            new(group, variant, device.Name, ms, f, bytes, o.Reference.FloorMilliseconds(f, bytes), note);

        yield return Result("fused vq_nearest_fused_f32" + (splits > 1 ? $" ({splits} code splits + merge)" : ""), fusedMs, flops, fusedBytes,
                            $"same index as unfused for {agree} of {m} vectors") with { FusedSpeedup = unfusedMs / fusedMs };
        yield return Result("unfused: GEMM + vq_argmin_rows_f32", unfusedMs, flops, unfusedBytes,
                            $"the {matrix / 1048576:F0} MiB z·e matrix written, then read back");
        yield return Result("  unfused part 1: device GEMM (z·e matrix)", gemmMs, flops, inputs + matrix);
        yield return Result("  unfused part 2: vq_argmin_rows_f32", argminMs, 2.0 * m * k, matrix + 4.0 * k + 4.0 * m);
    }
}
