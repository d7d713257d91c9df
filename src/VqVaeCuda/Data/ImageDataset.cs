namespace VqVaeCuda.Data;

/// <summary>
/// An in-memory set of images, all of one size, stored as one contiguous <c>float[]</c> laid out
/// [N, C, H, W] with values in [0, 1]. One flat array (rather than an array per image) is what the
/// batch loader copies from and what a device upload wants; the [0, 1] range is the one every reader
/// produces so that normalisation is decided in one place, the batch loader.
/// </summary>
public sealed class ImageDataset
{
    /// <summary>
    /// Wraps <paramref name="pixels"/> (not copied) as <paramref name="count"/> images of
    /// <paramref name="channels"/>×<paramref name="height"/>×<paramref name="width"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The sizes do not match the arrays, or a label is outside the class names.</exception>
    public ImageDataset(string name, float[] pixels, int count, int channels, int height, int width,
                        int[]? labels = null, string[]? classNames = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(pixels);
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "must not be negative");
        if (channels < 1 || height < 1 || width < 1)
            throw new ArgumentException($"{name}: image size {channels}×{height}×{width} must be at least 1×1×1");
        long expected = (long)count * channels * height * width;
        if (pixels.LongLength != expected)
            throw new ArgumentException($"{name}: {pixels.LongLength} pixel values for {count} images of {channels}×{height}×{width} (expected {expected})");
        if (labels is not null)
        {
            if (labels.Length != count)
                throw new ArgumentException($"{name}: {labels.Length} labels for {count} images");
            foreach (var l in labels)
            {
                if (l < 0 || (classNames is not null && l >= classNames.Length))
                    throw new ArgumentException($"{name}: label {l} is outside the {classNames?.Length.ToString() ?? "non-negative"} classes");
            }
        }
        Name = name;
        Pixels = pixels;
        Count = count;
        Channels = channels;
        Height = height;
        Width = width;
        Labels = labels;
        ClassNames = classNames;
    }

    /// <summary>A short name for messages and run logs, e.g. <c>fashion-mnist/train</c>.</summary>
    public string Name { get; }

    /// <summary>All pixels, [N, C, H, W], values in [0, 1].</summary>
    public float[] Pixels { get; }

    /// <summary>Class index per image, or null for an unlabelled set.</summary>
    public int[]? Labels { get; }

    /// <summary>Names of the classes (index = label), or null when the source names none.</summary>
    public string[]? ClassNames { get; }

    /// <summary>Number of images.</summary>
    public int Count { get; }

    /// <summary>Channels per image: 1 (grey) or 3 (RGB).</summary>
    public int Channels { get; }

    /// <summary>Image height in pixels.</summary>
    public int Height { get; }

    /// <summary>Image width in pixels.</summary>
    public int Width { get; }

    /// <summary>Values per image: C·H·W.</summary>
    public int ImageSize => Channels * Height * Width;

    /// <summary>The pixels of image <paramref name="i"/>, [C, H, W].</summary>
    public ReadOnlySpan<float> Image(int i)
    {
        if ((uint)i >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(i), i, $"{Name} has {Count} images");
        return Pixels.AsSpan((int)((long)i * ImageSize), ImageSize);
    }

    /// <summary>A copy holding the images at <paramref name="indices"/>, in that order (repeats allowed).</summary>
    public ImageDataset Subset(int[] indices) => Subset(indices, Name);

    /// <summary>A copy holding the images at <paramref name="indices"/>, in that order, named <paramref name="name"/>.</summary>
    public ImageDataset Subset(int[] indices, string name)
    {
        ArgumentNullException.ThrowIfNull(indices);
        int size = ImageSize;
        var pixels = new float[checked((long)indices.Length * size)];
        var labels = Labels is null ? null : new int[indices.Length];
        for (int k = 0; k < indices.Length; k++)
        {
            Image(indices[k]).CopyTo(pixels.AsSpan((int)((long)k * size), size));
            if (labels is not null) labels[k] = Labels![indices[k]];
        }
        return new ImageDataset(name, pixels, indices.Length, Channels, Height, Width, labels, ClassNames);
    }

    /// <summary>
    /// A seeded random split into <paramref name="testCount"/> test images and the rest for training.
    /// Both parts keep the source order (only membership is random), so a split of a sorted folder
    /// still reads in a predictable order. Use it only where the source defines no split of its own.
    /// </summary>
    public (ImageDataset Train, ImageDataset Test) SplitByCount(int testCount, int seed)
    {
        if (testCount < 0 || testCount > Count)
            throw new ArgumentOutOfRangeException(nameof(testCount), testCount, $"{Name} has {Count} images");
        var permutation = new DeterministicRandom((ulong)seed ^ 0x5B117_5EEDUL).Permutation(Count);
        var test = permutation[..testCount];
        var train = permutation[testCount..];
        Array.Sort(test);
        Array.Sort(train);
        return (Subset(train, Name + "/train"), Subset(test, Name + "/test"));
    }

    /// <summary>The same images and labels under other class names (e.g. the known names of a format whose files carry none).</summary>
    public ImageDataset WithClassNames(string[]? classNames)
        => new(Name, Pixels, Count, Channels, Height, Width, Labels, classNames);

    /// <inheritdoc />
    public override string ToString()
        => $"{Name}: {Count} × {Channels}×{Height}×{Width}{(Labels is null ? "" : $", {ClassNames?.Length.ToString() ?? "?"} classes")}";
}
