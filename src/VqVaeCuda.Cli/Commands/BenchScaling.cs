using Spectre.Console;
using VqVaeCuda.Benchmarks;

namespace VqVaeCuda.Cli.Commands;

/// <summary><c>vqvae bench --scaling</c>: the step over batch sizes, the quantizer over K and D, as tables.</summary>
internal static class BenchScaling
{
    public static int Run(string deviceName, string? cache, bool tf32, string preset, int repetitions, FileInfo? json)
    {
        if (repetitions < 1) throw new ArgumentException($"--repetitions {repetitions}: at least 1");
        using var dev = CommonOptions.OpenDevice(deviceName, cache, tf32);
        IReadOnlyList<StepScalingPoint> steps = [];
        IReadOnlyList<QuantizerScalingPoint> quantizer = [];
        AnsiConsole.Status().Start("benchmarking scaling", ctx =>
        {
            void Report(string what) => ctx.Status(Markup.Escape($"scaling: {what}"));
            steps = ScalingBenchmarks.Steps(dev, preset, repetitions: repetitions, progress: Report);
            quantizer = ScalingBenchmarks.Quantizer(dev, repetitions: repetitions, progress: Report);
        });

        var stepTable = new Table().Border(TableBorder.Rounded).Title(Markup.Escape($"training step, {preset}, {dev.Name}"))
            .AddColumns("batch", "step ms", "images/s", "µs per image", "GFLOP/s", "launches", "arena MiB");
        foreach (var p in steps)
            stepTable.AddRow($"{p.Batch}", $"{p.StepMs:F1}", $"{p.ImagesPerSecond:F0}", $"{p.MicrosecondsPerImage:F0}", $"{p.Gflops:F1}", $"{p.LaunchesPerStep}",
                             $"{p.ArenaMiB:F0}");
        AnsiConsole.Write(stepTable);

        var quantizerTable = new Table().Border(TableBorder.Rounded)
            .Title(Markup.Escape($"quantizer forward, M = {quantizer.FirstOrDefault()?.Vectors} vectors, {quantizer.FirstOrDefault()?.Algorithm} search"))
            .AddColumns("K", "D", "nearest-code ms", "GFLOP/s", "ps per multiply-add", "whole quantizer ms");
        foreach (var p in quantizer)
            quantizerTable.AddRow($"{p.Codes}", $"{p.Dimensions}", $"{p.NearestMs:F2}", $"{p.Gflops:F1}", $"{p.PicosecondsPerProduct:F1}", $"{p.QuantizerMs:F2}");
        AnsiConsole.Write(quantizerTable);

        BenchStep.WriteJson(json, new { steps, quantizer });
        return 0;
    }
}
