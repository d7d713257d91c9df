using System.Diagnostics;
using VqVaeCuda.Data;

namespace VqVaeCuda.Tests.Data;

[TestFixture, Category("Cpu")]
public class RealFashionMnistTests
{
    [Test]
    public void The_installed_fashion_mnist_loads_with_its_own_split()
    {
        var dir = DatasetCatalog.DefaultFashionMnistPath;
        if (!Directory.Exists(dir))
            Assert.Ignore($"{dir} is absent: install Debian's dataset-fashion-mnist (tools/setup.sh does) to run this test");

        var watch = Stopwatch.StartNew();
        var (train, test) = DatasetCatalog.Open("fashion-mnist", null, 0, 0, seed: 0);
        watch.Stop();
        TestContext.Out.WriteLine($"Fashion-MNIST loaded in {watch.Elapsed.TotalMilliseconds:F0} ms: {train}; {test}");

        Assert.That((train.Count, test.Count), Is.EqualTo((60_000, 10_000)));
        Assert.That((train.Channels, train.Height, train.Width), Is.EqualTo((1, 28, 28)));
        Assert.That(train.ClassNames, Has.Length.EqualTo(10));
        // The published set is balanced: 6,000 and 1,000 images per class.
        Assert.That(train.Labels!.GroupBy(l => l).Select(g => g.Count()), Is.All.EqualTo(6000));
        Assert.That(test.Labels!.GroupBy(l => l).Select(g => g.Count()), Is.All.EqualTo(1000));
        Assert.That(train.Pixels.Min(), Is.EqualTo(0f));
        Assert.That(train.Pixels.Max(), Is.EqualTo(1f));
        double mean = train.Pixels.Average();
        Assert.That(mean, Is.EqualTo(0.286).Within(0.01), "Fashion-MNIST's well-known training mean");
    }
}
