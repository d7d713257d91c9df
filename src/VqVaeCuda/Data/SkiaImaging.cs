using SkiaSharp;
using VqVaeCuda.Device;

namespace VqVaeCuda.Data;

/// <summary>
/// The SkiaSharp work behind image folders and dataset resizing: decode with the EXIF orientation
/// applied, resize so the shorter side hits a target, centre-crop, and unpack to planar floats.
/// Bitmaps are always 8-bit RGBA with premultiplied alpha: resampling premultiplied pixels is what keeps
/// transparent regions from bleeding their (meaningless) colour into the edges, and reading premultiplied
/// RGB back is the same as compositing the image over black.
/// </summary>
internal static class SkiaImaging
{
    /// <summary>The largest image decoded: 2^28 pixels (16384×16384), a gigabyte as RGBA; a 100-megapixel photo is well below.</summary>
    private const long MaxDecodedBytes = 4L << 28;

    /// <summary>Decodes <paramref name="path"/>, or throws a <see cref="DataFormatException"/> naming it.</summary>
    public static SKBitmap Decode(string path)
    {
        using var codec = SKCodec.Create(path, out var created);
        if (codec is null)
            throw new DataFormatException(path, $"cannot be decoded as an image ({created})");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Premul);
        if (info.Width < 1 || info.Height < 1)
            throw new DataFormatException(path, $"has impossible size {info.Width}×{info.Height}");
        // The size comes from the file's header, and a few hundred bytes of PNG can claim 100000×100000 pixels (40 GB
        // decoded): check it before the bitmap is allocated, against a bound no photograph reaches and the memory there is.
        long bytes = 4L * info.Width * info.Height;
        if (bytes > MaxDecodedBytes)
            throw new DataFormatException(path, $"header claims {info.Width}×{info.Height} pixels ({HostMemory.Describe(bytes)} decoded), " +
                                                $"over the {HostMemory.Describe(MaxDecodedBytes)} this reader decodes");
        DataFiles.RequireMemory(path, bytes, $"the decoded {info.Width}×{info.Height} image");
        var bitmap = new SKBitmap(info);
        // SKBitmap.Decode(codec, info) is this same call, but it accepts IncompleteInput and hands back a
        // half-grey image; a truncated file in a training set is an error to report, not a picture.
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result != SKCodecResult.Success)
        {
            bitmap.Dispose();
            throw new DataFormatException(path, result == SKCodecResult.IncompleteInput
                ? "truncated image (the decoder ran out of data)"
                : $"cannot be decoded as an image ({result})");
        }
        return Orient(bitmap, codec.EncodedOrigin);
    }

    /// <summary>
    /// Resizes so that the shorter side equals <paramref name="size"/> and returns the centred
    /// <paramref name="size"/>×<paramref name="size"/> square as planar floats in [0, 1].
    /// Large reductions first halve with a 2×2 box (bilinear at exactly half size), then finish with a
    /// Mitchell cubic: one cubic step over a large factor would skip most source pixels and alias.
    /// </summary>
    public static void ResizeCropToPlanes(SKBitmap source, int size, int channels, Span<float> destination)
    {
        int w = source.Width, h = source.Height;
        double scale = (double)size / Math.Min(w, h);
        int targetW = w <= h ? size : Math.Max(size, (int)Math.Round(w * scale));
        int targetH = h < w ? size : Math.Max(size, (int)Math.Round(h * scale));

        SKBitmap current = source;
        try
        {
            while (current.Width / 2 >= targetW && current.Height / 2 >= targetH)
                Replace(ref current, source, Resize(current, current.Width / 2, current.Height / 2,
                                                    new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.None)));
            if (current.Width != targetW || current.Height != targetH)
                Replace(ref current, source, Resize(current, targetW, targetH, new SKSamplingOptions(SKCubicResampler.Mitchell)));
            ToPlanes(current, (targetW - size) / 2, (targetH - size) / 2, size, channels, destination);
        }
        finally
        {
            if (!ReferenceEquals(current, source)) current.Dispose();
        }
    }

    /// <summary>An RGBA bitmap of one planar [C, H, W] float image (grey is replicated to R, G and B).</summary>
    public static SKBitmap FromPlanes(ReadOnlySpan<float> planes, int channels, int height, int width)
    {
        var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        var pixels = bitmap.GetPixelSpan();
        int rowBytes = bitmap.RowBytes, plane = height * width;
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                int o = y * rowBytes + 4 * x, p = y * width + x;
                for (int c = 0; c < 3; c++)
                    pixels[o + c] = ToByte(planes[(channels == 1 ? 0 : c) * plane + p]);
                pixels[o + 3] = 255;
            }
        }
        return bitmap;
    }

    /// <summary>Copies the <paramref name="size"/>² square at (x0, y0) out as planar floats in [0, 1];
    /// one channel is ITU-R BT.601 luma (the weights PIL's "L" mode uses).</summary>
    private static void ToPlanes(SKBitmap bitmap, int x0, int y0, int size, int channels, Span<float> destination)
    {
        ReadOnlySpan<byte> pixels = bitmap.GetPixelSpan();
        int rowBytes = bitmap.RowBytes, plane = size * size;
        for (int y = 0; y < size; y++)
        {
            for (int x = 0; x < size; x++)
            {
                int o = (y0 + y) * rowBytes + 4 * (x0 + x), p = y * size + x;
                byte r = pixels[o], g = pixels[o + 1], b = pixels[o + 2];
                if (channels == 1)
                {
                    destination[p] = r == g && g == b
                        ? r / 255f  // exact for grey sources, where luma weights would add rounding noise
                        : Math.Min(1f, (0.299f * r + 0.587f * g + 0.114f * b) / 255f);
                }
                else
                {
                    destination[p] = r / 255f;
                    destination[plane + p] = g / 255f;
                    destination[2 * plane + p] = b / 255f;
                }
            }
        }
    }

    private static SKBitmap Resize(SKBitmap bitmap, int width, int height, SKSamplingOptions sampling)
        => bitmap.Resize(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul), sampling)
           ?? throw new InvalidOperationException($"SkiaSharp could not resize {bitmap.Width}×{bitmap.Height} to {width}×{height}");

    private static void Replace(ref SKBitmap current, SKBitmap source, SKBitmap next)
    {
        if (!ReferenceEquals(current, source)) current.Dispose();
        current = next;
    }

    /// <summary>
    /// Applies the EXIF orientation, so that a phone photo stored sideways is read the way it is shown.
    /// Done by index arithmetic on the 32-bit pixels, which is exact (no resampling).
    /// </summary>
    private static SKBitmap Orient(SKBitmap stored, SKEncodedOrigin origin)
    {
        if (origin is SKEncodedOrigin.TopLeft or 0) return stored;
        int w = stored.Width, h = stored.Height;
        bool swap = origin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop
                           or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;
        int dw = swap ? h : w, dh = swap ? w : h;
        var shown = new SKBitmap(new SKImageInfo(dw, dh, SKColorType.Rgba8888, SKAlphaType.Premul));
        var src = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(stored.GetPixelSpan());
        var dst = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(shown.GetPixelSpan());
        int srcStride = stored.RowBytes / 4, dstStride = shown.RowBytes / 4;
        for (int dy = 0; dy < dh; dy++)
        {
            for (int dx = 0; dx < dw; dx++)
            {
                (int sx, int sy) = origin switch
                {
                    SKEncodedOrigin.TopRight => (w - 1 - dx, dy),
                    SKEncodedOrigin.BottomRight => (w - 1 - dx, h - 1 - dy),
                    SKEncodedOrigin.BottomLeft => (dx, h - 1 - dy),
                    SKEncodedOrigin.LeftTop => (dy, dx),
                    SKEncodedOrigin.RightTop => (dy, h - 1 - dx),
                    SKEncodedOrigin.RightBottom => (w - 1 - dy, h - 1 - dx),
                    SKEncodedOrigin.LeftBottom => (w - 1 - dy, dx),
                    _ => (dx, dy),
                };
                dst[dy * dstStride + dx] = src[sy * srcStride + sx];
            }
        }
        stored.Dispose();
        return shown;
    }

    private static byte ToByte(float v) => (byte)Math.Clamp((int)MathF.Round(v * 255f), 0, 255);
}
