using System.Diagnostics;
using VqVaeCuda.Autodiff;
using VqVaeCuda.Data;
using VqVaeCuda.Imaging;
using VqVaeCuda.Models;
using VqVaeCuda.Optim;
using VqVaeCuda.Sampling;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Training;

/// <summary>The loss of one prior training step, read back from the device.</summary>
/// <param name="Step">Steps done after it.</param>
/// <param name="NllNats">The batch's mean negative log-likelihood per latent position, in nats.</param>
/// <param name="Skipped">The loss or gradient was not finite and the step was skipped (<see cref="PriorTrainingOptions.SkipNonFinite"/>): nothing was updated.</param>
public sealed record PriorStepLoss(int Step, double NllNats, bool Skipped = false);

/// <summary>Progress reported while training a prior.</summary>
public sealed record PriorTrainingProgress(int Step, int TotalSteps, PriorMetricsRecord? Latest, string? Message = null);

/// <summary>
/// Trains a <see cref="GatedPixelCnn"/> prior over the code maps of a frozen VQ-VAE, from the same public pieces a
/// hand-written loop uses (see <see cref="TrainStep"/>): softmax cross-entropy of each position's code given the codes
/// before it (<see cref="GatedPixelCnn.Loss"/>), Adam. Batches of code maps come in a seeded per-epoch shuffle
/// (<see cref="BatchLoader.EpochOrder"/>), so step s always takes the same maps and a resumed run takes exactly the batch
/// an uninterrupted one would. Around the steps: metrics (NLL in nats and bits per position; the test split's unigram
/// entropy as the context-free bar), evaluation on the whole test split, atomic checkpoints, and at the end a loss plot
/// and, given the VQ-VAE, a grid of decoded samples. On the CPU device a run is exactly reproducible, across
/// <see cref="Resume"/> too.
/// </summary>
public sealed class PriorTrainer : IDisposable
{
    private readonly CodeMapSet _train, _test;
    private readonly Arena _arena;
    private readonly Adam _adam;
    private readonly VqVae? _vqvae;
    private readonly List<PriorMetricsRecord> _history = [];
    private readonly PriorMetricsLog? _log;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly int _batchesPerEpoch;
    private readonly int[] _batchCodes;
    private readonly int[]? _batchLabels;
    private int[] _epochOrder = [];
    private int _epochOfOrder = -1;
    private Window _window = new();
    private (string Path, int Step)? _lastCheckpoint;
    private string _lastSkip = "";

    /// <summary>The files whose presence marks a folder as holding a prior run (a new trainer refuses such a folder; the code-map cache may be there).</summary>
    private static readonly string[] RunFiles = ["prior-config.json", "metrics.jsonl", "prior-latest.safetensors", "checkpoints"];

    /// <summary>Name prefix of the step checkpoints in <c>checkpoints/</c>.</summary>
    public const string StepCheckpointPrefix = "prior-step-";

    /// <summary>Name of the latest checkpoint beside the run.</summary>
    public const string LatestCheckpointName = "prior-latest.safetensors";

    /// <summary>Prepares training of <paramref name="prior"/> (which the trainer then owns) on the given code maps.</summary>
    /// <param name="prior">The prior; its K must cover every code; class-conditional exactly when it should use the labels. Disposed with the trainer.</param>
    /// <param name="train">Training code maps.</param>
    /// <param name="test">Held-out code maps (evaluation and the unigram entropy).</param>
    /// <param name="options">Training options.</param>
    /// <param name="info">What the prior is trained on (written into every checkpoint).</param>
    /// <param name="runDirectory">
    /// Where metrics, checkpoints and pictures go; null keeps everything in memory. A folder that already holds a prior
    /// run is refused (the code-map cache alone is fine): only <see cref="Resume"/> continues one.
    /// </param>
    /// <param name="vqvae">The frozen VQ-VAE, to decode the end-of-run samples (not owned); null writes no samples.</param>
    /// <exception cref="ArgumentException">The code maps do not fit the prior or each other, or there are too few of them.</exception>
    /// <exception cref="RunFolderTakenException"><paramref name="runDirectory"/> already holds a prior run.</exception>
    public PriorTrainer(GatedPixelCnn prior, CodeMapSet train, CodeMapSet test, PriorTrainingOptions options, PriorCheckpointInfo info,
                        string? runDirectory, VqVae? vqvae = null)
        : this(prior, train, test, options, info, runDirectory, vqvae, step: 0, optimizerState: null, adamStep: 0, resumedFrom: null)
    {
    }

    private PriorTrainer(GatedPixelCnn prior, CodeMapSet train, CodeMapSet test, PriorTrainingOptions options, PriorCheckpointInfo info,
                         string? runDirectory, VqVae? vqvae, int step, StateDict? optimizerState, long adamStep, string? resumedFrom)
    {
        Options = options.Validate();
        ArgumentNullException.ThrowIfNull(info);
        CheckData(prior.Config, train, test, info, options);
        Prior = prior;
        Info = info;
        _train = train;
        _test = test;
        _vqvae = vqvae;
        RunDirectory = runDirectory;
        Step = step;
        if (runDirectory is not null && resumedFrom is null) RunFolder.RequireNoRun(runDirectory, RunFiles);
        if (resumedFrom is not null) _lastCheckpoint = (resumedFrom, step);
        UnigramEntropyNats = test.UnigramEntropyNats(prior.Config.CodebookSize);
        _batchesPerEpoch = train.Count / options.BatchSize;
        _batchCodes = new int[options.BatchSize * train.Positions];
        _batchLabels = prior.Config.IsClassConditional ? new int[options.BatchSize] : null;
        _adam = new Adam(prior.Parameters(), options.LearningRate);
        try
        {
            if (optimizerState is not null) _adam.LoadStateDict(optimizerState, adamStep);
            _arena = SizeArena(prior, options.BatchSize, train.Height, train.Width);
        }
        catch
        {
            _adam.Dispose();
            throw;
        }
        if (runDirectory is not null)
        {
            Directory.CreateDirectory(runDirectory);
            File.WriteAllText(Path.Combine(runDirectory, "prior-config.json"), prior.Config.ToJson());
            var metrics = Path.Combine(runDirectory, "metrics.jsonl");
            if (resumedFrom is not null)
            {
                // The lines after the checkpoint came from steps this run does again; the kept ones carry the loss curve on.
                (var kept, MetricsLinesDropped) = PriorMetricsLog.CutBackForResume(metrics, step);
                _history.AddRange(kept);
                RunFolder.RemoveTornWrites(runDirectory);
            }
            _log = new PriorMetricsLog(metrics);
        }
    }

    /// <summary>On a resume into a run folder: the metrics lines after the checkpoint's step (or torn) that were cut off.</summary>
    public int MetricsLinesDropped { get; }

    /// <summary>The newest checkpoint of this run known to be whole on disk (written by this trainer, or resumed from), with its step.</summary>
    public (string Path, int Step)? LastCheckpoint => _lastCheckpoint;

    /// <summary>Steps skipped in this session for a non-finite loss or gradient (<see cref="PriorTrainingOptions.SkipNonFinite"/>).</summary>
    public int SkippedSteps { get; private set; }

    /// <summary>The prior being trained.</summary>
    public GatedPixelCnn Prior { get; }

    /// <summary>The optimizer (owned by the trainer).</summary>
    public Adam Optimizer => _adam;

    /// <summary>The options.</summary>
    public PriorTrainingOptions Options { get; }

    /// <summary>What the prior is trained on.</summary>
    public PriorCheckpointInfo Info { get; }

    /// <summary>Steps done.</summary>
    public int Step { get; private set; }

    /// <summary>The run folder, if any.</summary>
    public string? RunDirectory { get; }

    /// <summary>Entropy (nats) of the test split's code histogram: the NLL of the best prior that ignores context.</summary>
    public double UnigramEntropyNats { get; }

    /// <summary>Every metrics record of this session, in order.</summary>
    public IReadOnlyList<PriorMetricsRecord> History => _history;

    /// <summary>
    /// Continues a run from a checkpoint written by <see cref="SaveCheckpoint"/>; the result equals an uninterrupted run.
    /// The saved options define the run; <paramref name="steps"/>, when given, extends (or shortens) it, and
    /// <paramref name="keepCheckpoints"/> and <paramref name="skipNonFinite"/>, when given, replace the saved ones. Into a
    /// run folder, metrics.jsonl is first cut back to the checkpoint's step and left-over temporary files are removed.
    /// </summary>
    /// <exception cref="Checkpoints.CheckpointFormatException">Not a prior checkpoint, or one without training state.</exception>
    public static PriorTrainer Resume(Device.IDevice device, string checkpointPath, CodeMapSet train, CodeMapSet test, int? steps,
                                      string? runDirectory, VqVae? vqvae = null, int? keepCheckpoints = null, int? skipNonFinite = null)
    {
        var loaded = PriorCheckpoint.Load(checkpointPath, device);
        using var optimizerState = loaded.OptimizerState;
        try
        {
            if (loaded.State is null)
                throw new Checkpoints.CheckpointFormatException($"{checkpointPath}: holds a prior but no training state, so training cannot resume from it");
            var options = loaded.State.Options;
            if (steps is int s) options = options with { Steps = s };
            if (keepCheckpoints is int k) options = options with { KeepCheckpoints = k };
            if (skipNonFinite is int n) options = options with { SkipNonFinite = n };
            return new PriorTrainer(loaded.Prior, train, test, options, loaded.Info, runDirectory, vqvae, loaded.State.Step, optimizerState,
                                    loaded.State.AdamStep, resumedFrom: checkpointPath);
        }
        catch
        {
            loaded.Prior.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs steps until <see cref="PriorTrainingOptions.Steps"/>, logging, evaluating and checkpointing as configured (keeping
    /// the newest <see cref="PriorTrainingOptions.KeepCheckpoints"/> step checkpoints); then the pictures. When
    /// <paramref name="cancellation"/> is signalled, the step under way is finished and checkpointed, and
    /// <see cref="TrainingEnd.Interrupted"/> returned (no pictures).
    /// </summary>
    /// <exception cref="NonFiniteTrainingException">A non-finite step beyond <see cref="PriorTrainingOptions.SkipNonFinite"/>; nothing of it was applied.</exception>
    /// <exception cref="CheckpointWriteException">A checkpoint could not be written; the last good one is intact and named.</exception>
    public TrainingEnd Train(IProgress<PriorTrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        while (Step < Options.Steps)
        {
            if (cancellation.IsCancellationRequested)
            {
                var flushed = FlushWindow();
                if (RunDirectory is not null && _lastCheckpoint?.Step != Step) WriteRunCheckpoint();
                progress?.Report(new PriorTrainingProgress(Step, Options.Steps, flushed, $"interrupted at step {Step}"));
                return TrainingEnd.Interrupted;
            }
            var stepLoss = TrainStep();
            if (stepLoss.Skipped)
                progress?.Report(new PriorTrainingProgress(Step, Options.Steps, null,
                    $"skipped step {Step} (non-finite: {_lastSkip}); {Options.SkipNonFinite - SkippedSteps} skips left"));
            PriorMetricsRecord? latest = null;
            if (Step % Options.LogEvery == 0 || Step == Options.Steps) latest = FlushWindow();
            if ((Options.EvaluateEvery > 0 && Step % Options.EvaluateEvery == 0) || Step == Options.Steps) latest = Record(Evaluate());
            if (RunDirectory is not null && ((Options.CheckpointEvery > 0 && Step % Options.CheckpointEvery == 0) || Step == Options.Steps))
                WriteRunCheckpoint();
            progress?.Report(new PriorTrainingProgress(Step, Options.Steps, latest));
        }
        if (RunDirectory is not null)
        {
            WriteLossPlot();
            if (_vqvae is not null && Options.SampleCount > 0)
            {
                progress?.Report(new PriorTrainingProgress(Step, Options.Steps, null, $"sampling {Options.SampleCount} code maps"));
                WriteSamples(Path.Combine(RunDirectory, "samples.png"));
            }
        }
        return TrainingEnd.Finished;
    }

    // As the VQ-VAE trainer's (RunFolder.WriteCheckpoint): the step checkpoint, then the latest, each durable; then
    // pruning; a failed write stops training with the last good checkpoint named.
    private void WriteRunCheckpoint()
    {
        var state = new PriorTrainingState(Step, _adam.StepCount, Options);
        RunFolder.WriteCheckpoint(RunDirectory!, StepCheckpointPrefix, LatestCheckpointName, Step, Options.KeepCheckpoints, () => _log?.Sync(),
                                  path => PriorCheckpoint.Save(path, Prior, Info, state, _adam), ref _lastCheckpoint);
    }

    /// <summary>
    /// One optimizer step on the next batch of code maps; returns its loss. The plain loop a host would write: zero the
    /// gradients, forward, cross-entropy, backward, Adam step.
    /// </summary>
    public PriorStepLoss TrainStep()
    {
        long started = Stopwatch.GetTimestamp();
        FillBatch(Step);
        int b = Options.BatchSize;
        _arena.Reset();
        _adam.ZeroGrad();
        var tape = new Tape(_arena);
        var ctx = new OpContext(_arena, tape);
        var codes = ctx.NewTensor(new Shape(b, _train.Height, _train.Width), DType.Int32, "code maps");
        codes.CopyFrom(_batchCodes);
        Tensor? labels = null;
        if (_batchLabels is not null)
        {
            labels = ctx.NewTensor(new Shape(b), DType.Int32, "labels");
            labels.CopyFrom(_batchLabels);
        }
        var logits = Prior.Forward(ctx, codes, labels);
        var loss = GatedPixelCnn.Loss(ctx, logits, codes);
        tape.Backward(loss);
        // Read before Adam's step, so a non-finite step is caught before it reaches the weights.
        double nats = loss.ToArray()[0];
        var norm = GradientClipping.GlobalNorm(new OpContext(_arena), Prior.ParameterStore.FlatGrads).ToArray()[0];
        if (NonFiniteCheck.Describe(("the loss", nats), ("the gradient norm", NonFiniteCheck.GradientNorm(norm))) is { } what)
        {
            var firstOp = FirstNonFiniteOp();
            if (SkippedSteps >= Options.SkipNonFinite)
                throw new NonFiniteTrainingException(
                    NonFiniteCheck.StopMessage(Step + 1, what, firstOp, Options.LearningRate, _lastCheckpoint, SkippedSteps), Step + 1, firstOp);
            SkippedSteps++;
            _lastSkip = $"{what}; first at {firstOp}";
            Step++;
            return new PriorStepLoss(Step, nats, Skipped: true);
        }
        _adam.LearningRate = Options.LearningRateAt(Step + 1);
        _adam.Step();
        Step++;
        var result = new PriorStepLoss(Step, nats);
        _window.Add(result.NllNats, b, Stopwatch.GetElapsedTime(started).TotalSeconds);
        return result;
    }

    // Runs the step's forward and backward again on the same batch (still in the host buffers) and weights, watching each op.
    private string FirstNonFiniteOp()
    {
        _arena.Reset();
        _adam.ZeroGrad();
        var observer = new FirstNonFiniteObserver(Prior.ParameterStore);
        var tape = new Tape(_arena);
        var ctx = new OpContext(_arena, tape) { Observer = observer };
        var codes = ctx.NewTensor(new Shape(Options.BatchSize, _train.Height, _train.Width), DType.Int32, "code maps");
        codes.CopyFrom(_batchCodes);
        Tensor? labels = null;
        if (_batchLabels is not null)
        {
            labels = ctx.NewTensor(new Shape(Options.BatchSize), DType.Int32, "labels");
            labels.CopyFrom(_batchLabels);
        }
        tape.Backward(GatedPixelCnn.Loss(ctx, Prior.Forward(ctx, codes, labels), codes));
        _adam.ZeroGrad();
        return observer.Found ?? "none when the step was run again (the values differ between runs: a device fault?)";
    }

    /// <summary>
    /// Mean NLL per position over the whole test split (no gradients); carries the unigram entropy and the evaluation's
    /// throughput (test code maps per second).
    /// </summary>
    public PriorMetricsRecord Evaluate()
    {
        int batchSize = Math.Min(Options.BatchSize, _test.Count), per = _test.Positions;
        double sum = 0;
        long started = Stopwatch.GetTimestamp();
        for (int start = 0; start < _test.Count; start += batchSize)
        {
            int n = Math.Min(batchSize, _test.Count - start);
            _arena.Reset();
            var ctx = new OpContext(_arena);
            var codes = ctx.NewTensor(new Shape(n, _test.Height, _test.Width), DType.Int32, "evaluation code maps");
            codes.CopyFrom(_test.Codes.AsSpan(start * per, n * per));
            Tensor? labels = null;
            if (Prior.Config.IsClassConditional)
            {
                labels = ctx.NewTensor(new Shape(n), DType.Int32, "evaluation labels");
                labels.CopyFrom(_test.Labels.AsSpan(start, n));
            }
            sum += GatedPixelCnn.Loss(ctx, Prior.Forward(ctx, codes, labels), codes).ToArray()[0] * n;
        }
        double nats = sum / _test.Count;
        double mapsPerSecond = _test.Count / Math.Max(Stopwatch.GetElapsedTime(started).TotalSeconds, 1e-9);
        return new PriorMetricsRecord(Step, "test", nats, nats / Math.Log(2), mapsPerSecond, _clock.Elapsed.TotalSeconds, UnigramEntropyNats);
    }

    /// <summary>Writes the prior and the training state (atomically); with <paramref name="alsoLatest"/> also as prior-latest.safetensors in the run folder.</summary>
    public void SaveCheckpoint(string path, bool alsoLatest = false)
    {
        var state = new PriorTrainingState(Step, _adam.StepCount, Options);
        void Save(string to) => PriorCheckpoint.Save(to, Prior, Info, state, _adam);
        RunFolder.SaveDurably(path, Save);
        if (alsoLatest && RunDirectory is not null) RunFolder.SaveDurably(Path.Combine(RunDirectory, LatestCheckpointName), Save);
    }

    /// <summary>
    /// Samples <see cref="PriorTrainingOptions.SampleCount"/> code maps (seeded by the run's seed; a class-conditional prior
    /// visits every class in turn, one row each), decodes them with the VQ-VAE and writes the grid to <paramref name="path"/>.
    /// </summary>
    public GeneratedSamples WriteSamples(string path)
    {
        if (_vqvae is null) throw new InvalidOperationException("the trainer was given no VQ-VAE to decode samples with");
        int count = Math.Max(1, Options.SampleCount);
        var options = new SamplingOptions
        {
            Count = count, Seed = Options.Seed,
            Labels = Prior.Config.IsClassConditional ? PriorGeneration.LabelsForEveryClass(count, Prior.Config.Classes) : null,
        };
        var samples = PriorGeneration.Generate(_vqvae, Prior, options);
        samples.SaveGrid(path);
        return samples;
    }

    // Step s (0-based) takes batch s mod E of epoch s div E, E full batches per epoch, the epoch's order a seeded permutation.
    private void FillBatch(int step)
    {
        int epoch = step / _batchesPerEpoch, batch = step % _batchesPerEpoch, b = Options.BatchSize, per = _train.Positions;
        if (epoch != _epochOfOrder)
        {
            _epochOrder = BatchLoader.EpochOrder(_train.Count, Options.Seed, epoch, shuffle: true);
            _epochOfOrder = epoch;
        }
        for (int i = 0; i < b; i++)
        {
            int index = _epochOrder[batch * b + i];
            _train.Codes.AsSpan(index * per, per).CopyTo(_batchCodes.AsSpan(i * per, per));
            if (_batchLabels is not null) _batchLabels[i] = _train.Labels![index];
        }
    }

    private PriorMetricsRecord Record(PriorMetricsRecord record)
    {
        _history.Add(record);
        _log?.Write(record);
        return record;
    }

    private PriorMetricsRecord? FlushWindow()
    {
        if (_window.Steps == 0) return null;
        double nats = _window.Nats / _window.Steps;
        var record = new PriorMetricsRecord(Step, "train", nats, nats / Math.Log(2), _window.Maps / Math.Max(_window.Seconds, 1e-9), _clock.Elapsed.TotalSeconds);
        _window = new Window();
        return Record(record);
    }

    private void WriteLossPlot()
    {
        var train = _history.Where(r => r.Split == "train").ToArray();
        var test = _history.Where(r => r.Split == "test").ToArray();
        var steps = _history.Select(r => (double)r.Step).Distinct().Order().ToArray();
        double unigramBits = UnigramEntropyNats / Math.Log(2);
        var series = new Dictionary<string, (double[], double[])>
        {
            ["train NLL (bits per position)"] = (train.Select(r => (double)r.Step).ToArray(), train.Select(r => r.NllBits).ToArray()),
            ["test NLL (bits per position)"] = (test.Select(r => (double)r.Step).ToArray(), test.Select(r => r.NllBits).ToArray()),
            ["test unigram entropy (no context)"] = (steps, steps.Select(_ => unigramBits).ToArray()),
        };
        LossCurvePlot.SavePng(Path.Combine(RunDirectory!, "loss.png"), $"Gated PixelCNN prior on {_train.Name}", series, logScale: false);
    }

    private static void CheckData(GatedPixelCnnConfig config, CodeMapSet train, CodeMapSet test, PriorCheckpointInfo info, PriorTrainingOptions options)
    {
        if (train.Height != test.Height || train.Width != test.Width)
            throw new ArgumentException($"the training code maps are {train.Height}x{train.Width}, the test ones {test.Height}x{test.Width}");
        if (train.Height != info.LatentHeight || train.Width != info.LatentWidth)
            throw new ArgumentException($"the code maps are {train.Height}x{train.Width}, the prior's record says {info.LatentHeight}x{info.LatentWidth}");
        foreach (var set in new[] { train, test })
        {
            int max = set.MaxCode();
            if (max >= config.CodebookSize || (set.Codes.Length > 0 && set.Codes.Min() < 0))
                throw new ArgumentException($"{set.Name}: a code ({max}) is outside the prior's 0..{config.CodebookSize - 1}");
            if (config.IsClassConditional && (set.Labels is null || set.Classes > config.Classes))
                throw new ArgumentException(set.Labels is null
                    ? $"{set.Name} has no labels: a class-conditional prior needs them"
                    : $"{set.Name} has {set.Classes} classes, the prior knows {config.Classes}");
        }
        if (train.Count < options.BatchSize)
            throw new ArgumentException($"{train.Name} has {train.Count} code maps, fewer than one batch of {options.BatchSize}");
        if (test.Count < 1) throw new ArgumentException($"{test.Name} has no code maps");
    }

    // One step's activations, temporaries and gradients, measured with a forward and backward on zero code maps; the
    // probe changes nothing but the gradients, which are zeroed again.
    private static Arena SizeArena(GatedPixelCnn prior, int batchSize, int height, int width)
    {
        long bytes = Arena.Measure(prior.Device, probe =>
        {
            var tape = new Tape(probe);
            var ctx = new OpContext(probe, tape);
            var codes = ctx.Zeros(new Shape(batchSize, height, width), DType.Int32);
            var labels = prior.Config.IsClassConditional ? ctx.Zeros(new Shape(batchSize), DType.Int32) : null;
            tape.Backward(GatedPixelCnn.Loss(ctx, prior.Forward(ctx, codes, labels), codes));
        });
        prior.ZeroGrad();
        return new Arena(prior.Device, bytes);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _log?.Dispose();
        _arena.Dispose();
        _adam.Dispose();
        Prior.Dispose();
    }

    private sealed class Window
    {
        public int Steps;
        public double Nats, Seconds;
        public long Maps;

        public void Add(double nats, int maps, double seconds)
        {
            Steps++;
            Nats += nats;
            Maps += maps;
            Seconds += seconds;
        }
    }
}
