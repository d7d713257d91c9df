using System.Text.Json.Nodes;
using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Checkpoints;
using VqVaeCuda.Data;
using VqVaeCuda.Models;
using VqVaeCuda.Optim;
using VqVaeCuda.Sampling;
using VqVaeCuda.Tensors;
using VqVaeCuda.Training;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Training;

/// <summary>The prior's trainer, checkpoints, code-map cache and generation, on tiny models and small sets.</summary>
public class PriorTrainerTests(DeviceKind kind) : DeviceSpecification(kind)
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => Directory.CreateDirectory(_dir = Path.Combine(Path.GetTempPath(), "vqvae-prior-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    private const int K = 16, Side = 5, Classes = 3;

    private static readonly GatedPixelCnnConfig Small = GatedPixelCnnConfig.Preset("tiny") with { CodebookSize = K, Width = 8, Layers = 3, HeadHidden = 16 };

    private static readonly PriorCheckpointInfo Info = new(new string('a', 64), Side, Side, "synthetic codes");

    // Code maps with structure a prior can learn: a diagonal ramp from a random start, the label a function of the start.
    private static CodeMapSet Maps(string name, int count, int seed)
    {
        var random = new Random(seed);
        var codes = new int[count * Side * Side];
        var labels = new int[count];
        for (int n = 0; n < count; n++)
        {
            int start = random.Next(K);
            labels[n] = start % Classes;
            for (int i = 0; i < Side; i++)
                for (int j = 0; j < Side; j++) codes[(n * Side + i) * Side + j] = (start + i + 2 * j) % K;
        }
        return new CodeMapSet(name, codes, labels, count, Side, Side, Classes);
    }

    [TestCase(LearningRateSchedule.Constant)]
    [TestCase(LearningRateSchedule.Cosine)]
    public void Resuming_a_prior_run_equals_an_uninterrupted_run(LearningRateSchedule schedule)
    {
        using var device = Open();
        var (train, test) = (Maps("train", 40, 1), Maps("test", 8, 2));
        var config = Small with { Classes = Classes };
        // 5 batches per epoch: the run crosses two epoch boundaries, one of them after the resume.
        var options = new PriorTrainingOptions { Steps = 12, BatchSize = 8, LearningRate = 3e-3, Seed = 5, EvaluateEvery = 0, Schedule = schedule };

        using var whole = new PriorTrainer(new GatedPixelCnn(device, config, seed: 5), train, test, options, Info, runDirectory: null);
        var uninterrupted = Enumerable.Range(0, 12).Select(_ => whole.TrainStep()).ToList();

        var checkpoint = Path.Combine(_dir, "prior.safetensors");
        var resumedLosses = new List<PriorStepLoss>();
        using (var first = new PriorTrainer(new GatedPixelCnn(device, config, seed: 5), train, test, options, Info, runDirectory: null))
        {
            for (int i = 0; i < 7; i++) resumedLosses.Add(first.TrainStep());
            first.SaveCheckpoint(checkpoint);
        }
        using var resumed = PriorTrainer.Resume(device, checkpoint, train, test, steps: null, runDirectory: null);
        Assert.That(resumed.Step, Is.EqualTo(7));
        for (int i = 0; i < 5; i++) resumedLosses.Add(resumed.TrainStep());

        Assert.That(resumedLosses, Is.EqualTo(uninterrupted), "every step's loss, bit for bit");
        Assert.That(resumed.Prior.ParameterStore.FlatValues.ToArray(), Is.EqualTo(whole.Prior.ParameterStore.FlatValues.ToArray()), "final parameters");
        var expected = whole.Optimizer.StateDict();
        foreach (var (name, t) in resumed.Optimizer.StateDict()) Assert.That(t.ToArray(), Is.EqualTo(expected[name].ToArray()), name);
        Assert.That(uninterrupted[^1].NllNats, Is.LessThan(uninterrupted[0].NllNats), "the loss falls");
        Assert.That(resumed.Optimizer.LearningRate, Is.EqualTo(options.LearningRateAt(12)), "the last step's rate, from the schedule");
    }

    [Test]
    public void A_cosine_schedule_falls_from_the_rate_to_near_zero_by_the_last_step()
    {
        var cosine = new PriorTrainingOptions { Steps = 100, LearningRate = 4e-3, Schedule = LearningRateSchedule.Cosine };
        Assert.That(cosine.LearningRateAt(1), Is.EqualTo(4e-3));
        Assert.That(cosine.LearningRateAt(51), Is.EqualTo(2e-3).Within(1e-12), "half way");
        Assert.That(cosine.LearningRateAt(100), Is.GreaterThan(0).And.LessThan(4e-3 * 1e-3), "the last step is near 0, not 0");
        Assert.That(Enumerable.Range(1, 99).All(t => cosine.LearningRateAt(t + 1) < cosine.LearningRateAt(t)), "falling at every step");
        Assert.That((cosine with { Schedule = LearningRateSchedule.Constant }).LearningRateAt(100), Is.EqualTo(4e-3));
    }

    [Test]
    public void A_hand_written_loop_equals_the_prior_trainer_bit_for_bit()
    {
        using var device = Open();
        var train = Maps("train", 24, 11);
        const int steps = 7, batch = 8, seed = 4;
        var options = new PriorTrainingOptions { Steps = steps, BatchSize = batch, LearningRate = 2e-3, Seed = seed, EvaluateEvery = 0 };
        using var trainer = new PriorTrainer(new GatedPixelCnn(device, Small, seed), train, Maps("test", 4, 12), options, Info, null);
        var expected = Enumerable.Range(0, steps).Select(_ => trainer.TrainStep().NllNats).ToList();

        using var prior = new GatedPixelCnn(device, Small, seed);
        using var adam = new Adam(prior.Parameters(), learningRate: 2e-3);
        using var arena = new Arena(device, 16L << 20);
        var losses = new List<double>();
        int perEpoch = train.Count / batch, per = Side * Side;
        for (int step = 0; step < steps; step++)
        {
            var order = BatchLoader.EpochOrder(train.Count, seed, step / perEpoch, shuffle: true);
            var codes = order.Skip(step % perEpoch * batch).Take(batch).SelectMany(i => train.Codes.Skip(i * per).Take(per)).ToArray();
            arena.Reset();
            adam.ZeroGrad();
            var tape = new Tape(arena);
            var ctx = new OpContext(arena, tape);
            var k = ctx.NewTensor(new Shape(batch, Side, Side), DType.Int32);
            k.CopyFrom(codes);
            var loss = GatedPixelCnn.Loss(ctx, prior.Forward(ctx, k), k);
            tape.Backward(loss);
            adam.Step();
            losses.Add(loss.ToArray()[0]);
        }

        Assert.That(losses, Is.EqualTo(expected), "every step's loss");
        Assert.That(prior.ParameterStore.FlatValues.ToArray(), Is.EqualTo(trainer.Prior.ParameterStore.FlatValues.ToArray()), "final parameters");
    }

    [Test]
    public void A_prior_checkpoint_round_trip_is_bit_exact()
    {
        using var device = Open();
        var config = Small with { Classes = Classes };
        var options = new PriorTrainingOptions { Steps = 3, BatchSize = 8, EvaluateEvery = 0 };
        using var trainer = new PriorTrainer(new GatedPixelCnn(device, config, seed: 3), Maps("train", 16, 3), Maps("test", 8, 4), options, Info, null);
        for (int i = 0; i < 3; i++) trainer.TrainStep();
        var path = Path.Combine(_dir, "prior.safetensors");
        trainer.SaveCheckpoint(path);

        Assert.That(Safetensors.Read(path).Metadata["format"], Is.EqualTo(PriorCheckpoint.Format));
        var loaded = PriorCheckpoint.Load(path, device);
        using var prior = loaded.Prior;
        using var optimizerState = loaded.OptimizerState!;
        Assert.That(prior.Config, Is.EqualTo(config));
        Assert.That(loaded.Info, Is.EqualTo(Info), "VQ-VAE hash, latent size and data set");
        Assert.That(loaded.State, Is.EqualTo(new PriorTrainingState(3, 3, options)));
        var saved = trainer.Prior.StateDict();
        var restored = prior.StateDict();
        Assert.That(restored.Keys, Is.EqualTo(saved.Keys), "the same entries, in module order");
        Assert.That(saved.Keys, Does.Contain("embedding.weight").And.Contain("layers.0.vertical_condition.weight"));
        foreach (var (name, t) in saved) Assert.That(restored[name].ToArray(), Is.EqualTo(t.ToArray()), name);
        var moments = trainer.Optimizer.StateDict();
        Assert.That(optimizerState.Keys, Is.EqualTo(moments.Keys));
        foreach (var (name, t) in moments) Assert.That(optimizerState[name].ToArray(), Is.EqualTo(t.ToArray()), name);
        Assert.That(PriorCheckpoint.ReadHeader(path).Config, Is.EqualTo(config), "the header reads without a device");
    }

    [Test]
    public void Metrics_lines_give_the_nll_in_nats_and_bits_and_test_lines_the_unigram_entropy()
    {
        using var device = Open();
        var (train, test) = (Maps("train", 24, 5), Maps("test", 12, 6));
        var run = Path.Combine(_dir, "run");
        var options = new PriorTrainingOptions { Steps = 4, BatchSize = 8, LogEvery = 2, EvaluateEvery = 2, CheckpointEvery = 2, SampleCount = 0 };
        using (var trainer = new PriorTrainer(new GatedPixelCnn(device, Small), train, test, options, Info, run)) trainer.Train();

        var lines = File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.That(lines.Select(l => ((string)l["split"]!, (int)l["step"]!)),
                    Is.EqualTo(new[] { ("train", 2), ("test", 2), ("train", 4), ("test", 4) }));
        foreach (var line in lines)
        {
            double nats = (double)line["nll_nats"]!, bits = (double)line["nll_bits"]!;
            Assert.That(nats, Is.GreaterThan(0));
            Assert.That(bits, Is.EqualTo(nats / Math.Log(2)).Within(1e-12).Percent, "nll_bits = nll_nats / ln 2");
            Assert.That(line.ContainsKey("unigram_entropy_nats"), Is.EqualTo((string)line["split"]! == "test"), "the entropy on test lines only");
        }
        // Every code of the ramps is equally likely over many maps, but the test split is small: compute its histogram's entropy.
        var counts = test.Codes.GroupBy(c => c).Select(g => (double)g.Count() / test.Codes.Length);
        Assert.That((double)lines[1]["unigram_entropy_nats"]!, Is.EqualTo(-counts.Sum(p => p * Math.Log(p))).Within(1e-12));
        foreach (var file in new[] { "prior-config.json", "prior-latest.safetensors", "checkpoints/prior-step-000002.safetensors", "loss.png" })
            Assert.That(File.Exists(Path.Combine(run, file)), file);
    }

    [Test]
    public void The_code_map_cache_is_reused_when_the_hash_matches_and_rebuilt_when_the_vqvae_changes()
    {
        using var device = Open();
        var vqvaeConfig = VqVaeConfig.Preset("tiny");
        var train = SyntheticShapes.Generate(12, seed: 1, name: "shapes/train");
        var test = SyntheticShapes.Generate(6, seed: 1, firstIndex: 12, name: "shapes/test");
        int opened = 0;
        (ImageDataset, ImageDataset) OpenSets()
        {
            opened++;
            return (train, test);
        }
        var cache = Path.Combine(_dir, "codes.safetensors");
        string Checkpoint(string name, int seed)
        {
            var path = Path.Combine(_dir, name);
            using var model = new VqVae(device, vqvaeConfig, seed);
            VqVaeCheckpoint.Save(path, model);
            return path;
        }
        var first = Checkpoint("first.safetensors", 1);
        var second = Checkpoint("second.safetensors", 2);
        CodeMapCacheKey KeyOf(string path) => new(PriorCheckpoint.Sha256OfFile(path), "shapes, seed 1", vqvaeConfig.CodebookSize, 7, 7);

        CodeMapCacheResult Build(string checkpoint)
        {
            using var model = VqVaeCheckpoint.LoadModel(checkpoint, device);
            return CodeMapCache.LoadOrBuild(cache, KeyOf(checkpoint), model, OpenSets);
        }

        var built = Build(first);
        Assert.That((built.Rebuilt, opened), Is.EqualTo((true, 1)), built.Reason);
        using (var model = VqVaeCheckpoint.LoadModel(first, device))
            Assert.That(built.Train.Codes, Is.EqualTo(VqVaeInference.EncodeCodes(model, train)), "the cached codes are the encoder's");
        Assert.That(built.Train.Labels, Is.EqualTo(train.Labels));
        Assert.That(built.Test.Count, Is.EqualTo(6));

        var reused = Build(first);
        Assert.That((reused.Rebuilt, opened), Is.EqualTo((false, 1)), reused.Reason);
        Assert.That(reused.Train.Codes, Is.EqualTo(built.Train.Codes));
        Assert.That(reused.Test.Labels, Is.EqualTo(built.Test.Labels));

        var rebuilt = Build(second);
        Assert.That((rebuilt.Rebuilt, opened), Is.EqualTo((true, 2)));
        Assert.That(rebuilt.Reason, Does.Contain("another VQ-VAE checkpoint"));
        Assert.That(Safetensors.Read(cache).Metadata["vqvae_sha256"], Is.EqualTo(PriorCheckpoint.Sha256OfFile(second)));
    }

    [Test]
    public void A_code_map_cache_with_a_code_outside_the_codebook_is_stale()
    {
        var key = new CodeMapCacheKey(new string('b', 64), "codes", K, Side, Side);
        var path = Path.Combine(_dir, "codes.safetensors");
        var bad = Maps("train", 4, 7);
        bad.Codes[3] = K;
        CodeMapCache.Save(path, key, bad, Maps("test", 2, 8));
        Assert.That(CodeMapCache.TryLoad(path, key, out var reason), Is.Null);
        Assert.That(reason, Does.Contain($"holds code {K}").And.Contain($"K = {K}"));
    }

    [Test]
    public void The_trainer_refuses_codes_outside_the_prior_and_a_conditional_prior_without_labels()
    {
        using var device = Open();
        var options = new PriorTrainingOptions { BatchSize = 4 };
        var maps = Maps("train", 8, 9);
        Assert.That(() => new PriorTrainer(new GatedPixelCnn(device, Small with { CodebookSize = 8 }), maps, maps, options, Info, null),
                    Throws.ArgumentException.With.Message.Contains("outside the prior's 0..7"));
        var unlabelled = new CodeMapSet("unlabelled", maps.Codes, null, maps.Count, Side, Side, 0);
        Assert.That(() => new PriorTrainer(new GatedPixelCnn(device, Small with { Classes = 2 }), unlabelled, unlabelled, options, Info, null),
                    Throws.ArgumentException.With.Message.Contains("no labels"));
    }

    [Test]
    public void Generation_gives_codes_in_range_for_the_labels_asked_and_the_same_codes_for_the_same_seed()
    {
        using var device = Open();
        var vqvaeConfig = VqVaeConfig.Preset("tiny");
        using var vqvae = new VqVae(device, vqvaeConfig, seed: 1);
        using var prior = new GatedPixelCnn(device, Small with { CodebookSize = vqvaeConfig.CodebookSize, Classes = Classes }, seed: 2);
        var labels = PriorGeneration.LabelsForEveryClass(5, Classes);
        Assert.That(labels, Is.EqualTo(new[] { 0, 0, 1, 1, 2 }));
        var options = new SamplingOptions { Count = 5, Seed = 3, Labels = labels, Height = 1, Width = 1 };

        var samples = PriorGeneration.Generate(vqvae, prior, options);
        Assert.That(samples.Codes, Has.Length.EqualTo(5 * 7 * 7), "the VQ-VAE's latent size, whatever the options said");
        Assert.That(samples.Codes, Is.All.InRange(0, vqvaeConfig.CodebookSize - 1));
        Assert.That(samples.Labels, Is.EqualTo(labels));
        Assert.That(samples.Images, Has.Length.EqualTo(5 * 28 * 28));
        Assert.That(samples.Images, Is.All.InRange(0f, 1f));
        Assert.That(PriorGeneration.Generate(vqvae, prior, options).Codes, Is.EqualTo(samples.Codes), "same seed, same codes");
        Assert.That(PriorGeneration.Generate(vqvae, prior, options with { Seed = 4 }).Codes, Is.Not.EqualTo(samples.Codes), "another seed, other codes");

        var png = Path.Combine(_dir, "samples.png");
        samples.SaveGrid(png);
        using var bitmap = SkiaSharp.SKBitmap.Decode(png);
        Assert.That(bitmap.Height, Is.EqualTo(3 * (28 * 3 + 2) + 2), "one row per class");
        Assert.That(() => PriorGeneration.Generate(vqvae, prior, options with { Labels = null }), Throws.ArgumentException.With.Message.Contains("class-conditional"));
        Assert.That(() => PriorGeneration.Generate(vqvae, prior, options with { Temperature = 0 }), Throws.ArgumentException.With.Message.Contains("temperature"));
    }

    [Test]
    public void A_non_finite_prior_step_is_skipped_while_skips_last_then_stops_before_the_update_naming_the_first_op()
    {
        using var device = Open();
        var (train, test) = (Maps("train", 32, 1), Maps("test", 8, 2));
        var prior = new GatedPixelCnn(device, Small with { Classes = 0 }, seed: 3);
        // One NaN in the first layer's weights: every step has a NaN gradient (or loss) from that layer on.
        var (name, weight) = prior.StateDict().First(e => e.Key.StartsWith("layers.0.", StringComparison.Ordinal) && e.Key.EndsWith(".weight", StringComparison.Ordinal));
        var values = weight.ToArray();
        values[0] = float.NaN;
        weight.CopyFrom(values);
        var options = new PriorTrainingOptions { Steps = 10, BatchSize = 8, LogEvery = 1, EvaluateEvery = 0, CheckpointEvery = 0, SampleCount = 0, SkipNonFinite = 2 };
        using var trainer = new PriorTrainer(prior, train, test, options, Info, runDirectory: null);
        var others = prior.StateDict().Where(e => e.Key != name).ToDictionary(e => e.Key, e => e.Value.ToArray());

        var e = Assert.Throws<NonFiniteTrainingException>(() => trainer.Train())!;
        TestContext.Out.WriteLine(e.Message);
        Assert.That((trainer.SkippedSteps, e.Step), Is.EqualTo((2, 3)), "steps 1 and 2 skipped, step 3 stops");
        // The poisoned weight itself, as the first op that reads it: the weight mask's multiply.
        Assert.That(e.FirstOp, Does.StartWith($"an input of masked_conv2d (weight mask) (op 2 of the step, input {name} "));
        Assert.That(e.Message, Does.Contain("training stopped at step 3 after skipping 2 such steps").And.Contain(" is NaN;"));
        foreach (var (key, before) in others)
            Assert.That(prior.StateDict()[key].ToArray(), Is.EqualTo(before), $"{key}: no update of a non-finite step reached the weights");
        Assert.That(trainer.History, Is.Empty, "nothing non-finite was logged");
    }
}
