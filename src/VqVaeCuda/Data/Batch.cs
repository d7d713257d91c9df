namespace VqVaeCuda.Data;

/// <summary>One mini-batch: images copied out of a data set, normalised, in the epoch's order.</summary>
public sealed class Batch
{
    internal Batch(float[] pixels, int[]? labels, int[] indices, int size, int channels, int height, int width,
                   int epoch, int number, PixelNormalization normalization)
    {
        Pixels = pixels;
        Labels = labels;
        Indices = indices;
        Size = size;
        Channels = channels;
        Height = height;
        Width = width;
        Epoch = epoch;
        Number = number;
        Normalization = normalization;
    }

    /// <summary>The images, [B, C, H, W] with B = <see cref="Size"/>, in the loader's normalisation.</summary>
    public float[] Pixels { get; }

    /// <summary>Labels of the images, or null for an unlabelled set.</summary>
    public int[]? Labels { get; }

    /// <summary>The data-set index of each image.</summary>
    public int[] Indices { get; }

    /// <summary>Number of images in the batch (the batch size, or fewer for a kept partial last batch).</summary>
    public int Size { get; }

    /// <summary>Channels per image.</summary>
    public int Channels { get; }

    /// <summary>Image height.</summary>
    public int Height { get; }

    /// <summary>Image width.</summary>
    public int Width { get; }

    /// <summary>The epoch this batch belongs to (0-based).</summary>
    public int Epoch { get; }

    /// <summary>Position of the batch within its epoch (0-based).</summary>
    public int Number { get; }

    /// <summary>The value range of <see cref="Pixels"/>.</summary>
    public PixelNormalization Normalization { get; }
}
