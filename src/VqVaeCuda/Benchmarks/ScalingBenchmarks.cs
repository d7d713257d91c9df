using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Benchmarks;

/// <summary>One batch size of <see cref="ScalingBenchmarks.Steps"/>.</summary>
/// <param name="Batch">Images per step.</param>
/// <param name="StepMs">Median step time.</param>
/// <param name="ImagesPerSecond">Batch / step time.</param>
/// <param name="MicrosecondsPerImage">Step time / batch.</param>
/// <param name="Gflops">FLOPs per step / step time.</param>
/// <param name="LaunchesPerStep">Kernel launches per step (they do not grow with the batch).</param>
/// <param name="ArenaMiB">Arena memory the step used.</param>
public sealed record StepScalingPoint(int Batch, double StepMs, double ImagesPerSecond, double MicrosecondsPerImage, double Gflops, long LaunchesPerStep,
                                      double ArenaMiB);

/// <summary>One (K, D) of <see cref="ScalingBenchmarks.Quantizer"/>.</summary>
/// <param name="Codes">K.</param>
/// <param name="Dimensions">D.</param>
/// <param name="Vectors">M.</param>
/// <param name="Algorithm">The device's default nearest-code algorithm.</param>
/// <param name="NearestMs">Median time of the nearest-code search alone.</param>
/// <param name="QuantizerMs">Median time of the whole quantizer forward (search, z_q, losses, counts).</param>
/// <param name="Gflops">2·M·K·D / the search's time.</param>
/// <param name="PicosecondsPerProduct">The search's time per multiply-add (M·K·D of them): flat when cost grows with the work.</param>
public sealed record QuantizerScalingPoint(int Codes, int Dimensions, int Vectors, string Algorithm, double NearestMs, double QuantizerMs, double Gflops,
                                           double PicosecondsPerProduct);

/// <summary>
/// <c>vqvae bench --scaling</c>: how the cost grows with the work — the training step over batch sizes, and the
/// quantizer over codebook sizes K and code dimensions D — so that a cost that does not grow linearly stands out.
/// </summary>
public static class ScalingBenchmarks
{
    /// <summary>The batch sizes of the step table.</summary>
    public static IReadOnlyList<int> Batches { get; } = [8, 16, 32, 64, 128, 256];

    /// <summary>K values at D = 64, then D values at K = 512, of the quantizer table.</summary>
    public static IReadOnlyList<(int K, int D)> QuantizerShapes { get; } =
        [(64, 64), (256, 64), (512, 64), (1024, 64), (4096, 64), (8192, 64), (512, 16), (512, 32), (512, 128), (512, 256)];

    /// <summary>The training step of <paramref name="preset"/> at each batch size.</summary>
    public static IReadOnlyList<StepScalingPoint> Steps(IDevice device, string preset = "fashion-mnist", IReadOnlyList<int>? batches = null,
                                                        int repetitions = 3, Action<string>? progress = null)
    {
        var points = new List<StepScalingPoint>();
        foreach (int batch in batches ?? Batches)
        {
            progress?.Invoke($"step at batch {batch}");
            var r = StepBenchmark.Run(device, new StepBenchmarkOptions { Preset = preset, Batch = batch, Warmup = 1, Repetitions = repetitions, ProfiledSteps = 1, StepOnly = true });
            points.Add(new StepScalingPoint(batch, r.StepMs, r.ImagesPerSecond, 1e3 * r.StepMs / batch, r.Flops / (r.StepMs * 1e-3) / 1e9, r.LaunchesPerStep,
                                            r.ArenaPeakBytes / 1048576.0));
        }
        return points;
    }

    /// <summary>The quantizer forward over M = <paramref name="vectors"/> random vectors (NCHW, 7×7 latents) at each (K, D).</summary>
    public static IReadOnlyList<QuantizerScalingPoint> Quantizer(IDevice device, int vectors = 64 * 49, IReadOnlyList<(int K, int D)>? shapes = null,
                                                                 int repetitions = 3, Action<string>? progress = null)
    {
        const int side = 7;
        int images = Math.Max(1, vectors / (side * side));
        var algorithm = NearestCodeAlgorithms.DefaultFor(device);
        var random = new Random(1234);
        var points = new List<QuantizerScalingPoint>();
        foreach (var (k, d) in shapes ?? QuantizerShapes)
        {
            progress?.Invoke($"quantizer K = {k}, D = {d}");
            var zShape = new Shape(images, d, side, side);
            var z = Tensor.FromArray(device, Enumerable.Range(0, (int)zShape.Count).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray(), zShape);
            var e = Tensor.FromArray(device, Enumerable.Range(0, k * d).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray(), new Shape(k, d));
            try
            {
                int m = images * side * side;
                // The distance matrix of the GEMM path (4·M·K) plus slack for the rest.
                using var arena = new Arena(device, 4L * m * k + 16L * m * d + (8L << 20));
                double nearest = Timing.MedianMilliseconds(device, () =>
                {
                    arena.Reset();
                    VectorQuantizer.NearestCodes(new OpContext(arena), z, e, algorithm);
                }, warmup: 1, repetitions);
                double whole = Timing.MedianMilliseconds(device, () =>
                {
                    arena.Reset();
                    VectorQuantizer.Quantize(new OpContext(arena), z, e, 0.25f, useEma: true);
                }, warmup: 1, repetitions);
                double products = (double)m * k * d;
                points.Add(new QuantizerScalingPoint(k, d, m, algorithm.ToString(), nearest, whole, 2 * products / (nearest * 1e-3) / 1e9,
                                                     nearest * 1e9 / products));
            }
            finally
            {
                z.Dispose();
                e.Dispose();
            }
        }
        return points;
    }
}
