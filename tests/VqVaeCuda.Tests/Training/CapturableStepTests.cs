using VqVaeCuda.Data;
using VqVaeCuda.Device;
using VqVaeCuda.Models;
using VqVaeCuda.Training;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Training;

/// <summary>
/// The graph-shaped step (<see cref="CapturableStep"/>: nothing read back inside a step, captured from its second run and
/// replayed — a CUDA graph on a GPU, the recorded launches on the cpu device) trains exactly as the eager loop.
/// </summary>
public class CapturableStepTests(DeviceKind kind) : DeviceSpecification(kind)
{
    private static readonly VqVaeConfig Tiny = VqVaeConfig.Preset("tiny");
    private readonly ImageDataset _train = SyntheticShapes.Generate(96, seed: 31);
    private readonly ImageDataset _test = SyntheticShapes.Generate(16, seed: 32, firstIndex: 96);

    private VqVaeTrainer Trainer(Device.IDevice device, TrainingOptions options) =>
        new(new VqVae(device, Tiny, seed: 7), _train, _test, options, runDirectory: null);

    private static TrainingOptions Options(int logEvery, int deadAfter) => new()
    {
        Steps = 40, BatchSize = 16, LearningRate = 1e-3, Seed = 7, DeadCodeSteps = deadAfter, MaxGradNorm = 0.5f,
        LogEvery = logEvery, EvaluateEvery = 20, CheckpointEvery = 0,
    };

    // Everything of a metrics record that the steps compute (not the wall-clock rates).
    private static object[] Computed(MetricsRecord r) => [r.Step, r.Split, r.ReconstructionMse, r.CodebookLoss, r.CommitmentLoss, r.Perplexity, r.CodesUsed];

    private static void AssertSameTraining(VqVaeTrainer expected, VqVaeTrainer actual)
    {
        Assert.That(actual.History.Select(Computed), Is.EqualTo(expected.History.Select(Computed)), "every metrics record, bit for bit");
        var weights = expected.Model.StateDict();
        foreach (var (name, t) in actual.Model.StateDict())
            Assert.That(t.ToArray(), Is.EqualTo(weights[name].ToArray()), name);
        var moments = expected.Optimizer.StateDict();
        foreach (var (name, t) in actual.Optimizer.StateDict())
            Assert.That(t.ToArray(), Is.EqualTo(moments[name].ToArray()), name);
        Assert.That(actual.Optimizer.StepCount, Is.EqualTo(expected.Optimizer.StepCount));
        Assert.That(actual.Model.Quantizer.CodeLastUsed, Is.EqualTo(expected.Model.Quantizer.CodeLastUsed));
    }

    [Test]
    public void Read_after_every_step_the_graph_shaped_step_equals_the_eager_loop_bit_for_bit_with_dead_code_restarts()
    {
        using var device = Open();
        using var eager = Trainer(device, Options(logEvery: 1, deadAfter: 3) with { StepExecution = StepExecution.Eager });
        using var graph = Trainer(device, Options(logEvery: 1, deadAfter: 3) with { StepExecution = StepExecution.Graph });
        using var noRestarts = Trainer(device, Options(logEvery: 1, deadAfter: 0) with { StepExecution = StepExecution.Eager });
        Assert.That(VqVaeTrainer.WhyEager(graph.Options, device), Is.Null);
        eager.Train();
        graph.Train();
        noRestarts.Train();
        AssertSameTraining(eager, graph);
        Assert.That(graph.Model.ParameterStore.FlatValues.ToArray(), Is.Not.EqualTo(noRestarts.Model.ParameterStore.FlatValues.ToArray()),
                    "dead-code restarts took part (without them the weights differ)");
    }

    [Test]
    public void Read_at_log_intervals_the_graph_shaped_step_averages_the_same_losses_as_the_eager_loop()
    {
        using var device = Open();
        using var eager = Trainer(device, Options(logEvery: 10, deadAfter: 0) with { StepExecution = StepExecution.Eager });
        using var graph = Trainer(device, Options(logEvery: 10, deadAfter: 0) with { StepExecution = StepExecution.Graph });
        eager.Train();
        graph.Train();
        Assert.That(graph.History.Count(r => r.Split == "train"), Is.EqualTo(4));
        AssertSameTraining(eager, graph);
    }

    [Test]
    public void A_step_launches_the_same_kernels_whenever_it_runs_so_its_arena_addresses_do_not_move()
    {
        using var device = Open();
        using var trainer = Trainer(device, Options(logEvery: 5, deadAfter: 0) with { StepExecution = StepExecution.Graph, Steps = 1 });
        using var arena = new VqVaeCuda.Tensors.Arena(device, 64L << 20);
        using var step = new CapturableStep(trainer.Model, trainer.Optimizer, arena, 16, 0.5f);
        var pixels = _train.Pixels.AsSpan(0, 16 * 28 * 28).ToArray();
        step.Run(pixels, 1);
        ulong input = step.Input!.Pointer.Address, encoderOutput = step.EncoderOutput!.Pointer.Address;
        long launches = step.LaunchesPerStep;
        step.Run(pixels, 2);
        Assert.That((step.Input!.Pointer.Address, step.EncoderOutput!.Pointer.Address), Is.EqualTo((input, encoderOutput)));
        Assert.That(step.LaunchesPerStep, Is.EqualTo(launches).And.GreaterThan(20));
        Assert.That(step.Execution, Does.StartWith("one captured graph per step"), "the second run was captured");
        Assert.That(step.CapturedOperations, Is.GreaterThanOrEqualTo(launches), "every launch and GEMM of the step (and its copies and fills)");
        step.Run(pixels, 3);
        Assert.That(step.Input!.Pointer.Address, Is.EqualTo(input), "a replay reads the batch where the graph does");
        var interval = step.ReadInterval();
        Assert.That(interval.Steps, Is.EqualTo(3));
        Assert.That(interval.Counts.Sum(), Is.EqualTo(3 * 16 * 7 * 7), "every latent vector of the three batches counted once");
        Assert.That(trainer.Optimizer.StepCount, Is.EqualTo(3));
        Assert.That(step.ReadInterval().Steps, Is.Zero, "reading clears the accumulators");
    }

    [Test]
    public void A_diverging_graph_shaped_run_stops_at_the_next_read_and_never_checkpoints_a_non_finite_step()
    {
        using var device = Open();
        var dir = Path.Combine(Path.GetTempPath(), "vqvae-capturable-" + Guid.NewGuid().ToString("N"));
        try
        {
            // lr 10: the loss overflows within a few steps (the eager loop's divergence test).
            var options = new TrainingOptions
            {
                Steps = 50, BatchSize = 8, LearningRate = 10, LogEvery = 5, EvaluateEvery = 0, CheckpointEvery = 5,
                StepExecution = StepExecution.Graph,
            };
            using var trainer = new VqVaeTrainer(new VqVae(device, Tiny, seed: 1), _train, _test, options, dir);
            var e = Assert.Throws<NonFiniteTrainingException>(() => trainer.Train())!;
            TestContext.Out.WriteLine(e.Message);
            Assert.That(e.FirstOp, Is.EqualTo(NonFiniteCheck.NotLocatedInCapturedStep));
            Assert.That(e.Step, Is.LessThanOrEqualTo(trainer.Step).And.GreaterThan(trainer.Step - 5), "found at the read after it");
            Assert.That(e.Message, Does.Contain($"not finite at step {e.Step}").And.Contain("--step-mode eager"));
            var latest = Path.Combine(dir, "latest.safetensors");
            if (File.Exists(latest))
            {
                using var fromDisk = VqVaeCheckpoint.LoadModel(latest, device);  // refuses non-finite weights
                Assert.That(fromDisk.ParameterStore.FlatValues.ToArray(), Has.All.Matches<float>(float.IsFinite));
            }
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void Skipping_non_finite_steps_keeps_the_eager_loop_and_says_why()
    {
        using var device = Open();
        var options = Options(1, 0) with { StepExecution = StepExecution.Graph, SkipNonFinite = 3 };
        Assert.That(VqVaeTrainer.WhyEager(options, device), Does.Contain("--skip-nonfinite"));
        if (OnCpu) Assert.That(VqVaeTrainer.WhyEager(Options(1, 0), device), Does.Contain("eager"), "auto on the cpu device");
        else Assert.That(VqVaeTrainer.WhyEager(Options(1, 0), device), Is.Null, "auto on a GPU");
    }

    /// <summary>The cpu device's thread orders: a GPU has one order, its own.</summary>
    [TestFixture, Category("Cpu")]
    public class ThreadOrders
    {
        [Test]
        public void The_graph_shaped_step_is_bit_identical_in_every_thread_order()
        {
            // Adam's scheduled kernel and the step's bookkeeping kernels (training_step.cu), replayed from the capture.
            var train = SyntheticShapes.Generate(16, seed: 31);
            var runs = new List<float[]>();
            foreach (var order in new[] { ThreadOrder.Ascending, ThreadOrder.Descending, ThreadOrder.Shuffled })
            {
                using var device = TestDevices.Cpu(order);
                using var model = new VqVae(device, Tiny, seed: 7);
                using var adam = new VqVaeCuda.Optim.Adam(model.Parameters(), 1e-3);
                using var arena = VqVaeTrainer.SizeArena(model, 16);
                using var step = new CapturableStep(model, adam, arena, 16, maxGradNorm: 0.5f);
                for (int i = 1; i <= 3; i++) step.Run(train.Pixels, i);
                Assert.That(step.IsCaptured);
                var interval = step.ReadInterval();
                runs.Add([(float)interval.ReconstructionMseSum, (float)interval.CodebookLossSum, (float)interval.CommitmentLossSum,
                          .. interval.Counts.Select(v => (float)v), .. model.Quantizer.CodeLastUsed.Select(v => (float)v),
                          .. model.ParameterStore.FlatValues.ToArray()]);
            }
            TensorFactory.AssertBitEqual([.. runs], "losses, counts, last use and weights after three steps");
        }
    }
}
