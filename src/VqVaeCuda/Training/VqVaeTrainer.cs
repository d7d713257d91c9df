using System.Diagnostics;
using VqVaeCuda.Autodiff;
using VqVaeCuda.Data;
using VqVaeCuda.Imaging;
using VqVaeCuda.Models;
using VqVaeCuda.Ops;
using VqVaeCuda.Optim;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Training;

/// <summary>The losses of one training step, read back from the device.</summary>
/// <param name="Step">Steps done after it.</param>
/// <param name="ReconstructionMse">The batch's reconstruction MSE.</param>
/// <param name="CodebookLoss">The codebook term.</param>
/// <param name="CommitmentLoss">The commitment term (before β).</param>
/// <param name="CodesUsed">Codes the batch used.</param>
/// <param name="Skipped">
/// The step's loss or gradient was not finite and it was skipped (<see cref="TrainingOptions.SkipNonFinite"/>): nothing
/// was updated; the losses are the non-finite values seen.
/// </param>
public sealed record StepLosses(int Step, double ReconstructionMse, double CodebookLoss, double CommitmentLoss, int CodesUsed, bool Skipped = false);

/// <summary>How <c>Train</c> ended.</summary>
public enum TrainingEnd
{
    /// <summary>Every step was run (and the end-of-run pictures written).</summary>
    Finished,

    /// <summary>
    /// Cancelled: the step under way was finished, the metrics window flushed and, with a run folder, a checkpoint of
    /// that step written; resuming from it continues exactly.
    /// </summary>
    Interrupted,
}

/// <summary>Progress reported while training.</summary>
public sealed record TrainingProgress(int Step, int TotalSteps, MetricsRecord? Latest, string? Message = null);

/// <summary>
/// Trains a <see cref="VqVae"/> from the same public pieces a hand-written loop uses (see
/// <see cref="TrainStep"/>): Adam on the reconstruction loss (the quantizer adds its codebook and
/// commitment gradients in its own backward), optional gradient clipping, the quantizer's EMA codebook
/// update, usage record and dead-code restarts, optional k-means initialisation; plus what a run needs
/// around them: metrics, evaluation on the held-out split, checkpoints, and at the end a grid of
/// originals over reconstructions and a loss-curve plot. On the CPU device a run is exactly
/// reproducible, including across a checkpoint and <see cref="Resume"/>.
/// </summary>
public sealed class VqVaeTrainer : IDisposable
{
    private const int PreviewImages = 16;
    private readonly ImageDataset _train, _test;
    private readonly Arena _arena;
    private readonly Adam _adam;
    private readonly VqVaeStep _step;
    private readonly List<MetricsRecord> _history = [];
    private readonly MetricsLog? _log;
    private BatchLoader _loader;
    private Window _window = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private (string Path, int Step)? _lastCheckpoint;

    /// <summary>The files whose presence marks a folder as holding a VQ-VAE run (a new trainer refuses such a folder).</summary>
    private static readonly string[] RunFiles = ["config.json", "metrics.jsonl", "latest.safetensors", "checkpoints"];

    /// <summary>Name prefix of the step checkpoints in <c>checkpoints/</c>.</summary>
    public const string StepCheckpointPrefix = "step-";

    /// <summary>Name of the latest checkpoint beside the run.</summary>
    public const string LatestCheckpointName = "latest.safetensors";

    /// <summary>Prepares training of <paramref name="model"/> (which the trainer then owns) on the given splits.</summary>
    /// <param name="model">The model; disposed with the trainer.</param>
    /// <param name="train">Training images (their size must match the model).</param>
    /// <param name="test">Held-out images for evaluation.</param>
    /// <param name="options">Training options.</param>
    /// <param name="runDirectory">
    /// Where metrics, checkpoints and pictures go (created if missing); null keeps everything in memory. A folder that
    /// already holds a run is refused: only <see cref="Resume"/> continues one.
    /// </param>
    /// <exception cref="RunFolderTakenException"><paramref name="runDirectory"/> already holds a run.</exception>
    public VqVaeTrainer(VqVae model, ImageDataset train, ImageDataset test, TrainingOptions options, string? runDirectory)
        : this(model, train, test, options, runDirectory, step: 0, optimizerState: null, adamStep: 0, resumedFrom: null)
    {
    }

    private VqVaeTrainer(VqVae model, ImageDataset train, ImageDataset test, TrainingOptions options, string? runDirectory,
                         int step, StateDict? optimizerState, long adamStep, string? resumedFrom)
    {
        Options = options.Validate();
        Model = model;
        var c = model.Config;
        foreach (var (set, role) in new[] { (train, "training"), (test, "test") })
            if (set.Channels != c.InputChannels || set.Height != c.ImageSize || set.Width != c.ImageSize)
                throw new ArgumentException(
                    $"the {role} images of '{set.Name}' are {set.Channels}x{set.Height}x{set.Width}, the model takes {c.InputChannels}x{c.ImageSize}x{c.ImageSize}");
        if (train.Count < options.BatchSize)
            throw new ArgumentException($"'{train.Name}' has {train.Count} training images, fewer than one batch of {options.BatchSize}");
        if (test.Count < 1) throw new ArgumentException($"'{test.Name}' has no test images");
        _train = train;
        _test = test;
        RunDirectory = runDirectory;
        Step = step;
        if (runDirectory is not null && resumedFrom is null) RunFolder.RequireNoRun(runDirectory, RunFiles);
        if (resumedFrom is not null) _lastCheckpoint = (resumedFrom, step);
        _adam = new Adam(model.Parameters(), options.LearningRate);
        try
        {
            if (optimizerState is not null) _adam.LoadStateDict(optimizerState, adamStep);
            _arena = SizeArena(model, options.BatchSize);
        }
        catch
        {
            _adam.Dispose();
            throw;
        }
        _step = new VqVaeStep(model, _adam, _arena);
        _loader = OpenLoader(step);
        if (runDirectory is not null)
        {
            Directory.CreateDirectory(runDirectory);
            File.WriteAllText(Path.Combine(runDirectory, "config.json"), model.Config.ToJson());
            var metrics = Path.Combine(runDirectory, "metrics.jsonl");
            if (resumedFrom is not null)
            {
                // The lines after the checkpoint came from steps this run does again; the kept ones carry the loss curve on.
                (var kept, MetricsLinesDropped) = MetricsLog.CutBackForResume(metrics, step);
                _history.AddRange(kept);
                RunFolder.RemoveTornWrites(runDirectory);
            }
            _log = new MetricsLog(metrics);
        }
    }

    /// <summary>On a resume into a run folder: the metrics lines after the checkpoint's step (or torn) that were cut off.</summary>
    public int MetricsLinesDropped { get; }

    /// <summary>The newest checkpoint of this run known to be whole on disk (written by this trainer, or resumed from), with its step.</summary>
    public (string Path, int Step)? LastCheckpoint => _lastCheckpoint;

    /// <summary>Steps skipped in this session for a non-finite loss or gradient (<see cref="TrainingOptions.SkipNonFinite"/>).</summary>
    public int SkippedSteps { get; private set; }

    /// <summary>The model being trained.</summary>
    public VqVae Model { get; }

    /// <summary>The optimizer (owned by the trainer).</summary>
    public Adam Optimizer => _adam;

    /// <summary>The options.</summary>
    public TrainingOptions Options { get; }

    /// <summary>Steps done.</summary>
    public int Step { get; private set; }

    /// <summary>The run folder, if any.</summary>
    public string? RunDirectory { get; }

    /// <summary>Every metrics record of this session, in order.</summary>
    public IReadOnlyList<MetricsRecord> History => _history;

    /// <summary>
    /// Continues a run from a checkpoint written by <see cref="SaveCheckpoint"/> (either format); the result equals an
    /// uninterrupted run. The checkpoint's options define the run; from <paramref name="options"/>, when given, only
    /// <see cref="TrainingOptions.Steps"/>, <see cref="TrainingOptions.KeepCheckpoints"/>,
    /// <see cref="TrainingOptions.SkipNonFinite"/> and <see cref="TrainingOptions.StepExecution"/> are taken. Into a run folder, metrics.jsonl is first cut back to the
    /// checkpoint's step (see <see cref="MetricsLinesDropped"/>) and left-over temporary files are removed.
    /// </summary>
    public static VqVaeTrainer Resume(Device.IDevice device, string checkpointPath, ImageDataset train, ImageDataset test,
                                      TrainingOptions? options, string? runDirectory)
    {
        var loaded = VqVaeCheckpoint.Load(checkpointPath, device);
        using var optimizerState = loaded.OptimizerState;
        if (loaded.State is null)
        {
            loaded.Model.Dispose();
            throw new Checkpoints.CheckpointFormatException($"{checkpointPath}: holds a model but no training state, so training cannot resume from it");
        }
        // The saved options define the run; only the number of steps may be extended.
        var saved = loaded.State.Options;
        var effective = options is null ? saved : saved with { Steps = options.Steps, KeepCheckpoints = options.KeepCheckpoints, SkipNonFinite = options.SkipNonFinite, StepExecution = options.StepExecution };
        try
        {
            return new VqVaeTrainer(loaded.Model, train, test, effective, runDirectory, loaded.State.Step, optimizerState, loaded.State.AdamStep,
                                    resumedFrom: checkpointPath);
        }
        catch
        {
            loaded.Model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs steps until <see cref="TrainingOptions.Steps"/>, logging, evaluating and checkpointing as configured (keeping the
    /// newest <see cref="TrainingOptions.KeepCheckpoints"/> step checkpoints). When <paramref name="cancellation"/> is
    /// signalled, the step under way is finished and checkpointed, and <see cref="TrainingEnd.Interrupted"/> returned.
    /// </summary>
    /// <exception cref="NonFiniteTrainingException">A non-finite step beyond <see cref="TrainingOptions.SkipNonFinite"/>; nothing of it was applied.</exception>
    /// <exception cref="CheckpointWriteException">A checkpoint could not be written; the last good one is intact and named.</exception>
    public TrainingEnd Train(IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        if (Step == 0 && Options.KMeansInit)
        {
            progress?.Report(new TrainingProgress(Step, Options.Steps, null, "k-means initialisation of the codebook"));
            _arena.Reset();
            CodebookInitialisation.KMeans(Model, _train, Options.BatchSize, Options.KMeansBatches, Options.Seed, _arena);
        }
        using var deviceStep = OpenCapturableStep(progress);
        while (Step < Options.Steps)
        {
            if (cancellation.IsCancellationRequested)
            {
                // Every step done is logged and checkpointed, so the resumed run's metrics continue with no gap.
                if (deviceStep is not null) ReadDeviceStep(deviceStep);
                var flushed = FlushWindow();
                if (RunDirectory is not null && _lastCheckpoint?.Step != Step) WriteRunCheckpoint();
                progress?.Report(new TrainingProgress(Step, Options.Steps, flushed, $"interrupted at step {Step}"));
                return TrainingEnd.Interrupted;
            }
            bool log = (Step + 1) % Options.LogEvery == 0 || Step + 1 == Options.Steps;
            bool evaluate = (Options.EvaluateEvery > 0 && (Step + 1) % Options.EvaluateEvery == 0) || Step + 1 == Options.Steps;
            bool checkpoint = RunDirectory is not null && ((Options.CheckpointEvery > 0 && (Step + 1) % Options.CheckpointEvery == 0) || Step + 1 == Options.Steps);
            if (deviceStep is not null)
            {
                RunDeviceStep(deviceStep);
                // Said once, after the step that was captured (or whose capture failed, with the reason).
                if (++_deviceStepsThisSession == 2)
                    progress?.Report(new TrainingProgress(Step, Options.Steps, null, $"training step: {deviceStep.Execution}"));
                StepDescription = $"graph-shaped: {deviceStep.Execution}";
                // The accumulators are read before anything uses the step's results: the metrics, a checkpoint (so a
                // non-finite step is never written), an evaluation; and dead-code restarts are checked then.
                if (log || evaluate || checkpoint) ReadDeviceStep(deviceStep);
            }
            else
            {
                var stepLosses = TrainStep();
                if (stepLosses.Skipped)
                    progress?.Report(new TrainingProgress(Step, Options.Steps, null,
                        $"skipped step {Step} (non-finite: {_lastSkip}); {Options.SkipNonFinite - SkippedSteps} skips left"));
            }
            MetricsRecord? latest = null;
            if (log) latest = FlushWindow();
            if (evaluate) latest = Record(Evaluate());
            if (checkpoint) WriteRunCheckpoint();
            progress?.Report(new TrainingProgress(Step, Options.Steps, latest));
        }
        if (RunDirectory is not null) WritePictures();
        return TrainingEnd.Finished;
    }

    private string _lastSkip = "";

    /// <summary>Which step <see cref="Train"/> runs: the <see cref="CapturableStep"/> or the eager loop, and why (null: eager).</summary>
    public static string? WhyEager(TrainingOptions options, Device.IDevice device)
    {
        var mode = options.StepExecution == StepExecution.Auto
            ? device.Kind == Device.DeviceKind.Cuda ? StepExecution.Graph : StepExecution.Eager
            : options.StepExecution;
        if (mode == StepExecution.Eager)
            return options.StepExecution == StepExecution.Auto ? $"{device.Name}: the eager step (graphs are a GPU's)" : "the eager step was asked for";
        if (options.SkipNonFinite > 0)
            return "--skip-nonfinite needs the eager step: whether a step is applied is decided on the host after it";
        return null;
    }

    /// <summary>How <see cref="Train"/> ran its steps: "eager (why)" or "graph-shaped: ..." with how the graph-shaped step ran.</summary>
    public string StepDescription { get; private set; } = "";

    private CapturableStep? OpenCapturableStep(IProgress<TrainingProgress>? progress)
    {
        var whyEager = WhyEager(Options, Model.Device);
        StepDescription = whyEager is null ? "graph-shaped" : $"eager ({whyEager})";
        if (whyEager is not null)
        {
            if (Options.StepExecution == StepExecution.Graph)
                progress?.Report(new TrainingProgress(Step, Options.Steps, null, $"running the eager step: {whyEager}"));
            return null;
        }
        _deviceStepClock = Stopwatch.StartNew();
        return new CapturableStep(Model, _adam, _arena, Options.BatchSize, Options.MaxGradNorm);
    }

    private Stopwatch _deviceStepClock = new();

    private void RunDeviceStep(CapturableStep step)
    {
        var batch = NextBatch();
        step.Run(batch.Pixels.AsSpan(0, batch.Size * batch.Channels * batch.Height * batch.Width), Step + 1);
        _loader.Recycle(batch);
        Step++;
        _deviceStepImages += batch.Size;
    }

    // The loader signals each epoch's end once with false; the next call starts the following epoch.
    private Batch NextBatch() =>
        _loader.TryNext(out var batch) || _loader.TryNext(out batch)
            ? batch
            : throw new InvalidOperationException($"the batch loader of '{_train.Name}' produced no batch for a new epoch");

    private long _deviceStepImages;
    private int _deviceStepsThisSession;

    // Between steps: the interval's losses and counts into the metrics window; a non-finite step stops training;
    // dead-code restarts as the eager loop makes them, but checked here rather than after every step.
    private void ReadDeviceStep(CapturableStep step)
    {
        var interval = step.ReadInterval();
        if (interval.Steps == 0) return;
        if (interval.NonFiniteSteps > 0)
            throw new NonFiniteTrainingException(
                NonFiniteCheck.CapturedStepStopMessage(Step, interval.FirstNonFiniteStep, interval.NonFiniteSteps, Options.LearningRate, _lastCheckpoint),
                interval.FirstNonFiniteStep, NonFiniteCheck.NotLocatedInCapturedStep);
        _window.AddInterval(interval, _deviceStepImages, _deviceStepClock.Elapsed.TotalSeconds);
        _deviceStepImages = 0;
        _deviceStepClock.Restart();
        if (Options.DeadCodeSteps > 0 && Model.Quantizer.RestartDeadCodes(step.EncoderOutput!, Step, Options.DeadCodeSteps, Options.Seed) > 0)
            step.PushCodeLastUsed();
    }

    // RunFolder.WriteCheckpoint: the step checkpoint, then latest, each durable; then pruning. A failed write stops
    // training with the last good checkpoint named.
    private void WriteRunCheckpoint()
    {
        var state = new TrainingStateInfo(Step, _adam.StepCount, Options, _train.Name);
        RunFolder.WriteCheckpoint(RunDirectory!, StepCheckpointPrefix, LatestCheckpointName, Step, Options.KeepCheckpoints, () => _log?.Sync(),
                                  path => VqVaeCheckpoint.Save(path, Model, state, _adam), ref _lastCheckpoint);
    }

    /// <summary>
    /// One optimizer step on the next batch; returns its losses. The step is the plain loop a host would write
    /// (<see cref="VqVaeStep"/>): zero the gradients, forward, loss, backward, clip, Adam step, EMA codebook update, then
    /// the quantizer's usage record and dead-code restarts; a step whose losses or gradient norm are not finite is
    /// skipped or stops the run before Adam.
    /// </summary>
    public StepLosses TrainStep()
    {
        var batch = NextBatch();
        long started = Stopwatch.GetTimestamp();
        var shape = new Shape(batch.Size, batch.Channels, batch.Height, batch.Width);
        var computed = _step.Compute(batch.Pixels, shape, Options.MaxGradNorm);
        _loader.Recycle(batch);
        var losses = new StepLosses(Step + 1, computed.ReconstructionMse, computed.CodebookLoss, computed.CommitmentLoss,
                                    computed.Counts.Count(c => c > 0));
        if (NonFiniteCheck.Describe(("the reconstruction loss", losses.ReconstructionMse), ("the codebook loss", losses.CodebookLoss),
                                    ("the commitment loss", losses.CommitmentLoss),
                                    ("the gradient norm", NonFiniteCheck.GradientNorm(computed.GradientNorm))) is { } what)
        {
            var firstOp = FirstNonFiniteOp(computed.Input.ToArray(), shape);
            if (SkippedSteps >= Options.SkipNonFinite)
                throw new NonFiniteTrainingException(
                    NonFiniteCheck.StopMessage(Step + 1, what, firstOp, Options.LearningRate, _lastCheckpoint, SkippedSteps), Step + 1, firstOp);
            // Skipped: the batch is passed over (the step count still says which batch comes next), nothing is updated.
            SkippedSteps++;
            _lastSkip = $"{what}; first at {firstOp}";
            Step++;
            return losses with { Skipped = true };
        }
        _step.Apply(computed, Step + 1, Options.DeadCodeSteps, Options.Seed);
        Step++;
        _window.Add(losses, computed.Counts, batch.Size, Stopwatch.GetElapsedTime(started).TotalSeconds);
        return losses;
    }

    // Runs the step's forward and backward again on the same batch and weights (nothing was applied), watching each op;
    // the gradients it leaves are zeroed.
    private string FirstNonFiniteOp(float[] pixels, Shape shape)
    {
        var observer = new FirstNonFiniteObserver(Model.ParameterStore);
        _step.Compute(pixels, shape, maxGradNorm: 0, observer);
        _adam.ZeroGrad();
        return observer.Found ?? "none when the step was run again (the values differ between runs: a device fault?)";
    }

    /// <summary>
    /// Reconstruction error and code usage over the whole test split (no gradients), with the evaluation's throughput
    /// (test images per second: the forward alone, in batches of the training batch size).
    /// </summary>
    public MetricsRecord Evaluate()
    {
        var c = Model.Config;
        int batchSize = Math.Min(Options.BatchSize, _test.Count);
        double mseSum = 0, codebookSum = 0, commitmentSum = 0;
        var counts = new long[c.CodebookSize];
        int per = _test.ImageSize;
        long started = Stopwatch.GetTimestamp();
        for (int start = 0; start < _test.Count; start += batchSize)
        {
            int n = Math.Min(batchSize, _test.Count - start);
            _arena.Reset();
            var ctx = new OpContext(_arena);
            var x = ctx.NewTensor(new Shape(n, c.InputChannels, c.ImageSize, c.ImageSize), purpose: "evaluation batch");
            x.CopyFrom(_test.Pixels.AsSpan(start * per, n * per));
            var output = Model.Forward(ctx, x);
            mseSum += VqVae.ReconstructionLoss(ctx, x, output).ToArray()[0] * n;
            codebookSum += output.Quantized.CodebookLoss.ToArray()[0] * n;
            commitmentSum += output.Quantized.CommitmentLoss.ToArray()[0] * n;
            var batchCounts = output.Quantized.Counts.ToIntArray();
            for (int k = 0; k < counts.Length; k++) counts[k] += batchCounts[k];
        }
        var usage = CodebookUsage.FromCounts(counts.Select(v => (int)Math.Min(v, int.MaxValue)).ToArray());
        double mse = mseSum / _test.Count;
        double imagesPerSecond = _test.Count / Math.Max(Stopwatch.GetElapsedTime(started).TotalSeconds, 1e-9);
        return new MetricsRecord(Step, "test", mse, MetricsLog.PsnrOf(mse), codebookSum / _test.Count, commitmentSum / _test.Count,
                                 usage.Perplexity, usage.CodesUsed, imagesPerSecond, _clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// Writes the model and the training state (atomically, the folder synced after the rename); with
    /// <paramref name="alsoLatest"/> also as latest.safetensors beside the run.
    /// </summary>
    public void SaveCheckpoint(string path, bool alsoLatest = false)
    {
        var state = new TrainingStateInfo(Step, _adam.StepCount, Options, _train.Name);
        void Save(string to) => VqVaeCheckpoint.Save(to, Model, state, _adam);
        RunFolder.SaveDurably(path, Save);
        if (alsoLatest && RunDirectory is not null) RunFolder.SaveDurably(Path.Combine(RunDirectory, LatestCheckpointName), Save);
    }

    private MetricsRecord Record(MetricsRecord record)
    {
        _history.Add(record);
        _log?.Write(record);
        return record;
    }

    private MetricsRecord? FlushWindow()
    {
        if (_window.Steps == 0) return null;
        var usage = CodebookUsage.FromCounts(_window.Counts.Select(v => (int)Math.Min(v, int.MaxValue)).ToArray());
        double mse = _window.Mse / _window.Steps;
        var record = new MetricsRecord(Step, "train", mse, MetricsLog.PsnrOf(mse), _window.Codebook / _window.Steps, _window.Commitment / _window.Steps,
                                       usage.Perplexity, usage.CodesUsed, _window.Images / Math.Max(_window.Seconds, 1e-9), _clock.Elapsed.TotalSeconds);
        _window = new Window();
        return Record(record);
    }

    private void WritePictures()
    {
        VqVaeInference.Reconstruct(Model, _test, 0, Math.Min(PreviewImages, _test.Count)).SaveGrid(Path.Combine(RunDirectory!, "reconstructions.png"));
        var train = _history.Where(r => r.Split == "train").ToArray();
        var test = _history.Where(r => r.Split == "test").ToArray();
        var series = new Dictionary<string, (double[], double[])>
        {
            ["train reconstruction MSE"] = (train.Select(r => (double)r.Step).ToArray(), train.Select(r => r.ReconstructionMse).ToArray()),
            ["test reconstruction MSE"] = (test.Select(r => (double)r.Step).ToArray(), test.Select(r => r.ReconstructionMse).ToArray()),
            ["train commitment loss"] = (train.Select(r => (double)r.Step).ToArray(), train.Select(r => r.CommitmentLoss).ToArray()),
        };
        LossCurvePlot.SavePng(Path.Combine(RunDirectory!, "loss.png"), $"VQ-VAE on {_train.Name}", series);
    }

    // A resumed run continues with the batch an uninterrupted run would take next.
    private BatchLoader OpenLoader(int step)
    {
        int perEpoch = BatchLoader.BatchesPerEpochFor(_train.Count, Options.BatchSize, dropLast: true);
        return new BatchLoader(_train, new BatchLoaderOptions
        {
            BatchSize = Options.BatchSize, Seed = Options.Seed, DropLast = true, StartEpoch = step / perEpoch, StartBatch = step % perEpoch,
        });
    }

    // The arena must hold one step's activations, temporaries and gradients: measured with one forward
    // and backward on a zero batch rather than predicted from the architecture. The probe changes
    // nothing but the (per-step) gradients, which are zeroed again.
    /// <summary>An arena just large enough for one training step of <paramref name="model"/> at <paramref name="batchSize"/> (measured by a dry run; gradients zeroed after).</summary>
    public static Arena SizeArena(VqVae model, int batchSize)
    {
        var c = model.Config;
        long bytes = Arena.Measure(model.Device, probe =>
        {
            var tape = new Tape(probe);
            var ctx = new OpContext(probe, tape);
            var x = ctx.Zeros(new Shape(batchSize, c.InputChannels, c.ImageSize, c.ImageSize));
            tape.Backward(VqVae.ReconstructionLoss(ctx, x, model.Forward(ctx, x)));
        });
        model.ZeroGrad();
        return new Arena(model.Device, bytes);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _loader.Dispose();
        _log?.Dispose();
        _arena.Dispose();
        _adam.Dispose();
        Model.Dispose();
    }

    private sealed class Window
    {
        public int Steps;
        public double Mse, Codebook, Commitment, Seconds;
        public long Images;
        public long[] Counts = [];

        public void AddInterval(StepInterval interval, long images, double seconds)
        {
            if (Counts.Length == 0) Counts = new long[interval.Counts.Length];
            for (int k = 0; k < interval.Counts.Length; k++) Counts[k] += interval.Counts[k];
            Steps += interval.Steps;
            Mse += interval.ReconstructionMseSum;
            Codebook += interval.CodebookLossSum;
            Commitment += interval.CommitmentLossSum;
            Images += images;
            Seconds += seconds;
        }

        public void Add(StepLosses l, int[] counts, int images, double seconds)
        {
            if (Counts.Length == 0) Counts = new long[counts.Length];
            for (int k = 0; k < counts.Length; k++) Counts[k] += counts[k];
            Steps++;
            Mse += l.ReconstructionMse;
            Codebook += l.CodebookLoss;
            Commitment += l.CommitmentLoss;
            Images += images;
            Seconds += seconds;
        }
    }
}
