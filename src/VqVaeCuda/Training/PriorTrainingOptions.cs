namespace VqVaeCuda.Training;

/// <summary>How the prior's learning rate moves over a run.</summary>
public enum LearningRateSchedule
{
    /// <summary>The same rate at every step.</summary>
    Constant,

    /// <summary>Half a cosine from the rate at step 1 down towards 0 at <see cref="PriorTrainingOptions.Steps"/>.</summary>
    Cosine,
}

/// <summary>How a Gated PixelCNN prior is trained over a frozen VQ-VAE's code maps.</summary>
public sealed record PriorTrainingOptions
{
    /// <summary>Optimizer steps to run (in total: a resumed run continues up to this).</summary>
    public int Steps { get; init; } = 2000;

    /// <summary>Code maps per step.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>Adam's learning rate.</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>
    /// How the rate moves: constant, or a cosine decay over <see cref="Steps"/> (a function of the step alone, so a resume
    /// continues it exactly; a resume that changes <see cref="Steps"/> changes the rest of the curve).
    /// </summary>
    public LearningRateSchedule Schedule { get; init; } = LearningRateSchedule.Constant;

    /// <summary>The learning rate of step <paramref name="step"/> (1-based) under <see cref="Schedule"/>.</summary>
    public double LearningRateAt(int step) => Schedule == LearningRateSchedule.Cosine
        ? LearningRate * 0.5 * (1 + Math.Cos(Math.PI * (step - 1) / Steps))
        : LearningRate;

    /// <summary>Seed of parameter initialisation, data order and the end-of-run samples.</summary>
    public int Seed { get; init; }

    /// <summary>Write a metrics line (and update progress) every this many steps.</summary>
    public int LogEvery { get; init; } = 50;

    /// <summary>Evaluate on the whole test split every this many steps (and at the end); 0 = only at the end.</summary>
    public int EvaluateEvery { get; init; } = 500;

    /// <summary>Write a checkpoint every this many steps (and at the end); 0 = only at the end.</summary>
    public int CheckpointEvery { get; init; } = 500;

    /// <summary>Code maps sampled and decoded into <c>samples.png</c> at the end of a run with a run folder (0 = none).</summary>
    public int SampleCount { get; init; } = 64;

    /// <summary>
    /// Step checkpoints (<c>checkpoints/*step-N.safetensors</c>) a run keeps: the newest this many; older ones are deleted
    /// once a newer one is on disk (0 keeps them all). The latest checkpoint beside the run is always kept. A resume may
    /// change it.
    /// </summary>
    public int KeepCheckpoints { get; init; } = 3;

    /// <summary>
    /// Steps with a non-finite loss or gradient that are skipped (no update; the batch is passed over) before training
    /// stops; 0 stops at the first. Counted per session. A resume may change it.
    /// </summary>
    public int SkipNonFinite { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first value out of range.</summary>
    public PriorTrainingOptions Validate()
    {
        if (Steps < 1) throw new ArgumentException($"steps = {Steps}: must be at least 1");
        if (BatchSize < 1) throw new ArgumentException($"batch = {BatchSize}: must be at least 1");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) throw new ArgumentException($"learning rate = {LearningRate}: must be positive");
        if (LogEvery < 1) throw new ArgumentException($"log every = {LogEvery}: must be at least 1");
        if (EvaluateEvery < 0 || CheckpointEvery < 0) throw new ArgumentException("evaluate/checkpoint intervals must be >= 0");
        if (SampleCount < 0) throw new ArgumentException($"samples = {SampleCount}: must be >= 0");
        if (KeepCheckpoints < 0) throw new ArgumentException($"keep checkpoints = {KeepCheckpoints}: must be >= 0 (0 keeps all)");
        if (SkipNonFinite < 0) throw new ArgumentException($"skip non-finite = {SkipNonFinite}: must be >= 0");
        if (!Enum.IsDefined(Schedule)) throw new ArgumentException($"learning-rate schedule = {Schedule}: not one of {string.Join(", ", Enum.GetNames<LearningRateSchedule>())}");
        return this;
    }
}
