using VqVaeCuda.Checkpoints;
using VqVaeCuda.Tests.Support;
using VqVaeCuda.Training;

namespace VqVaeCuda.Tests.Training;

/// <summary>
/// `vqvae train` as a hostile but realistic user drives it, through the real command in a child process: interrupted by
/// SIGINT, SIGTERM or SIGKILL at a random step and resumed, its loss trace equals an uninterrupted run's line for line
/// (bit-equal: the cpu device is deterministic); a checkpoint that cannot be written (a file-size limit) leaves the last
/// good one intact and says so.
/// </summary>
[TestFixture, Category("Cpu"), NonParallelizable]
public class RunSafetyCliTests
{
    private const int Steps = 24, CheckpointEvery = 4;
    private string _root = "", _reference = "", _dir = "", _images = "";
    private List<string> _referenceTrace = [];

    // Every run: the same small, fully logged (a line per step) training on a folder of 200 shapes (180 train, 20 test):
    // each process reads 200 PNGs instead of drawing the built-in set's 11,000 images, and evaluates 20 instead of 1,000.
    private string[] TrainArgs(params string[] more) => TrainArgs(8, more);

    private string[] TrainArgs(int batch, params string[] more) =>
        ["train", "--device", "cpu", "--dataset", $"folder:{_images}", "--batch", $"{batch}", "--log-every", "1",
         "--checkpoint-every", $"{CheckpointEvery}", "--seed", "3", .. more];

    [OneTimeSetUp]
    public void UninterruptedReference()
    {
        TestDevices.Cpu().Dispose();  // skip (or fail under CI) without the CPU library
        Directory.CreateDirectory(_root = Path.Combine(Path.GetTempPath(), "vqvae-run-safety-" + Guid.NewGuid().ToString("N")));
        Directory.CreateDirectory(_images = Path.Combine(_root, "images"));
        var shapes = VqVaeCuda.Data.SyntheticShapes.Generate(200, seed: 31);
        for (int i = 0; i < shapes.Count; i++)
        {
            using var bitmap = new SkiaSharp.SKBitmap(shapes.Width, shapes.Height, SkiaSharp.SKColorType.Gray8, SkiaSharp.SKAlphaType.Opaque);
            var image = shapes.Image(i);
            for (int y = 0; y < shapes.Height; y++)
                for (int x = 0; x < shapes.Width; x++)
                {
                    byte v = (byte)Math.Round(Math.Clamp(image[y * shapes.Width + x], 0f, 1f) * 255);
                    bitmap.SetPixel(x, y, new SkiaSharp.SKColor(v, v, v));
                }
            using var png = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(Path.Combine(_images, $"{i:D3}.png"), png.ToArray());
        }
        _reference = Path.Combine(_root, "reference");
        var (exit, output) = CliChild.Run(_root, TrainArgs("--steps", $"{Steps}", "--out", _reference));
        Assert.That(exit, Is.Zero, output);
        _referenceTrace = CliChild.LossTrace(Path.Combine(_reference, "metrics.jsonl"));
        Assert.That(_referenceTrace, Has.Count.EqualTo(Steps + 1), "a train line per step and the final test line");
    }

    [OneTimeTearDown]
    public void Remove()
    {
        if (_root.Length > 0 && Directory.Exists(_root)) Directory.Delete(_root, true);
    }

    [SetUp]
    public void SetUp() => Directory.CreateDirectory(_dir = Path.Combine(_root, Guid.NewGuid().ToString("N")));

    [TestCase(CliChild.SigInt, TestName = "SIGINT finishes the step, checkpoints, exits 0 with the resume command; the resumed trace is bit-equal")]
    [TestCase(CliChild.SigTerm, TestName = "SIGTERM finishes the step, checkpoints, exits 0 with the resume command; the resumed trace is bit-equal")]
    public void A_stop_signal_checkpoints_the_current_step_and_the_resumed_run_equals_an_uninterrupted_one(int signal)
    {
        var run = Path.Combine(_dir, "run");
        // The last few steps are left as margin for a test process that is slow to send the signal.
        int at = new Random().Next(2, Steps - 8);
        TestContext.Out.WriteLine($"signal {signal} after {at} metrics lines");
        string output;
        using (var child = CliChild.Start(_dir, TrainArgs("--steps", $"{Steps}", "--out", run)))
        {
            child.WaitForMetricsLines(Path.Combine(run, "metrics.jsonl"), at);
            child.Signal(signal);
            int exit;
            (exit, output) = child.WaitForExit();
            Assert.That(exit, Is.Zero, output);
        }
        var header = VqVaeCheckpoint.ReadHeader(Path.Combine(run, "latest.safetensors"));
        int stopped = header.Step!.Value;
        Assert.That(stopped, Is.InRange(at, Steps - 1), output);
        Assert.That(output, Does.Contain($"interrupted at step {stopped}").And.Contain($"Resume with: vqvae train --resume {run} --dataset folder:{_images}"));
        Assert.That(File.Exists(Path.Combine(run, "checkpoints", $"step-{stopped:D6}.safetensors")), "the interrupted step's own checkpoint");
        Assert.That(CliChild.LossTrace(Path.Combine(run, "metrics.jsonl")), Is.EqualTo(_referenceTrace.Take(stopped)),
                    "the metrics reach exactly the checkpointed step");

        var (resumed, resumeOutput) = CliChild.Run(_dir, TrainArgs("--steps", $"{Steps}", "--resume", run));
        Assert.That(resumed, Is.Zero, resumeOutput);
        Assert.That(CliChild.LossTrace(Path.Combine(run, "metrics.jsonl")), Is.EqualTo(_referenceTrace));
    }

    [Test]
    public void After_SIGKILL_at_a_random_step_a_resume_of_the_run_folder_loses_only_the_steps_since_the_last_checkpoint_and_equals_an_uninterrupted_run()
    {
        var run = Path.Combine(_dir, "run");
        int at = new Random().Next(CheckpointEvery + 1, Steps - 8);
        using (var child = CliChild.Start(_dir, TrainArgs("--steps", $"{Steps}", "--out", run)))
        {
            child.WaitForMetricsLines(Path.Combine(run, "metrics.jsonl"), at);
            child.Signal(CliChild.SigKill);
            Assert.That(child.WaitForExit().ExitCode, Is.EqualTo(128 + CliChild.SigKill), "killed before the end");
        }
        int logged = File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Length;
        int checkpointed = RunFolder.StepCheckpoints(run, VqVaeTrainer.StepCheckpointPrefix)[0].Step;
        TestContext.Out.WriteLine($"SIGKILL after {at} metrics lines: {logged} lines logged, newest checkpoint at step {checkpointed}");
        Assert.That(checkpointed, Is.GreaterThan(0).And.LessThanOrEqualTo(logged));
        Assert.That(logged - checkpointed, Is.LessThanOrEqualTo(CheckpointEvery), "at most the steps since the last checkpoint are lost");

        var (exit, output) = CliChild.Run(_dir, TrainArgs("--steps", $"{Steps}", "--resume", run));
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain($"at step {checkpointed}"));
        Assert.That(CliChild.LossTrace(Path.Combine(run, "metrics.jsonl")), Is.EqualTo(_referenceTrace),
                    "the lines after the checkpoint were dropped and done again: no duplicate steps, the same losses");
    }

    [Test]
    public void A_second_SIGINT_exits_at_once_with_130_and_leaves_no_torn_checkpoint()
    {
        var run = Path.Combine(_dir, "run");
        // Steps of 128 images (~0.5 s each here) leave the second signal time to land while the first one's step is under way.
        using (var child = CliChild.Start(_dir, TrainArgs(128, "--steps", "200", "--out", run)))
        {
            child.WaitForMetricsLines(Path.Combine(run, "metrics.jsonl"), 1);
            child.Signal(CliChild.SigInt);
            // Two signals sent back to back can merge into one pending signal: send the second once the first is acknowledged.
            child.WaitForOutput("SIGINT: finishing the current step");
            child.Signal(CliChild.SigInt);
            var (exit, output) = child.WaitForExit();
            Assert.That(exit, Is.EqualTo(130), output);
        }
        // Whatever the moment of the kill, every checkpoint under its real name reads back whole, and metrics.jsonl is JSON lines.
        foreach (var file in Directory.EnumerateFiles(run, "*.safetensors", SearchOption.AllDirectories))
            Assert.DoesNotThrow(() => VqVaeCheckpoint.ReadHeader(file), file);
        Assert.DoesNotThrow(() => CliChild.LossTrace(Path.Combine(run, "metrics.jsonl")));
    }

    [Test]
    public void A_checkpoint_write_that_fails_on_a_file_size_limit_stops_training_and_keeps_the_last_good_checkpoint()
    {
        // A copy of the finished reference run, continued for 4 more steps by a process that may not write a file of
        // the checkpoint's size (~450 KiB): the step-28 checkpoint fails; the step-24 one must survive untouched.
        var run = Path.Combine(_dir, "run");
        CopyFolder(_reference, run);
        var latest = Path.Combine(run, "latest.safetensors");
        var before = File.ReadAllBytes(latest);
        Assert.That(before.Length, Is.GreaterThan(200 * 1024), "the limit must be below a checkpoint's size");

        var (exit, output) = CliChild.Run(_dir, TrainArgs("--steps", $"{Steps + 4}", "--resume", run), fileSizeLimitKiB: 200);
        Assert.That(exit, Is.EqualTo(1), output);
        Assert.That(output, Does.Contain($"could not write the checkpoint of step {Steps + 4}").And.Contain("file-size limit")
                                .And.Contain($"The last good checkpoint, {run}/latest.safetensors (step {Steps}), is intact"));
        Assert.That(File.ReadAllBytes(latest), Is.EqualTo(before), "latest.safetensors unchanged");
        Assert.That(Directory.EnumerateFiles(run, "*.tmp", SearchOption.AllDirectories), Is.Empty, "no temporary file left behind");
        Assert.That(File.Exists(Path.Combine(run, "checkpoints", $"step-{Steps + 4:D6}.safetensors")), Is.False);

        // Once there is room, the run resumes from the intact checkpoint and its trace goes on whole.
        var (again, againOutput) = CliChild.Run(_dir, TrainArgs("--steps", $"{Steps + 4}", "--resume", run));
        Assert.That(again, Is.Zero, againOutput);
        var trace = CliChild.LossTrace(Path.Combine(run, "metrics.jsonl"));
        Assert.That(trace.Take(Steps), Is.EqualTo(_referenceTrace.Take(Steps)));
        Assert.That(trace.Select(StepOf).Where((_, i) => trace[i].Contains("split=\"train\"")), Is.EqualTo(Enumerable.Range(1, Steps + 4)),
                    "one train line per step, no duplicates");
    }

    [Test]
    public void A_resume_names_each_setting_given_that_differs_and_keeps_the_checkpoints()
    {
        var run = Path.Combine(_dir, "run");
        CopyFolder(_reference, run);
        var (exit, output) = CliChild.Run(_dir, TrainArgs("--steps", $"{Steps + 1}", "--resume", run, "--lr", "0.01", "--preset", "cifar10"));
        Assert.That(exit, Is.Zero, output);
        Assert.That(output, Does.Contain("--lr 0.01 differs from the checkpoint's 0.0002: keeping the checkpoint's")
                                .And.Contain("--preset is ignored: a resumed run's model is the checkpoint's")
                                .And.Contain($"--steps {Steps + 1} replaces the checkpoint's {Steps}"));
        var header = VqVaeCheckpoint.ReadHeader(Path.Combine(run, "latest.safetensors"));
        Assert.That((header.Step, header.Training!.LearningRate, header.Config.CodebookSize), Is.EqualTo((Steps + 1, 2e-4, 64)));
    }

    private static int StepOf(string traceLine) => int.Parse(traceLine.Split(' ')[0]["step=".Length..]);

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }
}

/// <summary>`vqvae prior train` under the same treatment: stopped by a signal or killed, then resumed, it equals an uninterrupted run.</summary>
[TestFixture, Category("Cpu"), NonParallelizable]
public class PriorRunSafetyCliTests
{
    private const int Steps = 16, CheckpointEvery = 4;
    private string _root = "", _vqvae = "", _codes = "", _dir = "";
    private List<string> _referenceTrace = [];

    private string[] PriorArgs(params string[] more) =>
        ["prior", "train", "--vqvae", _vqvae, "--codes-cache", _codes, "--device", "cpu", "--batch", "8", "--log-every", "1",
         "--checkpoint-every", $"{CheckpointEvery}", "--samples", "0", "--seed", "5", .. more];

    [OneTimeSetUp]
    public void UninterruptedReference()
    {
        using (var device = TestDevices.Cpu())
        {
            Directory.CreateDirectory(_root = Path.Combine(Path.GetTempPath(), "vqvae-prior-run-safety-" + Guid.NewGuid().ToString("N")));
            // An untrained tiny VQ-VAE is enough: the prior only needs its code maps (cached once for every run here).
            _vqvae = Path.Combine(_root, "vqvae.safetensors");
            _codes = Path.Combine(_root, "codes.safetensors");
            using var model = new VqVaeCuda.Models.VqVae(device, VqVaeCuda.Models.VqVaeConfig.Preset("tiny"), seed: 2);
            using var adam = new VqVaeCuda.Optim.Adam(model.Parameters());
            VqVaeCheckpoint.Save(_vqvae, model, new TrainingStateInfo(0, 0, new TrainingOptions(), "shapes/train"), adam);
        }
        // A small cache of seeded code maps under the key the command computes for this VQ-VAE and data set: the runs read
        // it instead of encoding 11,000 images each, and evaluate on 32 maps instead of 1,000.
        var random = new Random(7);
        CodeMapSet Maps(string name, int count) =>
            new(name, Enumerable.Range(0, count * 49).Select(_ => random.Next(64)).ToArray(), null, count, 7, 7, classes: 0);
        CodeMapCache.Save(_codes, new CodeMapCacheKey(PriorCheckpoint.Sha256OfFile(_vqvae), "shapes, seed 0", 64, 7, 7), Maps("shapes/train", 256),
                          Maps("shapes/test", 32));
        var reference = Path.Combine(_root, "reference");
        var (exit, output) = CliChild.Run(_root, PriorArgs("--steps", $"{Steps}", "--out", reference));
        Assert.That(exit, Is.Zero, output);
        _referenceTrace = CliChild.LossTrace(Path.Combine(reference, "metrics.jsonl"));
        Assert.That(_referenceTrace, Has.Count.EqualTo(Steps + 1));
    }

    [OneTimeTearDown]
    public void Remove()
    {
        if (_root.Length > 0 && Directory.Exists(_root)) Directory.Delete(_root, true);
    }

    [SetUp]
    public void SetUp() => Directory.CreateDirectory(_dir = Path.Combine(_root, Guid.NewGuid().ToString("N")));

    [Test]
    public void SIGINT_finishes_the_step_and_writes_a_prior_checkpoint_of_it()
    {
        var run = Path.Combine(_dir, "run");
        int at = new Random().Next(2, Steps - 6);
        using var child = CliChild.Start(_dir, PriorArgs("--steps", $"{Steps}", "--out", run));
        child.WaitForMetricsLines(Path.Combine(run, "metrics.jsonl"), at);
        child.Signal(CliChild.SigInt);
        var (exit, output) = child.WaitForExit();
        Assert.That(exit, Is.Zero, output);
        int stopped = PriorCheckpoint.ReadHeader(Path.Combine(run, "prior-latest.safetensors")).State!.Step;
        Assert.That(stopped, Is.InRange(at, Steps - 1));
        Assert.That(output, Does.Contain($"Resume with: vqvae prior train --vqvae {_vqvae} --resume {run}"));
        Assert.That(CliChild.LossTrace(Path.Combine(run, "metrics.jsonl")), Is.EqualTo(_referenceTrace.Take(stopped)));
    }

    [Test]
    public void After_SIGKILL_at_a_random_step_a_resumed_prior_run_equals_an_uninterrupted_one()
    {
        var run = Path.Combine(_dir, "run");
        int at = new Random().Next(CheckpointEvery + 1, Steps - 5);
        using (var child = CliChild.Start(_dir, PriorArgs("--steps", $"{Steps}", "--out", run)))
        {
            child.WaitForMetricsLines(Path.Combine(run, "metrics.jsonl"), at);
            child.Signal(CliChild.SigKill);
            Assert.That(child.WaitForExit().ExitCode, Is.EqualTo(128 + CliChild.SigKill), "killed before the end");
        }
        int logged = File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Length;
        int checkpointed = RunFolder.StepCheckpoints(run, PriorTrainer.StepCheckpointPrefix)[0].Step;
        TestContext.Out.WriteLine($"SIGKILL after {at} metrics lines: {logged} lines logged, newest checkpoint at step {checkpointed}");
        Assert.That(logged - checkpointed, Is.InRange(0, CheckpointEvery));

        var (exit, output) = CliChild.Run(_dir, PriorArgs("--steps", $"{Steps}", "--resume", run));
        Assert.That(exit, Is.Zero, output);
        Assert.That(CliChild.LossTrace(Path.Combine(run, "metrics.jsonl")), Is.EqualTo(_referenceTrace));
    }
}
