using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace VqVaeCuda.Tests.Training;

/// <summary>
/// The real `vqvae` command as a child process (the built vqvae.dll beside the tests), for what cannot be tested in
/// process: signals, SIGKILL, a file-size limit.
/// </summary>
internal sealed partial class CliChild : IDisposable
{
    public const int SigInt = 2, SigKill = 9, SigTerm = 15;

    private readonly Process _process;
    private readonly System.Text.StringBuilder _output = new();

    private CliChild(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_output) _output.AppendLine(line);
    }

    /// <summary>
    /// Starts <c>dotnet vqvae.dll ARGS</c> in <paramref name="workingDirectory"/>. SIGINT and SIGTERM are reset to their
    /// default disposition first (env --default-signal): a test runner started in the background of a non-interactive
    /// shell inherits SIGINT ignored, and an ignored signal stays ignored across exec (the runtime keeps it so).
    /// With <paramref name="fileSizeLimitKiB"/>, the child runs under that RLIMIT_FSIZE with SIGXFSZ ignored, so a write past
    /// the limit fails with EFBIG instead of killing the process: a real full-disk-like failure without root privileges or
    /// a mount (the tests run as root in CI, where a read-only folder would not stop a write, and mounting a tiny tmpfs
    /// needs privileges a test should not assume).
    /// </summary>
    public static CliChild Start(string workingDirectory, IEnumerable<string> args, int? fileSizeLimitKiB = null)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "vqvae.dll");
        var command = new List<string> { "--default-signal=INT,TERM", "dotnet", dll };
        command.AddRange(args);
        ProcessStartInfo start;
        if (fileSizeLimitKiB is int limit)
        {
            var quoted = string.Join(" ", command.Select(a => "'" + a.Replace("'", "'\\''") + "'"));
            start = new ProcessStartInfo("bash", ["-c", $"ulimit -f {limit}; trap '' XFSZ; exec env {quoted}"]);
            // The runtime's W^X double mapping sizes a memory file with ftruncate, which the limit would refuse at start-up.
            start.Environment["DOTNET_EnableWriteXorExecute"] = "0";
        }
        else
        {
            start = new ProcessStartInfo("env", command);
        }
        start.WorkingDirectory = workingDirectory;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.Environment["VQVAE_KERNEL_CACHE"] = Path.Combine(workingDirectory, "kernel-cache");
        return new CliChild(Process.Start(start)!);
    }

    /// <summary>Runs the command to its end.</summary>
    public static (int ExitCode, string Output) Run(string workingDirectory, IEnumerable<string> args, int? fileSizeLimitKiB = null)
    {
        using var child = Start(workingDirectory, args, fileSizeLimitKiB);
        return child.WaitForExit();
    }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Sends <paramref name="signal"/> to the child.</summary>
    public void Signal(int signal)
    {
        if (Kill(_process.Id, signal) != 0) throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Waits until the child's metrics.jsonl holds at least <paramref name="lines"/> whole lines.</summary>
    public void WaitForMetricsLines(string metrics, int lines, TimeSpan? timeout = null)
    {
        var clock = Stopwatch.StartNew();
        while (CountWholeLines(metrics) < lines)
        {
            if (_process.HasExited) Assert.Fail($"the command ended (exit {_process.ExitCode}) before {lines} metrics lines:\n{Output()}");
            if (clock.Elapsed > (timeout ?? TimeSpan.FromMinutes(2))) Assert.Fail($"no {lines} metrics lines after {clock.Elapsed}");
            Thread.Sleep(5);
        }
    }

    /// <summary>Waits until the child has printed <paramref name="text"/> (stdout or stderr).</summary>
    public void WaitForOutput(string text)
    {
        var clock = Stopwatch.StartNew();
        while (!Output().Contains(text, StringComparison.Ordinal))
        {
            if (_process.HasExited) Assert.Fail($"the command ended (exit {_process.ExitCode}) without printing '{text}':\n{Output()}");
            if (clock.Elapsed > TimeSpan.FromMinutes(1)) Assert.Fail($"no '{text}' after {clock.Elapsed}");
            Thread.Sleep(1);
        }
    }

    public (int ExitCode, string Output) WaitForExit()
    {
        if (!_process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            _process.Kill(entireProcessTree: true);
            Assert.Fail("the command did not end within 3 minutes");
        }
        _process.WaitForExit();  // the redirected streams are drained
        return (_process.ExitCode, Output());
    }

    private string Output()
    {
        lock (_output) return _output.ToString();
    }

    private static int CountWholeLines(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            int count = 0, b;
            while ((b = stream.ReadByte()) >= 0) if (b == '\n') count++;
            return count;
        }
        catch (FileNotFoundException)
        {
            return 0;
        }
        catch (DirectoryNotFoundException)
        {
            return 0;
        }
    }

    /// <summary>
    /// The loss trace of a metrics.jsonl: per line, the step, the split and every loss and usage figure (not the timings),
    /// parsed exactly (System.Text.Json writes the shortest text that round-trips a double, so equal values are equal bits).
    /// Every line must be valid JSON.
    /// </summary>
    public static List<string> LossTrace(string metrics) =>
        File.ReadAllLines(metrics).Select(line =>
        {
            using var doc = JsonDocument.Parse(line);
            var r = doc.RootElement;
            var fields = r.EnumerateObject().Where(p => p.Name is not ("images_per_second" or "elapsed_seconds"))
                          .Select(p => $"{p.Name}={p.Value.GetRawText()}");
            return string.Join(" ", fields);
        }).ToList();

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
