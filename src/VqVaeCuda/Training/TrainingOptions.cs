namespace VqVaeCuda.Training;

/// <summary>How the trainer runs a training step (DESIGN.md, "One step, two shapes").</summary>
public enum StepExecution
{
    /// <summary><see cref="Graph"/> on a CUDA device, <see cref="Eager"/> on the cpu device.</summary>
    Auto,

    /// <summary>
    /// The host loop of <see cref="VqVaeTrainer.TrainStep"/>: losses, counts and the gradient norm read back after every
    /// step, a non-finite step skipped before it is applied, dead-code restarts checked every step.
    /// </summary>
    Eager,

    /// <summary>
    /// The <see cref="CapturableStep"/>: nothing read back inside a step; on a GPU captured once as a CUDA graph and
    /// replayed (eagerly where capture is unavailable, with the reason reported). Losses and code usage are read at
    /// each log, evaluation and checkpoint; dead-code restarts are checked then; a non-finite step stops training
    /// there (it cannot be skipped: <see cref="TrainingOptions.SkipNonFinite"/> &gt; 0 runs the eager loop instead).
    /// </summary>
    Graph,
}

/// <summary>How a VQ-VAE is trained.</summary>
public sealed record TrainingOptions
{
    /// <summary>Optimizer steps to run (in total: a resumed run continues up to this).</summary>
    public int Steps { get; init; } = 2000;

    /// <summary>Images per step.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>Adam's learning rate (the paper: 2e-4).</summary>
    public double LearningRate { get; init; } = 2e-4;

    /// <summary>Seed of data order, parameter initialisation and codebook restarts.</summary>
    public int Seed { get; init; }

    /// <summary>Write a metrics line (and update progress) every this many steps.</summary>
    public int LogEvery { get; init; } = 50;

    /// <summary>Evaluate on the whole test split every this many steps (and at the end); 0 = only at the end.</summary>
    public int EvaluateEvery { get; init; } = 500;

    /// <summary>Write a checkpoint every this many steps (and at the end); 0 = only at the end.</summary>
    public int CheckpointEvery { get; init; } = 500;

    /// <summary>
    /// Dead-code restart: a code unused for this many steps is re-seeded from a random encoder output of
    /// the current batch (0 disables it).
    /// </summary>
    public int DeadCodeSteps { get; init; } = 200;

    /// <summary>Initialise the codebook by k-means over the encoder outputs of the first batches.</summary>
    public bool KMeansInit { get; init; }

    /// <summary>Batches whose encoder outputs feed the k-means initialisation.</summary>
    public int KMeansBatches { get; init; } = 8;

    /// <summary>Largest allowed gradient norm (0 = no clipping).</summary>
    public float MaxGradNorm { get; init; }

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

    /// <summary>
    /// How <see cref="VqVaeTrainer.Train"/> runs its steps (<see cref="StepExecution"/>): by default one CUDA graph per
    /// step on a GPU and the eager loop on the cpu device. Not a model setting: a resume may change it.
    /// </summary>
    public StepExecution StepExecution { get; init; } = StepExecution.Auto;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first value out of range.</summary>
    public TrainingOptions Validate()
    {
        if (Steps < 1) throw new ArgumentException($"steps = {Steps}: must be at least 1");
        if (BatchSize < 1) throw new ArgumentException($"batch = {BatchSize}: must be at least 1");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) throw new ArgumentException($"learning rate = {LearningRate}: must be positive");
        if (LogEvery < 1) throw new ArgumentException($"log every = {LogEvery}: must be at least 1");
        if (EvaluateEvery < 0 || CheckpointEvery < 0 || DeadCodeSteps < 0) throw new ArgumentException("evaluate/checkpoint/dead-code intervals must be >= 0");
        if (MaxGradNorm < 0) throw new ArgumentException($"max grad norm = {MaxGradNorm}: must be >= 0");
        if (KeepCheckpoints < 0) throw new ArgumentException($"keep checkpoints = {KeepCheckpoints}: must be >= 0 (0 keeps all)");
        if (SkipNonFinite < 0) throw new ArgumentException($"skip non-finite = {SkipNonFinite}: must be >= 0");
        if (!Enum.IsDefined(StepExecution)) throw new ArgumentException($"step execution = {StepExecution}: not one of {string.Join(", ", Enum.GetNames<StepExecution>())}");
        return this;
    }
}
