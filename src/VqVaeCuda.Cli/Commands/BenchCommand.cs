using System.CommandLine;
using Spectre.Console;
using VqVaeCuda.Benchmarks;

namespace VqVaeCuda.Cli.Commands;

/// <summary>
/// <c>vqvae bench --kernels|--ops|--sampling</c>: per-kernel and per-op time and throughput on the chosen device, or the prior's
/// sampling speed naive against cached; variants side by side.
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var kernels = new Option<bool>("--kernels")
        {
            Description = "Benchmark the individual kernels (elementwise, reductions, transposes, barrier cost, GEMM).",
        };
        var ops = new Option<bool>("--ops")
        {
            Description = "Benchmark every op forward and backward at the fashion-mnist model's shapes, and the fused quantizer against GEMM-then-argmin.",
        };
        var sampling = new Option<bool>("--sampling")
        {
            Description = "Benchmark sampling from the prior, naive against cached, on 7x7 and 8x8 code maps (runs on its own).",
        };
        var step = new Option<bool>("--step")
        {
            Description = "Benchmark a whole VQ-VAE training step (forward, backward, Adam, EMA codebook update) after warm-up: median and spread, " +
                          "images/s, the forward alone and the encode (inference images/s; timed in turn with the steps, five of each at a time), launches, " +
                          "memory, FLOPs and bytes against the device's floor, and the time by op. With --kernels and/or --ops: " +
                          "after them, on the same device; the JSON is then {results, step}.",
        };
        var preset = new Option<string>("--preset")
        {
            Description = "With --step: the VQ-VAE preset (tiny | shapes | fashion-mnist | cifar10).",
            DefaultValueFactory = _ => "fashion-mnist",
        };
        var batch = new Option<int>("--batch")
        {
            Description = "With --step: images per step.",
            DefaultValueFactory = _ => 64,
        };
        var scaling = new Option<bool>("--scaling")
        {
            Description = "How cost grows with work: the training step alone at batch 8 to 256 (--preset), and the quantizer at K 64 to " +
                          "8192 and D 16 to 256 (runs on its own).",
        };
        var peer = new Option<string?>("--peer")
        {
            Description = "With --step: also run the same step in PyTorch (torch: tools/peer/torch_vqvae_step.py; needs a python3 with torch, " +
                          "e.g. Debian's python3-torch, or VQVAE_PEER_PYTHON) and print both and the ratio.",
        };
        var priorPreset = new Option<string>("--prior-preset")
        {
            Description = "With --sampling: the prior's architecture (randomly initialised, K = 512).",
            DefaultValueFactory = _ => "fashion-mnist",
        };
        var count = new Option<int>("--n")
        {
            Description = "With --sampling: code maps sampled at once by each method.",
            DefaultValueFactory = _ => 64,
        };
        var device = CommonOptions.Device();
        var cache = CommonOptions.KernelCache();
        var tf32 = CommonOptions.Tf32();
        var elements = new Option<int>("--elements")
        {
            Description = "Elements of the elementwise and reduction inputs.",
            DefaultValueFactory = _ => 16 * 1024 * 1024,
        };
        var repetitions = new Option<int>("--repetitions")
        {
            Description = "Timed repetitions per variant (the median is reported); with --step, timed steps (default 10).",
        };
        var json = new Option<FileInfo?>("--json") { Description = "Also write the results to this JSON file." };
        var command = new Command("bench", "Measure time and throughput on a device, with the H100 floor beside each figure (for --ops and --step, " +
                                            "a roofline table of measured time against the H100 SXM and H200 floors, FP32 and TF32, and on the cpu device " +
                                            "the measured-sgemm floor too): " +
                                            "--kernels for the individual kernels, --ops for every op forward and backward, " +
                                            "--sampling for the prior's samples per second, naive against cached, " +
                                            "--step for a whole training step with its time by op (--peer torch: beside PyTorch's), " +
                                            "--scaling for how the step and the quantizer grow with the work.");
        foreach (var o in new Option[] { kernels, ops, step, preset, batch, peer, scaling, sampling, priorPreset, count, device, cache, tf32, elements, repetitions, json })
            command.Options.Add(o);
        command.SetAction(result => CommonOptions.Guard(() =>
        {
            bool runKernels = result.GetValue(kernels), runOps = result.GetValue(ops);
            int? repetitionsGiven = result.GetResult(repetitions) is { Implicit: false } ? result.GetValue(repetitions) : null;
            if (result.GetValue(scaling))
            {
                if (runKernels || runOps || result.GetValue(sampling) || result.GetValue(step))
                    throw new ArgumentException("--scaling runs on its own: benchmark --kernels, --ops, --sampling or --step in another run");
                return BenchScaling.Run(result.GetValue(device)!, result.GetValue(cache), result.GetValue(tf32), result.GetValue(preset)!, repetitionsGiven ?? 3, result.GetValue(json));
            }
            StepBenchmarkOptions? stepOptions = null;
            if (result.GetValue(step))
            {
                if (result.GetValue(sampling))
                    throw new ArgumentException("--step and --sampling run apart: benchmark --sampling in another run");
                int stepReps = repetitionsGiven ?? 10, images = result.GetValue(batch);
                if (stepReps < 1) throw new ArgumentException($"--repetitions {stepReps}: at least 1");
                if (images < 1) throw new ArgumentException($"--batch {images}: at least 1");
                stepOptions = new StepBenchmarkOptions { Preset = result.GetValue(preset)!, Batch = images, Repetitions = stepReps };
                if (!runKernels && !runOps)
                    return BenchStep.Run(result.GetValue(device)!, result.GetValue(cache), result.GetValue(tf32), stepOptions, result.GetValue(peer), result.GetValue(json));
            }
            if (result.GetValue(sampling))
            {
                if (runKernels || runOps) throw new ArgumentException("--sampling runs on its own: benchmark --kernels or --ops in another run");
                return RunSampling(result.GetValue(device)!, result.GetValue(cache), result.GetValue(tf32), result.GetValue(priorPreset)!, result.GetValue(count), result.GetValue(json));
            }
            if (!runKernels && !runOps)
                throw new ArgumentException("choose what to benchmark: --kernels, --ops and/or --step, or --sampling, or --scaling");
            int n = result.GetValue(elements), reps = repetitionsGiven ?? 7;
            if (n < 1024) throw new ArgumentException($"--elements {n}: at least 1024");
            if (reps < 1) throw new ArgumentException($"--repetitions {reps}: at least 1");
            using var dev = CommonOptions.OpenDevice(result.GetValue(device)!, result.GetValue(cache), result.GetValue(tf32));
            var options = new KernelBenchmarkOptions { Elements = n, Repetitions = reps };
            var results = new List<BenchmarkResult>();
            IReadOnlyList<BenchmarkResult> opsWithFloors = [];
            AnsiConsole.Status().Start("benchmarking", ctx =>
            {
                void Report(BenchmarkResult r)
                {
                    results.Add(r);
                    ctx.Status(Markup.Escape($"benchmarking: {r.Group} / {r.Variant} done"));
                }
                if (runKernels) KernelBenchmarks.Run(dev, options, Report);
                if (runOps)
                {
                    var ops = new List<BenchmarkResult>();
                    void ReportOp(BenchmarkResult r)
                    {
                        ops.Add(r);
                        ctx.Status(Markup.Escape($"benchmarking: {r.Group} / {r.Variant} done"));
                    }
                    OpBenchmarks.Run(dev, OpBenchmarkCatalog.All(), repetitions: reps, progress: ReportOp);
                    QuantizerBenchmarks.Run(dev, new QuantizerBenchmarkOptions(), ReportOp);
                    // Each op against H100 SXM and H200 (and, on the cpu device, the sgemm rate measured now).
                    ctx.Status("benchmarking: the cpu's sgemm rate, for the floors");
                    var (gflops, source) = StepBenchmark.CpuGemmRate(dev);
                    opsWithFloors = Roofline.Annotate(ops, gflops, source);
                    results.AddRange(opsWithFloors);
                }
            });
            Print(results, options.Reference);
            BenchStep.PrintOpRoofline(opsWithFloors);
            // With --step too: the step on the same device after the kernels and ops; the JSON holds both.
            if (stepOptions is not null)
                BenchStep.WriteJson(result.GetValue(json), new { results, step = BenchStep.Measure(dev, stepOptions, result.GetValue(peer)) });
            else
                BenchStep.WriteJson(result.GetValue(json), results);
            return 0;
        }));
        return command;
    }

    private static int RunSampling(string deviceName, string? cache, bool tf32, string preset, int count, FileInfo? json)
    {
        if (count < 1) throw new ArgumentException($"--n {count}: sample at least 1 code map");
        using var dev = CommonOptions.OpenDevice(deviceName, cache, tf32);
        var options = new SamplingBenchmarkOptions { PriorPreset = preset, Count = count };
        IReadOnlyList<SamplingBenchmarkResult> results = [];
        AnsiConsole.Status().Start("benchmarking sampling", ctx =>
            results = SamplingBenchmarks.Run(dev, options, what => ctx.Status(Markup.Escape($"sampling: {what}"))));
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumns("code maps", "n", "device", "naive s", "naive samples/s", "cached s", "cached samples/s", "cached speedup", "same codes");
        foreach (var r in results)
            table.AddRow(r.Map, $"{r.Count}", Markup.Escape(r.Device), $"{r.NaiveSeconds:F2}", $"{r.NaiveSamplesPerSecond:F2}", $"{r.CachedSeconds:F2}",
                         $"{r.CachedSamplesPerSecond:F2}", $"[green]{r.CachedSpeedup:F1}x[/]", r.SameCodes ? "yes" : "no");
        AnsiConsole.MarkupLineInterpolated($"prior preset [bold]{preset}[/] (randomly initialised, K = {options.CodebookSize}), seed {options.Seed}");
        AnsiConsole.Write(table);
        BenchStep.WriteJson(json, results);
        return 0;
    }

    private static void Print(IReadOnlyList<BenchmarkResult> results, ReferenceGpu reference)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumns("work", "variant", "device", "median ms", "GB/s", "GFLOP/s", $"{reference.Name} floor ms", "note");
        foreach (var group in results.GroupBy(r => r.Group))
        {
            double best = group.Min(r => r.MedianMilliseconds);
            foreach (var r in group)
                table.AddRow(Markup.Escape(r.Group), Markup.Escape(r.Variant), Markup.Escape(r.Device),
                             r.MedianMilliseconds == best && group.Count() > 1 ? $"[green]{r.MedianMilliseconds:F3}[/]" : $"{r.MedianMilliseconds:F3}",
                             r.Bytes > 0 ? $"{r.GigabytesPerSecond:F1}" : "-",
                             r.Flops > 0 ? $"{r.GigaflopsPerSecond:F1}" : "-",
                             r.FloorMilliseconds > 0 ? $"{r.FloorMilliseconds:F4}" : "-",
                             Markup.Escape(r.Note ?? (r.FusedSpeedup is double f ? $"fused_speedup {f:F2}" : "")));
            table.AddEmptyRow();
        }
        AnsiConsole.Write(table);
    }
}
