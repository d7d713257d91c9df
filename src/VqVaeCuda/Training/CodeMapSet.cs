namespace VqVaeCuda.Training;

/// <summary>
/// A data set of code maps on the host: what a frozen VQ-VAE made of one split of images, and what the prior
/// trains on. <see cref="Codes"/> is int32 [N, H, W] flattened; <see cref="Labels"/> the images' classes, if any.
/// </summary>
public sealed class CodeMapSet
{
    /// <summary>Wraps the arrays (not copied) after checking that they fit together.</summary>
    /// <param name="name">For messages, e.g. <c>shapes/train</c>.</param>
    /// <param name="codes">int32 [count, height, width], flattened in raster order.</param>
    /// <param name="labels">One class per code map, or null.</param>
    /// <param name="count">Number of code maps.</param>
    /// <param name="height">Rows of each map.</param>
    /// <param name="width">Columns of each map.</param>
    /// <param name="classes">Number of classes the labels come from (0 without labels).</param>
    /// <exception cref="ArgumentException">Sizes that do not fit, or a label outside 0..classes−1.</exception>
    public CodeMapSet(string name, int[] codes, int[]? labels, int count, int height, int width, int classes)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(codes);
        if (count < 0 || height < 1 || width < 1) throw new ArgumentException($"{name}: {count} code maps of {height}x{width}: impossible sizes");
        if (codes.LongLength != (long)count * height * width)
            throw new ArgumentException($"{name}: {codes.LongLength} codes for {count} code maps of {height}x{width}");
        if (labels is not null)
        {
            if (labels.Length != count) throw new ArgumentException($"{name}: {labels.Length} labels for {count} code maps");
            if (labels.Any(l => l < 0 || l >= classes)) throw new ArgumentException($"{name}: a label is outside the {classes} classes");
        }
        else if (classes != 0) throw new ArgumentException($"{name}: {classes} classes but no labels");
        Name = name;
        Codes = codes;
        Labels = labels;
        Count = count;
        Height = height;
        Width = width;
        Classes = classes;
    }

    /// <summary>For messages and logs.</summary>
    public string Name { get; }

    /// <summary>int32 [N, H, W] flattened.</summary>
    public int[] Codes { get; }

    /// <summary>One class per code map, or null.</summary>
    public int[]? Labels { get; }

    /// <summary>N: number of code maps.</summary>
    public int Count { get; }

    /// <summary>Rows of each map.</summary>
    public int Height { get; }

    /// <summary>Columns of each map.</summary>
    public int Width { get; }

    /// <summary>Number of classes (0 without labels).</summary>
    public int Classes { get; }

    /// <summary>Positions per map: H·W.</summary>
    public int Positions => Height * Width;

    /// <summary>The largest code, or −1 for an empty set.</summary>
    public int MaxCode() => Codes.Length == 0 ? -1 : Codes.Max();

    /// <summary>
    /// Entropy in nats of the histogram of all codes over <paramref name="codebookSize"/> codes: the NLL per position of
    /// the best prior that ignores context (each position drawn from the marginal code distribution).
    /// </summary>
    public double UnigramEntropyNats(int codebookSize)
    {
        var counts = new long[codebookSize];
        foreach (var k in Codes) counts[k]++;
        double total = Codes.Length, entropy = 0;
        foreach (var c in counts)
            if (c > 0)
            {
                double p = c / total;
                entropy -= p * Math.Log(p);
            }
        return entropy;
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name}: {Count} code maps of {Height}x{Width}{(Labels is null ? "" : $", {Classes} classes")}";
}
