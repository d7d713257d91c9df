using VqVaeCuda.Device;
using VqVaeCuda.Data;
using VqVaeCuda.Models;
using VqVaeCuda.Modules;
using VqVaeCuda.Training;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Training;

public class CodebookHealthTests(DeviceKind kind) : DeviceSpecification(kind)
{
    [Test]
    public void KMeans_initialisation_puts_every_code_among_the_encoder_outputs()
    {
        using var device = Open();
        var train = SyntheticShapes.Generate(64, seed: 3);
        var test = SyntheticShapes.Generate(16, seed: 4, firstIndex: 64);
        var config = VqVaeConfig.Preset("tiny");
        var options = new TrainingOptions { Steps = 1, BatchSize = 16, KMeansInit = true, KMeansBatches = 4, EvaluateEvery = 0, DeadCodeSteps = 0 };
        using var trainer = new VqVaeTrainer(new VqVae(device, config, seed: 1), train, test, options, null);
        var before = trainer.Model.Quantizer.Codebook.Value.ToArray();
        trainer.Train();
        var after = trainer.Model.Quantizer.Codebook.Value.ToArray();
        // The default start is uniform in ±1/K; after k-means the codes spread to the encoder's scale
        // and, on an evaluation of the test split, many of them are in use.
        Assert.That(after.Max(Math.Abs), Is.GreaterThan(before.Max(Math.Abs)));
        Assert.That(trainer.History.Last(r => r.Split == "test").CodesUsed, Is.GreaterThan(4));
    }

    [Test]
    public void Dead_codes_are_restarted_onto_encoder_outputs()
    {
        using var device = Open();
        var train = SyntheticShapes.Generate(64, seed: 3);
        var test = SyntheticShapes.Generate(16, seed: 4, firstIndex: 64);
        var config = VqVaeConfig.Preset("tiny");
        int UsedAfter(int deadCodeSteps)
        {
            var options = new TrainingOptions { Steps = 6, BatchSize = 16, EvaluateEvery = 0, DeadCodeSteps = deadCodeSteps };
            using var trainer = new VqVaeTrainer(new VqVae(device, config, seed: 1), train, test, options, null);
            trainer.Train();
            return trainer.History.Last(r => r.Split == "test").CodesUsed;
        }
        // The tiny codebook starts in a ball far smaller than the encoder outputs: without restarts
        // nearly every position picks the same few codes.
        int without = UsedAfter(0), with = UsedAfter(2);
        Assert.That(with, Is.GreaterThan(2 * without), $"codes used: {without} without restarts, {with} with");
    }

    /// <summary>K-means on host points: no device.</summary>
    [TestFixture, Category("Cpu")]
    public class OnTheHost
    {
        [Test]
        public void KMeans_finds_well_separated_clusters()
        {
            var random = new Random(5);
            float[][] centres = [[5, 5], [-5, 0], [0, -6]];
            var points = Enumerable.Range(0, 300)
                .Select(i => centres[i % 3].Select(c => c + (float)(random.NextDouble() - 0.5)).ToArray()).ToList();
            var found = KMeans.Cluster(points, 3, 2, new Random(1));
            foreach (var c in centres)
                Assert.That(found.Min(f => Math.Sqrt((f[0] - c[0]) * (f[0] - c[0]) + (f[1] - c[1]) * (f[1] - c[1]))), Is.LessThan(0.2),
                            $"a centre near ({c[0]}, {c[1]})");
        }
    }
}
