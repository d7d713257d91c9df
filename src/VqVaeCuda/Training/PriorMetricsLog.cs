using System.Text.Json;
using System.Text.Json.Serialization;

namespace VqVaeCuda.Training;

/// <summary>One line of a prior run's metrics.jsonl.</summary>
/// <param name="Step">Optimizer steps done.</param>
/// <param name="Split">"train" (a window of recent steps) or "test" (the whole held-out split).</param>
/// <param name="NllNats">Mean negative log-likelihood per latent position, in nats.</param>
/// <param name="NllBits">The same in bits: <paramref name="NllNats"/> / ln 2.</param>
/// <param name="ImagesPerSecond">Code maps per second over the window (0 for evaluation lines).</param>
/// <param name="ElapsedSeconds">Wall time since the run (or resume) started.</param>
/// <param name="UnigramEntropyNats">
/// On test lines: the entropy of the test split's code histogram, the NLL of a prior that ignores context (the bar a
/// useful prior goes below); absent on training lines.
/// </param>
public sealed record PriorMetricsRecord(
    int Step,
    string Split,
    double NllNats,
    double NllBits,
    double ImagesPerSecond,
    double ElapsedSeconds,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? UnigramEntropyNats = null);

/// <summary>Appends <see cref="PriorMetricsRecord"/>s as JSON lines, flushed per line so a crash keeps what was logged.</summary>
public sealed class PriorMetricsLog : IDisposable
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
    private readonly StreamWriter _writer;

    /// <summary>Opens (appending) <paramref name="path"/>.</summary>
    public PriorMetricsLog(string path)
    {
        Path = path;
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        _writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>Appends one record.</summary>
    public void Write(PriorMetricsRecord record) => _writer.WriteLine(JsonSerializer.Serialize(record, Json));

    /// <summary>Reads every record of a prior metrics file.</summary>
    public static IReadOnlyList<PriorMetricsRecord> ReadAll(string path) =>
        File.ReadLines(path).Where(l => l.Length > 0).Select(l => JsonSerializer.Deserialize<PriorMetricsRecord>(l, Json)!).ToList();

    /// <inheritdoc />
    public void Dispose() => _writer.Dispose();
}
