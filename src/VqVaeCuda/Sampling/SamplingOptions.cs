namespace VqVaeCuda.Sampling;

/// <summary>How <see cref="PriorSampler"/> runs the prior for each new position.</summary>
public enum SamplingMethod
{
    /// <summary>The whole prior re-run on the whole code maps for every position: H·W forward passes.</summary>
    Naive,

    /// <summary>
    /// Only what the new position changes (Ramachandran et al. 2017): each layer's vertical stack once per row, its
    /// horizontal stack and the head once per position, from per-layer caches.
    /// </summary>
    Cached,
}

/// <summary>What <see cref="PriorSampler.Sample"/> draws: how many code maps, of which size, how, from which seed.</summary>
public sealed record SamplingOptions
{
    /// <summary>Code maps to sample.</summary>
    public int Count { get; init; } = 64;

    /// <summary>Rows of each code map (any size: the prior is convolutional).</summary>
    public int Height { get; init; } = 7;

    /// <summary>Columns of each code map.</summary>
    public int Width { get; init; } = 7;

    /// <summary>Logits are divided by it before the softmax: below 1 sharper, above 1 flatter; finite and above 0 (→ 0: the argmax).</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>Seeds the uniform draws: the same seed, options and prior give the same code maps.</summary>
    public int Seed { get; init; }

    /// <summary>One class per sample, in [0, classes): required exactly when the prior is class-conditional.</summary>
    public IReadOnlyList<int>? Labels { get; init; }

    /// <summary>Naive or cached; both draw from the same distribution with the same uniforms.</summary>
    public SamplingMethod Method { get; init; } = SamplingMethod.Cached;
}
