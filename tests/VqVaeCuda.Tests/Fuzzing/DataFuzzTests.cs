using SkiaSharp;
using VqVaeCuda.Data;
using VqVaeCuda.Tests.Data;

namespace VqVaeCuda.Tests.Fuzzing;

/// <summary>Common set-up of the fuzz fixtures: a temporary folder, and the number of cases each reader gets.</summary>
public abstract class FuzzFixture
{
    /// <summary>At least a thousand mutations per reader, as the issue asks; each is a file of a few KB.</summary>
    protected const int Cases = 1000;

    protected string Dir { get; private set; } = "";

    [SetUp]
    public void CreateFolder() => Directory.CreateDirectory(Dir = Path.Combine(Path.GetTempPath(), "vqvae-fuzz-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void DeleteFolder() => Directory.Delete(Dir, true);

    protected static byte[] Pixels(int count, int seed)
    {
        var bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}

[TestFixture, Category("Cpu")]
public class IdxImagesFuzzTests : FuzzFixture
{
    [Test]
    public void Mutated_IDX_image_files_are_read_or_refused_with_the_project_exception()
    {
        var valid = DataTestFiles.IdxImages(Pixels(4 * 8 * 8, 1), 4, 8, 8);
        FuzzField[] fields = [new("magic", 0, 4, true), new("count", 4, 4, true), new("rows", 8, 4, true), new("columns", 12, 4, true)];
        byte[][] donors = [DataTestFiles.IdxLabels([1, 2, 3, 4]), DataTestFiles.IdxImages(Pixels(3 * 5 * 6, 2), 3, 5, 6), DataTestFiles.Gzip(valid)];
        var path = Path.Combine(Dir, "train-images-idx3-ubyte");
        bool Read()
        {
            var (pixels, count, rows, columns) = IdxReader.ReadImages(path);
            Assert.That(pixels, Has.Length.EqualTo(count * rows * columns));
            Assert.That(pixels, Is.All.InRange(0f, 1f));
            return true;
        }
        new FileFuzzer(valid, fields, donors).Run("IDX images", Cases, 10_000, b => File.WriteAllBytes(path, b), Read);
        // The same mutations of the gzip-compressed file: damaged deflate streams and gzip trailers.
        new FileFuzzer(DataTestFiles.Gzip(valid), [], donors).Run("IDX images (gzip)", Cases / 4, 20_000, b => File.WriteAllBytes(path, b), Read);
    }
}

[TestFixture, Category("Cpu")]
public class IdxLabelsFuzzTests : FuzzFixture
{
    [Test]
    public void Mutated_IDX_label_files_are_read_or_refused_with_the_project_exception()
    {
        var valid = DataTestFiles.IdxLabels(Pixels(16, 3).Select(b => (byte)(b % 10)).ToArray());
        FuzzField[] fields = [new("magic", 0, 4, true), new("count", 4, 4, true)];
        byte[][] donors = [DataTestFiles.IdxImages(Pixels(2 * 3 * 3, 4), 2, 3, 3), DataTestFiles.Gzip(valid)];
        var path = Path.Combine(Dir, "train-labels-idx1-ubyte");
        new FileFuzzer(valid, fields, donors).Run("IDX labels", Cases, 30_000, b => File.WriteAllBytes(path, b), () =>
        {
            var labels = IdxReader.ReadLabels(path);
            Assert.That(labels, Is.All.InRange(0, 255));
            return true;
        });
    }
}

[TestFixture, Category("Cpu")]
public class Cifar10FuzzTests : FuzzFixture
{
    [Test]
    public void Mutated_CIFAR10_batches_are_read_or_refused_with_the_project_exception()
    {
        byte[] Records(int count, int seed)
        {
            var bytes = Pixels(count * Cifar10Reader.RecordBytes, seed);
            for (int r = 0; r < count; r++) bytes[r * Cifar10Reader.RecordBytes] = (byte)(r % 10);
            return bytes;
        }
        var valid = Records(2, 5);
        byte[][] donors = [Records(3, 6), DataTestFiles.IdxImages(Pixels(4 * 8 * 8, 7), 4, 8, 8)];
        var path = Path.Combine(Dir, "data_batch_1.bin");
        new FileFuzzer(valid, [], donors).Run("CIFAR-10 batch", Cases, 40_000, b => File.WriteAllBytes(path, b), () =>
        {
            var set = Cifar10Reader.ReadBatches([path], "fuzz");
            Assert.That(set.Labels, Is.All.InRange(0, 9));
            return true;
        });
    }
}

[TestFixture, Category("Cpu")]
public class ImageFolderFuzzTests : FuzzFixture
{
    [Test]
    public void Mutated_PNG_files_in_an_image_folder_are_read_or_refused_with_the_project_exception()
    {
        var valid = DataTestFiles.Encode(8, 8, (x, y) => new SKColor((byte)(x * 30), (byte)(y * 30), (byte)(x ^ y)));
        // PNG: 8-byte signature, then the IHDR chunk: length (4), "IHDR", width (4), height (4), bit depth, colour type, ...
        FuzzField[] fields = [new("IHDR length", 8, 4, true), new("width", 16, 4, true), new("height", 20, 4, true)];
        byte[][] donors = [DataTestFiles.Encode(12, 5, (x, y) => new SKColor((byte)x, (byte)y, 0)),
                           DataTestFiles.Encode(8, 8, (x, y) => new SKColor((byte)x, (byte)y, 9), SKEncodedImageFormat.Jpeg)];
        var folder = Path.Combine(Dir, "images");
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, "a.png");
        new FileFuzzer(valid, fields, donors).Run("image folder (PNG)", Cases, 50_000, b => File.WriteAllBytes(path, b), () =>
        {
            var set = ImageFolderReader.Read(folder, 8, 3);
            Assert.That(set.Count, Is.EqualTo(1));
            return true;
        });
    }
}
