using VqVaeCuda.Data;
using VqVaeCuda.Device;
using VqVaeCuda.Models;
using VqVaeCuda.Training;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Training;

/// <summary>
/// README, "Threading": two trainers, each on its own thread with its own device instance, give what they give one after
/// the other. Shared between them: the read-only data set and, on the cpu, the process-wide CPU library (its block pool,
/// its allocation checks) and OpenBLAS; on a GPU, the device's primary context (each device instance has its own stream).
/// </summary>
[NonParallelizable]
public class ThreadingTests(DeviceKind kind) : DeviceSpecification(kind)
{
    private sealed record Outcome(List<StepLosses> Losses, MetricsRecord Test, float[] Parameters);

    private Outcome TrainOne(ImageDataset train, ImageDataset test, int seed)
    {
        using IDevice device = Open();
        var options = new TrainingOptions { Steps = 6, BatchSize = 8, LearningRate = 1e-3, LogEvery = 3, EvaluateEvery = 0, DeadCodeSteps = 2, Seed = seed };
        using var trainer = new VqVaeTrainer(new VqVae(device, VqVaeConfig.Preset("tiny"), seed), train, test, options, runDirectory: null);
        var losses = Enumerable.Range(0, options.Steps).Select(_ => trainer.TrainStep()).ToList();
        return new Outcome(losses, trainer.Evaluate() with { ElapsedSeconds = 0, ImagesPerSecond = 0 }, trainer.Model.ParameterStore.FlatValues.ToArray());
    }

    [Test]
    public void Two_trainers_on_two_threads_with_their_own_devices_equal_the_two_run_one_after_the_other()
    {
        Open().Dispose();
        var train = SyntheticShapes.Generate(64, seed: 21);
        var test = SyntheticShapes.Generate(16, seed: 22, firstIndex: 64);

        var sequential = new[] { TrainOne(train, test, seed: 1), TrainOne(train, test, seed: 2) };

        var concurrent = new Outcome?[2];
        var errors = new Exception?[2];
        var threads = Enumerable.Range(0, 2).Select(i => new Thread(() =>
        {
            try
            {
                concurrent[i] = TrainOne(train, test, seed: i + 1);
            }
            catch (Exception e)
            {
                errors[i] = e;
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        Assert.That(errors, Has.All.Null);
        for (int i = 0; i < 2; i++)
        {
            Assert.That(concurrent[i]!.Losses, Is.EqualTo(sequential[i].Losses), $"trainer {i}: every step's losses, bit for bit");
            Assert.That(concurrent[i]!.Test, Is.EqualTo(sequential[i].Test), $"trainer {i}: evaluation");
            Assert.That(concurrent[i]!.Parameters, Is.EqualTo(sequential[i].Parameters), $"trainer {i}: parameters");
        }
        Assert.That(sequential[0].Losses, Is.Not.EqualTo(sequential[1].Losses), "two different runs, so a mix-up would show");
    }
}
