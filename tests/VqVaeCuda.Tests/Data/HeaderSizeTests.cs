using System.Buffers.Binary;
using SkiaSharp;
using VqVaeCuda.Data;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Tests.Data;

/// <summary>
/// A header that claims more than its file holds is refused before anything of that size is allocated: a few bytes of
/// file must not cost gigabytes of memory (or, on Linux, the OOM killer). Measured with the bytes this thread allocates.
/// </summary>
[TestFixture, Category("Cpu")]
public class HeaderSizeTests
{
    /// <summary>What a refused read may allocate: buffers of a few KB to a MB, never the header's claim.</summary>
    private const long Budget = 4L << 20;

    private static (T Error, long Allocated) Measure<T>(Action read) where T : Exception
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<T>(() => read())!;
        return (error, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    // 30000 images of 256×256: 1.97 GB of pixels (7.9 GB as floats) claimed by a 16-byte header.
    private static byte[] ClaimingHeader() => DataTestFiles.IdxImages([], 30_000, 256, 256);

    [TestCase(false)]
    [TestCase(true)]
    public void An_IDX_header_claiming_two_gigabytes_in_a_tiny_file_allocates_nothing_of_that_size(bool gzip)
    {
        using var folder = new TempFolder();
        var path = folder.File("train-images-idx3-ubyte");
        DataTestFiles.Write(path, [.. ClaimingHeader(), .. new byte[1000]], gzip);
        var (error, allocated) = Measure<DataFormatException>(() => IdxReader.ReadImages(path));
        Assert.That(error.Message, Does.Contain("truncated").And.Contain("30000 images of 256×256"));
        Assert.That(allocated, Is.LessThan(Budget), $"{allocated} bytes allocated to refuse a {new FileInfo(path).Length}-byte file");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void An_IDX_label_header_claiming_two_billion_labels_allocates_nothing_of_that_size(bool gzip)
    {
        using var folder = new TempFolder();
        var path = folder.File("train-labels-idx1-ubyte");
        DataTestFiles.Write(path, DataTestFiles.IdxLabels(new byte[100], count: 2_000_000_000), gzip);
        var (error, allocated) = Measure<DataFormatException>(() => IdxReader.ReadLabels(path));
        Assert.That(error.Message, Does.Contain("truncated").And.Contain("2000000000 labels"));
        Assert.That(allocated, Is.LessThan(Budget));
    }

    [Test]
    public void A_PNG_claiming_twenty_thousand_pixels_square_is_refused_from_its_header()
    {
        using var folder = new TempFolder();
        var png = DataTestFiles.Encode(8, 8, (x, y) => new SKColor((byte)x, (byte)y, 0));
        // IHDR's width and height (big-endian, bytes 16..24), with the chunk's CRC (over type and data, bytes 12..29) redone
        // so that the decoder believes the header: a stale CRC is refused before the size is ever read.
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(16), 20_000);
        BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(20), 20_000);
        BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(29), Crc32(png.AsSpan(12, 17)));
        File.WriteAllBytes(folder.File("huge.png"), png);
        var error = Assert.Throws<DataFormatException>(() => ImageFolderReader.Read(folder.Path, 8, 3))!;
        Assert.That(error, Is.InstanceOf<InvalidInputFileException>());
        // 1.6 GB as RGBA: Skia would allocate it and then find the data missing; the reader refuses from the header alone.
        Assert.That(error.Message, Does.Contain("huge.png").And.Contain("header claims 20000×20000 pixels"));
    }

    /// <summary>PNG's CRC-32 (ISO 3309, reflected polynomial 0xEDB88320).</summary>
    private static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in bytes)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }
}
