using System.Buffers.Binary;
using System.IO.Compression;
using SkiaSharp;

namespace VqVaeCuda.Tests.Data;

/// <summary>A fresh temporary folder, deleted on dispose.</summary>
public sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "vqvae-data-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public string Folder(string name)
    {
        var p = System.IO.Path.Combine(Path, name);
        Directory.CreateDirectory(p);
        return p;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>Writes small data files in the formats the readers accept, byte by byte as the formats define them.</summary>
public static class DataTestFiles
{
    /// <summary>Bytes of an IDX image file: magic, N, rows, cols (big-endian), then the pixels.</summary>
    public static byte[] IdxImages(byte[] pixels, int count, int rows, int cols, int magic = 0x00000803)
    {
        var bytes = new byte[16 + pixels.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), count);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(8), rows);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(12), cols);
        pixels.CopyTo(bytes, 16);
        return bytes;
    }

    /// <summary>Bytes of an IDX label file: magic, N (big-endian), then the labels.</summary>
    public static byte[] IdxLabels(byte[] labels, int? count = null)
    {
        var bytes = new byte[8 + labels.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, 0x00000801);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), count ?? labels.Length);
        labels.CopyTo(bytes, 8);
        return bytes;
    }

    public static byte[] Gzip(byte[] raw)
    {
        using var output = new MemoryStream();
        using (var gz = new GZipStream(output, CompressionLevel.Fastest)) gz.Write(raw);
        return output.ToArray();
    }

    public static void Write(string path, byte[] raw, bool gzip) => System.IO.File.WriteAllBytes(path, gzip ? Gzip(raw) : raw);

    /// <summary>Random 8-bit pixels and labels 0..9 for <paramref name="count"/> images.</summary>
    public static (byte[] Pixels, byte[] Labels) RandomIdx(int count, int rows, int cols)
    {
        var r = TestContext.CurrentContext.Random;
        var pixels = new byte[count * rows * cols];
        r.NextBytes(pixels);
        var labels = new byte[count];
        for (int i = 0; i < count; i++) labels[i] = (byte)r.Next(10);
        return (pixels, labels);
    }

    /// <summary>Writes the four standard IDX files of a small MNIST-like set into <paramref name="dir"/>.</summary>
    public static void WriteIdxDirectory(string dir, int trainCount, int testCount, int side = 28, bool gzip = true)
    {
        string ext = gzip ? ".gz" : "";
        var (trp, trl) = RandomIdx(trainCount, side, side);
        var (tep, tel) = RandomIdx(testCount, side, side);
        Write(Path.Combine(dir, "train-images-idx3-ubyte" + ext), IdxImages(trp, trainCount, side, side), gzip);
        Write(Path.Combine(dir, "train-labels-idx1-ubyte" + ext), IdxLabels(trl), gzip);
        Write(Path.Combine(dir, "t10k-images-idx3-ubyte" + ext), IdxImages(tep, testCount, side, side), gzip);
        Write(Path.Combine(dir, "t10k-labels-idx1-ubyte" + ext), IdxLabels(tel), gzip);
    }

    /// <summary>One CIFAR-10 record: label byte, then R, G, B planes of 32×32.</summary>
    public static byte[] CifarRecord(byte label, Func<int, int, int, byte> pixel)
    {
        var record = new byte[3073];
        record[0] = label;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                    record[1 + c * 1024 + y * 32 + x] = pixel(c, y, x);
        return record;
    }

    /// <summary>Encodes a <paramref name="width"/>×<paramref name="height"/> RGB image given per pixel.</summary>
    public static byte[] Encode(int width, int height, Func<int, int, SKColor> pixel, SKEncodedImageFormat format = SKEncodedImageFormat.Png)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                bitmap.SetPixel(x, y, pixel(x, y));
        using var data = bitmap.Encode(format, 95);
        return data.ToArray();
    }

    public static void WritePng(string path, int width, int height, Func<int, int, SKColor> pixel)
        => System.IO.File.WriteAllBytes(path, Encode(width, height, pixel));

    /// <summary>Inserts an EXIF APP1 segment holding only the orientation tag right after a JPEG's SOI marker.</summary>
    public static byte[] WithExifOrientation(byte[] jpeg, ushort orientation)
    {
        byte[] tiff =
        [
            (byte)'M', (byte)'M', 0x00, 0x2A, 0x00, 0x00, 0x00, 0x08,  // big-endian TIFF header, IFD0 at offset 8
            0x00, 0x01,                                                // one entry
            0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01,            // tag 0x0112 Orientation, SHORT, count 1
            (byte)(orientation >> 8), (byte)orientation, 0x00, 0x00,   // value
            0x00, 0x00, 0x00, 0x00,                                    // no next IFD
        ];
        byte[] exifHeader = [(byte)'E', (byte)'x', (byte)'i', (byte)'f', 0, 0];
        int length = 2 + exifHeader.Length + tiff.Length;
        var segment = new List<byte> { 0xFF, 0xE1, (byte)(length >> 8), (byte)length };
        segment.AddRange(exifHeader);
        segment.AddRange(tiff);
        return [.. jpeg[..2], .. segment, .. jpeg[2..]];
    }
}
