using VqVaeCuda.Autodiff;
using VqVaeCuda.Models;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Sampling;

/// <summary>
/// Draws code maps from a <see cref="GatedPixelCnn"/> prior position by position in raster order, on the prior's
/// device. For each position q every sample n takes the code whose cumulative softmax(logits/T) first exceeds its
/// uniform u[n, q] (kernels/sampling.cu). The uniforms come from one <see cref="Random"/>(seed) stream drawn sample
/// by sample (u[0, 0..P), u[1, 0..P), ...), so a sample's draws do not depend on how many are drawn beside it, and
/// the naive and cached variants use the very same ones.
/// </summary>
/// <remarks>
/// The two methods compute the same function with the same ops; they differ in which outputs they compute. The
/// naive one re-runs <see cref="GatedPixelCnn.Forward"/> on the whole maps for every position. The cached one
/// (<see cref="CachedSampler"/>) computes each output once. Their logits agree to float rounding, not bit for
/// bit: the device GEMM sums a dot product in an order that depends on the shape of the call (OpenBLAS picks
/// micro-kernels with one or two accumulators by the row's place in the matrix), and the two methods call it on
/// different shapes. The codes agree unless a uniform falls within that rounding of a CDF step.
/// </remarks>
public static class PriorSampler
{
    /// <summary>
    /// Samples <see cref="SamplingOptions.Count"/> code maps of Height×Width codes; returns them as one array
    /// [Count·Height·Width], each map in raster order. <paramref name="progress"/> receives the number of positions
    /// done (1 … Height·Width) after each.
    /// </summary>
    /// <exception cref="ArgumentException">An option is out of range (count, size, temperature, labels).</exception>
    /// <exception cref="InvalidOperationException">The prior's logits were not finite at some position.</exception>
    public static int[] Sample(GatedPixelCnn prior, SamplingOptions options, IProgress<int>? progress = null) =>
        SampleObserved(prior, options, progress, logitsObserver: null);

    /// <summary>As the public overload; <paramref name="logitsObserver"/> receives each position q and its logits [Count, K] (tests).</summary>
    internal static int[] SampleObserved(GatedPixelCnn prior, SamplingOptions options, IProgress<int>? progress, Action<int, float[]>? logitsObserver)
    {
        ArgumentNullException.ThrowIfNull(prior);
        ArgumentNullException.ThrowIfNull(options);
        Validate(prior.Config, options);
        var uniforms = Uniforms(options);
        int[] codes = options.Method == SamplingMethod.Naive
            ? SampleNaive(prior, options, uniforms, progress, logitsObserver)
            : CachedSampler.Run(prior, options, uniforms, progress, logitsObserver);
        int bad = Array.FindIndex(codes, c => c < 0);
        if (bad >= 0)
            throw new InvalidOperationException($"the prior's logits are not finite (NaN or infinite) at sample {bad / (options.Height * options.Width)}, " +
                                                $"position {bad % (options.Height * options.Width)}: no code can be drawn there");
        return codes;
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first option out of range.</summary>
    internal static void Validate(GatedPixelCnnConfig config, SamplingOptions o)
    {
        static void Need(bool ok, string message)
        {
            if (!ok) throw new ArgumentException(message);
        }
        Need(o.Count >= 1, $"count = {o.Count}: sample at least 1 code map");
        Need(o.Height >= 1 && o.Width >= 1, $"code map size {o.Height}x{o.Width}: both sides must be at least 1");
        Need((long)o.Count * o.Height * o.Width * Math.Max(config.CodebookSize, config.Width) <= int.MaxValue,
             $"{o.Count} code maps of {o.Height}x{o.Width}: too many at once for the kernels' int indexing; sample fewer per call");
        Need(float.IsFinite(o.Temperature) && o.Temperature > 0f, $"temperature = {o.Temperature}: must be a finite number above 0");
        Need(Enum.IsDefined(o.Method), $"method = {o.Method}: must be Naive or Cached");
        if (!config.IsClassConditional)
        {
            Need(o.Labels is null, "this prior is unconditional: it takes no labels (Labels must be null)");
            return;
        }
        Need(o.Labels is not null, $"this prior is class-conditional ({config.Classes} classes): give one label per sample (Labels)");
        Need(o.Labels!.Count == o.Count, $"{o.Labels.Count} labels for {o.Count} samples: give exactly one label per sample");
        for (int i = 0; i < o.Labels.Count; i++)
            Need(o.Labels[i] >= 0 && o.Labels[i] < config.Classes, $"labels[{i}] = {o.Labels[i]}: must be a class in [0, {config.Classes})");
    }

    /// <summary>u[n·P + q] in [0, 1): one <see cref="Random"/>(seed) stream, sample by sample, position by position.</summary>
    internal static float[] Uniforms(SamplingOptions o)
    {
        int positions = o.Height * o.Width;
        var random = new Random(o.Seed);
        var u = new float[o.Count * positions];
        for (int i = 0; i < u.Length; i++) u[i] = Math.Min((float)random.NextDouble(), MaxBelowOne);
        return u;
    }

    // (float)NextDouble() may round up to 1; the draw needs u < 1.
    private const float MaxBelowOne = 0.99999994f;

    /// <summary>The shared tensors of one sampling run: the code maps (zeros at the start), labels, uniforms, the codes just drawn.</summary>
    internal sealed record RunState(Tensor Codes, Tensor? Labels, Tensor Uniforms, Tensor Chosen)
    {
        public static long Bytes(SamplingOptions o) => 4L * (2L * o.Count * o.Height * o.Width + 2L * o.Count) + 8 * Arena.Alignment;

        public static RunState Create(Arena arena, SamplingOptions o, float[] uniforms)
        {
            var codes = arena.Zeros(new Shape(o.Count, o.Height, o.Width), DType.Int32, "sampled codes");
            Tensor? labels = null;
            if (o.Labels is not null)
            {
                labels = arena.Allocate(new Shape(o.Count), DType.Int32, "sampling labels");
                labels.CopyFrom(o.Labels.ToArray());
            }
            var u = arena.Allocate(new Shape(o.Count, o.Height * o.Width), purpose: "sampling uniforms");
            u.CopyFrom(uniforms);
            var chosen = arena.Zeros(new Shape(o.Count, 1, 1), DType.Int32, "codes just drawn");
            return new RunState(codes, labels, u, chosen);
        }
    }

    private static int[] SampleNaive(GatedPixelCnn prior, SamplingOptions o, float[] uniforms, IProgress<int>? progress, Action<int, float[]>? observer)
    {
        var device = prior.Device;
        int n = o.Count, positions = o.Height * o.Width, k = prior.Config.CodebookSize;
        using var state = new Arena(device, RunState.Bytes(o));
        var run = RunState.Create(state, o, uniforms);
        long stepBytes = Arena.Measure(device, a => prior.Forward(new OpContext(a), run.Codes, run.Labels));
        using var step = new Arena(device, stepBytes);
        for (int q = 0; q < positions; q++)
        {
            step.Reset();
            var logits = prior.Forward(new OpContext(step), run.Codes, run.Labels);
            SamplingKernels.SamplePosition(device, logits.Pointer, k, positions, q, run.Uniforms.Pointer, positions, q, o.Temperature,
                                           run.Codes.Pointer, positions, q, run.Chosen.Pointer, n);
            if (observer is not null) observer(q, LogitsAt(logits.ToArray(), n, k, positions, q));
            progress?.Report(q + 1);
        }
        return run.Codes.ToIntArray();
    }

    private static float[] LogitsAt(float[] all, int n, int k, int positions, int q)
    {
        var at = new float[n * k];
        for (int i = 0; i < n * k; i++) at[i] = all[(long)i * positions + q];
        return at;
    }
}
