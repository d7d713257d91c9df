using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using Spectre.Console;
using VqVaeCuda.Training;

namespace VqVaeCuda.Cli.Commands;

/// <summary>
/// SIGINT and SIGTERM while training: the first asks the trainer to finish its step and write a checkpoint (the command
/// then exits 0 with the command that resumes); a second one gets the signal's default action, so the process ends at
/// once (exit 130 or 143). Atomic checkpoint writes make that safe: a write cut short leaves only a temporary file,
/// which the resume removes.
/// </summary>
internal sealed class StopSignals : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly PosixSignalRegistration[] _registrations;
    private int _received;

    public StopSignals()
    {
        _registrations = [PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle), PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle)];
    }

    /// <summary>Cancelled by the first signal.</summary>
    public CancellationToken Token => _stop.Token;

    private void Handle(PosixSignalContext context)
    {
        if (Interlocked.Increment(ref _received) > 1)
        {
            context.Cancel = false;  // the default action: terminate now
            return;
        }
        context.Cancel = true;
        Console.Error.WriteLine($"{context.Signal}: finishing the current step and writing a checkpoint (send it again to quit at once)");
        _stop.Cancel();
    }

    public void Dispose()
    {
        foreach (var registration in _registrations) registration.Dispose();
        _stop.Dispose();
    }
}

/// <summary>What `train`, `prior train` and `pipeline` share about run folders and resuming.</summary>
internal static class RunControl
{
    /// <summary>
    /// "evaluated at 13,300 img/s (3.3x the last training window's 4,020)": the test split's forward-only throughput and
    /// its ratio to training's, the speed a user compares (inference against training throughput).
    /// </summary>
    public static string EvaluationSpeed(double evaluated, double? training, string unit) =>
        string.Create(CultureInfo.InvariantCulture, $"evaluated at {evaluated:N0} {unit}") +
        (training is > 0 ? string.Create(CultureInfo.InvariantCulture, $" ({evaluated / training.Value:F1}x the last training window's {training.Value:N0})") : "");

    public static Option<int> KeepCheckpoints() => new("--keep-checkpoints")
    {
        HelpName = "N",
        Description = "Step checkpoints kept in checkpoints/: the newest N (0: all). latest.safetensors is always kept.",
        DefaultValueFactory = _ => 3,
    };

    public static Option<StepExecution> StepMode() => new("--step-mode")
    {
        HelpName = "auto|eager|graph",
        Description = "How each training step runs. graph: nothing read back inside a step, captured once and replayed (one CUDA graph on a GPU, " +
                      "the recorded launches on the cpu device); losses and code usage are read at each log, evaluation and checkpoint, dead-code " +
                      "restarts are checked then. eager: the host loop, reading losses after every step. auto: graph on a GPU, eager on the cpu device. " +
                      "Any mode may be chosen again on --resume.",
        DefaultValueFactory = _ => StepExecution.Auto,
    };

    public static Option<int> LogEvery() => new("--log-every") { Description = "Steps per metrics line.", DefaultValueFactory = _ => 25 };

    public static Option<int> EvaluateEvery() =>
        new("--eval-every") { Description = "Steps between evaluations on the test split (0: only at the end).", DefaultValueFactory = _ => 0 };

    public static Option<int> CheckpointEvery() =>
        new("--checkpoint-every") { Description = "Steps between checkpoints (0: only at the end).", DefaultValueFactory = _ => 0 };

    public static Option<int> SkipNonFinite() => new("--skip-nonfinite")
    {
        HelpName = "N",
        Description = "Skip up to N steps whose loss or gradient is not finite (no update) before stopping; 0: stop at the first, " +
                      "naming the step and where its first non-finite value appeared.",
        DefaultValueFactory = _ => 0,
    };

    /// <summary>
    /// The folder of a new run: <paramref name="given"/> (--out), which must not exist, or the first free one of
    /// <paramref name="defaultBase"/>, <c>-2</c>, <c>-3</c>, ... Creating it is the claim.
    /// </summary>
    public static string ClaimNewRun(string? given, string defaultBase)
    {
        if (given is null) return RunFolder.ClaimUnique(defaultBase);
        RunFolder.Claim(given);
        return given;
    }

    /// <summary>Removes a claimed run folder again when a refusal came before anything was written into it.</summary>
    public static void ReleaseIfEmpty(string runDirectory)
    {
        try
        {
            if (Directory.Exists(runDirectory) && !Directory.EnumerateFileSystemEntries(runDirectory).Any()) Directory.Delete(runDirectory);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>
    /// The checkpoint `--resume` names: a file as given, or in a run folder the newest one that reads back whole
    /// (each torn or unreadable one skipped with a line saying so).
    /// </summary>
    public static string ResolveResume<THeader>(string resume, string prefix, string latestName, Func<string, (THeader Header, int Step)> check)
    {
        if (File.Exists(resume)) return resume;
        if (!Directory.Exists(resume)) throw new FileNotFoundException($"{resume}: no such checkpoint or run folder");
        var (path, _) = RunFolder.NewestCheckpoint(resume, prefix, latestName, check,
                                                   skipped => AnsiConsole.MarkupLineInterpolated($"[yellow]{skipped}[/]"));
        AnsiConsole.MarkupLineInterpolated($"[grey]newest whole checkpoint in {resume}: {path}[/]");
        return path;
    }

    /// <summary>
    /// The run folder of a resume: the checkpoint's own unless --out names another, which must then be new (a resume never
    /// writes into another run's folder either).
    /// </summary>
    public static string ResumeRunFolder(string checkpoint, string? given)
    {
        var own = CommonOptions.RunFolderOf(checkpoint);
        if (given is null || Path.GetFullPath(given).TrimEnd('/') == own.TrimEnd('/')) return given ?? own;
        RunFolder.Claim(given);
        return given;
    }

    /// <summary>
    /// On a resume: says, for each option given on the command line, whether it is taken (the run-management ones) or
    /// the checkpoint's value kept (everything that defines the run).
    /// </summary>
    public static void ReportSettings(ParseResult result, IEnumerable<(Option Option, object? Given, object? Saved)> kept,
                                      IEnumerable<(Option Option, object? Given, object? Saved)> taken, params Option[] architecture)
    {
        foreach (var option in architecture)
            if (result.GetResult(option) is { Implicit: false })
                AnsiConsole.MarkupLineInterpolated($"[yellow]{option.Name} is ignored: a resumed run's model is the checkpoint's[/]");
        foreach (var (option, given, saved) in kept)
            if (result.GetResult(option) is { Implicit: false } && !Equals(given, saved))
                AnsiConsole.MarkupLineInterpolated(
                    $"[yellow]{option.Name} {Text(given)} differs from the checkpoint's {Text(saved)}: keeping the checkpoint's (a resumed run keeps its settings)[/]");
        foreach (var (option, given, saved) in taken)
            if (result.GetResult(option) is { Implicit: false } && !Equals(given, saved))
                AnsiConsole.MarkupLineInterpolated($"[grey]{option.Name} {Text(given)} replaces the checkpoint's {Text(saved)}[/]");
    }

    /// <summary>Whether the option was given on the command line.</summary>
    public static bool Given(ParseResult result, Option option) => result.GetResult(option) is { Implicit: false };

    /// <summary>The line an interrupted run ends with: where its checkpoint is and the command that continues it.</summary>
    public static void ReportInterrupted(int step, (string Path, int Step)? checkpoint, string resumeCommand)
    {
        // Plain text, unwrapped: the resume command must survive a copy and paste from a narrow terminal or a log.
        Console.Out.WriteLine(checkpoint is { } c
            ? $"interrupted at step {step}; checkpoint {c.Path} (step {c.Step}). Resume with: {resumeCommand}"
            : $"interrupted at step {step}; nothing to resume (the run had no folder)");
    }

    /// <summary>A training failure the trainer explains itself (a non-finite step): one red line on stderr, exit code 1.</summary>
    public static int Failed(Exception e)
    {
        var error = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        if (Console.IsErrorRedirected) error.Profile.Width = 100_000;
        error.MarkupLineInterpolated($"[red]error:[/] {e.Message}");
        return 1;
    }

    /// <summary>Quotes a path or value for a shell command line when it needs it.</summary>
    public static string Shell(string value) =>
        value.Length > 0 && value.All(c => char.IsAsciiLetterOrDigit(c) || "/._-:=+,".Contains(c)) ? value : "'" + value.Replace("'", "'\\''") + "'";

    private static string Text(object? value) => value switch
    {
        null => "(none)",
        double d => d.ToString("G6", CultureInfo.InvariantCulture),
        float f => f.ToString("G6", CultureInfo.InvariantCulture),
        bool b => b ? "on" : "off",
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };
}
