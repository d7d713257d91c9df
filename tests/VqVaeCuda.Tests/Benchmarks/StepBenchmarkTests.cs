using VqVaeCuda.Autodiff;
using VqVaeCuda.Benchmarks;
using VqVaeCuda.Data;
using VqVaeCuda.Models;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;
using VqVaeCuda.Training;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Benchmarks;

/// <summary>
/// The step benchmark counts the work it claims (FLOPs and bytes of conv, transposed conv, quantizer and a whole
/// step equal values worked out by hand here) and times the trainer's own step. Nothing about speed is asserted.
/// </summary>
[TestFixture, Category("Cpu")]
public class StepBenchmarkTests
{
    // What the step profiler sees of each op: its recorded name, inputs (with their RequiresGrad) and outputs.
    private sealed class Capture : IOpObserver
    {
        public readonly List<OpCost> Costs = [];
        public readonly List<string> Names = [];

        public void ForwardDone(string op, IReadOnlyList<Tensor> inputs, IReadOnlyList<Tensor> outputs)
        {
            Names.Add(op);
            Costs.Add(OpCosts.Of(op, inputs, outputs));
        }

        public void BackwardDone(string op) { }
    }

    private static Tensor Input(OpContext ctx, params int[] shape)
    {
        var t = ctx.Floats(TestData.Floats(shape.Aggregate(1, (a, b) => a * b)), shape);
        t.RequiresGrad = true;
        return t;
    }

    [Test]
    public void Conv2d_work_is_counted_as_worked_out_by_hand()
    {
        // x [2,3,5,5], weight [4,3,3,3], bias [4], stride 1, padding 1 → y [2,4,5,5] (200 outputs of 27 products each).
        // Forward: 2·200·27 + 200 (bias) = 11 000 FLOPs; bytes 4·(150 + 108 + 4 + 200) = 1 848.
        // Backward (dx, dW, db): 2·5 400 + 2·5 400 + 200 = 21 800 FLOPs; bytes 4·(dy 200 + x 150 + W 108 + W 108 + dx 300 + db 4) = 3 480.
        using var device = TestDevices.Cpu();
        using var arena = new Arena(device, 1 << 20);
        var capture = new Capture();
        var ctx = new OpContext(arena, new Tape(arena)) { Observer = capture };
        Convolution.Conv2d(ctx, Input(ctx, 2, 3, 5, 5), Input(ctx, 4, 3, 3, 3), Input(ctx, 4), 1, 1);
        Assert.That(capture.Names, Is.EqualTo(new[] { "conv2d" }));
        Assert.That(capture.Costs[0], Is.EqualTo(new OpCost(11_000, 1_848, 21_800, 3_480)));
    }

    [Test]
    public void A_fused_ReLU_adds_its_compares_and_the_backward_read_of_its_mask_to_the_convolution()
    {
        // The convolution above (11 000 / 1 848 / 21 800 / 3 480) with its ReLU fused in: + 200 compares forward, no byte
        // more (y is written once either way); backward + 200 FLOPs and 4·200 bytes (the output read as the mask).
        // The transposed one likewise: + 144 each way, + 576 bytes in the backward.
        using var device = TestDevices.Cpu();
        using var arena = new Arena(device, 1 << 20);
        var capture = new Capture();
        var ctx = new OpContext(arena, new Tape(arena)) { Observer = capture };
        Convolution.Conv2dRelu(ctx, Input(ctx, 2, 3, 5, 5), Input(ctx, 4, 3, 3, 3), Input(ctx, 4), 1, 1);
        Convolution.ConvTranspose2dRelu(ctx, Input(ctx, 2, 4, 3, 3), Input(ctx, 4, 2, 4, 4), Input(ctx, 2), 2, 1);
        Assert.That(capture.Names, Is.EqualTo(new[] { "conv2d+relu", "conv_transpose2d+relu" }));
        Assert.That(capture.Costs[0], Is.EqualTo(new OpCost(11_200, 1_848, 22_000, 4_280)));
        Assert.That(capture.Costs[1], Is.EqualTo(new OpCost(4_896, 1_384, 9_504, 3_048)));
    }

    [Test]
    public void A_first_convolution_whose_input_needs_no_gradient_costs_no_data_gradient()
    {
        // As above with x a constant (the images): backward is dW and db only, 2·5 400 + 200 = 11 000 FLOPs;
        // bytes 4·(dy 200 + x 150 + W 108 + db 4) = 1 848.
        using var device = TestDevices.Cpu();
        using var arena = new Arena(device, 1 << 20);
        var capture = new Capture();
        var ctx = new OpContext(arena, new Tape(arena)) { Observer = capture };
        var x = ctx.Floats(TestData.Floats(150), 2, 3, 5, 5);
        Convolution.Conv2d(ctx, x, Input(ctx, 4, 3, 3, 3), Input(ctx, 4), 1, 1);
        Assert.That(capture.Costs[0], Is.EqualTo(new OpCost(11_000, 1_848, 11_000, 1_848)));
    }

    [Test]
    public void Transposed_conv_work_is_counted_as_worked_out_by_hand()
    {
        // x [2,4,3,3], weight [4,2,4,4], bias [2], stride 2, padding 1 → y [2,2,6,6]: each of the 72 inputs meets
        // 2·16 weights, 2 304 products. Forward 2·2 304 + 144 (bias) = 4 752 FLOPs; bytes 4·(72 + 128 + 2 + 144) = 1 384.
        // Backward: 2·2 304 (dx) + 2·2 304 (dW) + 144 (db) = 9 360; bytes 4·(dy 144 + x 72 + W 128 + W 128 + dx 144 + db 2) = 2 472.
        using var device = TestDevices.Cpu();
        using var arena = new Arena(device, 1 << 20);
        var capture = new Capture();
        var ctx = new OpContext(arena, new Tape(arena)) { Observer = capture };
        Convolution.ConvTranspose2d(ctx, Input(ctx, 2, 4, 3, 3), Input(ctx, 4, 2, 4, 4), Input(ctx, 2), 2, 1);
        Assert.That(capture.Names, Is.EqualTo(new[] { "conv_transpose2d" }));
        Assert.That(capture.Costs[0], Is.EqualTo(new OpCost(4_752, 1_384, 9_360, 2_472)));
    }

    [TestCase(true, TestName = "Quantizer work with the EMA codebook is counted as worked out by hand")]
    [TestCase(false, TestName = "Quantizer work with the codebook loss is counted as worked out by hand")]
    public void Quantizer_work_is_counted_as_worked_out_by_hand(bool ema)
    {
        // z_e [2,4,3,3]: M = 18 vectors of D = 4; codebook K = 5. Forward: distances 2·18·5·4 = 720 + the two loss terms
        // 3·72 = 216 → 936 FLOPs; bytes 4·(z_e 72 + E 20 + z_q 72 + codes 18 + counts 5) = 748. Backward: the straight-through
        // gradient 4·72 = 288 FLOPs, 20·72 = 1 440 bytes; with the codebook loss also the per-code sums 72 and the codebook
        // gradient 3·20 → 420 FLOPs, and 4·(72 + 18 + 60) = 600 bytes more → 2 040.
        using var device = TestDevices.Cpu();
        using var arena = new Arena(device, 1 << 20);
        var capture = new Capture();
        var ctx = new OpContext(arena, new Tape(arena)) { Observer = capture };
        VectorQuantizer.Quantize(ctx, Input(ctx, 2, 4, 3, 3), Input(ctx, 5, 4), 0.25f, useEma: ema);
        Assert.That(capture.Names.Single(), Is.EqualTo(ema ? VectorQuantizer.RecordedNameWithEma : "vector quantizer"));
        Assert.That(capture.Costs[0], Is.EqualTo(ema ? new OpCost(936, 748, 288, 1_440) : new OpCost(936, 748, 420, 2_040)));
    }

    // One layer's forward and backward work, by the formulas of the tests above.
    private static (double F, double B) Conv(int n, int cin, int cout, int k, int outSize, int inSize, bool dx, bool transposed = false)
    {
        double x = (double)n * cin * inSize * inSize, w = (double)cin * cout * k * k, y = (double)n * cout * outSize * outSize;
        double macs = transposed ? x * cout * k * k : y * cin * k * k;
        double forwardF = 2 * macs + y, forwardB = 4 * (x + w + cout + y);
        double backwardF = 2 * macs + (dx ? 2 * macs : 0) + y, backwardB = 4 * (y + x + w + (dx ? w + 2 * x : 0) + cout);
        return (forwardF + backwardF, forwardB + backwardB);
    }

    private static (double F, double B) Relu(double n) => (2 * n, 24 * n);   // forward n, 8n; backward n, 16n
    private static (double F, double B) FusedRelu(double n) => (2 * n, 4 * n);   // in a convolution's passes: n each way; the mask read, 4n
    private static (double F, double B) Add(double n) => (3 * n, 36 * n);    // forward n, 12n; two axpys 2n, 24n

    [Test]
    public void A_whole_step_of_the_tiny_model_is_counted_as_worked_out_by_hand()
    {
        // tiny: 1×28×28 images, hidden 32 (half 16), residual hidden 8, one residual layer, K = 64, D = 16; batch 2.
        const int n = 2;
        (double F, double B)[] parts =
        [
            Conv(n, 1, 16, 4, 14, 28, dx: false), FusedRelu(n * 16 * 14 * 14),       // encoder conv1 (the images need no gradient)
            Conv(n, 16, 32, 4, 7, 14, dx: true), FusedRelu(n * 32 * 49),              // encoder conv2
            Conv(n, 32, 32, 3, 7, 7, dx: true),                                       // encoder conv3
            Relu(n * 32 * 49), Conv(n, 32, 8, 3, 7, 7, dx: true), FusedRelu(n * 8 * 49), // residual block: ReLU, 3×3+ReLU,
            Conv(n, 8, 32, 1, 7, 7, dx: true), Add(n * 32 * 49), Relu(n * 32 * 49),   //   1×1, skip; the stack's ReLU
            Conv(n, 32, 16, 1, 7, 7, dx: true),                                       // pre-quantize 1×1
            // quantizer, EMA: M = 98, K = 64, D = 16, n = 1568: 2·98·64·16 + 3·1568 forward, 4·1568 backward;
            // bytes 4·(1568 + 1024 + 1568 + 98 + 64) forward, 20·1568 backward.
            (2.0 * 98 * 64 * 16 + 3 * 1568 + 4 * 1568, 4.0 * (1568 + 1024 + 1568 + 98 + 64) + 20 * 1568),
            Conv(n, 16, 32, 3, 7, 7, dx: true),                                       // decoder conv1
            Relu(n * 32 * 49), Conv(n, 32, 8, 3, 7, 7, dx: true), FusedRelu(n * 8 * 49),
            Conv(n, 8, 32, 1, 7, 7, dx: true), Add(n * 32 * 49), Relu(n * 32 * 49),
            Conv(n, 32, 16, 4, 14, 7, dx: true, transposed: true), FusedRelu(n * 16 * 14 * 14),   // deconv1
            Conv(n, 16, 1, 4, 28, 14, dx: true, transposed: true),                   // deconv2
            (3.0 * 1568 + 3 * 1568, 8.0 * 1568 + 4 + 16 * 1568),                     // MSE over 2·784 pixels, one gradient
        ];
        using var device = TestDevices.Cpu();
        using var model = new VqVae(device, VqVaeConfig.Preset("tiny"), seed: 0);
        long p = model.ParameterStore.Count;   // Adam and zeroing sweep the whole store, padding between parameters included
        double flops = parts.Sum(x => x.F) + 2.0 * p + 12.0 * p;          // + the gradient norm the trainer reads, Adam
        double bytes = parts.Sum(x => x.B) + 4.0 * p + 4.0 * p + 28.0 * p; // + zeroing the gradients, the norm, Adam
        flops += 98.0 * 16 + 4.0 * 64 * 16 + 3 * 64;                      // EMA update: sums, decays, normalisation
        bytes += 4.0 * (98.0 * 16 + 98 + 5.0 * 64 * 16 + 2 * 64);

        var result = StepBenchmark.Run(device, new StepBenchmarkOptions { Preset = "tiny", Batch = n, Warmup = 1, Repetitions = 1, ProfiledSteps = 2 });
        Assert.That(result.ParameterCount, Is.EqualTo(model.Parameters().Sum(x => x.Shape.Count)));
        Assert.That(result.Flops, Is.EqualTo(flops).Within(1e-9).Percent);
        Assert.That(result.Bytes, Is.EqualTo(bytes).Within(1e-9).Percent);
        Assert.That(result.ByOp.Sum(o => o.Milliseconds), Is.EqualTo(result.ProfiledStepMs).Within(1e-6), "the parts add up to the profiled step");
        Assert.That(result.ByOp.Where(o => o.Phase == "backward").Select(o => o.Op).Distinct(),
                    Is.SupersetOf(new[] { "conv2d", "conv2d+relu", "conv_transpose2d", "conv_transpose2d+relu", "relu", "add", "mse",
                                          VectorQuantizer.RecordedNameWithEma }));
        Assert.That(result.LaunchesPerStep, Is.EqualTo(result.ByOp.Sum(o => o.KernelLaunches)), "every launch of the step is in one op's row");
        Assert.That(result.GemmCallsPerStep, Is.EqualTo(result.ByOp.Sum(o => o.GemmCalls)));
        // The forwards alone and the encodes timed between the steps are not counted in the step's launches (above), and
        // each has its own figures.
        Assert.That(result.InferenceMs, Is.GreaterThan(0));
        Assert.That(result.EncodeMs, Is.GreaterThan(0));
        Assert.That(result.InferenceImagesPerSecond, Is.EqualTo(n * 1000.0 / result.InferenceMs).Within(1e-9).Percent);
        Assert.That(result.EncodeImagesPerSecond, Is.EqualTo(n * 1000.0 / result.EncodeMs).Within(1e-9).Percent);
        Assert.That(result.InferenceMsMin, Is.Positive.And.AtMost(result.InferenceMsP10));
        Assert.That(result.InferenceMsP10, Is.AtMost(result.InferenceMs));
        Assert.That(result.EncodeMsMin, Is.Positive.And.AtMost(result.EncodeMsP10));
        Assert.That(result.EncodeMsP10, Is.AtMost(result.EncodeMs));
    }

    [Test]
    public void A_step_only_run_times_the_step_and_nothing_else()
    {
        // The scaling table's rows: the same step (same launches and work), without the forwards alone, the encodes
        // and the graph-shaped step, whose fields say so.
        using var device = TestDevices.Cpu();
        var options = new StepBenchmarkOptions { Preset = "tiny", Batch = 2, Warmup = 1, Repetitions = 2, ProfiledSteps = 1 };
        long launches0 = device.KernelLaunches;
        var full = StepBenchmark.Run(device, options);
        long launches1 = device.KernelLaunches;
        var stepOnly = StepBenchmark.Run(device, options with { StepOnly = true });
        long fullLaunches = launches1 - launches0, stepOnlyLaunches = device.KernelLaunches - launches1;
        Assert.That(stepOnly.StepMs, Is.GreaterThan(0));
        Assert.That((stepOnly.InferenceMs, stepOnly.EncodeMs, stepOnly.GraphStepMs), Is.EqualTo((0.0, 0.0, 0.0)));
        Assert.That((stepOnly.InferenceImagesPerSecond, stepOnly.EncodeImagesPerSecond), Is.EqualTo((0.0, 0.0)));
        Assert.That((stepOnly.InferenceMsMin, stepOnly.InferenceMsP10, stepOnly.EncodeMsMin, stepOnly.EncodeMsP10), Is.EqualTo((0.0, 0.0, 0.0, 0.0)));
        Assert.That(stepOnly.GraphStepExecution, Is.EqualTo("not measured"));
        Assert.That((stepOnly.LaunchesPerStep, stepOnly.Flops), Is.EqualTo((full.LaunchesPerStep, full.Flops)));
        Assert.That(stepOnly.ArenaPeakBytes, Is.Positive.And.AtMost(full.ArenaPeakBytes), "the graph-shaped step may take a little more");
        // The full run's graph-shaped steps alone (one per repetition, the step's kernels) launch more than half a step each;
        // its forwards and encodes more again. A step-only run that still ran them would not be this much lighter.
        Assert.That(fullLaunches - stepOnlyLaunches, Is.GreaterThan(options.Repetitions * stepOnly.LaunchesPerStep / 2));
    }

    [Test]
    public void The_benchmarked_step_is_the_trainers_step()
    {
        // A batch of four copies of one image: the trainer's shuffled batches are then the bench's fixed one, bit for bit.
        var one = SyntheticShapes.Generate(1, seed: 3);
        var pixels = Enumerable.Repeat(one.Pixels, 4).SelectMany(p => p).ToArray();
        var data = new ImageDataset("four copies", pixels, 4, one.Channels, one.Height, one.Width);
        var config = VqVaeConfig.Preset("tiny");
        using var device = TestDevices.Cpu();

        using var step = new BenchmarkStep(device, config, data, new StepBenchmarkOptions { Preset = "tiny", Batch = 4 });
        var bench = Enumerable.Range(0, 6).Select(_ => step.Run(null)).ToArray();

        var options = new TrainingOptions { Steps = 6, BatchSize = 4, LogEvery = 1, EvaluateEvery = 0, CheckpointEvery = 0 };
        using var trainer = new VqVaeTrainer(new VqVae(device, config, seed: 0), data, data, options, runDirectory: null);
        var trained = Enumerable.Range(0, 6).Select(_ => (float)trainer.TrainStep().ReconstructionMse).ToArray();
        Assert.That(bench, Is.EqualTo(trained));
        Assert.That(bench.Distinct().Count(), Is.GreaterThan(1), "the losses move: the steps are applied");
    }
}
