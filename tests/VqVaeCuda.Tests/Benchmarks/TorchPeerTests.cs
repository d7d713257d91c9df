using VqVaeCuda.Autodiff;
using VqVaeCuda.Benchmarks;
using VqVaeCuda.Checkpoints;
using VqVaeCuda.Models;
using VqVaeCuda.Optim;
using VqVaeCuda.Tensors;
using VqVaeCuda.Tests.Data;
using VqVaeCuda.Tests.Support;
using VqVaeCuda.Training;

namespace VqVaeCuda.Tests.Benchmarks;

/// <summary>
/// The PyTorch peer of the step benchmark (tools/peer/torch_vqvae_step.py through <see cref="TorchPeer"/>): that it builds
/// our model (same state-dict names and shapes, same parameter count, same forward on our weights), and how it reports a
/// missing PyTorch. Tests that need PyTorch are skipped, with the reason, where no Python has it (CI).
/// NonParallelizable: one test changes VQVAE_PEER_PYTHON, which the others read. A model's StateDict() is never disposed
/// here: its EMA buffers are tensors the quantizer owns, not views, and disposing the dict would free them under the model.
/// </summary>
[TestFixture, Category("Cpu"), NonParallelizable]
public class TorchPeerTests
{
    private static readonly string[] Presets = ["tiny", "fashion-mnist"];

    private static void RequireTorch()
    {
        if (!TorchPeer.TryFind(out _, out var whyNot)) Assert.Ignore(whyNot);
    }

    /// <summary>Our model's state dict as "name [shape]" lines, in order.</summary>
    private static List<string> OurStateDict(VqVaeConfig config)
    {
        using var device = TestDevices.Cpu();
        using var model = new VqVae(device, config);
        return model.StateDict().Select(e => Line(e.Key, e.Value.Shape.Dims.ToArray())).ToList();
    }

    private static string Line(string name, int[] shape) => $"{name} [{string.Join(",", shape)}]";

    /// <summary>The lines of one list missing from the other, each marked with the side it is on: empty when the two agree.</summary>
    private static List<string> Differences(List<string> ours, List<string> peer) =>
        [.. ours.Except(peer).Select(l => "ours only: " + l), .. peer.Except(ours).Select(l => "peer only: " + l)];

    [TestCaseSource(nameof(Presets))]
    public void The_peer_model_has_our_state_dict_names_and_shapes_in_our_order(string preset)
    {
        RequireTorch();
        var config = VqVaeConfig.Preset(preset);
        var ours = OurStateDict(config);
        var peer = TorchPeer.Describe(config).Select(e => Line(e.Key, e.Value)).ToList();
        Assert.That(Differences(ours, peer), Is.Empty, "names or shapes differ");
        Assert.That(peer, Is.EqualTo(ours), "same entries, other order");
    }

    [Test]
    public void The_peer_model_with_the_codebook_loss_has_our_state_dict_too()
    {
        RequireTorch();
        var config = VqVaeConfig.Preset("tiny") with { UseEma = false, ResidualLayers = 0 };
        var peer = TorchPeer.Describe(config).Select(e => Line(e.Key, e.Value)).ToList();
        Assert.That(peer, Is.EqualTo(OurStateDict(config)));
    }

    [Test]
    public void A_wrong_shape_or_a_missing_name_is_reported_as_a_difference()
    {
        // The comparison the state-dict tests rely on must see a one-element change in a shape and a dropped entry.
        var ours = OurStateDict(VqVaeConfig.Preset("tiny"));
        var wrongShape = ours.Select(l => l == "decoder.deconv1.weight [32,16,4,4]" ? "decoder.deconv1.weight [16,32,4,4]" : l).ToList();
        Assert.That(Differences(ours, wrongShape), Is.EquivalentTo(new[]
        {
            "ours only: decoder.deconv1.weight [32,16,4,4]", "peer only: decoder.deconv1.weight [16,32,4,4]",
        }));
        Assert.That(Differences(ours, ours.Where(l => !l.StartsWith("quantizer.ema.cluster_sizes", StringComparison.Ordinal)).ToList()),
                    Is.EqualTo(new[] { "ours only: quantizer.ema.cluster_sizes [64]" }));
    }

    [Test]
    public void The_peer_initialises_each_tensor_in_our_range()
    {
        RequireTorch();
        // Uniform ±b initialisations: with 256 or more draws the largest |value| lies within 10% of b (the chance that it
        // falls below 0.9·b is 0.9^256 ≈ 2e-12), so a different bound (another fan-in, ±1/D instead of ±1/K) shows.
        // Constant entries (the EMA counts, 1) and copies (the EMA sums start as the codebook) must be equal.
        var config = VqVaeConfig.Preset("tiny");
        var peer = TorchPeer.InitialRanges(config);
        using var device = TestDevices.Cpu();
        using var model = new VqVae(device, config);
        var state = model.StateDict();
        Assert.That(peer.Keys, Is.EqualTo(state.Keys));
        foreach (var (name, tensor) in state)
        {
            var values = tensor.ToArray();
            double ourMin = values.Min(), ourMax = values.Max();
            double[] theirs = peer[name];
            if (values.Length > 1 && ourMin == ourMax)
                Assert.That(theirs, Is.EqualTo(new[] { ourMin, ourMax }), name);
            else if (values.Length >= 256)
                Assert.That(Math.Max(-theirs[0], theirs[1]) / Math.Max(-ourMin, ourMax), Is.EqualTo(1).Within(0.1), name);
        }
        Assert.That(peer["quantizer.ema.embedding_sums"], Is.EqualTo(peer["quantizer.codebook"]), "the EMA sums start at the codebook");
    }

    [Test]
    public void A_short_run_returns_consistent_timings_and_our_parameter_count()
    {
        RequireTorch();
        var config = VqVaeConfig.Preset("tiny");
        var result = TorchPeer.Run(config, batch: 4, threads: 1, warmup: 1, repetitions: 2);

        using var device = TestDevices.Cpu();
        using var model = new VqVae(device, config);
        Assert.That(result.ParameterCount, Is.EqualTo(model.Parameters().Sum(p => p.Shape.Count)));
        Assert.That(result.StepMs, Is.GreaterThan(0));
        Assert.That(new[] { result.StepMsMin, result.StepMsP10, result.StepMs, result.StepMsP90, result.StepMsMax }, Is.Ordered);
        Assert.That(result.ImagesPerSecond, Is.EqualTo(4 * 1000.0 / result.StepMs).Within(1e-6).Percent);
        Assert.That(result.InferenceMs, Is.GreaterThan(0), "the forward alone is timed too");
        Assert.That(result.InferenceImagesPerSecond, Is.EqualTo(4 * 1000.0 / result.InferenceMs).Within(1e-6).Percent);
        Assert.That((result.Batch, result.Threads, result.Repetitions, result.Warmup, result.Device), Is.EqualTo((4, 1, 2, 1, "cpu")));
        Assert.That(result.TorchVersion, Does.Match(@"^\d+\.\d+"));
        Assert.That((result.Compiled, result.Tf32, result.Notes.Count), Is.EqualTo((false, false, 0)));
    }

    [Test]
    public void With_compile_the_run_says_whether_it_compiled_and_if_not_why()
    {
        RequireTorch();
        var result = TorchPeer.Run(VqVaeConfig.Preset("tiny"), batch: 2, threads: 1, warmup: 0, repetitions: 1, compile: true);
        TestContext.Out.WriteLine($"torch {result.TorchVersion}: compiled {result.Compiled}; {string.Join("; ", result.Notes)}");
        if (result.Compiled)
            Assert.That(result.Notes, Is.Empty);
        else
            Assert.That(result.Notes, Has.Some.StartsWith("--compile:").And.Contain("ran eagerly"));
    }

    [TestCase("/nonexistent/python3", "cannot be started")]
    [TestCase("/bin/false", "exit code 1")]
    public void A_configured_python_without_torch_is_reported_and_no_other_is_tried(string python, string reason)
    {
        var saved = Environment.GetEnvironmentVariable(TorchPeer.PythonVariable);
        try
        {
            Environment.SetEnvironmentVariable(TorchPeer.PythonVariable, python);
            Assert.That(TorchPeer.TryFind(out var found, out var whyNot), Is.False);
            Assert.That(found, Is.Null);
            Assert.That(whyNot, Does.Contain(python).And.Contain(reason).And.Contain(TorchPeer.PythonVariable).And.Contain("apt-get install python3-torch"));
            var e = Assert.Throws<TorchPeerException>(() => TorchPeer.Describe(VqVaeConfig.Preset("tiny")));
            Assert.That(e!.Message, Is.EqualTo(whyNot));
        }
        finally
        {
            Environment.SetEnvironmentVariable(TorchPeer.PythonVariable, saved);
        }
    }

    [Test]
    public void A_process_past_its_time_is_stopped_and_reported_as_unfinished()
    {
        // The timeout that bounds the probe and the script: the child is killed, not waited for.
        var start = new System.Diagnostics.ProcessStartInfo("/bin/sleep", "30") { RedirectStandardOutput = true, RedirectStandardError = true };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.That(TorchPeer.Execute(start, TimeSpan.FromMilliseconds(300)), Is.Null);
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(20)));
        Assert.That(TorchPeer.Execute(new System.Diagnostics.ProcessStartInfo("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"])
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        }, TimeSpan.FromSeconds(30)), Is.EqualTo((3, "out\n", "err\n")));
    }

    [Test]
    public void A_script_failure_is_an_error_quoting_its_stderr()
    {
        RequireTorch();
        // Weights of another shape: the script refuses them, and its message must reach the caller.
        var tiny = VqVaeConfig.Preset("tiny");
        using var folder = new TempFolder();
        var weights = folder.File("other.safetensors");
        WriteWeights(tiny with { Hidden = 16 }, seed: 1, weights);
        var e = Assert.Throws<TorchPeerException>(() => TorchPeer.Forward(tiny, weights, new float[28 * 28], 1));
        Assert.That(e!.Message, Does.Contain("failed (exit code 1)").And.Contain("encoder.conv1.weight is [8, 1, 4, 4] in the file, [16, 1, 4, 4] in the model"));
    }

    [TestCase(true)]
    [TestCase(false)]
    public void On_our_weights_the_peer_computes_our_forward(bool useEma)
    {
        RequireTorch();
        var config = VqVaeConfig.Preset("tiny") with { UseEma = useEma };
        const int n = 4;
        // Fixed pixels, not the run's random ones: at initialisation the nearest and second-nearest codes of a vector can
        // lie within float rounding of each other (down to ~4e-6 of the distances' scale over 50 seeds), and then the two
        // argmins may rightly differ. On these inputs they agree, and a fixed input keeps it that way.
        var random = new Random(11);
        var pixels = Enumerable.Range(0, n * 28 * 28).Select(_ => random.NextSingle()).ToArray();
        using var folder = new TempFolder();
        var weights = folder.File("weights.safetensors");
        var (zE, codes, reconstruction) = WriteWeights(config, seed: 7, weights, pixels, n);

        var peer = TorchPeer.Forward(config, weights, pixels, n);
        double zError = RelativeError(peer.EncoderOutput, zE), xError = RelativeError(peer.Reconstruction, reconstruction);
        TestContext.Out.WriteLine($"relative error (max |difference| / max |ours|): z_e {zError:E2}, reconstruction {xError:E2}");
        Assert.That(zError, Is.LessThan(1e-5), "z_e");
        Assert.That(peer.Codes, Is.EqualTo(codes), "code maps");
        Assert.That(xError, Is.LessThan(1e-4), "reconstruction");
    }

    [TestCase(true)]
    [TestCase(false)]
    public void From_our_weights_one_training_step_of_the_peer_is_ours(bool useEma)
    {
        // The step the peer times, checked against ours on the same weights and batch: losses, the quantizer's state
        // (EMA arithmetic, or the codebook's Adam update) and every parameter's Adam update.
        RequireTorch();
        // A large ε and a small γ, so that a slip in the Laplace smoothing or the decay shows after one step (with the
        // defaults, ε = 1e-5 changes the codebook by ~1e-5 of itself), and the script is seen to read both from the config.
        var config = VqVaeConfig.Preset("tiny") with { UseEma = useEma, EmaDecay = 0.9f, EmaEpsilon = 0.5f };
        const int n = 4;
        var random = new Random(11);  // fixed inputs, as in the forward test: no near-tie between codes
        var pixels = Enumerable.Range(0, n * 28 * 28).Select(_ => random.NextSingle()).ToArray();
        using var folder = new TempFolder();
        var weights = folder.File("weights.safetensors");
        using var device = TestDevices.Cpu();
        using var model = new VqVae(device, config, seed: 7);
        var state = model.StateDict();
        Safetensors.Write(weights, StateDictFiles.ToSafetensors(state).ToList());
        var before = state.ToDictionary(e => e.Key, e => e.Value.ToArray());

        var peer = TorchPeer.TrainStep(config, weights, pixels, n);

        using var adam = new Adam(model.Parameters());
        using var arena = new Arena(device, 64L << 20);
        adam.ZeroGrad();
        var tape = new Tape(arena);
        var ctx = new OpContext(arena, tape);
        var x = ctx.NewTensor(new Shape(n, 1, 28, 28));
        x.CopyFrom(pixels);
        var output = model.Forward(ctx, x);
        var loss = VqVae.ReconstructionLoss(ctx, x, output);
        tape.Backward(loss);
        adam.Step();
        model.Quantizer.UpdateCodebook(new OpContext(arena), output.EncoderOutput, output.Quantized);

        double quantizerLoss = config.Beta * output.Quantized.CommitmentLoss.ToArray()[0] + (useEma ? 0 : output.Quantized.CodebookLoss.ToArray()[0]);
        Assert.That(peer["loss.reconstruction"].ToFloats()[0], Is.EqualTo(loss.ToArray()[0]).Within(1e-3).Percent, "reconstruction loss");
        Assert.That(peer["loss.quantizer"].ToFloats()[0], Is.EqualTo(quantizerLoss).Within(1e-3).Percent, "quantizer loss");
        var after = model.StateDict();
        Assert.That(peer.Keys.Where(k => !k.StartsWith("loss.", StringComparison.Ordinal)), Is.EqualTo(after.Keys));
        const double lr = 2e-4;
        int moved = 0, movedOtherwise = 0;
        foreach (var (name, tensor) in after)
        {
            float[] ours = tensor.ToArray(), theirs = peer[name].ToFloats(), start = before[name];
            if (useEma && name.StartsWith("quantizer.", StringComparison.Ordinal))
            {
                Assert.That(RelativeError(theirs, ours), Is.LessThan(1e-5), name + " after the EMA update");
                continue;
            }
            // Adam's first step moves each element by lr·g/(|g| + ε) ≈ ±lr: compare the moves, which are small against the
            // weights. An element whose gradient is within rounding of zero may move differently, so count, not demand all.
            int differ = Enumerable.Range(0, ours.Length).Count(i => Math.Abs((theirs[i] - start[i]) - (ours[i] - start[i])) > 0.01 * lr);
            Assert.That(differ, Is.LessThanOrEqualTo(ours.Length / 1000), $"{name}: {differ} of {ours.Length} elements moved otherwise");
            Assert.That(ours.Zip(start).Any(p => p.First != p.Second), Is.True, $"{name} was not updated");
            moved += ours.Length;
            movedOtherwise += differ;
        }
        TestContext.Out.WriteLine($"Adam's update differed by more than 1% of lr in {movedOtherwise} of {moved} elements");
    }

    /// <summary>‖a − b‖∞ / ‖b‖∞.</summary>
    private static double RelativeError(float[] a, float[] b)
    {
        Assert.That(a, Has.Length.EqualTo(b.Length));
        double worst = 0, scale = 0;
        for (int i = 0; i < a.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs((double)a[i] - b[i]));
            scale = Math.Max(scale, Math.Abs((double)b[i]));
        }
        return worst / scale;
    }

    /// <summary>A fresh model of <paramref name="config"/>'s state dict to <paramref name="path"/>; with pixels, also our forward of them.</summary>
    private static (float[] ZE, int[] Codes, float[] Reconstruction) WriteWeights(VqVaeConfig config, int seed, string path, float[]? pixels = null, int n = 0)
    {
        using var device = TestDevices.Cpu();
        using var model = new VqVae(device, config, seed);
        Safetensors.Write(path, StateDictFiles.ToSafetensors(model.StateDict()).ToList());
        if (pixels is null) return ([], [], []);
        using var arena = new Arena(device, 64L << 20);
        var ctx = new OpContext(arena);
        var x = ctx.NewTensor(new Shape(n, config.InputChannels, config.ImageSize, config.ImageSize));
        x.CopyFrom(pixels);
        var output = model.Forward(ctx, x);
        return (output.EncoderOutput.ToArray(), output.Quantized.Indices.ToIntArray(), output.Reconstruction.ToArray());
    }
}
