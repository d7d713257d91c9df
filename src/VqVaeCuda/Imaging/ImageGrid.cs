using SkiaSharp;

namespace VqVaeCuda.Imaging;

/// <summary>
/// PNG grids of images, e.g. originals over reconstructions: each row is a set of images laid out left
/// to right, rows stacked top to bottom, with a thin gap. Pixels are [N, C, H, W] floats in [0,1]
/// (values outside are clamped); C is 1 (grey) or 3 (RGB).
/// </summary>
public static class ImageGrid
{
    /// <summary>Writes a grid whose rows are <paramref name="rows"/>; every row has the same C, H, W.</summary>
    /// <param name="path">The PNG to write (its folder is created).</param>
    /// <param name="rows">Each row: pixels [count, channels, height, width].</param>
    /// <param name="channels">1 or 3.</param>
    /// <param name="height">Image height.</param>
    /// <param name="width">Image width.</param>
    /// <param name="scale">Pixel scale factor (small images are hard to see at 1×).</param>
    public static void SavePng(string path, IReadOnlyList<float[]> rows, int channels, int height, int width, int scale = 3)
    {
        if (channels is not (1 or 3)) throw new ArgumentException($"image grid: {channels} channels; 1 or 3 expected");
        int per = channels * height * width;
        int columns = rows.Max(r => r.Length / per);
        const int gap = 2;
        int cellW = width * scale, cellH = height * scale;
        using var bitmap = new SKBitmap(columns * (cellW + gap) + gap, rows.Count * (cellH + gap) + gap, SKColorType.Rgba8888, SKAlphaType.Opaque);
        bitmap.Erase(new SKColor(40, 40, 40));
        for (int r = 0; r < rows.Count; r++)
        {
            int count = rows[r].Length / per;
            for (int i = 0; i < count; i++)
            {
                int x0 = gap + i * (cellW + gap), y0 = gap + r * (cellH + gap);
                for (int y = 0; y < height; y++)
                    for (int x = 0; x < width; x++)
                    {
                        byte Channel(int c) => (byte)Math.Clamp(MathF.Round(rows[r][i * per + (c * height + y) * width + x] * 255f), 0, 255);
                        var color = channels == 1 ? new SKColor(Channel(0), Channel(0), Channel(0)) : new SKColor(Channel(0), Channel(1), Channel(2));
                        for (int sy = 0; sy < scale; sy++)
                            for (int sx = 0; sx < scale; sx++) bitmap.SetPixel(x0 + x * scale + sx, y0 + y * scale + sy, color);
                    }
            }
        }
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        using var file = File.Create(path);
        data.SaveTo(file);
    }
}
