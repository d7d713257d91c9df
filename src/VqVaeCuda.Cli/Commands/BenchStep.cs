using System.Text.Json;
using Spectre.Console;
using VqVaeCuda.Benchmarks;

namespace VqVaeCuda.Cli.Commands;

/// <summary><c>vqvae bench --step</c>: a whole training step, its time by op, its floor.</summary>
internal static class BenchStep
{
    public static int Run(string deviceName, string? cache, bool tf32, StepBenchmarkOptions options, string? peer, FileInfo? json)
    {
        using var dev = CommonOptions.OpenDevice(deviceName, cache, tf32);
        WriteJson(json, Measure(dev, options, peer));
        return 0;
    }

    /// <summary>Runs and prints the step benchmark (and the peer) on <paramref name="dev"/>; returns what its JSON holds.</summary>
    public static object Measure(VqVaeCuda.Device.IDevice dev, StepBenchmarkOptions options, string? peer)
    {
        if (peer is not null && peer != "torch") throw new ArgumentException($"--peer {peer}: the one peer is torch (PyTorch, tools/peer/)");
        string? python = null, peerMissing = null;
        if (peer is not null && !TorchPeer.TryFind(out python, out var why)) peerMissing = why;
        StepBenchmarkResult result = null!;
        TorchPeerResult? peerResult = null;
        AnsiConsole.Status().Start("benchmarking the training step", ctx =>
        {
            result = StepBenchmark.Run(dev, options, what => ctx.Status(Markup.Escape($"training step: {what}")));
            if (peer is not null && peerMissing is null)
            {
                // The same model, batch and thread count; our warm-up and repetitions.
                ctx.Status(Markup.Escape($"training step: the PyTorch peer ({python})"));
                peerResult = TorchPeer.Run(VqVaeCuda.Models.VqVaeConfig.Preset(options.Preset), options.Batch, threads: Math.Max(1, result.Workers),
                                           options.Warmup, options.Repetitions, dev.Kind == VqVaeCuda.Device.DeviceKind.Cuda ? "cuda" : "cpu", options.Seed);
            }
        });
        Print(result);
        if (peerMissing is not null) AnsiConsole.MarkupLineInterpolated($"[yellow]peer torch: not run ({peerMissing}); our step alone above[/]");
        if (peerResult is not null) PrintPeer(result, peerResult);
        return peerResult is null ? result : new { step = result, peer = peerResult, ratio_to_peer = result.StepMs / peerResult.StepMs };
    }

    /// <summary>Writes a benchmark's results to <paramref name="file"/> (when given) as indented snake_case JSON and says so.</summary>
    internal static void WriteJson(FileInfo? file, object results)
    {
        if (file is null) return;
        File.WriteAllText(file.FullName, JsonSerializer.Serialize(results, JsonOptions));
        AnsiConsole.MarkupLineInterpolated($"[grey]wrote {file.FullName}[/]");
    }

    private static void PrintPeer(StepBenchmarkResult ours, TorchPeerResult peer)
    {
        var table = new Table().Border(TableBorder.Rounded).Title("the same step in PyTorch, same model, batch and threads")
            .AddColumns("", "step ms (median)", "min", "p10", "p90", "images/s", "forward alone ms", "inference / training", "threads", "parameters");
        table.AddRow("VqVaeCuda", $"[bold]{ours.StepMs:F1}[/]", $"{ours.StepMsMin:F1}", $"{ours.StepMsP10:F1}", $"{ours.StepMsP90:F1}",
                     $"{ours.ImagesPerSecond:F0}", $"{ours.InferenceMs:F1}", $"{ours.StepMs / ours.InferenceMs:F2}x", $"{ours.Workers}", $"{ours.ParameterCount:N0}");
        // An older peer script (a GPU bundle's) reports no forward alone: its columns stay empty.
        bool peerInference = peer.InferenceMs > 0;
        table.AddRow(Markup.Escape($"PyTorch {peer.TorchVersion} ({peer.Device}{(peer.Compiled ? ", compiled" : "")})"), $"[bold]{peer.StepMs:F1}[/]",
                     $"{peer.StepMsMin:F1}", $"{peer.StepMsP10:F1}", $"{peer.StepMsP90:F1}", $"{peer.ImagesPerSecond:F0}",
                     peerInference ? $"{peer.InferenceMs:F1}" : "", peerInference ? $"{peer.StepMs / peer.InferenceMs:F2}x" : "", $"{peer.Threads}",
                     $"{peer.ParameterCount:N0}");
        double ratio = ours.StepMs / peer.StepMs;
        table.AddRow("[bold]ours / PyTorch[/]", $"[{(ratio <= 1 ? "green" : "red")}]{ratio:F2}x[/]", $"{ours.StepMsMin / peer.StepMsMin:F2}x",
                     $"{ours.StepMsP10 / peer.StepMsP10:F2}x", "", "", peerInference ? $"{ours.InferenceMs / peer.InferenceMs:F2}x" : "", "", "", "");
        AnsiConsole.Write(table);
        foreach (var note in peer.Notes) AnsiConsole.MarkupLineInterpolated($"[grey]peer: {note}[/]");
    }

    private static JsonSerializerOptions JsonOptions { get; } = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        // A failed verify check has an infinite error (a NaN, a differing integer): written as the string "Infinity",
        // as metrics.jsonl writes non-finite values, rather than failing the whole write.
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private static void Print(StepBenchmarkResult r)
    {
        var ops = new Table().Border(TableBorder.Rounded).Title("time by op (profiled steps: the device is synchronised at every op)")
            .AddColumns("op", "phase", "calls", "ms", "share", "launches", "GEMMs", "GFLOP", "GFLOP/s", "MB", "GB/s");
        foreach (var o in r.ByOp.OrderByDescending(o => o.Milliseconds))
        {
            ops.AddRow(Markup.Escape(o.Op), o.Phase, $"{o.Calls}", $"{o.Milliseconds:F2}", $"{100 * o.Milliseconds / r.ProfiledStepMs:F1}%",
                       $"{o.KernelLaunches}", $"{o.GemmCalls}", o.Flops > 0 ? $"{o.Flops / 1e9:F3}" : "-",
                       o.Flops > 0 ? $"{o.Flops / 1e9 / (o.Milliseconds / 1e3):F1}" : "-", o.Bytes > 0 ? $"{o.Bytes / 1e6:F1}" : "-",
                       o.Bytes > 0 ? $"{o.Bytes / 1e9 / (o.Milliseconds / 1e3):F1}" : "-");
        }
        double forward = r.ByOp.Where(o => o.Phase == "forward").Sum(o => o.Milliseconds);
        double backward = r.ByOp.Where(o => o.Phase == "backward").Sum(o => o.Milliseconds);
        double update = r.ByOp.Where(o => o.Phase == "update").Sum(o => o.Milliseconds);
        ops.AddEmptyRow();
        ops.AddRow("[bold]forward[/]", "", "", $"{forward:F2}", $"{100 * forward / r.ProfiledStepMs:F1}%", "", "", "", "", "", "");
        ops.AddRow("[bold]backward[/]", "", "", $"{backward:F2}", $"{100 * backward / r.ProfiledStepMs:F1}%", "", "", "", "", "", "");
        ops.AddRow("[bold]update[/]", "", "", $"{update:F2}", $"{100 * update / r.ProfiledStepMs:F1}%", "", "", "", "", "", "");
        ops.AddRow("[bold]profiled step[/]", "", "", $"{r.ProfiledStepMs:F2}", "100%", "", "", "", "", "", "");
        AnsiConsole.Write(ops);

        var summary = new Table().Border(TableBorder.Rounded).AddColumns("training step", "value");
        // A run timed beside the steps, against training at three points of the spreads: on a shared machine the medians
        // carry its load, the fastest runs what the code itself costs. Not measured (0): no rows.
        void AddAgainstStep(string what, double median, double imagesPerSecond, double fastest, double p10)
        {
            if (median <= 0) return;
            summary.AddRow($"{what} ms / images/s", $"{median:F1} / {imagesPerSecond:F0} ({r.StepMs / median:F2}x training)");
            summary.AddRow("  fastest / p10 ms (x training's)", $"{fastest:F1} ({r.StepMsMin / fastest:F2}x) / {p10:F1} ({r.StepMsP10 / p10:F2}x)");
        }
        summary.AddRow("model", Markup.Escape($"{r.Preset}, batch {r.Batch}, {r.ParameterCount:N0} parameters"));
        summary.AddRow("device", Markup.Escape(r.Device));
        if (r.Gemm.Length > 0) summary.AddRow("GEMM", Markup.Escape(r.Gemm));
        summary.AddRow("step ms (median)", $"[bold]{r.StepMs:F1}[/]");
        summary.AddRow("spread (min / p10 / p90 / max)", $"{r.StepMsMin:F1} / {r.StepMsP10:F1} / {r.StepMsP90:F1} / {r.StepMsMax:F1}");
        summary.AddRow("images/s", $"{r.ImagesPerSecond:F0}");
        AddAgainstStep("inference (forward alone)", r.InferenceMs, r.InferenceImagesPerSecond, r.InferenceMsMin, r.InferenceMsP10);
        AddAgainstStep("encode (encoder + nearest codes)", r.EncodeMs, r.EncodeImagesPerSecond, r.EncodeMsMin, r.EncodeMsP10);
        if (r.GraphStepMs > 0)
            summary.AddRow("graph-shaped step ms (median)", Markup.Escape($"{r.GraphStepMs:F1} ({r.GraphStepMs / r.StepMs:F2}x the eager step; {r.GraphStepExecution})"));
        summary.AddRow("kernel launches / GEMM calls per step", $"{r.LaunchesPerStep} / {r.GemmCallsPerStep}");
        summary.AddRow("work per step", $"{r.Flops / 1e9:F2} GFLOP, {r.Bytes / 1e6:F0} MB (fewest bytes)");
        summary.AddRow("arena peak / device memory", $"{r.ArenaPeakBytes / 1048576.0:F1} MiB / {r.DeviceBytes / 1048576.0:F1} MiB");
        foreach (var f in r.Floors)
            summary.AddRow(Markup.Escape($"floor: {f.Reference}"),
                           Markup.Escape($"{f.FloorMs:G3} ms at {f.PeakGflops:F0} GFLOP/s{(f.PeakGigabytesPerSecond > 0 ? $", {f.PeakGigabytesPerSecond:F0} GB/s" : "")}: step = {r.StepMs / f.FloorMs:F2}x floor"));
        AnsiConsole.Write(summary);
        PrintRoofline(r);
    }

    // The step against every floor in one table: the datasheet GPUs with their figures and sources, and the CPU's measured sgemm.
    private static void PrintRoofline(StepBenchmarkResult r)
    {
        var table = new Table().Border(TableBorder.Rounded).Title($"roofline: the measured step ({r.StepMs:F2} ms) against each reference's floor")
            .AddColumns("reference", "FP32 GFLOP/s", "TF32 dense GFLOP/s", "memory GB/s", "floor ms (FP32)", "floor ms (TF32)", "measured / floor (FP32)",
                        "measured / floor (TF32)", "source");
        foreach (var f in r.Floors)
            table.AddRow(Markup.Escape(f.Reference), $"{f.PeakGflops:N0}", f.Tf32Gflops is double t ? $"{t:N0}" : "-",
                         f.PeakGigabytesPerSecond > 0 ? $"{f.PeakGigabytesPerSecond:N0}" : "-", $"{f.FloorMs:F4}",
                         f.Tf32FloorMs is double tf ? $"{tf:F4}" : "-", $"[bold]{f.MeasuredOverFloor:F1}x[/]",
                         f.MeasuredOverTf32Floor is double rt ? $"{rt:F1}x" : "-", Markup.Escape(f.Source));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine("[grey]floor = max(FLOPs / peak, fewest bytes / bandwidth); the TF32 floor puts every FLOP on the tensor cores, " +
                               "a lower bound (only the GEMM-shaped work could run there). The cpu row counts FLOPs only.[/]");
    }

    /// <summary>
    /// Each op's measured time against every floor (<see cref="Roofline"/>): the datasheet GPUs' FP32 and TF32 floors and, on
    /// the cpu device, the measured-sgemm floor; then the references' figures and sources.
    /// </summary>
    internal static void PrintOpRoofline(IReadOnlyList<BenchmarkResult> results)
    {
        var withFloors = results.Where(r => r.Floors is { Count: > 0 }).ToList();
        if (withFloors.Count == 0) return;
        var references = withFloors[0].Floors!;
        var table = new Table().Border(TableBorder.Rounded).Title("roofline by op: measured time against each reference's floor (FP32 / TF32 for the GPUs)")
            .AddColumns("work", "variant", "measured ms");
        foreach (var f in references)
            table.AddColumns(Markup.Escape($"{f.Reference} floor ms"), Markup.Escape($"measured / {f.Reference} floor"));
        foreach (var r in withFloors)
        {
            var cells = new List<string> { Markup.Escape(r.Group), Markup.Escape(r.Variant), $"{r.MedianMilliseconds:F3}" };
            foreach (var f in r.Floors!)
            {
                cells.Add(f.Tf32FloorMs is double tf ? $"{f.FloorMs:F4} / {tf:F4}" : $"{f.FloorMs:F4}");
                cells.Add(f.FloorMs <= 0 ? "-" : f.MeasuredOverTf32Floor is double rt ? $"{f.MeasuredOverFloor:F0}x / {rt:F0}x" : $"{f.MeasuredOverFloor:F1}x");
            }
            table.AddRow(cells.ToArray());
        }
        AnsiConsole.Write(table);
        var figures = new Table().Border(TableBorder.Rounded).Title("the references").AddColumns("reference", "FP32 GFLOP/s", "TF32 dense GFLOP/s", "memory GB/s", "source");
        foreach (var f in references)
            figures.AddRow(Markup.Escape(f.Reference), $"{f.PeakGflops:N0}", f.Tf32Gflops is double t ? $"{t:N0}" : "-",
                           f.PeakGigabytesPerSecond > 0 ? $"{f.PeakGigabytesPerSecond:N0}" : "-", Markup.Escape(f.Source));
        AnsiConsole.Write(figures);
    }
}
