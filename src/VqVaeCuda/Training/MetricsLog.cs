using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

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
/// <param name="ImagesPerSecond">Training throughput over the window; on an evaluation line, the evaluation's (test images per second, the forward alone).</param>
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
/// Appends records as JSON lines (snake_case names): the one writer of every run's metrics.jsonl
/// (<see cref="MetricsLog"/>, <see cref="PriorMetricsLog"/>). Each line, newline included, goes to the file in one
/// write call, so a killed process leaves whole lines (and a line that a full disk cut short is cut off again before
/// the error is thrown); a non-finite number is written as the JSON string "NaN" or "Infinity" rather than failing.
/// A resumed run first cuts the file back to its checkpoint's step (<see cref="TruncateAfterStep"/>).
/// </summary>
public class JsonLinesLog<TRecord> : IDisposable
{
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
    private readonly FileStream _file;

    /// <summary>Opens (appending) <paramref name="path"/>.</summary>
    public JsonLinesLog(string path)
    {
        Path = path;
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        // No buffering: each Write below is one write(2) of a whole line.
        _file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read, bufferSize: 0);
        _file.Seek(0, SeekOrigin.End);
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>Appends one record as one line, in one write.</summary>
    /// <exception cref="IOException">The write failed (the file is left ending with its previous whole line); the message says why.</exception>
    public void Write(TRecord record)
    {
        var line = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(record, Json) + "\n");
        long before = _file.Position;
        try
        {
            _file.Write(line);
        }
        catch (Exception e) when (RunFolder.IsWriteFailure(e))
        {
            // A short write (a full disk, a file-size limit) would merge with the next append into invalid JSON.
            try
            {
                _file.SetLength(before);
                _file.Position = before;
            }
            catch (IOException)
            {
            }
            throw new IOException($"{Path}: could not append a metrics line ({RunFolder.WriteFailureReason(e)}); the file ends with its last whole line", e);
        }
    }

    /// <summary>Forces the lines written so far to the disk (before a checkpoint, so the log is never behind it after a crash).</summary>
    public void Sync() => _file.Flush(flushToDisk: true);

    /// <summary>
    /// A resumed run's metrics file: cut back to <paramref name="step"/> (<see cref="TruncateAfterStep"/>), and the records it
    /// keeps (the curves so far, none when there is no file yet), with how many lines were dropped.
    /// </summary>
    public static (IReadOnlyList<TRecord> Kept, int Dropped) CutBackForResume(string path, int step)
    {
        int dropped = TruncateAfterStep(path, step);
        return (File.Exists(path) ? ReadAll(path) : [], dropped);
    }

    /// <summary>Reads every record of a metrics file.</summary>
    public static IReadOnlyList<TRecord> ReadAll(string path) =>
        File.ReadLines(path).Where(l => l.Length > 0).Select(l => JsonSerializer.Deserialize<TRecord>(l, Json)!).ToList();

    /// <summary>
    /// Cuts a metrics file back to its lines whose <c>step</c> is at most <paramref name="step"/> (a resumed run's
    /// checkpoint): the lines after it were written by steps the resumed run does again, and a torn last line (no newline,
    /// or not JSON) goes too. Steps in the file only grow, so the cut is after the last kept line.
    /// </summary>
    /// <returns>How many lines were dropped (a torn one counts).</returns>
    public static int TruncateAfterStep(string path, int step)
    {
        if (!File.Exists(path)) return 0;
        var bytes = File.ReadAllBytes(path);
        long keep = 0;
        int dropped = 0, start = 0;
        bool cutting = false;
        while (start < bytes.Length)
        {
            int newline = Array.IndexOf(bytes, (byte)'\n', start);
            int end = newline < 0 ? bytes.Length : newline + 1;
            bool blank = end - start <= 1 && newline >= 0;
            if (!blank)
            {
                if (!cutting && newline >= 0 && StepOf(bytes.AsSpan(start, newline - start)) is int s && s <= step) keep = end;
                else
                {
                    cutting = true;
                    dropped++;
                }
            }
            else if (!cutting) keep = end;
            start = end;
        }
        if (keep < bytes.Length)
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Write);
            file.SetLength(keep);
            file.Flush(flushToDisk: true);
        }
        return dropped;
    }

    private static int? StepOf(ReadOnlySpan<byte> line)
    {
        try
        {
            var reader = new Utf8JsonReader(line);
            using var document = JsonDocument.ParseValue(ref reader);
            return document.RootElement.TryGetProperty("step", out var step) && step.TryGetInt32(out int value) ? value : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _file.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>A VQ-VAE run's metrics.jsonl: <see cref="MetricsRecord"/>s.</summary>
public sealed class MetricsLog(string path) : JsonLinesLog<MetricsRecord>(path)
{
    /// <summary>PSNR in dB of an MSE on [0,1] pixels.</summary>
    public static double PsnrOf(double mse) => mse > 0 ? 10 * Math.Log10(1 / mse) : double.PositiveInfinity;
}
