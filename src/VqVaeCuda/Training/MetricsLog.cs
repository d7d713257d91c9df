using System.Text.Json;

namespace VqVaeCuda.Training;

/// <summary>One line of a run's metrics.jsonl.</summary>
/// <param name="Step">Optimizer steps done.</param>
/// <param name="Split">"train" (a window of recent steps) or "test" (the whole held-out split).</param>
/// <param name="ReconstructionMse">Mean squared error of pixels in [0,1].</param>
/// <param name="Psnr">10·log10(1 / MSE) in dB.</param>
/// <param name="CodebookLoss">‖sg[z_e] − e‖² (mean); with EMA updates it is reported but not optimised.</param>
/// <param name="CommitmentLoss">‖z_e − sg[e]‖² (mean), before the β weight.</param>
/// <param name="Perplexity">exp(entropy of code usage).</param>
/// <param name="CodesUsed">Codes assigned at least once.</param>
/// <param name="ImagesPerSecond">Training throughput over the window (0 for evaluation lines).</param>
/// <param name="ElapsedSeconds">Wall time since the run (or resume) started.</param>
public sealed record MetricsRecord(
    int Step,
    string Split,
    double ReconstructionMse,
    double Psnr,
    double CodebookLoss,
    double CommitmentLoss,
    double Perplexity,
    int CodesUsed,
    double ImagesPerSecond,
    double ElapsedSeconds);

/// <summary>
/// Appends records as JSON lines (snake_case names), flushed per line so a crash keeps what was logged: the one
/// writer of every run's metrics.jsonl (<see cref="MetricsLog"/>, <see cref="PriorMetricsLog"/>).
/// </summary>
public class JsonLinesLog<TRecord> : IDisposable
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
    private readonly StreamWriter _writer;

    /// <summary>Opens (appending) <paramref name="path"/>.</summary>
    public JsonLinesLog(string path)
    {
        Path = path;
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        _writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>Appends one record.</summary>
    public void Write(TRecord record) => _writer.WriteLine(JsonSerializer.Serialize(record, Json));

    /// <summary>Reads every record of a metrics file.</summary>
    public static IReadOnlyList<TRecord> ReadAll(string path) =>
        File.ReadLines(path).Where(l => l.Length > 0).Select(l => JsonSerializer.Deserialize<TRecord>(l, Json)!).ToList();

    /// <inheritdoc />
    public void Dispose()
    {
        _writer.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>A VQ-VAE run's metrics.jsonl: <see cref="MetricsRecord"/>s.</summary>
public sealed class MetricsLog(string path) : JsonLinesLog<MetricsRecord>(path)
{
    /// <summary>PSNR in dB of an MSE on [0,1] pixels.</summary>
    public static double PsnrOf(double mse) => mse > 0 ? 10 * Math.Log10(1 / mse) : double.PositiveInfinity;
}
