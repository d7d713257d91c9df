using System.Diagnostics;
using VqVaeCuda.Autodiff;
using VqVaeCuda.Data;
using VqVaeCuda.Device;
using VqVaeCuda.Device.Host;
using VqVaeCuda.Models;
using VqVaeCuda.Optim;
using VqVaeCuda.Tensors;
using VqVaeCuda.Training;

namespace VqVaeCuda.Benchmarks;

/// <summary>What <see cref="StepBenchmark.Run"/> measures: model, batch and how many steps.</summary>
public sealed record StepBenchmarkOptions
{
    /// <summary>VQ-VAE preset (<see cref="VqVaeConfig.Presets"/>).</summary>
    public string Preset { get; init; } = "fashion-mnist";

    /// <summary>Images per step.</summary>
    public int Batch { get; init; } = 64;

    /// <summary>Untimed steps first (kernel compilation, caches, allocator).</summary>
    public int Warmup { get; init; } = 3;

    /// <summary>Timed steps (the median is reported).</summary>
    public int Repetitions { get; init; } = 10;

    /// <summary>Profiled steps (time by op; they synchronise at every op).</summary>
    public int ProfiledSteps { get; init; } = 3;

    /// <summary>Learning rate of the Adam step (the trainer's default).</summary>
    public double LearningRate { get; init; } = 2e-4;

    /// <summary>Seed of the model and the batch.</summary>
    public int Seed { get; init; }

    /// <summary>
    /// Time the training step only: no forwards alone, no encodes, no graph-shaped step (their fields are then 0 and
    /// <see cref="StepBenchmarkResult.GraphStepExecution"/> says "not measured"). The scaling table's rows use it: they
    /// report the step, and the rest took as long again per batch size.
    /// </summary>
    public bool StepOnly { get; init; }
}

/// <summary>One measured training step.</summary>
/// <param name="Preset">The model preset.</param>
/// <param name="Batch">Images per step.</param>
/// <param name="Device">"cpu" or "cuda:0".</param>
/// <param name="Workers">CPU worker threads (the cpu device), or 0 on a GPU.</param>
/// <param name="StepMs">Median step time, unprofiled.</param>
/// <param name="StepMsMin">Fastest step.</param>
/// <param name="StepMsMax">Slowest step.</param>
/// <param name="StepMsP10">10th percentile.</param>
/// <param name="StepMsP90">90th percentile.</param>
/// <param name="ImagesPerSecond">Batch / median step time.</param>
/// <param name="LaunchesPerStep">Kernel launches in one step (GEMM calls not included).</param>
/// <param name="GemmCallsPerStep">GEMM calls in one step.</param>
/// <param name="ArenaPeakBytes">Most arena memory the step used.</param>
/// <param name="DeviceBytes">Device memory the run holds: arena capacity, parameters and gradients, Adam's moments, the batch.</param>
/// <param name="ParameterCount">Parameter elements of the model (PyTorch's count; the store Adam sweeps is a little larger, 64-aligned).</param>
/// <param name="Flops">FLOPs of one step (<see cref="OpCosts"/>).</param>
/// <param name="Bytes">Fewest bytes one step moves.</param>
/// <param name="Floors">The step's floor on each reference: H100 SXM and H200 (FP32 and TF32), and on the cpu device first the measured CPU GEMM rate.</param>
/// <param name="ProfiledStepMs">Mean step time of the profiled steps (the sum of <paramref name="ByOp"/>).</param>
/// <param name="ByOp">Time, launches and work per op and phase, summing to <paramref name="ProfiledStepMs"/>.</param>
/// <param name="InferenceMs">Median time of the forward alone on the same batch, without a tape (what reconstruct and evaluation run), timed in runs alternating with the timed steps' runs.</param>
/// <param name="InferenceImagesPerSecond">Batch / <paramref name="InferenceMs"/>.</param>
/// <param name="GraphStepMs">Median time of the graph-shaped step (<c>CapturableStep</c>: nothing read back inside it), as the trainer's
/// <c>--step-mode graph</c> runs it.</param>
/// <param name="GraphStepExecution">How that step ran: replayed as one captured CUDA graph, or launch by launch (and why).</param>
/// <param name="Gemm">What ran the GEMMs: cuBLAS, or the CBLAS library and (OpenBLAS) its kernel family and who chose it.</param>
/// <param name="EncodeMs">Median time of the encoder and the nearest-code search on the same batch (what <c>vqvae encode</c> runs), timed
/// in runs alternating with the steps' and the forwards'.</param>
/// <param name="EncodeImagesPerSecond">Batch / <paramref name="EncodeMs"/>.</param>
/// <param name="InferenceMsMin">Fastest forward alone.</param>
/// <param name="InferenceMsP10">10th percentile of the forwards alone.</param>
/// <param name="EncodeMsMin">Fastest encode.</param>
/// <param name="EncodeMsP10">10th percentile of the encodes.</param>
public sealed record StepBenchmarkResult(
    string Preset, int Batch, string Device, int Workers, double StepMs, double StepMsMin, double StepMsMax, double StepMsP10, double StepMsP90,
    double ImagesPerSecond, long LaunchesPerStep, long GemmCallsPerStep, long ArenaPeakBytes, long DeviceBytes, long ParameterCount,
    double Flops, double Bytes, IReadOnlyList<StepFloor> Floors, double ProfiledStepMs, IReadOnlyList<OpTime> ByOp,
    double InferenceMs = 0, double InferenceImagesPerSecond = 0, double GraphStepMs = 0, string GraphStepExecution = "", string Gemm = "",
    double EncodeMs = 0, double EncodeImagesPerSecond = 0, double InferenceMsMin = 0, double InferenceMsP10 = 0, double EncodeMsMin = 0,
    double EncodeMsP10 = 0);

/// <summary>
/// The fastest a step (or an op: <see cref="BenchmarkResult.Floors"/>) could run on one reference: FLOPs at its peak rate or
/// bytes at its bandwidth, whichever is slower; and the measured time against it.
/// </summary>
/// <param name="Reference">e.g. "cpu (measured sgemm)", "H100 SXM".</param>
/// <param name="PeakGflops">The FLOP rate used (FP32).</param>
/// <param name="PeakGigabytesPerSecond">The bandwidth used (0: not counted).</param>
/// <param name="FloorMs">The floor.</param>
/// <param name="Source">Where the figures come from.</param>
public sealed record StepFloor(string Reference, double PeakGflops, double PeakGigabytesPerSecond, double FloorMs, string Source)
{
    /// <summary>The dense TF32 tensor-core rate (GPUs only; null elsewhere).</summary>
    public double? Tf32Gflops { get; init; }

    /// <summary>The floor with every FLOP at <see cref="Tf32Gflops"/> (GPUs only).</summary>
    public double? Tf32FloorMs { get; init; }

    /// <summary>The measured time the ratios compare (0: none given).</summary>
    public double MeasuredMs { get; init; }

    /// <summary>Measured time over <see cref="FloorMs"/>: how many times slower than this reference's limit.</summary>
    public double MeasuredOverFloor => FloorMs > 0 ? MeasuredMs / FloorMs : 0;

    /// <summary>Measured time over <see cref="Tf32FloorMs"/> (null without it).</summary>
    public double? MeasuredOverTf32Floor => Tf32FloorMs is > 0 ? MeasuredMs / Tf32FloorMs : null;
}

/// <summary>
/// <c>vqvae bench --step</c>: one full VQ-VAE training step — zero gradients, forward, loss, backward, the gradient
/// norm, the losses, norm and code counts read back, Adam, EMA codebook update, code usage and dead-code restarts —
/// exactly the trainer's <c>VqVaeTrainer.TrainStep</c> (a test holds the two to the same losses), on one fixed
/// batch of the built-in shapes, timed after warm-up. Then a few profiled steps split the time by op
/// (<see cref="StepProfiler"/>), forward and backward separately.
/// </summary>
public static class StepBenchmark
{
    /// <summary>The references a step is compared with (DESIGN.md's H100 SXM and the H200 we may borrow).</summary>
    public static IReadOnlyList<ReferenceGpu> GpuReferences => Roofline.Datasheet;

    /// <summary>How many timed steps, then forwards alone, then encodes, are timed at a time, in turn (see <see cref="Run"/>).</summary>
    public const int InterleavedRun = 5;

    /// <summary>Measures the step on <paramref name="device"/>.</summary>
    public static StepBenchmarkResult Run(IDevice device, StepBenchmarkOptions options, Action<string>? progress = null)
    {
        var config = VqVaeConfig.Preset(options.Preset);
        if (options.Batch < 1) throw new ArgumentOutOfRangeException(nameof(options), $"batch must be at least 1, got {options.Batch}");
        if (options.Repetitions < 1) throw new ArgumentOutOfRangeException(nameof(options), "repetitions must be at least 1");
        var data = SyntheticShapes.Generate(options.Batch, options.Seed, size: config.ImageSize, channels: config.InputChannels);
        using var step = new BenchmarkStep(device, config, data, options);

        progress?.Invoke($"warm-up: {options.Warmup} steps");
        for (int i = 0; i < options.Warmup; i++) step.Run(null);
        if (!options.StepOnly)
        {
            step.RunInference();
            step.RunEncode();
        }
        // Steps, forwards alone (inference) and encodes are timed in turn, in runs of InterleavedRun each, so their medians come
        // from the same minutes of the machine: on a shared machine, timing all the steps and then all the forwards lets a
        // busy spell land on one side and moves their ratio (the inference-to-training throughput) by more than a change to
        // the code does. Runs rather than single alternation: evaluation runs forwards back to back, and training steps, so
        // each is timed after one of its own kind (a forward right after a step finds other data in the caches).
        var samples = new double[options.Repetitions];
        var inferenceSamples = new double[options.Repetitions];
        var encodeSamples = new double[options.Repetitions];
        long stepLaunches = 0, stepGemms = 0;
        for (int first = 0; first < options.Repetitions; first += InterleavedRun)
        {
            int end = Math.Min(options.Repetitions, first + InterleavedRun);
            long launches0 = device.KernelLaunches, gemms0 = device.GemmCalls;  // only steps run between the two readings
            TimeRun("step", () => step.Run(null), samples, first, end);
            stepLaunches += device.KernelLaunches - launches0;
            stepGemms += device.GemmCalls - gemms0;
            if (options.StepOnly) continue;
            TimeRun("forward alone", step.RunInference, inferenceSamples, first, end);
            TimeRun("encode", step.RunEncode, encodeSamples, first, end);
        }
        Array.Sort(inferenceSamples);
        Array.Sort(encodeSamples);
        double inference = Percentile(inferenceSamples, 0.5), encode = Percentile(encodeSamples, 0.5);
        long launches = stepLaunches / options.Repetitions;
        long gemms = stepGemms / options.Repetitions;

        var profiler = new StepProfiler(device);
        for (int i = 0; i < options.ProfiledSteps; i++)
        {
            progress?.Invoke($"profiled step {i + 1}/{options.ProfiledSteps}");
            step.Run(profiler);
        }
        var (graphMs, graphExecution) = (0.0, "not measured");
        if (!options.StepOnly)
        {
            progress?.Invoke("the graph-shaped step");
            (graphMs, graphExecution) = step.TimeCapturable(options.Repetitions);
        }
        var byOp = profiler.PerStep();
        double flops = byOp.Sum(o => o.Flops), bytes = byOp.Sum(o => o.Bytes);

        Array.Sort(samples);
        double median = Percentile(samples, 0.5);
        return new StepBenchmarkResult(
            options.Preset, options.Batch, device.Name, device.Kind == DeviceKind.Host ? device.Capabilities.Multiprocessors : 0,
            median, samples[0], samples[^1], Percentile(samples, 0.1), Percentile(samples, 0.9), options.Batch / (median / 1e3),
            launches, gemms, step.ArenaPeakBytes, step.DeviceBytes, step.ParameterCount, flops, bytes,
            Floors(device, flops, bytes, median), profiler.Steps > 0 ? profiler.TotalMilliseconds / profiler.Steps : 0, byOp,
            inference, inference > 0 ? options.Batch / (inference / 1e3) : 0, graphMs, graphExecution,
            device.Kind == DeviceKind.Host ? $"CBLAS {OpenBlas.Describe()}" : "cuBLAS", encode, encode > 0 ? options.Batch / (encode / 1e3) : 0,
            inferenceSamples[0], Percentile(inferenceSamples, 0.1), encodeSamples[0], Percentile(encodeSamples, 0.1));

        // Times run for repetitions [first, end) into their slots, each between two synchronisations.
        void TimeRun(string what, Action run, double[] into, int first, int end)
        {
            for (int i = first; i < end; i++)
            {
                progress?.Invoke($"{what} {i + 1}/{options.Repetitions}");
                device.Synchronize();
                long t0 = Stopwatch.GetTimestamp();
                run();
                device.Synchronize();
                into[i] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            }
        }
    }

    /// <summary>
    /// The floors of a step of <paramref name="flops"/> and <paramref name="bytes"/> measured at <paramref name="measuredMs"/>
    /// (<see cref="Roofline.Floors"/>): each datasheet GPU's FP32 and TF32 peak and bandwidth, and on the CPU first the FLOPs
    /// at the GEMM rate measured now (1024³ sgemm through the device, the best the machine does on dense work).
    /// </summary>
    public static IReadOnlyList<StepFloor> Floors(IDevice device, double flops, double bytes, double measuredMs = 0)
    {
        var (gflops, source) = CpuGemmRate(device);
        return Roofline.Floors(flops, bytes, measuredMs, gflops, source);
    }

    /// <summary>On the cpu device, its sgemm rate measured now (GFLOP/s) and a line saying how; on a GPU, nulls.</summary>
    public static (double? Gflops, string? Source) CpuGemmRate(IDevice device)
    {
        if (device.Kind != DeviceKind.Host) return (null, null);
        const int n = 1024;
        double gflops = 2.0 * n * n * n / (KernelBenchmarks.GemmMilliseconds(device, n, warmup: 2, repetitions: 5) * 1e-3) / 1e9;
        return (gflops, $"sgemm 1024x1024x1024 timed now on {device.Name} ({device.Capabilities.Multiprocessors} worker threads)");
    }

    private static double Percentile(double[] sorted, double q)
    {
        double position = q * (sorted.Length - 1);
        int lo = (int)Math.Floor(position), hi = (int)Math.Ceiling(position);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (position - lo);
    }
}

/// <summary>
/// The trainer's step on a fixed batch, with optional profiling marks: the same <see cref="VqVaeStep"/> that
/// <c>VqVaeTrainer.TrainStep</c> runs (no clipping, the trainer's default); StepBenchmarkTests hold the two to the same losses.
/// </summary>
internal sealed class BenchmarkStep : IDisposable
{
    private const int DeadCodeSteps = 200;  // TrainingOptions' default
    private readonly VqVae _model;
    private readonly Adam _adam;
    private readonly Arena _arena;
    private readonly ImageDataset _data;
    private readonly int _seed;
    private readonly VqVaeStep _step;
    private int _stepNumber;
    private readonly (double Flops, double Bytes) _emaCost;
    private StepProfiler? _profiler;  // the profiled step's, while it runs

    public BenchmarkStep(IDevice device, VqVaeConfig config, ImageDataset data, StepBenchmarkOptions options)
    {
        _data = data;
        _seed = options.Seed;
        _model = new VqVae(device, config, seed: options.Seed);
        _adam = new Adam(_model.Parameters(), options.LearningRate);
        long bytes = Arena.Measure(device, probe =>
        {
            var tape = new Tape(probe);
            var ctx = new OpContext(probe, tape);
            var x = ctx.Zeros(new Shape(data.Count, config.InputChannels, config.ImageSize, config.ImageSize));
            tape.Backward(VqVae.ReconstructionLoss(ctx, x, _model.Forward(ctx, x)));
        });
        _model.ZeroGrad();
        _arena = new Arena(device, bytes);
        _step = new VqVaeStep(_model, _adam, _arena) { SectionDone = MarkSection };
        // The EMA update's work: the batch's encoder vectors (N·h·w of them) into K codes of D.
        long vectors = (long)data.Count * config.LatentSize * config.LatentSize;
        _emaCost = _model.Quantizer.Ema is null ? (0.0, 0.0) : OpCosts.EmaUpdate(vectors, config.CodebookSize, config.EmbeddingDim);
    }

    public long ArenaPeakBytes => _arena.HighWater;

    // The model's parameter elements (the store itself is larger: each parameter starts 64-aligned).
    public long ParameterCount => _model.Parameters().Sum(p => p.Shape.Count);

    // Parameters and gradients (2 floats each), Adam's two moments, the arena.
    public long DeviceBytes => 4 * 4 * _model.ParameterStore.Count + _arena.Capacity;

    /// <summary>One step; returns the reconstruction loss.</summary>
    public float Run(StepProfiler? profiler)
    {
        var config = _model.Config;
        _profiler = profiler;
        profiler?.BeginStep();
        try
        {
            var computed = _step.Compute(_data.Pixels, new Shape(_data.Count, config.InputChannels, config.ImageSize, config.ImageSize),
                                         maxGradNorm: 0, profiler);
            _step.Apply(computed, ++_stepNumber, DeadCodeSteps, _seed);
            return computed.ReconstructionMse;
        }
        finally
        {
            _profiler = null;
        }
    }

    // The profiler's marks at the step's sections (VqVaeStep.SectionDone), each with the work OpCosts gives it; the ops
    // between the upload and the read-back report themselves as the profiler observes them.
    private void MarkSection(VqVaeStepSection section)
    {
        if (_profiler is not { } profiler) return;
        long parameters = _model.ParameterStore.Count;
        switch (section)
        {
            case VqVaeStepSection.BatchUploaded:
                var zero = OpCosts.ZeroGradients(parameters);
                profiler.Mark("zero gradients + batch upload", "forward", zero.Flops, zero.Bytes);
                break;
            case VqVaeStepSection.ReadBack:
                var norm = OpCosts.GradientNorm(parameters);
                profiler.Mark("gradient norm; read losses, norm and counts", "update", norm.Flops, norm.Bytes);
                break;
            case VqVaeStepSection.Adam:
                var adam = OpCosts.AdamStep(parameters);
                profiler.Mark("adam", "update", adam.Flops, adam.Bytes);
                break;
            case VqVaeStepSection.CodebookUpdate:
                profiler.Mark("ema codebook update", "update", _emaCost.Flops, _emaCost.Bytes);
                break;
            case VqVaeStepSection.CodeUsage:
                profiler.EndStep("code usage + dead-code restarts");
                break;
        }
    }

    /// <summary>
    /// Median milliseconds of the trainer's graph-shaped step (<see cref="CapturableStep"/>) on the same batch, after one
    /// warm-up step, and how it ran.
    /// </summary>
    public (double Milliseconds, string Execution) TimeCapturable(int repetitions)
    {
        var device = _model.Device;
        using var step = new CapturableStep(_model, _adam, _arena, _data.Count, maxGradNorm: 0);
        // Wall time with the device drained after each step, as the eager step is timed, so the two compare.
        double median = Timing.MedianMilliseconds(() =>
        {
            step.Run(_data.Pixels, ++_stepNumber);
            device.Synchronize();
        }, warmup: 1, repetitions);
        step.ReadInterval();
        return (median, step.Execution);
    }

    /// <summary>The encoder and the nearest-code search, no tape: what <c>vqvae encode</c> runs per batch (the prior's input).</summary>
    public void RunEncode()
    {
        var config = _model.Config;
        _arena.Reset();
        var ctx = new OpContext(_arena);
        var x = ctx.NewTensor(new Shape(_data.Count, config.InputChannels, config.ImageSize, config.ImageSize), purpose: "batch");
        x.CopyFrom(_data.Pixels);
        _model.EncodeToCodes(ctx, x);
        _model.Device.Synchronize();
    }

    /// <summary>The forward alone in evaluation mode, no tape: what reconstruct and evaluation run per batch.</summary>
    public void RunInference()
    {
        var config = _model.Config;
        _model.Eval();
        try
        {
            _arena.Reset();
            var ctx = new OpContext(_arena);
            var x = ctx.NewTensor(new Shape(_data.Count, config.InputChannels, config.ImageSize, config.ImageSize), purpose: "batch");
            x.CopyFrom(_data.Pixels);
            var output = _model.Forward(ctx, x);
            _ = output.Quantized.Counts.ToIntArray();
        }
        finally
        {
            _model.Train();
        }
    }

    public void Dispose()
    {
        _arena.Dispose();
        _adam.Dispose();
        _model.Dispose();
    }
}
