using System.CommandLine;
using System.Text.Json;
using Spectre.Console;
using VqVaeCuda.Benchmarks;

namespace VqVaeCuda.Cli.Commands;

/// <summary><c>vqvae bench --kernels</c>: per-kernel time and throughput on the chosen device, variants side by side.</summary>
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
        var device = CommonOptions.Device();
        var cache = CommonOptions.KernelCache();
        var elements = new Option<int>("--elements")
        {
            Description = "Elements of the elementwise and reduction inputs.",
            DefaultValueFactory = _ => 16 * 1024 * 1024,
        };
        var repetitions = new Option<int>("--repetitions")
        {
            Description = "Timed repetitions per variant (the median is reported).",
            DefaultValueFactory = _ => 7,
        };
        var json = new Option<FileInfo?>("--json") { Description = "Also write the results to this JSON file." };
        var command = new Command("bench", "Measure time and throughput on a device, with the H100 floor beside each figure: " +
                                            "--kernels for the individual kernels, --ops for every op forward and backward.");
        foreach (var o in new Option[] { kernels, ops, device, cache, elements, repetitions, json }) command.Options.Add(o);
        command.SetAction(result => CommonOptions.Guard(() =>
        {
            bool runKernels = result.GetValue(kernels), runOps = result.GetValue(ops);
            if (!runKernels && !runOps)
                throw new ArgumentException("choose what to benchmark: --kernels and/or --ops");
            int n = result.GetValue(elements), reps = result.GetValue(repetitions);
            if (n < 1024) throw new ArgumentException($"--elements {n}: at least 1024");
            if (reps < 1) throw new ArgumentException($"--repetitions {reps}: at least 1");
            using var dev = CommonOptions.OpenDevice(result.GetValue(device)!, result.GetValue(cache));
            var options = new KernelBenchmarkOptions { Elements = n, Repetitions = reps };
            var results = new List<BenchmarkResult>();
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
                    OpBenchmarks.Run(dev, OpBenchmarkCatalog.All(), repetitions: reps, progress: Report);
                    QuantizerBenchmarks.Run(dev, new QuantizerBenchmarkOptions(), Report);
                }
            });
            Print(results, options.Reference);
            if (result.GetValue(json) is { } file)
            {
                File.WriteAllText(file.FullName, JsonSerializer.Serialize(results, new JsonSerializerOptions
                {
                    WriteIndented = true,
                    PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
                }));
                AnsiConsole.MarkupLineInterpolated($"[grey]wrote {file.FullName}[/]");
            }
            return 0;
        }));
        return command;
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
