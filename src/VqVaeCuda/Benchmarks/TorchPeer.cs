using System.Collections.Concurrent;
using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using VqVaeCuda.Checkpoints;
using VqVaeCuda.Models;

namespace VqVaeCuda.Benchmarks;

/// <summary>The PyTorch peer could not be found, failed, or timed out; the message says which, with the end of the script's stderr.</summary>
public sealed class TorchPeerException(string message) : InvalidOperationException(message);

/// <summary>
/// What the PyTorch peer measured for one training step (the JSON that <c>tools/peer/torch_vqvae_step.py --json</c> writes).
/// Times are milliseconds over the timed repetitions.
/// </summary>
public sealed record TorchPeerResult
{
    /// <summary>Median step time.</summary>
    [JsonPropertyName("step_ms")] public double StepMs { get; init; }

    /// <summary>Fastest step.</summary>
    [JsonPropertyName("step_ms_min")] public double StepMsMin { get; init; }

    /// <summary>Slowest step.</summary>
    [JsonPropertyName("step_ms_max")] public double StepMsMax { get; init; }

    /// <summary>10th percentile (linear interpolation between ranks).</summary>
    [JsonPropertyName("step_ms_p10")] public double StepMsP10 { get; init; }

    /// <summary>90th percentile.</summary>
    [JsonPropertyName("step_ms_p90")] public double StepMsP90 { get; init; }

    /// <summary>Batch size / median step time.</summary>
    [JsonPropertyName("images_per_second")] public double ImagesPerSecond { get; init; }

    /// <summary>Median time of the forward alone on the same batch (eval mode, no autograd): the peer of our inference figure.</summary>
    [JsonPropertyName("inference_ms")] public double InferenceMs { get; init; }

    /// <summary>Batch size / <see cref="InferenceMs"/>.</summary>
    [JsonPropertyName("inference_images_per_second")] public double InferenceImagesPerSecond { get; init; }

    /// <summary>torch.__version__ of the Python that ran it.</summary>
    [JsonPropertyName("torch_version")] public string TorchVersion { get; init; } = "";

    /// <summary>torch.get_num_threads() during the run.</summary>
    [JsonPropertyName("threads")] public int Threads { get; init; }

    /// <summary>Images per step.</summary>
    [JsonPropertyName("batch")] public int Batch { get; init; }

    /// <summary>cpu or cuda.</summary>
    [JsonPropertyName("device")] public string Device { get; init; } = "";

    /// <summary>Elements of all the model's parameters (the codebook included; EMA buffers not).</summary>
    [JsonPropertyName("parameter_count")] public long ParameterCount { get; init; }

    /// <summary>Timed steps.</summary>
    [JsonPropertyName("repetitions")] public int Repetitions { get; init; }

    /// <summary>Untimed steps before them.</summary>
    [JsonPropertyName("warmup")] public int Warmup { get; init; }

    /// <summary>Whether the steps ran under torch.compile (false when it was not asked for, or failed and fell back).</summary>
    [JsonPropertyName("compiled")] public bool Compiled { get; init; }

    /// <summary>Whether TF32 was allowed on cuda (off unless asked for, as our default).</summary>
    [JsonPropertyName("tf32")] public bool Tf32 { get; init; }

    /// <summary>What the script had to say about the run (e.g. why torch.compile fell back to eager); empty when nothing.</summary>
    [JsonPropertyName("notes")] public IReadOnlyList<string> Notes { get; init; } = [];
}

/// <summary>What one PyTorch forward of the peer model gave (see <see cref="TorchPeer.Forward"/>).</summary>
/// <param name="EncoderOutput">z_e [N, D, h, w], row-major.</param>
/// <param name="Codes">The code map [N, h, w].</param>
/// <param name="Reconstruction">x̂ [N, C, S, S].</param>
public sealed record TorchPeerForward(float[] EncoderOutput, int[] Codes, float[] Reconstruction);

/// <summary>
/// Runs the PyTorch peer of the training-step benchmark: <c>tools/peer/torch_vqvae_step.py</c>, embedded in this
/// assembly and written to a temporary file when used, so it works from any install. The script builds our
/// <see cref="VqVae"/> in PyTorch (same layers, state-dict names, initialisation, loss, Adam and EMA update) and times
/// its training step. It needs a Python with torch: <see cref="TryFind"/> says which one, or why there is none.
/// </summary>
public static class TorchPeer
{
    /// <summary>Names the Python to use; when set, it is the only one tried.</summary>
    public const string PythonVariable = "VQVAE_PEER_PYTHON";

    /// <summary>The name of the embedded script.</summary>
    public const string ScriptName = "torch_vqvae_step.py";

    /// <summary>How long a probe (<c>python -c "import torch"</c>) may take; importing torch on a busy machine takes seconds.</summary>
    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(60);

    private const string DebianPython = "/usr/bin/python3";
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(10);
    // Probing imports torch (seconds); remember each interpreter's answer for the life of the process.
    private static readonly ConcurrentDictionary<string, string?> Probes = new(StringComparer.Ordinal);
    private static readonly Lazy<string> Script = new(WriteScript);

    /// <summary>
    /// Finds a Python that imports torch: <c>$VQVAE_PEER_PYTHON</c> if set (and then only it), else <c>python3</c> on the
    /// PATH, else <c>/usr/bin/python3</c> (Debian's, where <c>apt-get install python3-torch</c> puts torch).
    /// </summary>
    /// <param name="python">The interpreter's path, or null.</param>
    /// <param name="whyNot">Empty when found; otherwise each candidate with why it does not do.</param>
    public static bool TryFind(out string? python, out string whyNot)
    {
        var configured = Environment.GetEnvironmentVariable(PythonVariable);
        var candidates = string.IsNullOrEmpty(configured)
            ? new[] { OnPath("python3"), DebianPython }.OfType<string>().Distinct(StringComparer.Ordinal).ToList()
            : [configured];
        var reasons = new List<string>();
        foreach (var candidate in candidates)
        {
            var reason = Probes.GetOrAdd(candidate, Probe);
            if (reason is null)
            {
                python = candidate;
                whyNot = "";
                return true;
            }
            reasons.Add($"{candidate}{(candidate == configured ? $" (${PythonVariable})" : "")}: {reason}");
        }
        if (candidates.Count == 0) reasons.Add($"no python3 on the PATH and no {DebianPython}");
        python = null;
        whyNot = "no Python with PyTorch: " + string.Join("; ", reasons) +
                 $". Install it (Debian: apt-get install python3-torch) or set {PythonVariable} to a Python that has it";
        return false;
    }

    /// <summary>
    /// Times <paramref name="repetitions"/> training steps of <paramref name="config"/>'s model in PyTorch, after
    /// <paramref name="warmup"/> untimed ones, on one fixed random batch of <paramref name="batch"/> images.
    /// </summary>
    /// <param name="config">The model.</param>
    /// <param name="batch">Images per step.</param>
    /// <param name="threads">torch.set_num_threads and set_num_interop_threads; 0 leaves PyTorch's choice.</param>
    /// <param name="warmup">Untimed steps first.</param>
    /// <param name="repetitions">Timed steps.</param>
    /// <param name="device">cpu or cuda.</param>
    /// <param name="seed">Initialisation and batch seed.</param>
    /// <param name="compile">Try torch.compile (PyTorch 2.x); the script falls back to eager with a message on stderr.</param>
    /// <param name="timeout">The whole run's limit (10 minutes by default).</param>
    /// <exception cref="TorchPeerException">No Python with torch, the script failed (its stderr's end quoted), or it ran out of time.</exception>
    public static TorchPeerResult Run(VqVaeConfig config, int batch, int threads, int warmup, int repetitions, string device = "cpu",
                                      int seed = 0, bool compile = false, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(threads);
        ArgumentOutOfRangeException.ThrowIfNegative(warmup);
        ArgumentOutOfRangeException.ThrowIfLessThan(repetitions, 1);
        if (device is not ("cpu" or "cuda")) throw new ArgumentException($"device '{device}': the peer runs on cpu or cuda", nameof(device));
        using var scratch = new ScratchFolder();
        var json = scratch.File("result.json");
        var args = new List<string>
        {
            "--batch", Invariant(batch), "--threads", Invariant(threads), "--warmup", Invariant(warmup),
            "--repetitions", Invariant(repetitions), "--seed", Invariant(seed), "--device", device, "--json", json,
        };
        if (compile) args.Add("--compile");
        RunScript(config, args, timeout ?? DefaultTimeout);
        return JsonSerializer.Deserialize<TorchPeerResult>(File.ReadAllText(json))
               ?? throw new TorchPeerException($"{ScriptName} wrote an empty result to {json}");
    }

    /// <summary>The PyTorch model's state dict (parameters and persistent buffers) for <paramref name="config"/>: name → shape, in its order.</summary>
    /// <exception cref="TorchPeerException">No Python with torch, or the script failed.</exception>
    public static IReadOnlyDictionary<string, int[]> Describe(VqVaeConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return StateDictReport(config, "--describe", d => d.GetInt32());
    }

    /// <summary>[min, max] of each state-dict entry of the freshly initialised PyTorch model (seed 0): for comparing the initialisation with ours.</summary>
    internal static IReadOnlyDictionary<string, double[]> InitialRanges(VqVaeConfig config) => StateDictReport(config, "--init-stats", d => d.GetDouble());

    /// <summary>The script's JSON object {state-dict name: [numbers]} printed by <paramref name="mode"/>, in its order.</summary>
    private static Dictionary<string, T[]> StateDictReport<T>(VqVaeConfig config, string mode, Func<JsonElement, T> read)
    {
        var stdout = RunScript(config, [mode], TimeSpan.FromMinutes(2));
        try
        {
            using var doc = JsonDocument.Parse(stdout);
            return doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.EnumerateArray().Select(read).ToArray(), StringComparer.Ordinal);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new TorchPeerException($"{ScriptName} {mode} printed no JSON object of state-dict entries ({e.Message}): {Tail(stdout)}");
        }
    }

    /// <summary>
    /// One PyTorch forward (no gradient, no state change) of the peer model with the weights of <paramref name="weightsPath"/>
    /// (a safetensors state dict or checkpoint of ours, loaded strictly) on <paramref name="count"/> images
    /// <paramref name="images"/> [N, C, S, S] of <paramref name="config"/>'s shape. For comparing the two implementations.
    /// </summary>
    /// <exception cref="TorchPeerException">No Python with torch, or the script failed (for example, the weights do not fit the model).</exception>
    public static TorchPeerForward Forward(VqVaeConfig config, string weightsPath, float[] images, int count)
    {
        var tensors = OnImages(config, "--reconstruct", weightsPath, images, count);
        var codes = tensors["codes"].ToInts();
        int h = config.LatentSize;
        if (codes.Length != count * h * h) throw new TorchPeerException($"{ScriptName} wrote {codes.Length} codes for {count} code maps of {h}x{h}");
        return new TorchPeerForward(tensors["z_e"].ToFloats(), codes, tensors["reconstruction"].ToFloats());
    }

    /// <summary>
    /// One training step of the peer (the step it times, with a fresh Adam) from the weights of <paramref name="weightsPath"/> on
    /// <paramref name="images"/>: the state dict after it, plus <c>loss.reconstruction</c> and <c>loss.quantizer</c>
    /// (β·commitment, plus the codebook loss without EMA), each [1]. For comparing the two steps.
    /// </summary>
    internal static IReadOnlyDictionary<string, SafetensorsTensor> TrainStep(VqVaeConfig config, string weightsPath, float[] images, int count) =>
        OnImages(config, "--train-step", weightsPath, images, count);

    /// <summary>Runs <paramref name="mode"/> IN OUT with the weights loaded, IN holding <paramref name="images"/> as <c>x</c>; returns OUT's tensors.</summary>
    private static IReadOnlyDictionary<string, SafetensorsTensor> OnImages(VqVaeConfig config, string mode, string weightsPath, float[] images, int count)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(weightsPath);
        ArgumentNullException.ThrowIfNull(images);
        int c = config.InputChannels, s = config.ImageSize;
        if (count < 1 || images.Length != (long)count * c * s * s)
            throw new ArgumentException($"{images.Length} values are not {count} images of {c}x{s}x{s}", nameof(images));
        using var scratch = new ScratchFolder();
        string input = scratch.File("input.safetensors"), output = scratch.File("output.safetensors");
        Safetensors.Write(input, [SafetensorsTensor.FromFloats("x", [count, c, s, s], images)]);
        RunScript(config, ["--load", Path.GetFullPath(weightsPath), mode, input, output], DefaultTimeout);
        return Safetensors.Read(output).Tensors;
    }

    /// <summary>Runs the script with the config and <paramref name="arguments"/>; returns its stdout.</summary>
    private static string RunScript(VqVaeConfig config, IEnumerable<string> arguments, TimeSpan timeout)
    {
        if (!TryFind(out var python, out var whyNot)) throw new TorchPeerException(whyNot);
        var start = new ProcessStartInfo(python!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Script.Value);
        start.ArgumentList.Add("--config");
        start.ArgumentList.Add(config.ToJson());
        foreach (var a in arguments) start.ArgumentList.Add(a);
        var (exitCode, stdout, stderr) = Execute(start, timeout)
            ?? throw new TorchPeerException($"{ScriptName} did not finish within {timeout.TotalSeconds:F0} s and was stopped");
        if (exitCode != 0)
            throw new TorchPeerException($"{ScriptName} failed (exit code {exitCode}) with {python}: {Tail(stderr.Length > 0 ? stderr : stdout)}");
        return stdout;
    }

    /// <summary>Why <paramref name="python"/> cannot run the peer, or null when <c>import torch</c> works there.</summary>
    private static string? Probe(string python)
    {
        var start = new ProcessStartInfo(python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("import torch");
        try
        {
            if (Execute(start, ProbeTimeout) is not { } result) return $"'import torch' did not finish within {ProbeTimeout.TotalSeconds:F0} s";
            return result.ExitCode == 0 ? null
                : $"'import torch' failed (exit code {result.ExitCode}){(result.Stderr.Length > 0 ? ": " + LastLine(result.Stderr) : "")}";
        }
        catch (Win32Exception e)
        {
            return $"cannot be started ({e.Message})";
        }
    }

    /// <summary>Runs to the end or the timeout (then kills the process tree and returns null); reads both streams as they come, so neither pipe fills.</summary>
    internal static (int ExitCode, string Stdout, string Stderr)? Execute(ProcessStartInfo start, TimeSpan timeout)
    {
        using var process = Process.Start(start) ?? throw new TorchPeerException($"{start.FileName} did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // It ended between the wait and the kill.
            }
            process.WaitForExit();
            return null;
        }
        process.WaitForExit();  // after the timed wait, this one also waits for the streams to close
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>The first executable called <paramref name="name"/> on the PATH.</summary>
    private static string? OnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
        .Select(dir => Path.Combine(dir, name))
        .FirstOrDefault(path => File.Exists(path) && (OperatingSystem.IsWindows() || (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0));

    /// <summary>Writes the embedded script to a temporary folder named after its hash (so versions never mix) and returns its path.</summary>
    private static string WriteScript()
    {
        var assembly = typeof(TorchPeer).Assembly;
        using var stream = assembly.GetManifestResourceStream("tools/peer/" + ScriptName)
                           ?? throw new TorchPeerException($"{ScriptName} is not embedded in {assembly.GetName().Name}");
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        var bytes = memory.ToArray();
        var hash = Convert.ToHexStringLower(SHA256.HashData(bytes))[..16];
        var folder = Path.Combine(Path.GetTempPath(), $"vqvae-peer-{hash}");
        var path = Path.Combine(folder, ScriptName);
        if (File.Exists(path) && File.ReadAllBytes(path).AsSpan().SequenceEqual(bytes)) return path;
        Directory.CreateDirectory(folder);
        // Written beside and renamed, so a concurrent run never reads half a script.
        var temporary = Path.Combine(folder, $".{ScriptName}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        File.WriteAllBytes(temporary, bytes);
        File.Move(temporary, path, overwrite: true);
        return path;
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static string LastLine(string text) => text.TrimEnd().Split('\n')[^1].Trim();

    private static string Tail(string text, int characters = 2000)
    {
        text = text.TrimEnd();
        return text.Length <= characters ? text : "..." + text[^characters..];
    }

    /// <summary>A temporary folder for one run's files, deleted afterwards.</summary>
    private sealed class ScratchFolder : IDisposable
    {
        private readonly string _path = Directory.CreateTempSubdirectory("vqvae-peer-run-").FullName;

        public string File(string name) => Path.Combine(_path, name);

        public void Dispose()
        {
            try
            {
                Directory.Delete(_path, recursive: true);
            }
            catch (IOException)
            {
                // A leftover temporary folder is not worth failing a benchmark for.
            }
        }
    }
}
