namespace VqVaeCuda.Data;

/// <summary>
/// Whole-data-set conversions for when a source's own format is not the size or channel count asked
/// for (e.g. 28×28 Fashion-MNIST for a model built for 32×32, or grey CIFAR-10).
/// </summary>
public static class ImageTransforms
{
    /// <summary>
    /// Resizes every image so its shorter side is <paramref name="size"/> and centre-crops to a square,
    /// exactly as <see cref="ImageFolderReader"/> does. Pixels go through 8 bits on the way, which loses
    /// nothing for the 8-bit sources the readers produce.
    /// </summary>
    public static ImageDataset Resize(ImageDataset data, int size)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size), size, "must be at least 1");
        if (data.Height == size && data.Width == size) return data;
        int outSize = data.Channels * size * size;
        var pixels = new float[checked(data.Count * outSize)];
        Parallel.For(0, data.Count, i =>
        {
            using var bitmap = SkiaImaging.FromPlanes(data.Image(i), data.Channels, data.Height, data.Width);
            SkiaImaging.ResizeCropToPlanes(bitmap, size, data.Channels, pixels.AsSpan(i * outSize, outSize));
        });
        return new ImageDataset(data.Name, pixels, data.Count, data.Channels, size, size, data.Labels, data.ClassNames);
    }

    /// <summary>
    /// Converts to <paramref name="channels"/> channels: grey to RGB replicates the plane, RGB to grey
    /// takes ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B).
    /// </summary>
    public static ImageDataset ConvertChannels(ImageDataset data, int channels)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (channels == data.Channels) return data;
        if (channels is not (1 or 3) || data.Channels is not (1 or 3))
            throw new ArgumentException($"{data.Name}: cannot convert {data.Channels} channels to {channels}; only 1 ↔ 3 is defined");
        int plane = data.Height * data.Width;
        var pixels = new float[checked(data.Count * channels * plane)];
        for (int i = 0; i < data.Count; i++)
        {
            var src = data.Image(i);
            var dst = pixels.AsSpan(i * channels * plane, channels * plane);
            if (channels == 3)
            {
                for (int c = 0; c < 3; c++) src.CopyTo(dst.Slice(c * plane, plane));
            }
            else
            {
                for (int p = 0; p < plane; p++)
                    dst[p] = Math.Clamp(0.299f * src[p] + 0.587f * src[plane + p] + 0.114f * src[2 * plane + p], 0f, 1f);
            }
        }
        return new ImageDataset(data.Name, pixels, data.Count, channels, data.Height, data.Width, data.Labels, data.ClassNames);
    }
}
