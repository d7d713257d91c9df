using VqVaeCuda.Checkpoints;
using VqVaeCuda.Data;
using VqVaeCuda.Device;
using VqVaeCuda.Models;
using VqVaeCuda.Tensors;
using VqVaeCuda.Training;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Training;

/// <summary>
/// Checkpoints that are valid safetensors but not a usable model: non-finite weights, a tensor of the wrong type for its
/// role, broken training metadata. Each is refused by name with the project's exception, by the library and by the CLI
/// (one line on stderr, exit 1).
/// </summary>
[TestFixture, Category("Cpu"), NonParallelizable]
public class CheckpointInputTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        TestDevices.Cpu().Dispose();
        Directory.CreateDirectory(_dir = Path.Combine(Path.GetTempPath(), "vqvae-ckin-" + Guid.NewGuid().ToString("N")));
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    /// <summary>A tiny VQ-VAE checkpoint with training state, rewritten through <paramref name="edit"/>.</summary>
    private string VqVaeCheckpointWith(Action<Dictionary<string, SafetensorsTensor>, Dictionary<string, string>> edit)
    {
        var path = Path.Combine(_dir, "vqvae.safetensors");
        using (var device = TestDevices.Cpu())
        using (var model = new VqVae(device, VqVaeConfig.Preset("tiny"), seed: 1))
        using (var adam = new VqVaeCuda.Optim.Adam(model.Parameters(), learningRate: 1e-3))
            VqVaeCheckpoint.Save(path, model, new TrainingStateInfo(3, 3, new TrainingOptions(), "shapes/train"), adam);
        var (tensors, metadata) = Safetensors.Read(path);
        var t = tensors.ToDictionary();
        var m = metadata.ToDictionary();
        edit(t, m);
        Safetensors.Write(path, [.. t.Values], m);
        return path;
    }

    private static void Poison(Dictionary<string, SafetensorsTensor> tensors, string name, int every)
    {
        var values = tensors[name].ToFloats();
        for (int i = 0; i < values.Length; i += every) values[i] = i % 2 == 0 ? float.NaN : float.PositiveInfinity;
        tensors[name] = SafetensorsTensor.FromFloats(name, tensors[name].Shape, values);
    }

    [Test]
    public void A_checkpoint_with_NaN_weights_is_refused_naming_the_tensor()
    {
        var path = VqVaeCheckpointWith((t, _) => Poison(t, "decoder.conv1.weight", every: 2));
        using var device = TestDevices.Cpu();
        var error = Assert.Throws<CheckpointFormatException>(() => VqVaeCheckpoint.LoadModel(path, device))!;
        Assert.That(error.Message, Does.Contain(path).And.Contain("tensor 'decoder.conv1.weight'").And.Contain("NaN or infinite"));
    }

    [Test]
    public void A_checkpoint_with_an_infinite_optimizer_moment_is_refused_for_resuming()
    {
        var path = VqVaeCheckpointWith((t, _) => Poison(t, "optimizer.state.encoder.conv1.weight.exp_avg_sq", every: 1000));
        using var device = TestDevices.Cpu();
        var error = Assert.Throws<CheckpointFormatException>(() => VqVaeCheckpoint.Load(path, device))!;
        Assert.That(error.Message, Does.Contain("'optimizer.state.encoder.conv1.weight.exp_avg_sq'"));
    }

    [Test]
    public void Reconstruct_refuses_a_checkpoint_with_half_its_weights_non_finite_in_one_line()
    {
        var path = VqVaeCheckpointWith((t, _) =>
        {
            foreach (var name in t.Keys.Where(n => n.EndsWith(".weight", StringComparison.Ordinal) && !n.StartsWith("optimizer.", StringComparison.Ordinal)).ToList())
                Poison(t, name, every: 2);
        });
        var (code, error) = Cli.Run("reconstruct", "-c", path, "--device", "cpu", "--count", "2", "--out", Path.Combine(_dir, "rec"));
        Assert.That(code, Is.EqualTo(1));
        Cli.AssertOneErrorLine(error, path, "NaN or infinite");
        Assert.That(Directory.Exists(Path.Combine(_dir, "rec")), Is.False, "nothing is written from a refused model");
    }

    [Test]
    public void A_code_usage_tensor_of_floats_is_refused_naming_it()
    {
        var path = VqVaeCheckpointWith((t, _) =>
            t["trainer.code_last_used"] = SafetensorsTensor.FromFloats("trainer.code_last_used", [64], new float[64]));
        using var device = TestDevices.Cpu();
        var error = Assert.Throws<CheckpointFormatException>(() => VqVaeCheckpoint.Load(path, device))!;
        Assert.That(error.Message, Does.Contain("'trainer.code_last_used'").And.Contain("F32, expected I32"));
    }

    [TestCase("step", "three")]
    [TestCase("step", "-3")]
    [TestCase("adam_step", "99999999999999999999999")]
    public void Training_metadata_that_is_not_a_count_is_refused_naming_the_field(string field, string value)
    {
        var path = VqVaeCheckpointWith((_, m) => m[field] = value);
        using var device = TestDevices.Cpu();
        var error = Assert.Throws<CheckpointFormatException>(() => VqVaeCheckpoint.Load(path, device))!;
        Assert.That(error.Message, Does.Contain($"metadata '{field}'").And.Contain(value));
    }

    [Test]
    public void A_prior_checkpoint_with_NaN_weights_is_refused_naming_the_tensor()
    {
        var path = Path.Combine(_dir, "prior.safetensors");
        using var device = TestDevices.Cpu();
        var config = GatedPixelCnnConfig.Preset("tiny") with { CodebookSize = 8, Layers = 2, Width = 8, HeadHidden = 8 };
        using (var prior = new GatedPixelCnn(device, config, seed: 1))
            PriorCheckpoint.Save(path, prior, new PriorCheckpointInfo(new string('0', 64), 7, 7, "shapes"));
        var (tensors, metadata) = Safetensors.Read(path);
        var t = tensors.ToDictionary();
        var name = t.Keys.First(n => n.EndsWith(".weight", StringComparison.Ordinal) && t[n].DType == "F32");
        Poison(t, name, every: 3);
        Safetensors.Write(path, [.. t.Values], metadata);
        var error = Assert.Throws<CheckpointFormatException>(() => PriorCheckpoint.LoadModel(path, device))!;
        Assert.That(error.Message, Does.Contain($"tensor '{name}'").And.Contain("NaN or infinite"));
    }

    [Test]
    public void A_config_asking_for_more_memory_than_the_machine_has_is_refused_before_allocating_naming_the_bytes()
    {
        // 2^20 hidden channels: a 3×3 convolution of 2^40·9 floats, 36 TiB: no machine running this test has it.
        var path = VqVaeCheckpointWith((_, m) => m["config"] = (VqVaeConfig.Preset("tiny") with { Hidden = 1 << 20 }).ToJson());
        var (code, error) = Cli.Run("reconstruct", "-c", path, "--device", "cpu", "--count", "2", "--out", Path.Combine(_dir, "rec"));
        Assert.That(code, Is.EqualTo(1));
        Cli.AssertOneErrorLine(error, "out of memory", "asked for", "available");
    }
}
