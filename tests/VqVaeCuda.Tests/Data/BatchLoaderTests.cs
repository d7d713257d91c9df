using VqVaeCuda.Data;

namespace VqVaeCuda.Tests.Data;

[TestFixture, Category("Cpu")]
public class BatchLoaderTests
{
    private static ImageDataset Data(int count) => SyntheticShapes.Generate(count, seed: 21, size: 8);

    private static List<Batch> Epochs(ImageDataset data, BatchLoaderOptions options, int epochs)
    {
        using var loader = new BatchLoader(data, options);
        var batches = new List<Batch>();
        for (int e = 0; e < epochs; e++) batches.AddRange(loader.NextEpoch());
        return batches;
    }

    [Test]
    public void The_same_seed_gives_the_same_batches()
    {
        var data = Data(100);
        var options = new BatchLoaderOptions { BatchSize = 16, Seed = 5 };
        var a = Epochs(data, options, 3);
        var b = Epochs(data, options, 3);
        Assert.That(a, Has.Count.EqualTo(3 * 6));
        for (int i = 0; i < a.Count; i++)
        {
            Assert.That(b[i].Indices, Is.EqualTo(a[i].Indices));
            Assert.That(b[i].Pixels, Is.EqualTo(a[i].Pixels));
            Assert.That(b[i].Labels, Is.EqualTo(a[i].Labels));
        }
        var other = Epochs(data, options with { Seed = 6 }, 1);
        Assert.That(other[0].Indices, Is.Not.EqualTo(a[0].Indices));
    }

    [Test]
    public void Each_epoch_is_reshuffled_with_seed_plus_epoch()
    {
        var data = Data(64);
        using var loader = new BatchLoader(data, new BatchLoaderOptions { BatchSize = 64, Seed = 100 });
        Assert.That(loader.TryNext(out var first));
        Assert.That(loader.TryNext(out _), Is.False, "one batch per epoch");
        Assert.That(loader.Epoch, Is.EqualTo(1));
        Assert.That(loader.TryNext(out var second));
        Assert.That((first.Epoch, second.Epoch), Is.EqualTo((0, 1)));
        Assert.That(second.Indices, Is.Not.EqualTo(first.Indices));
        Assert.That(first.Indices, Is.EqualTo(BatchLoader.EpochOrder(64, 100, 0, true)));
        Assert.That(second.Indices, Is.EqualTo(BatchLoader.EpochOrder(64, 101, 0, true)), "epoch 1 of seed 100 is epoch 0 of seed 101");
    }

    [TestCase(false, 10)]
    [TestCase(true, 9)]
    public void Every_index_appears_once_per_epoch(bool dropLast, int expectedBatches)
    {
        var data = Data(93);
        using var loader = new BatchLoader(data, new BatchLoaderOptions { BatchSize = 10, Seed = 1, DropLast = dropLast });
        Assert.That(loader.BatchesPerEpoch, Is.EqualTo(expectedBatches));
        for (int epoch = 0; epoch < 3; epoch++)
        {
            var batches = loader.NextEpoch().ToList();
            Assert.That(batches, Has.Count.EqualTo(expectedBatches));
            Assert.That(batches.Select(b => b.Number), Is.EqualTo(Enumerable.Range(0, expectedBatches)));
            var seen = batches.SelectMany(b => b.Indices).ToList();
            Assert.That(seen, Is.Unique);
            if (!dropLast)
            {
                Assert.That(seen.Order(), Is.EqualTo(Enumerable.Range(0, 93)));
                Assert.That(batches[^1].Size, Is.EqualTo(3));
                Assert.That(batches[^1].Pixels, Has.Length.EqualTo(3 * data.ImageSize));
            }
            else
            {
                Assert.That(seen, Has.Count.EqualTo(90));
                Assert.That(batches.Select(b => b.Size), Is.All.EqualTo(10));
            }
        }
    }

    [Test]
    public void Batches_copy_the_right_images_and_labels_and_normalise_them()
    {
        var data = Data(40);
        using var unit = new BatchLoader(data, new BatchLoaderOptions { BatchSize = 8, Seed = 2 });
        using var centred = new BatchLoader(data, new BatchLoaderOptions { BatchSize = 8, Seed = 2, Normalization = PixelNormalization.MinusOneToOne });
        Assert.That(unit.TryNext(out var a));
        Assert.That(centred.TryNext(out var b));
        Assert.That((a.Normalization, b.Normalization), Is.EqualTo((PixelNormalization.ZeroToOne, PixelNormalization.MinusOneToOne)));
        Assert.That((a.Channels, a.Height, a.Width, a.Size), Is.EqualTo((1, 8, 8, 8)));
        int size = data.ImageSize;
        for (int k = 0; k < a.Size; k++)
        {
            int i = a.Indices[k];
            Assert.That(a.Labels![k], Is.EqualTo(data.Labels![i]));
            Assert.That(a.Pixels.AsSpan(k * size, size).SequenceEqual(data.Image(i)));
            for (int p = 0; p < size; p++)
            {
                Assert.That(b.Pixels[k * size + p], Is.EqualTo(2 * data.Image(i)[p] - 1).Within(1e-6f));
                Assert.That(b.Normalization.Invert(b.Pixels[k * size + p]), Is.EqualTo(data.Image(i)[p]).Within(1e-6f));
            }
        }
        Assert.That(b.Pixels.Min(), Is.LessThan(-0.5f));
    }

    [Test]
    public void Without_shuffling_the_order_is_the_data_sets()
    {
        var batches = Epochs(Data(20), new BatchLoaderOptions { BatchSize = 5, Shuffle = false }, 2);
        Assert.That(batches.SelectMany(b => b.Indices), Is.EqualTo(Enumerable.Range(0, 20).Concat(Enumerable.Range(0, 20))));
    }

    [Test]
    public void A_run_resumed_at_an_epoch_sees_the_same_batches()
    {
        var data = Data(50);
        var full = Epochs(data, new BatchLoaderOptions { BatchSize = 10, Seed = 8 }, 3);
        var resumed = Epochs(data, new BatchLoaderOptions { BatchSize = 10, Seed = 8, StartEpoch = 2 }, 1);
        Assert.That(resumed.Select(b => b.Indices), Is.EqualTo(full.Skip(10).Select(b => b.Indices)));
        Assert.That(resumed[0].Epoch, Is.EqualTo(2));
    }

    [Test]
    public void A_run_resumed_mid_epoch_sees_the_same_batches()
    {
        var data = Data(50);
        var full = Epochs(data, new BatchLoaderOptions { BatchSize = 10, Seed = 8 }, 3);
        // Epoch 1 from its batch 3: the rest of epoch 1, then all of epoch 2.
        var resumed = Epochs(data, new BatchLoaderOptions { BatchSize = 10, Seed = 8, StartEpoch = 1, StartBatch = 3 }, 2);
        Assert.That(resumed.Select(b => b.Indices), Is.EqualTo(full.Skip(5 + 3).Select(b => b.Indices)));
        Assert.That((resumed[0].Epoch, resumed[0].Number), Is.EqualTo((1, 3)));
    }

    [Test]
    public void A_start_batch_outside_the_epoch_is_refused()
    {
        Assert.That(() => new BatchLoader(Data(50), new BatchLoaderOptions { BatchSize = 10, StartBatch = 5 }),
                    Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("0..4"));
    }

    [Test]
    public void Recycled_buffers_are_refilled_correctly()
    {
        var data = Data(60);
        var options = new BatchLoaderOptions { BatchSize = 6, Seed = 3 };
        var expected = Epochs(data, options, 2).Select(b => (b.Indices.ToArray(), b.Pixels.ToArray())).ToList();
        using var loader = new BatchLoader(data, options);
        int n = 0;
        for (int e = 0; e < 2; e++)
        {
            foreach (var batch in loader.NextEpoch())
            {
                Assert.That(batch.Indices, Is.EqualTo(expected[n].Item1));
                Assert.That(batch.Pixels, Is.EqualTo(expected[n].Item2));
                n++;
                loader.Recycle(batch);
            }
        }
        Assert.That(n, Is.EqualTo(20));
    }

    [Test]
    public void Dispose_stops_the_worker_even_while_it_waits_on_a_full_queue()
    {
        var loader = new BatchLoader(Data(100), new BatchLoaderOptions { BatchSize = 4, Seed = 1 });
        Thread.Sleep(50);  // let the worker fill the queue and block
        var watch = System.Diagnostics.Stopwatch.StartNew();
        loader.Dispose();
        Assert.That(watch.ElapsedMilliseconds, Is.LessThan(2000));
        Assert.Throws<ObjectDisposedException>(() => loader.TryNext(out _));
        loader.Dispose();  // twice is harmless
    }

    [Test]
    public void A_set_smaller_than_one_batch_is_rejected()
    {
        Assert.Throws<ArgumentException>(() => new BatchLoader(Data(5), new BatchLoaderOptions { BatchSize = 8 }));
        using var kept = new BatchLoader(Data(5), new BatchLoaderOptions { BatchSize = 8, DropLast = false });
        Assert.That(kept.TryNext(out var only) && only.Size == 5);
    }
}
