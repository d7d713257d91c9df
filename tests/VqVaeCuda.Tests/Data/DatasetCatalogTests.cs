using SkiaSharp;
using VqVaeCuda.Data;

namespace VqVaeCuda.Tests.Data;

[TestFixture, Category("Cpu")]
public class DatasetCatalogTests
{
    [Test]
    public void Shapes_needs_nothing_and_draws_disjoint_train_and_test_sets()
    {
        var (train, test) = DatasetCatalog.Open("shapes", null, 0, 0, seed: 4);  // the defaults: 28×28, grey
        Assert.That((train.Count, test.Count), Is.EqualTo((DatasetCatalog.ShapesTrainCount, DatasetCatalog.ShapesTestCount)));
        Assert.That((train.Channels, train.Height, train.Width), Is.EqualTo((1, 28, 28)));
        Assert.That(train.Labels, Is.Not.Null);
        Assert.That(test.Image(0).SequenceEqual(train.Image(0)), Is.False);
        // The test images are the next indices of the same generator.
        var next = SyntheticShapes.Generate(1, seed: 4, firstIndex: DatasetCatalog.ShapesTrainCount);
        Assert.That(test.Image(0).SequenceEqual(next.Image(0)));

        var (small, _) = DatasetCatalog.Open("SHAPES", null, 8, 3, seed: 4);  // small, so it is cheap
        Assert.That((small.Channels, small.Height, small.Width), Is.EqualTo((3, 8, 8)));
    }

    [Test]
    public void Shapes_is_the_plain_style_and_shapes_varied_the_varied_one()
    {
        var (plain, plainTest) = DatasetCatalog.Open("shapes", null, 0, 0, seed: 4);
        var (varied, variedTest) = DatasetCatalog.Open("shapes-varied", null, 0, 0, seed: 4);
        Assert.That((plain.Name, plainTest.Name, varied.Name, variedTest.Name),
                    Is.EqualTo(("shapes/train", "shapes/test", "shapes-varied/train", "shapes-varied/test")));
        Assert.That(plain.Labels, Is.EqualTo(varied.Labels), "the same shapes");
        Assert.That(plain.Image(3).SequenceEqual(SyntheticShapes.Generate(4, seed: 4).Image(3)));
        Assert.That(varied.Image(3).SequenceEqual(SyntheticShapes.Generate(4, seed: 4, style: ShapeStyle.Varied).Image(3)));
        Assert.That(plain.Image(3).SequenceEqual(varied.Image(3)), Is.False);
        Assert.That(DatasetCatalog.Specs, Does.Contain("shapes-varied"));
    }

    [Test]
    public void Specs_are_case_insensitive_and_have_aliases()
    {
        using var dir = new TempFolder();
        DataTestFiles.WriteIdxDirectory(dir.Path, 2, 1, side: 4);
        foreach (var spec in new[] { " MNIST ", "Fashion-MNIST", "fashion_mnist" })
            Assert.That(DatasetCatalog.Open(spec, dir.Path, 0, 0, 0).Train.Count, Is.EqualTo(2), spec);
    }

    [TestCase("imagenet")]
    [TestCase("")]
    [TestCase("mnist:extra")]
    public void An_unknown_spec_lists_the_accepted_ones(string spec)
    {
        var e = Assert.Throws<ArgumentException>(() => DatasetCatalog.Open(spec, null, 28, 1, 0));
        foreach (var accepted in DatasetCatalog.Specs) Assert.That(e!.Message, Does.Contain(accepted));
    }

    [TestCase("mnist")]
    [TestCase("cifar10")]
    public void Formats_without_a_standard_place_need_a_data_path(string spec)
    {
        var e = Assert.Throws<ArgumentException>(() => DatasetCatalog.Open(spec, null, 0, 0, 0));
        Assert.That(e!.Message, Does.Contain("--data"));
    }

    [Test]
    public void A_missing_fashion_mnist_names_the_debian_package()
    {
        using var dir = new TempFolder();
        var e = Assert.Throws<DataFormatException>(() => DatasetCatalog.Open("fashion-mnist", null, 0, 0, 0, dir.File("absent")));
        Assert.That(e!.Message, Does.Contain("apt-get install dataset-fashion-mnist").And.Contain("absent"));
    }

    [Test]
    public void Mnist_reads_a_data_path_and_is_resized_and_converted_on_request()
    {
        using var dir = new TempFolder();
        DataTestFiles.WriteIdxDirectory(dir.Path, 6, 2);
        var (train, test) = DatasetCatalog.Open("mnist", dir.Path, 0, 0, 0);
        Assert.That((train.Count, test.Count, train.Height, train.Channels), Is.EqualTo((6, 2, 28, 1)));
        Assert.That(train.ClassNames, Is.EqualTo(Enumerable.Range(0, 10).Select(d => d.ToString())));

        var (big, _) = DatasetCatalog.Open("mnist", dir.Path, 32, 3, 0);
        Assert.That((big.Count, big.Channels, big.Height, big.Width), Is.EqualTo((6, 3, 32, 32)));
        Assert.That(big.Labels, Is.EqualTo(train.Labels));
        var img = big.Image(0);
        Assert.That(img[..1024].SequenceEqual(img[1024..2048]), "grey replicated into R, G and B");
    }

    [Test]
    public void Fashion_mnist_from_a_data_path_carries_its_class_names()
    {
        using var dir = new TempFolder();
        DataTestFiles.WriteIdxDirectory(dir.Path, 3, 3, gzip: false);
        var (train, _) = DatasetCatalog.Open("fashion-mnist", dir.Path, 0, 0, 0);
        Assert.That(train.ClassNames![9], Is.EqualTo("Ankle boot"));
        Assert.That(train.Name, Is.EqualTo("fashion-mnist/train"));
    }

    [Test]
    public void A_folder_gets_a_seeded_ten_percent_test_split()
    {
        using var dir = new TempFolder();
        for (int i = 0; i < 20; i++)
            DataTestFiles.WritePng(dir.File($"img{i:D2}.png"), 6, 6, (_, _) => new SKColor((byte)(i * 10), 0, 0));

        var (train, test) = DatasetCatalog.Open($"folder:{dir.Path}", null, 6, 3, seed: 7);
        Assert.That((train.Count, test.Count), Is.EqualTo((18, 2)));
        var again = DatasetCatalog.Open($"folder:{dir.Path}", null, 6, 3, seed: 7);
        Assert.That(again.Test.Pixels, Is.EqualTo(test.Pixels), "same seed, same split");
        var redsTrain = Enumerable.Range(0, 18).Select(i => train.Image(i)[0]);
        var redsTest = Enumerable.Range(0, 2).Select(i => test.Image(i)[0]);
        Assert.That(redsTrain.Concat(redsTest).Distinct().Count(), Is.EqualTo(20), "train and test are disjoint and complete");

        var (viaData, _) = DatasetCatalog.Open("folder", dir.Path, 6, 1, seed: 7);
        Assert.That(viaData.Channels, Is.EqualTo(1));
        Assert.Throws<ArgumentException>(() => DatasetCatalog.Open($"folder:{dir.Path}", null, 0, 3, 0));
    }
}
