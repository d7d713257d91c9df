using System.Text.Json.Serialization;

namespace VqVaeCuda.Training;

/// <summary>One line of a prior run's metrics.jsonl.</summary>
/// <param name="Step">Optimizer steps done.</param>
/// <param name="Split">"train" (a window of recent steps) or "test" (the whole held-out split).</param>
/// <param name="NllNats">Mean negative log-likelihood per latent position, in nats.</param>
/// <param name="NllBits">The same in bits: <paramref name="NllNats"/> / ln 2.</param>
/// <param name="ImagesPerSecond">Code maps per second over the window; on an evaluation line, the evaluation's (test maps per second, the forward alone).</param>
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

/// <summary>A prior run's metrics.jsonl: <see cref="PriorMetricsRecord"/>s.</summary>
public sealed class PriorMetricsLog(string path) : JsonLinesLog<PriorMetricsRecord>(path);
