using System.CommandLine;
using Spectre.Console;
using VqVaeCuda.Device;
using VqVaeCuda.Device.Cuda;
using VqVaeCuda.Device.Host;
using VqVaeCuda.Verification;

namespace VqVaeCuda.Cli.Commands;

/// <summary>
/// <c>vqvae verify</c>: every op, kernel, nearest-code search and a short training run on the chosen device against the cpu
/// device (threads in ascending order), with a per-op error and tolerance; exit code 1 on any failure.
/// </summary>
internal static class VerifyCommand
{
    public static Command Create()
    {
        var device = new Option<string>("--device", "-d")
        {
            Description = "The device to verify: cuda | cuda:N | cpu | auto (a GPU when one answers, else cpu). Against the cpu device, threads " +
                          "in ascending order. With cpu, the cpu device itself runs its block threads in another order (--thread-order).",
            DefaultValueFactory = _ => "auto",
        };
        var order = new Option<string>("--thread-order")
        {
            Description = "With the cpu device: the thread order checked against ascending: shuffled | descending.",
            DefaultValueFactory = _ => "shuffled",
        };
        var json = new Option<FileInfo?>("--json") { Description = "Also write every check, error, tolerance and reason, and the kernel coverage, to this JSON file." };
        var cache = CommonOptions.KernelCache();
        var command = new Command("verify",
            "Differential verification of a device: every op forward and backward (several shapes, odd sizes included), every kernel, the " +
            "fused and unfused nearest-code searches, and 20 training steps of the tiny model, each run on the chosen device and on the cpu " +
            "device (block threads in ascending order, the reference) from the same random inputs. Each check's largest error, " +
            "max|device - reference| / max|reference|, must stay within a tolerance stated with its reason (fused multiply-adds, summation " +
            "order, cuBLAS against OpenBLAS). Then the trainer's graph-shaped step, captured and replayed on the chosen device, against the " +
            "same steps launch by launch there: the same bits. Prints a table per group and `N ops verified, N failed`; names any kernel no check reached; " +
            "exit code 1 on any failure.");
        foreach (var o in new Option[] { device, order, json, cache }) command.Options.Add(o);
        command.SetAction(result => CommonOptions.Guard(() =>
            Run(result.GetValue(device)!, result.GetValue(order)!, result.GetValue(cache), result.GetValue(json))));
        return command;
    }

    private static int Run(string specification, string threadOrder, string? cache, FileInfo? json)
    {
        var order = threadOrder.Trim().ToLowerInvariant() switch
        {
            "shuffled" => ThreadOrder.Shuffled,
            "descending" => ThreadOrder.Descending,
            _ => throw new ArgumentException($"--thread-order {threadOrder}: shuffled or descending (ascending is the reference)"),
        };
        using var reference = new HostDevice(new HostDeviceOptions { ThreadOrder = ThreadOrder.Ascending });
        var selected = DeviceSelector.Open(specification, new DeviceSelectorOptions
        {
            // Checked: canaries around every allocation (a write out of bounds is named) and fresh memory filled with NaN (a
            // read of memory nothing wrote reaches the comparison), which a GPU would not report.
            Host = new HostDeviceOptions { ThreadOrder = order, Checked = true },
            Cuda = new CudaDeviceOptions { KernelCacheDirectory = cache },
        });
        using var tested = selected.Device;
        AnsiConsole.MarkupLineInterpolated($"[grey]device: {selected.Reason}[/]");
        string label = tested.Kind == DeviceKind.Host ? $"cpu ({order.ToString().ToLowerInvariant()} thread order, checked memory)" : $"{tested.Name} ({tested.Capabilities.Name})";
        return Run(tested, reference, new VerificationOptions { DeviceLabel = label, ReferenceLabel = "cpu (ascending thread order)" }, json);
    }

    /// <summary>Verifies <paramref name="tested"/> against <paramref name="reference"/>, prints, writes JSON; the exit code (tests call this with a broken device).</summary>
    internal static int Run(IDevice tested, IDevice reference, VerificationOptions options, FileInfo? json)
    {
        AnsiConsole.MarkupLineInterpolated($"verifying [bold]{options.DeviceLabel ?? tested.Name}[/] against [bold]{options.ReferenceLabel ?? reference.Name}[/]");
        AnsiConsole.MarkupLineInterpolated($"[grey]arithmetic: {DeviceVerifier.Arithmetic(tested.Capabilities)}[/]");
        VerificationReport report = null!;
        int done = 0, failed = 0;
        AnsiConsole.Status().Start("verifying", ctx =>
        {
            report = DeviceVerifier.Run(tested, reference, options,
                progress: check =>
                {
                    done++;
                    if (!check.Ok)
                    {
                        failed++;
                        AnsiConsole.MarkupLineInterpolated($"[red]FAILED[/] {check.Group}: {check.Op} {check.Shape}: {check.Note ?? "error above tolerance"}");
                    }
                },
                starting: what => ctx.Status(Markup.Escape($"verifying ({done} done, {failed} failed): {what}")));
        });
        foreach (var group in report.Checks.GroupBy(c => c.Group))
        {
            var table = new Table().Border(TableBorder.Rounded).Title(Markup.Escape(group.Key))
                .AddColumns("op", "shape", "forward max rel err", "backward max rel err", "tolerance", "ok");
            foreach (var c in group)
                table.AddRow(Markup.Escape(c.Op), Markup.Escape(c.Shape), Error(c.ForwardMaxRelError, c.Tolerance),
                             c.BackwardMaxRelError is double b ? Error(b, c.Tolerance) : "-", $"{c.Tolerance:G2}", c.Ok ? "[green]ok[/]" : "[red]FAILED[/]");
            AnsiConsole.Write(table);
            foreach (var c in group.Where(c => c.Note is not null))
                AnsiConsole.MarkupLineInterpolated($"[grey]{c.Op} {c.Shape}: {c.Note}[/]");
        }
        var tolerances = new Table().Border(TableBorder.Rounded).Title("tolerances: max|device - reference| / max|reference|")
            .AddColumns("tolerance", "why");
        foreach (var (value, why) in report.Checks.Select(c => (c.Tolerance, c.ToleranceReason)).Distinct())
            tolerances.AddRow($"{value:G2}", Markup.Escape(why));
        AnsiConsole.Write(tolerances);
        int kernels = report.KernelsReached.Count + report.KernelsNotReached.Count + report.KernelsExempt.Count;
        string exempt = string.Join(", ", report.KernelsExempt.Select(e => e.Kernel));
        string missing = report.KernelsNotReached.Count == 0 ? "none" : string.Join(", ", report.KernelsNotReached);
        AnsiConsole.MarkupLineInterpolated($"kernels reached: {report.KernelsReached.Count} of {kernels} ({report.KernelsExempt.Count} left out on purpose: {exempt})");
        AnsiConsole.MarkupLineInterpolated($"[{(report.KernelsNotReached.Count == 0 ? "green" : "red")}]kernels no check reached: {missing}[/]");
        AnsiConsole.MarkupLineInterpolated($"[grey]{report.Seconds:F1} s[/]");
        BenchStep.WriteJson(json, report);
        Console.Out.Flush();
        // The summary line, exactly, last: scripts read it.
        AnsiConsole.WriteLine(report.Summary);
        return report.Passed ? 0 : 1;
    }

    private static string Error(double error, double tolerance) =>
        error <= tolerance ? $"{error:G3}" : $"[red]{(double.IsPositiveInfinity(error) ? "inf" : error.ToString("G3"))}[/]";
}
