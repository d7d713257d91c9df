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
public sealed record PriorStepLoss(int Step, double NllNats);

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

    /// <summary>Prepares training of <paramref name="prior"/> (which the trainer then owns) on the given code maps.</summary>
    /// <param name="prior">The prior; its K must cover every code; class-conditional exactly when it should use the labels. Disposed with the trainer.</param>
    /// <param name="train">Training code maps.</param>
    /// <param name="test">Held-out code maps (evaluation and the unigram entropy).</param>
    /// <param name="options">Training options.</param>
    /// <param name="info">What the prior is trained on (written into every checkpoint).</param>
    /// <param name="runDirectory">Where metrics, checkpoints and pictures go; null keeps everything in memory.</param>
    /// <param name="vqvae">The frozen VQ-VAE, to decode the end-of-run samples (not owned); null writes no samples.</param>
    /// <exception cref="ArgumentException">The code maps do not fit the prior or each other, or there are too few of them.</exception>
    public PriorTrainer(GatedPixelCnn prior, CodeMapSet train, CodeMapSet test, PriorTrainingOptions options, PriorCheckpointInfo info,
                        string? runDirectory, VqVae? vqvae = null)
        : this(prior, train, test, options, info, runDirectory, vqvae, step: 0, optimizerState: null, adamStep: 0)
    {
    }

    private PriorTrainer(GatedPixelCnn prior, CodeMapSet train, CodeMapSet test, PriorTrainingOptions options, PriorCheckpointInfo info,
                         string? runDirectory, VqVae? vqvae, int step, StateDict? optimizerState, long adamStep)
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
            _log = new PriorMetricsLog(Path.Combine(runDirectory, "metrics.jsonl"));
        }
    }

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
    /// The saved options define the run; <paramref name="steps"/>, when given, extends (or shortens) it.
    /// </summary>
    /// <exception cref="Checkpoints.CheckpointFormatException">Not a prior checkpoint, or one without training state.</exception>
    public static PriorTrainer Resume(Device.IDevice device, string checkpointPath, CodeMapSet train, CodeMapSet test, int? steps,
                                      string? runDirectory, VqVae? vqvae = null)
    {
        var loaded = PriorCheckpoint.Load(checkpointPath, device);
        using var optimizerState = loaded.OptimizerState;
        try
        {
            if (loaded.State is null)
                throw new Checkpoints.CheckpointFormatException($"{checkpointPath}: holds a prior but no training state, so training cannot resume from it");
            var options = steps is int s ? loaded.State.Options with { Steps = s } : loaded.State.Options;
            return new PriorTrainer(loaded.Prior, train, test, options, loaded.Info, runDirectory, vqvae, loaded.State.Step, optimizerState, loaded.State.AdamStep);
        }
        catch
        {
            loaded.Prior.Dispose();
            throw;
        }
    }

    /// <summary>Runs steps until <see cref="PriorTrainingOptions.Steps"/>, logging, evaluating and checkpointing as configured; then the pictures.</summary>
    public void Train(IProgress<PriorTrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        while (Step < Options.Steps)
        {
            cancellation.ThrowIfCancellationRequested();
            TrainStep();
            PriorMetricsRecord? latest = null;
            if (Step % Options.LogEvery == 0 || Step == Options.Steps) latest = FlushWindow();
            if ((Options.EvaluateEvery > 0 && Step % Options.EvaluateEvery == 0) || Step == Options.Steps) latest = Record(Evaluate());
            if (RunDirectory is not null && ((Options.CheckpointEvery > 0 && Step % Options.CheckpointEvery == 0) || Step == Options.Steps))
                SaveCheckpoint(Path.Combine(RunDirectory, "checkpoints", $"prior-step-{Step:D6}.safetensors"), alsoLatest: true);
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
        _adam.Step();
        Step++;
        var result = new PriorStepLoss(Step, loss.ToArray()[0]);
        _window.Add(result.NllNats, b, Stopwatch.GetElapsedTime(started).TotalSeconds);
        return result;
    }

    /// <summary>Mean NLL per position over the whole test split (no gradients); carries the unigram entropy.</summary>
    public PriorMetricsRecord Evaluate()
    {
        int batchSize = Math.Min(Options.BatchSize, _test.Count), per = _test.Positions;
        double sum = 0;
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
        return new PriorMetricsRecord(Step, "test", nats, nats / Math.Log(2), 0, _clock.Elapsed.TotalSeconds, UnigramEntropyNats);
    }

    /// <summary>Writes the prior and the training state (atomically); with <paramref name="alsoLatest"/> also as prior-latest.safetensors in the run folder.</summary>
    public void SaveCheckpoint(string path, bool alsoLatest = false)
    {
        var state = new PriorTrainingState(Step, _adam.StepCount, Options);
        PriorCheckpoint.Save(path, Prior, Info, state, _adam);
        if (alsoLatest && RunDirectory is not null)
            PriorCheckpoint.Save(Path.Combine(RunDirectory, "prior-latest.safetensors"), Prior, Info, state, _adam);
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
