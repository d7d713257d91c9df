using System.Text.Json;
using VqVaeCuda.Checkpoints;
using VqVaeCuda.Data;
using VqVaeCuda.Device;
using VqVaeCuda.Models;
using VqVaeCuda.Training;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Training;

/// <summary>
/// The rules that keep a run's work safe, in process: run folders, checkpoints kept and found, metrics lines (files on the
/// host: the cpu device), and non-finite steps (<see cref="NonFiniteSteps"/>, on each device).
/// </summary>
[TestFixture, Category("Cpu")]
public class RunSafetyTests
{
    private string _dir = "";
    private static readonly VqVaeConfig Tiny = VqVaeConfig.Preset("tiny");

    [SetUp]
    public void SetUp() => Directory.CreateDirectory(_dir = Path.Combine(Path.GetTempPath(), "vqvae-run-rules-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    private static (ImageDataset Train, ImageDataset Test) Shapes(int train, int test) =>
        (SyntheticShapes.Generate(train, seed: 11), SyntheticShapes.Generate(test, seed: 12, firstIndex: train));

    [Test]
    public void Runs_claiming_the_same_default_name_at_once_get_different_folders()
    {
        var name = Path.Combine(_dir, "runs", "shapes-tiny-20261201-120000");
        var claimed = new string[8];
        Parallel.For(0, claimed.Length, i => claimed[i] = RunFolder.ClaimUnique(name));
        Assert.That(claimed.Distinct().Count(), Is.EqualTo(claimed.Length), string.Join(", ", claimed));
        Assert.That(claimed, Does.Contain(name));
        Assert.Throws<RunFolderTakenException>(() => RunFolder.Claim(name), "a named folder that exists is refused");
    }

    [Test]
    public void A_new_trainer_refuses_a_folder_that_holds_a_run_and_leaves_it_untouched()
    {
        using var device = TestDevices.Cpu();
        var (train, test) = Shapes(32, 8);
        var options = new TrainingOptions { Steps = 2, BatchSize = 16, LogEvery = 1, EvaluateEvery = 0 };
        var run = Path.Combine(_dir, "run");
        using (var first = new VqVaeTrainer(new VqVae(device, Tiny, seed: 1), train, test, options, run)) first.Train();
        var metrics = File.ReadAllBytes(Path.Combine(run, "metrics.jsonl"));
        var latest = File.ReadAllBytes(Path.Combine(run, "latest.safetensors"));

        var model = new VqVae(device, Tiny, seed: 2);
        var e = Assert.Throws<RunFolderTakenException>(() => new VqVaeTrainer(model, train, test, options, run).Dispose())!;
        model.Dispose();
        Assert.That(e.Message, Does.Contain("already holds a run"));
        Assert.That(File.ReadAllBytes(Path.Combine(run, "metrics.jsonl")), Is.EqualTo(metrics));
        Assert.That(File.ReadAllBytes(Path.Combine(run, "latest.safetensors")), Is.EqualTo(latest));
    }

    [Test]
    public void The_train_command_refuses_an_existing_out_folder()
    {
        TestDevices.Cpu().Dispose();
        var run = Path.Combine(_dir, "run");
        Directory.CreateDirectory(run);
        File.WriteAllText(Path.Combine(run, "notes.txt"), "mine");
        var error = new StringWriter();
        var saved = Console.Error;
        Console.SetError(error);
        try
        {
            Assert.That(VqVaeCuda.Cli.Program.Main(["train", "--device", "cpu", "--steps", "1", "--batch", "8", "--out", run]), Is.EqualTo(1));
        }
        finally
        {
            Console.SetError(saved);
        }
        Assert.That(error.ToString().Replace("\n", ""), Does.Contain("exists already: a new run never writes into an existing run folder"));
        Assert.That(Directory.EnumerateFileSystemEntries(run).Select(Path.GetFileName), Is.EqualTo(new[] { "notes.txt" }));
    }

    [Test]
    public void A_run_keeps_only_the_newest_step_checkpoints()
    {
        using var device = TestDevices.Cpu();
        var (train, test) = Shapes(32, 8);
        var options = new TrainingOptions { Steps = 10, BatchSize = 8, LogEvery = 5, EvaluateEvery = 0, CheckpointEvery = 2, KeepCheckpoints = 2 };
        var run = Path.Combine(_dir, "run");
        using (var trainer = new VqVaeTrainer(new VqVae(device, Tiny, seed: 1), train, test, options, run)) trainer.Train();
        Assert.That(Directory.EnumerateFiles(Path.Combine(run, "checkpoints")).Select(Path.GetFileName).Order(),
                    Is.EqualTo(new[] { "step-000008.safetensors", "step-000010.safetensors" }));
        Assert.That(VqVaeCheckpoint.ReadHeader(Path.Combine(run, "latest.safetensors")).Step, Is.EqualTo(10));
    }

    [Test]
    public void Resume_of_a_run_folder_takes_the_newest_checkpoint_that_reads_back_whole_and_names_each_torn_one()
    {
        using var device = TestDevices.Cpu();
        var (train, test) = Shapes(32, 8);
        var options = new TrainingOptions { Steps = 6, BatchSize = 8, LogEvery = 1, EvaluateEvery = 0, CheckpointEvery = 2, KeepCheckpoints = 0 };
        var run = Path.Combine(_dir, "run");
        using (var trainer = new VqVaeTrainer(new VqVae(device, Tiny, seed: 1), train, test, options, run)) trainer.Train();
        // Torn as a copy cut short or a failing disk would leave them: latest and the step-6 checkpoint lose their tails.
        foreach (var torn in new[] { "latest.safetensors", "checkpoints/step-000006.safetensors" })
            using (var file = new FileStream(Path.Combine(run, torn), FileMode.Open)) file.SetLength(file.Length - 100);

        var skipped = new List<string>();
        var (path, header) = RunFolder.NewestCheckpoint(run, VqVaeTrainer.StepCheckpointPrefix, VqVaeTrainer.LatestCheckpointName, p =>
        {
            var h = VqVaeCheckpoint.ReadHeader(p);
            return (h, h.Step!.Value);
        }, skipped.Add);
        Assert.That(path, Is.EqualTo(Path.Combine(run, "checkpoints", "step-000004.safetensors")));
        Assert.That(header.Step, Is.EqualTo(4));
        Assert.That(skipped, Has.Count.EqualTo(2));
        Assert.That(skipped, Has.All.StartWith("skipping ").And.All.Contain("truncated"));

        // The resume cuts the metrics back to step 4 (the train lines of steps 5 and 6 and the test line of step 6 go):
        // those steps are done again, not duplicated.
        using var resumed = VqVaeTrainer.Resume(device, path, train, test, null, run);
        Assert.That(resumed.MetricsLinesDropped, Is.EqualTo(3));
        resumed.Train();
        var steps = MetricsLog.ReadAll(Path.Combine(run, "metrics.jsonl")).Where(r => r.Split == "train").Select(r => r.Step);
        Assert.That(steps, Is.EqualTo(new[] { 1, 2, 3, 4, 5, 6 }));
    }

    [Test]
    public void Metrics_are_cut_back_to_the_checkpoint_step_and_a_torn_last_line_goes_too()
    {
        var path = Path.Combine(_dir, "metrics.jsonl");
        var lines = Enumerable.Range(1, 5).Select(s => $"{{\"step\":{s},\"split\":\"train\"}}\n");
        File.WriteAllText(path, string.Concat(lines) + "{\"step\":6,\"spl");
        Assert.That(MetricsLog.TruncateAfterStep(path, 3), Is.EqualTo(3), "steps 4 and 5, and the torn line");
        Assert.That(File.ReadAllText(path), Is.EqualTo(string.Concat(lines.Take(3))));

        File.AppendAllText(path, "{\"step\":4,\"split\":\"tr");
        Assert.That(MetricsLog.TruncateAfterStep(path, 10), Is.EqualTo(1), "only the torn line");
        Assert.That(File.ReadAllText(path), Is.EqualTo(string.Concat(lines.Take(3))));
    }

    [Test]
    public void A_non_finite_metric_is_written_as_valid_json()
    {
        var path = Path.Combine(_dir, "metrics.jsonl");
        using (var log = new MetricsLog(path))
            log.Write(new MetricsRecord(1, "test", double.NaN, double.PositiveInfinity, 0, 0, 1, 1, 0, 0));
        var line = File.ReadAllText(path);
        Assert.That(line, Does.EndWith("\n"));
        Assert.DoesNotThrow(() => JsonDocument.Parse(line));
        Assert.That(MetricsLog.ReadAll(path)[0].ReconstructionMse, Is.NaN);
    }

    /// <summary>Non-finite steps, caught on the device the run trains on: a specification on each device.</summary>
    public class NonFiniteSteps(DeviceKind kind) : DeviceSpecification(kind)
    {
        private string _dir = "";

        [SetUp]
        public void SetUp() => Directory.CreateDirectory(_dir = Path.Combine(Path.GetTempPath(), "vqvae-run-rules-" + Guid.NewGuid().ToString("N")));

        [TearDown]
        public void TearDown() => Directory.Delete(_dir, true);

        [Test]
        public void A_diverging_run_stops_before_the_bad_step_is_applied_naming_the_first_op_and_keeping_the_last_checkpoint()
        {
            using var device = Open();
            var (train, test) = Shapes(64, 8);
            // lr 10: the loss overflows within a few steps (the issue's `--lr 10`).
            var options = new TrainingOptions { Steps = 50, BatchSize = 8, LearningRate = 10, LogEvery = 1, EvaluateEvery = 0, CheckpointEvery = 1 };
            var run = Path.Combine(_dir, "run");
            using var trainer = new VqVaeTrainer(new VqVae(device, Tiny, seed: 1), train, test, options, run);
            var e = Assert.Throws<NonFiniteTrainingException>(() => trainer.Train())!;
            TestContext.Out.WriteLine(e.Message);
            Assert.That(e.Step, Is.EqualTo(trainer.Step + 1), "the step that was not applied");
            Assert.That(e.FirstOp, Does.StartWith("the forward of ").Or.StartWith("the backward of "));
            Assert.That(e.Message, Does.Contain($"training stopped at step {e.Step}").And.Contain(e.FirstOp)
                                       .And.Contain($"the last good checkpoint, {run}/checkpoints/step-{trainer.Step:D6}.safetensors (step {trainer.Step}), is kept")
                                       .And.Contain("try 1"));
            Assert.That(trainer.Model.ParameterStore.FlatValues.ToArray(), Has.All.Matches<float>(float.IsFinite), "the weights stay finite");
            // The checkpoint on disk is the trainer's current state: nothing of the bad step reached either.
            using var fromDisk = VqVaeCheckpoint.LoadModel(Path.Combine(run, "latest.safetensors"), device);
            Assert.That(fromDisk.ParameterStore.FlatValues.ToArray(), Is.EqualTo(trainer.Model.ParameterStore.FlatValues.ToArray()));
            Assert.DoesNotThrow(() => MetricsLog.ReadAll(Path.Combine(run, "metrics.jsonl")), "metrics stay valid JSON lines");
        }

        [Test]
        public void A_non_finite_input_names_the_first_op_and_skip_nonfinite_passes_over_its_steps()
        {
            using var device = Open();
            var (train, test) = Shapes(32, 8);
            // One NaN pixel in image 5: every step whose batch holds it has a NaN loss.
            var pixels = train.Pixels.ToArray();
            pixels[5 * 28 * 28 + 100] = float.NaN;
            var poisoned = new ImageDataset("poisoned", pixels, train.Count, train.Channels, train.Height, train.Width, train.Labels);
            var options = new TrainingOptions { Steps = 12, BatchSize = 8, LearningRate = 1e-3, LogEvery = 1, EvaluateEvery = 0, DeadCodeSteps = 0 };

            using (var stopping = new VqVaeTrainer(new VqVae(device, Tiny, seed: 1), poisoned, test, options, null))
            {
                var e = Assert.Throws<NonFiniteTrainingException>(() => stopping.Train())!;
                // The batch itself: the encoder's first convolution (its ReLU fused in, which maps NaN to 0) reads it.
                Assert.That(e.FirstOp, Does.StartWith("an input of conv2d+relu (op 1 of the step, input [8,1,28,28]"), e.Message);
            }

            using var skipping = new VqVaeTrainer(new VqVae(device, Tiny, seed: 1), poisoned, test, options with { SkipNonFinite = 10 }, null);
            Assert.That(skipping.Train(), Is.EqualTo(TrainingEnd.Finished));
            // 4 batches of 8 per epoch over 12 steps: 3 epochs, one batch each holds image 5.
            Assert.That(skipping.SkippedSteps, Is.EqualTo(3));
            Assert.That(skipping.Model.ParameterStore.FlatValues.ToArray(), Has.All.Matches<float>(float.IsFinite));
            Assert.That(skipping.History.Where(r => r.Split == "train").Select(r => r.ReconstructionMse), Has.All.Matches<double>(double.IsFinite),
                        "skipped steps are not averaged into the metrics");
        }
    }
}
