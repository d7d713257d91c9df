using VqVaeCuda.Data;

namespace VqVaeCuda.Tests.Data;

[TestFixture, Category("Cpu")]
public class Cifar10ReaderTests
{
    // Record 0: red plane 10, green plane 20, blue plane = (y·32 + x) mod 251. Record 1: R = x, G = y, B = 200.
    private static readonly byte[] Record0 = DataTestFiles.CifarRecord(3, (c, y, x) => c switch { 0 => 10, 1 => 20, _ => (byte)((y * 32 + x) % 251) });
    private static readonly byte[] Record1 = DataTestFiles.CifarRecord(7, (c, y, x) => c switch { 0 => (byte)x, 1 => (byte)y, _ => 200 });

    [Test]
    public void Two_records_read_with_labels_and_R_G_B_plane_order()
    {
        using var dir = new TempFolder();
        File.WriteAllBytes(dir.File("tiny.bin"), [.. Record0, .. Record1]);

        var data = Cifar10Reader.ReadBatches([dir.File("tiny.bin")], "tiny");

        Assert.That((data.Count, data.Channels, data.Height, data.Width), Is.EqualTo((2, 3, 32, 32)));
        Assert.That(data.Labels, Is.EqualTo(new[] { 3, 7 }));
        Assert.That(data.ClassNames![3], Is.EqualTo("cat"));
        var first = data.Image(0);
        Assert.That(first[..1024].ToArray(), Is.All.EqualTo(10 / 255f), "channel 0 is red");
        Assert.That(first[1024..2048].ToArray(), Is.All.EqualTo(20 / 255f), "channel 1 is green");
        Assert.That(first[2048 + 5 * 32 + 17], Is.EqualTo((5 * 32 + 17) % 251 / 255f), "channel 2 is blue, row-major");
        var second = data.Image(1);
        Assert.That(second[9 * 32 + 4], Is.EqualTo(4 / 255f), "red = x at (y 9, x 4)");
        Assert.That(second[1024 + 9 * 32 + 4], Is.EqualTo(9 / 255f), "green = y at (y 9, x 4)");
        Assert.That(second[2048 + 31 * 32 + 31], Is.EqualTo(200 / 255f));
    }

    [Test]
    public void A_directory_uses_the_five_training_batches_and_the_test_batch_with_meta_class_names()
    {
        using var root = new TempFolder();
        var dir = root.Folder("cifar-10-batches-bin");
        for (int i = 1; i <= 5; i++) File.WriteAllBytes(Path.Combine(dir, $"data_batch_{i}.bin"), i % 2 == 0 ? [.. Record0, .. Record1] : Record1);
        File.WriteAllBytes(Path.Combine(dir, "test_batch.bin"), Record0);
        File.WriteAllLines(Path.Combine(dir, "batches.meta.txt"), ["a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", ""]);

        // The archive's folder is found from its parent too.
        var (train, test) = Cifar10Reader.LoadDirectory(root.Path);

        Assert.That((train.Count, test.Count), Is.EqualTo((7, 1)));
        Assert.That(train.Labels, Is.EqualTo(new[] { 7, 3, 7, 7, 3, 7, 7 }));
        Assert.That(test.ClassNames![7], Is.EqualTo("a7"));
        Assert.That((train.Name, test.Name), Is.EqualTo(("cifar10/train", "cifar10/test")));
    }

    [Test]
    public void A_length_that_is_not_whole_records_is_named()
    {
        using var dir = new TempFolder();
        File.WriteAllBytes(dir.File("data_batch_1.bin"), [.. Record0, .. Record1[..100]]);
        var e = Assert.Throws<DataFormatException>(() => Cifar10Reader.ReadBatches([dir.File("data_batch_1.bin")], "x"));
        Assert.That(e!.Message, Does.Contain("data_batch_1.bin").And.Contain("3073"));
    }

    [Test]
    public void A_label_beyond_the_ten_classes_is_the_wrong_format()
    {
        using var dir = new TempFolder();
        File.WriteAllBytes(dir.File("cifar100.bin"), DataTestFiles.CifarRecord(42, (_, _, _) => 0));
        var e = Assert.Throws<DataFormatException>(() => Cifar10Reader.ReadBatches([dir.File("cifar100.bin")], "x"));
        Assert.That(e!.Message, Does.Contain("cifar100.bin").And.Contain("label 42"));
    }

    [Test]
    public void Missing_batches_are_listed()
    {
        using var dir = new TempFolder();
        File.WriteAllBytes(dir.File("data_batch_1.bin"), Record0);
        var e = Assert.Throws<DataFormatException>(() => Cifar10Reader.LoadDirectory(dir.Path));
        Assert.That(e!.Message, Does.Contain("data_batch_2.bin").And.Contain("test_batch.bin"));
    }
}
