using VqVaeCuda.Data;

namespace VqVaeCuda.Tests.Data;

[TestFixture, Category("Cpu")]
public class ImageDatasetTests
{
    private static ImageDataset Numbered(int count)
    {
        // Image i is filled with the value i / 100, so an image identifies itself.
        var pixels = new float[count * 2 * 3 * 3];
        for (int i = 0; i < count; i++) pixels.AsSpan(i * 18, 18).Fill(i / 100f);
        return new ImageDataset("numbered", pixels, count, 2, 3, 3, Enumerable.Range(0, count).Select(i => i % 4).ToArray(),
                                ["a", "b", "c", "d"]);
    }

    [Test]
    public void Image_views_one_image_and_subset_copies_in_the_given_order()
    {
        var data = Numbered(10);
        Assert.That(data.Image(7).ToArray(), Is.All.EqualTo(0.07f));
        Assert.That(data.Image(7).Length, Is.EqualTo(18));
        var subset = data.Subset([9, 2, 2]);
        Assert.That(subset.Count, Is.EqualTo(3));
        Assert.That(subset.Image(0)[0], Is.EqualTo(0.09f));
        Assert.That(subset.Image(2)[17], Is.EqualTo(0.02f));
        Assert.That(subset.Labels, Is.EqualTo(new[] { 1, 2, 2 }));
        Assert.That(subset.ClassNames, Is.SameAs(data.ClassNames));
        Assert.Throws<ArgumentOutOfRangeException>(() => data.Image(10));
    }

    [Test]
    public void A_split_by_count_is_seeded_disjoint_and_complete()
    {
        var data = Numbered(50);
        var (train, test) = data.SplitByCount(8, seed: 3);
        Assert.That((train.Count, test.Count), Is.EqualTo((42, 8)));
        float[] Ids(ImageDataset d) => Enumerable.Range(0, d.Count).Select(i => d.Image(i)[0]).ToArray();
        Assert.That(Ids(train).Concat(Ids(test)).Order(), Is.EqualTo(Ids(data)));
        Assert.That(Ids(train), Is.Ordered, "source order is kept");
        Assert.That(Ids(data.SplitByCount(8, seed: 3).Test), Is.EqualTo(Ids(test)));
        Assert.That(Ids(data.SplitByCount(8, seed: 4).Test), Is.Not.EqualTo(Ids(test)));
    }

    [Test]
    public void Sizes_that_do_not_match_the_arrays_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => new ImageDataset("x", new float[10], 1, 1, 3, 3));
        Assert.Throws<ArgumentException>(() => new ImageDataset("x", new float[9], 1, 1, 3, 3, [0, 1]));
        Assert.Throws<ArgumentException>(() => new ImageDataset("x", new float[9], 1, 1, 3, 3, [5], ["only"]));
    }
}
