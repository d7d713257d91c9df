using VqVaeCuda.Device;
using VqVaeCuda.Checkpoints;
using VqVaeCuda.Data;
using VqVaeCuda.Models;
using VqVaeCuda.Training;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Training;

public class TrainerTests(DeviceKind kind) : DeviceSpecification(kind)
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => Directory.CreateDirectory(_dir = Path.Combine(Path.GetTempPath(), "vqvae-train-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    private static readonly VqVaeConfig Tiny = VqVaeConfig.Preset("tiny");

    private static (ImageDataset Train, ImageDataset Test) Shapes(int train, int test) =>
        (SyntheticShapes.Generate(train, seed: 11), SyntheticShapes.Generate(test, seed: 12, firstIndex: train));

    [Test]
    public void The_trainer_overfits_one_small_batch()
    {
        using var device = Open();
        var (train, test) = Shapes(16, 16);
        var options = new TrainingOptions { Steps = 250, BatchSize = 16, LearningRate = 2e-3, LogEvery = 50, EvaluateEvery = 0, DeadCodeSteps = 20 };
        using var trainer = new VqVaeTrainer(new VqVae(device, Tiny, seed: 2), train, test, options, runDirectory: null);
        double first = trainer.TrainStep().ReconstructionMse;
        var last = trainer.TrainStep();
        while (trainer.Step < options.Steps) last = trainer.TrainStep();
        Assert.That(last.ReconstructionMse, Is.LessThan(first / 10), $"MSE from {first:G4} to {last.ReconstructionMse:G4}");
    }

    [Test]
    public void Resuming_from_a_checkpoint_equals_an_uninterrupted_run()
    {
        using var device = Open();
        var (train, test) = Shapes(96, 16);
        // Dead-code restarts every 2 steps, so their seeded choices and per-code state are part of what must resume.
        var options = new TrainingOptions { Steps = 8, BatchSize = 16, LearningRate = 1e-3, LogEvery = 4, EvaluateEvery = 0, DeadCodeSteps = 2, Seed = 9 };

        using var whole = new VqVaeTrainer(new VqVae(device, Tiny, seed: 9), train, test, options, runDirectory: null);
        var uninterrupted = Enumerable.Range(0, 8).Select(_ => whole.TrainStep()).ToList();

        var checkpoint = Path.Combine(_dir, "half.safetensors");
        var resumedLosses = new List<StepLosses>();
        using (var first = new VqVaeTrainer(new VqVae(device, Tiny, seed: 9), train, test, options, runDirectory: null))
        {
            for (int i = 0; i < 5; i++) resumedLosses.Add(first.TrainStep());
            first.SaveCheckpoint(checkpoint);
        }
        using var resumed = VqVaeTrainer.Resume(device, checkpoint, train, test, null, runDirectory: null);
        Assert.That(resumed.Step, Is.EqualTo(5));
        for (int i = 0; i < 3; i++) resumedLosses.Add(resumed.TrainStep());

        Assert.That(resumedLosses, Is.EqualTo(uninterrupted), "every step's losses, bit for bit");
        Assert.That(resumed.Model.ParameterStore.FlatValues.ToArray(), Is.EqualTo(whole.Model.ParameterStore.FlatValues.ToArray()), "final parameters");
    }

    [Test]
    public void A_checkpoint_round_trip_is_bit_exact()
    {
        using var device = Open();
        var (train, test) = Shapes(32, 16);
        var options = new TrainingOptions { Steps = 3, BatchSize = 16, EvaluateEvery = 0 };
        using var trainer = new VqVaeTrainer(new VqVae(device, Tiny, seed: 4), train, test, options, runDirectory: null);
        for (int i = 0; i < 3; i++) trainer.TrainStep();
        var path = Path.Combine(_dir, "model.safetensors");
        trainer.SaveCheckpoint(path);

        var loaded = VqVaeCheckpoint.Load(path, device);
        using var model = loaded.Model;
        using var optimizerState = loaded.OptimizerState!;
        Assert.That(model.Config, Is.EqualTo(trainer.Model.Config));
        var saved = trainer.Model.StateDict();
        var restored = model.StateDict();
        Assert.That(restored.Keys, Is.EqualTo(saved.Keys), "the same entries, in module order");
        Assert.That(saved.Keys, Does.Contain("quantizer.ema.cluster_sizes").And.Contain("quantizer.ema.embedding_sums"));
        foreach (var (name, t) in saved)
            Assert.That(restored[name].ToArray(), Is.EqualTo(t.ToArray()), name);
        Assert.That(loaded.State!.Step, Is.EqualTo(3));
        var moments = trainer.Optimizer.StateDict();
        Assert.That(optimizerState.Keys, Is.EqualTo(moments.Keys));
        foreach (var (name, t) in moments)
            Assert.That(optimizerState[name].ToArray(), Is.EqualTo(t.ToArray()), name);
        Assert.That(model.Quantizer.CodeLastUsed, Is.EqualTo(trainer.Model.Quantizer.CodeLastUsed));
    }

    [Test]
    public void A_checkpoint_whose_shapes_do_not_match_its_config_names_the_tensor()
    {
        using var device = Open();
        var path = Path.Combine(_dir, "model.safetensors");
        using (var model = new VqVae(device, Tiny)) VqVaeCheckpoint.Save(path, model);
        // Rewrite the metadata to claim a bigger codebook than the tensors hold.
        var (tensors, metadata) = Safetensors.Read(path);
        var edited = new Dictionary<string, string>(metadata) { ["config"] = (Tiny with { CodebookSize = 128 }).ToJson() };
        Safetensors.Write(path, tensors.Values.ToList(), edited);
        Assert.That(() => VqVaeCheckpoint.Load(path, device),
                    Throws.TypeOf<CheckpointFormatException>().With.Message.Contains("quantizer.codebook").And.Message.Contains("[128,16]"));
    }

    [Test]
    public void Images_of_the_wrong_size_are_refused_before_training()
    {
        using var device = Open();
        var wrong = SyntheticShapes.Generate(32, seed: 1, size: 32);
        Assert.That(() => new VqVaeTrainer(new VqVae(device, Tiny), wrong, wrong, new TrainingOptions(), null),
                    Throws.ArgumentException.With.Message.Contains("1x32x32").And.Message.Contains("1x28x28"));
    }

    [Test]
    public void A_run_folder_gets_metrics_checkpoints_and_pictures()
    {
        using var device = Open();
        var (train, test) = Shapes(64, 16);
        var run = Path.Combine(_dir, "run");
        var options = new TrainingOptions { Steps = 6, BatchSize = 16, LogEvery = 2, EvaluateEvery = 3, CheckpointEvery = 3 };
        using (var trainer = new VqVaeTrainer(new VqVae(device, Tiny), train, test, options, run)) trainer.Train();
        var records = MetricsLog.ReadAll(Path.Combine(run, "metrics.jsonl"));
        Assert.That(records.Count(r => r.Split == "train"), Is.EqualTo(3));
        Assert.That(records.Where(r => r.Split == "test").Select(r => r.Step), Is.EqualTo(new[] { 3, 6 }));
        Assert.That(records.All(r => r.Psnr > 0 && r.CodesUsed >= 1 && r.Perplexity >= 1));
        // Every line has its throughput: the training window's, and on an evaluation line the evaluation's.
        Assert.That(records.Select(r => r.ImagesPerSecond), Is.All.Positive.And.All.Not.EqualTo(double.PositiveInfinity));
        foreach (var file in new[] { "config.json", "latest.safetensors", "checkpoints/step-000003.safetensors", "checkpoints/step-000006.safetensors",
                                     "reconstructions.png", "loss.png" })
            Assert.That(File.Exists(Path.Combine(run, file)), file);
    }
}
