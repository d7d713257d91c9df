using VqVaeCuda.Device;
using System.Text.Json;
using SkiaSharp;
using VqVaeCuda.Data;
using VqVaeCuda.Models;
using VqVaeCuda.Training;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Training;

/// <summary>The whole paper in one call: VQ-VAE, code maps, class-conditional prior, samples, one run folder.</summary>
public class PipelineTests(DeviceKind kind) : DeviceSpecification(kind)
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Path.Combine(Path.GetTempPath(), "vqvae-pipeline-" + Guid.NewGuid().ToString("N"));

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, true);
    }

    [Test]
    public void The_pipeline_writes_reconstructions_class_rows_of_samples_and_both_stages_checkpoints()
    {
        using var device = Open();
        var train = SyntheticShapes.Generate(128, seed: 41);
        var test = SyntheticShapes.Generate(32, seed: 42, firstIndex: 128);
        var options = new PipelineOptions
        {
            VqVae = VqVaeConfig.Preset("tiny"),
            VqVaeTraining = new TrainingOptions { Steps = 20, BatchSize = 16, LearningRate = 2e-3, LogEvery = 10, EvaluateEvery = 0, CheckpointEvery = 0, DeadCodeSteps = 3 },
            Prior = GatedPixelCnnConfig.Preset("tiny") with { Width = 8, Layers = 3, HeadHidden = 16 },
            PriorTraining = new PriorTrainingOptions { Steps = 10, BatchSize = 16, LogEvery = 5, EvaluateEvery = 0, CheckpointEvery = 0, SampleCount = 16 },
        };
        var stages = new List<string>();
        var result = Pipeline.Run(device, options, train, test, _dir, new Relay(p => stages.Add(p.Stage)));

        Assert.That(stages.Distinct(), Is.EqualTo(new[] { "vqvae", "codes", "prior", "samples" }), "progress walks the stages in order");
        foreach (var file in new[] { "reconstructions.png", "samples.png", "summary.json", "vqvae/latest.safetensors", "vqvae/metrics.jsonl",
                                     "prior/prior-latest.safetensors", "prior/codes.safetensors", "prior/metrics.jsonl", "prior/loss.png" })
            Assert.That(File.Exists(Path.Combine(_dir, file)), file);
        Assert.That(result.VqVaeCheckpoint, Does.Exist);
        Assert.That(result.PriorCheckpoint, Does.Exist);

        // 16 samples of a prior conditioned on the 8 shape classes: 8 rows (one class each) of 2 images.
        using var samples = SKBitmap.Decode(Path.Combine(_dir, "samples.png"));
        using var reconstructions = SKBitmap.Decode(Path.Combine(_dir, "reconstructions.png"));
        Assert.That(samples.Height / (double)reconstructions.Height, Is.EqualTo(4).Within(0.5), "8 rows against the 2 of originals over reconstructions");

        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "summary.json")));
        var root = summary.RootElement;
        Assert.That(root.GetProperty("prior_test_nll_nats").GetDouble(), Is.EqualTo(result.PriorTest.NllNats));
        Assert.That(root.GetProperty("prior_config").GetProperty("classes").GetInt32(), Is.EqualTo(8));
        Assert.That(root.GetProperty("unigram_entropy_nats").GetDouble(), Is.GreaterThan(0));
        Assert.That(result.PriorTest.NllBits, Is.EqualTo(result.PriorTest.NllNats / Math.Log(2)).Within(1e-9));
    }

    [Test]
    public void An_interrupted_pipeline_resumed_from_its_folder_equals_an_uninterrupted_one()
    {
        using var device = Open();
        var train = SyntheticShapes.Generate(64, seed: 41);
        var test = SyntheticShapes.Generate(16, seed: 42, firstIndex: 64);
        var options = new PipelineOptions
        {
            VqVae = VqVaeConfig.Preset("tiny"),
            VqVaeTraining = new TrainingOptions { Steps = 8, BatchSize = 16, LearningRate = 2e-3, LogEvery = 2, EvaluateEvery = 0, CheckpointEvery = 4 },
            Prior = GatedPixelCnnConfig.Preset("tiny") with { Width = 8, Layers = 2, HeadHidden = 16 },
            PriorTraining = new PriorTrainingOptions { Steps = 8, BatchSize = 16, LogEvery = 2, EvaluateEvery = 0, CheckpointEvery = 4, SampleCount = 0 },
        };
        var whole = Pipeline.Run(device, options, train, test, Path.Combine(_dir, "whole"));

        // Stopped in the prior stage after step 5 (its checkpoint at 4, then one written for the step under way).
        var run = Path.Combine(_dir, "interrupted");
        using var stop = new CancellationTokenSource();
        var e = Assert.Throws<PipelineInterruptedException>(() => Pipeline.Run(device, options, train, test, run,
            new Relay(p => { if (p.Stage == "prior" && p.Done >= 5) stop.Cancel(); }), stop.Token))!;
        Assert.That((e.Stage, e.Checkpoint), Is.EqualTo(("prior", Path.Combine(run, "prior", "checkpoints", "prior-step-000005.safetensors"))));

        var resumed = Pipeline.Run(device, options, train, test, run, resume: true);
        Assert.That((resumed.VqVaeTest with { ElapsedSeconds = 0, ImagesPerSecond = 0 }, resumed.PriorTest with { ElapsedSeconds = 0, ImagesPerSecond = 0 }),
                    Is.EqualTo((whole.VqVaeTest with { ElapsedSeconds = 0, ImagesPerSecond = 0 }, whole.PriorTest with { ElapsedSeconds = 0, ImagesPerSecond = 0 })), "the same figures, bit for bit");
        // The interruption logged the steps since the last line (step 5 alone): every step's loss is in the log once.
        Assert.That(PriorMetricsLog.ReadAll(Path.Combine(run, "prior", "metrics.jsonl")).Select(r => (r.Step, r.Split)),
                    Is.EqualTo(new[] { (2, "train"), (4, "train"), (5, "train"), (6, "train"), (8, "train"), (8, "test") }));
    }

    [Test]
    public void A_class_conditional_pipeline_refuses_data_without_labels_before_writing_anything()
    {
        using var device = Open();
        var train = SyntheticShapes.Generate(64, seed: 1);
        var test = SyntheticShapes.Generate(16, seed: 2, firstIndex: 64);
        var unlabelled = new ImageDataset("unlabelled", train.Pixels, train.Count, train.Channels, train.Height, train.Width);
        var e = Assert.Throws<ArgumentException>(() => Pipeline.Run(device, new PipelineOptions(), unlabelled, test, _dir))!;
        Assert.That(e.Message, Does.Contain("labels"));
        Assert.That(Directory.Exists(_dir), Is.False);
    }

    private sealed class Relay(Action<PipelineProgress> report) : IProgress<PipelineProgress>
    {
        public void Report(PipelineProgress value) => report(value);
    }
}
