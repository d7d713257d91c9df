namespace VqVaeCuda.Data;

/// <summary>How a <see cref="BatchLoader"/> orders, cuts and normalises a data set.</summary>
public sealed record BatchLoaderOptions
{
    /// <summary>Images per batch.</summary>
    public required int BatchSize { get; init; }

    /// <summary>Shuffle seed: epoch e is ordered by the permutation drawn from seed + e.</summary>
    public int Seed { get; init; }

    /// <summary>Shuffle each epoch (true), or keep the data set's order (false, e.g. for evaluation).</summary>
    public bool Shuffle { get; init; } = true;

    /// <summary>Drop the last batch of an epoch when it is smaller than <see cref="BatchSize"/>, so every step
    /// sees the same shape (what a captured CUDA graph needs).</summary>
    public bool DropLast { get; init; } = true;

    /// <summary>The value range of the batches' pixels.</summary>
    public PixelNormalization Normalization { get; init; } = PixelNormalization.ZeroToOne;

    /// <summary>The first epoch to produce (for resuming a run where it stopped).</summary>
    public int StartEpoch { get; init; }

    /// <summary>The first batch of <see cref="StartEpoch"/> to produce (a run that stopped mid-epoch resumes there).</summary>
    public int StartBatch { get; init; }

    /// <summary>Batches prepared ahead of the consumer (at least 1).</summary>
    public int Prefetch { get; init; } = 2;
}
