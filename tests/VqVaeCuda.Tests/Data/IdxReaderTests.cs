using VqVaeCuda.Data;

namespace VqVaeCuda.Tests.Data;

[TestFixture, Category("Cpu")]
public class IdxReaderTests
{
    [TestCase(true)]
    [TestCase(false)]
    public void Images_and_labels_round_trip_gzip_or_raw_whatever_the_file_is_called(bool gzip)
    {
        using var dir = new TempFolder();
        var (pixels, labels) = DataTestFiles.RandomIdx(5, 4, 3);
        // The names lie about the content on purpose: compression is detected from the magic bytes.
        var images = dir.File(gzip ? "images.raw" : "images.gz");
        var labelsFile = dir.File(gzip ? "labels.raw" : "labels.gz");
        DataTestFiles.Write(images, DataTestFiles.IdxImages(pixels, 5, 4, 3), gzip);
        DataTestFiles.Write(labelsFile, DataTestFiles.IdxLabels(labels), gzip);

        var data = IdxReader.ReadPair(images, labelsFile, "tiny");

        Assert.That((data.Count, data.Channels, data.Height, data.Width), Is.EqualTo((5, 1, 4, 3)));
        Assert.That(data.Name, Is.EqualTo("tiny"));
        Assert.That(data.Labels, Is.EqualTo(labels.Select(b => (int)b).ToArray()));
        Assert.That(data.Pixels, Is.EqualTo(pixels.Select(b => b / 255f).ToArray()));
        // Row-major: image 2, row 3, column 1.
        Assert.That(data.Image(2)[3 * 3 + 1], Is.EqualTo(pixels[2 * 12 + 3 * 3 + 1] / 255f));
    }

    [Test]
    public void Images_without_labels_are_an_unlabelled_set()
    {
        using var dir = new TempFolder();
        var (pixels, _) = DataTestFiles.RandomIdx(3, 2, 2);
        DataTestFiles.Write(dir.File("x"), DataTestFiles.IdxImages(pixels, 3, 2, 2), gzip: false);
        var data = IdxReader.ReadPair(dir.File("x"), null, "x");
        Assert.That(data.Labels, Is.Null);
        Assert.That(data.Count, Is.EqualTo(3));
    }

    [TestCase(true)]
    [TestCase(false)]
    public void A_directory_gives_its_own_train_and_t10k_split(bool gzip)
    {
        using var dir = new TempFolder();
        DataTestFiles.WriteIdxDirectory(dir.Path, trainCount: 7, testCount: 3, side: 5, gzip: gzip);
        var (train, test) = IdxReader.LoadDirectory(dir.Path, "mini");
        Assert.That((train.Count, test.Count), Is.EqualTo((7, 3)));
        Assert.That((train.Name, test.Name), Is.EqualTo(("mini/train", "mini/test")));
        Assert.That(train.Labels, Has.Length.EqualTo(7));
        Assert.That((test.Height, test.Width), Is.EqualTo((5, 5)));
    }

    [Test]
    public void A_missing_file_of_a_directory_is_named()
    {
        using var dir = new TempFolder();
        DataTestFiles.WriteIdxDirectory(dir.Path, 2, 2, side: 3);
        File.Delete(dir.File("t10k-labels-idx1-ubyte.gz"));
        var e = Assert.Throws<DataFormatException>(() => IdxReader.LoadDirectory(dir.Path));
        Assert.That(e!.Message, Does.Contain("t10k-labels-idx1-ubyte").And.Contain("not found"));
    }

    [Test]
    public void A_missing_file_is_named()
    {
        using var dir = new TempFolder();
        var e = Assert.Throws<DataFormatException>(() => IdxReader.ReadPair(dir.File("nope-images"), null, "x"));
        Assert.That(e!.Message, Does.Contain("nope-images").And.Contain("not found"));
    }

    [TestCase(true)]
    [TestCase(false)]
    public void A_truncated_image_file_is_named_with_what_the_header_promised(bool gzip)
    {
        using var dir = new TempFolder();
        var (pixels, _) = DataTestFiles.RandomIdx(4, 3, 3);
        var raw = DataTestFiles.IdxImages(pixels, 4, 3, 3);
        DataTestFiles.Write(dir.File("cut-images"), raw[..^5], gzip);
        var e = Assert.Throws<DataFormatException>(() => IdxReader.ReadPair(dir.File("cut-images"), null, "x"));
        Assert.That(e!.Message, Does.Contain("cut-images").And.Contain("truncated").And.Contain("4 images"));
        Assert.That(e.Path, Is.EqualTo(dir.File("cut-images")));
    }

    [Test]
    public void A_file_shorter_than_its_header_is_truncated()
    {
        using var dir = new TempFolder();
        File.WriteAllBytes(dir.File("stub"), [0, 0, 8, 3, 0, 0]);
        var e = Assert.Throws<DataFormatException>(() => IdxReader.ReadPair(dir.File("stub"), null, "x"));
        Assert.That(e!.Message, Does.Contain("stub").And.Contain("truncated"));
    }

    [Test]
    public void A_cut_gzip_stream_is_an_error_naming_the_file()
    {
        using var dir = new TempFolder();
        var (pixels, _) = DataTestFiles.RandomIdx(50, 8, 8);
        var gz = DataTestFiles.Gzip(DataTestFiles.IdxImages(pixels, 50, 8, 8));
        File.WriteAllBytes(dir.File("half.gz"), gz[..(gz.Length / 2)]);
        var e = Assert.Throws<DataFormatException>(() => IdxReader.ReadPair(dir.File("half.gz"), null, "x"));
        Assert.That(e!.Message, Does.Contain("half.gz"));
    }

    [Test]
    public void A_label_file_read_as_images_is_the_wrong_magic()
    {
        using var dir = new TempFolder();
        DataTestFiles.Write(dir.File("labels-not-images"), DataTestFiles.IdxLabels([1, 2, 3]), gzip: true);
        var e = Assert.Throws<DataFormatException>(() => IdxReader.ReadPair(dir.File("labels-not-images"), null, "x"));
        Assert.That(e!.Message, Does.Contain("labels-not-images").And.Contain("magic").And.Contain("0x00000801"));
    }

    [Test]
    public void Arbitrary_bytes_are_the_wrong_magic()
    {
        using var dir = new TempFolder();
        File.WriteAllText(dir.File("readme.txt"), "this is not an IDX file at all");
        var e = Assert.Throws<DataFormatException>(() => IdxReader.ReadLabels(dir.File("readme.txt")));
        Assert.That(e!.Message, Does.Contain("readme.txt").And.Contain("magic"));
    }

    [Test]
    public void Image_and_label_counts_must_agree()
    {
        using var dir = new TempFolder();
        var (pixels, labels) = DataTestFiles.RandomIdx(4, 2, 2);
        DataTestFiles.Write(dir.File("imgs"), DataTestFiles.IdxImages(pixels, 4, 2, 2), gzip: false);
        DataTestFiles.Write(dir.File("lbls"), DataTestFiles.IdxLabels(labels[..3]), gzip: false);
        var e = Assert.Throws<DataFormatException>(() => IdxReader.ReadPair(dir.File("imgs"), dir.File("lbls"), "x"));
        Assert.That(e!.Message, Does.Contain("lbls").And.Contain("3 labels").And.Contain("4 images"));
    }

    [Test]
    public void Trailing_bytes_mean_the_header_is_wrong()
    {
        using var dir = new TempFolder();
        DataTestFiles.Write(dir.File("long-labels"), [.. DataTestFiles.IdxLabels([1, 2]), 9, 9], gzip: false);
        var e = Assert.Throws<DataFormatException>(() => IdxReader.ReadLabels(dir.File("long-labels")));
        Assert.That(e!.Message, Does.Contain("long-labels").And.Contain("after"));
    }
}
