using System.Buffers.Binary;
using System.Text;
using VqVaeCuda.Checkpoints;
using VqVaeCuda.Device.Host;
using VqVaeCuda.Models;
using VqVaeCuda.Optim;
using VqVaeCuda.Training;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Fuzzing;

/// <summary>The safetensors files the program reads, each loaded the way the program loads it (onto the CPU device).</summary>
public abstract class SafetensorsFuzzFixture : FuzzFixture
{
    protected HostDevice Device { get; private set; } = null!;

    /// <summary>A VQ-VAE a few KB in size: every part of the format (model, EMA buffers, Adam moments, code usage) but small.</summary>
    protected static readonly VqVaeConfig Small = new()
    {
        InputChannels = 1, ImageSize = 8, Hidden = 4, ResidualHidden = 2, ResidualLayers = 1, CodebookSize = 4, EmbeddingDim = 2,
    };

    protected static readonly GatedPixelCnnConfig SmallPrior = new()
    {
        CodebookSize = 4, Width = 4, Layers = 2, FirstKernel = 3, Kernel = 3, HeadHidden = 4, Classes = 2,
    };

    [OneTimeSetUp]
    public void OpenDevice() => Device = TestDevices.Cpu();

    [OneTimeTearDown]
    public void CloseDevice() => Device?.Dispose();

    /// <summary>The header-length prefix: the field every safetensors file starts with.</summary>
    private protected static readonly FuzzField[] HeaderLength = [new("header length", 0, 8, false)];

    protected byte[] VqVaeFile(bool trainingState, int seed)
    {
        var path = Path.Combine(Dir, $"valid-vqvae-{seed}.safetensors");
        using var model = new VqVae(Device, Small, seed);
        using var adam = new Adam(model.Parameters(), learningRate: 1e-3);
        VqVaeCheckpoint.Save(path, model, trainingState ? new TrainingStateInfo(2, 2, new TrainingOptions(), "shapes/train") : null,
                             trainingState ? adam : null);
        return File.ReadAllBytes(path);
    }

    protected byte[] PriorFile(int seed)
    {
        var path = Path.Combine(Dir, $"valid-prior-{seed}.safetensors");
        using var prior = new GatedPixelCnn(Device, SmallPrior, seed);
        using var adam = new Adam(prior.Parameters(), learningRate: 1e-3);
        PriorCheckpoint.Save(path, prior, new PriorCheckpointInfo(new string('a', 64), 2, 2, "shapes"),
                             new PriorTrainingState(2, 2, new PriorTrainingOptions()), adam);
        return File.ReadAllBytes(path);
    }
}

[TestFixture, Category("Cpu")]
public class VqVaeCheckpointFuzzTests : SafetensorsFuzzFixture
{
    [Test]
    public void Mutated_VQVAE_checkpoints_are_loaded_or_refused_with_the_project_exception()
    {
        var valid = VqVaeFile(trainingState: true, seed: 1);
        byte[][] donors = [VqVaeFile(trainingState: false, seed: 2), PriorFile(3)];
        var path = Path.Combine(Dir, "vqvae.safetensors");
        new FileFuzzer(valid, HeaderLength, donors, SafetensorsMutations.Mutate).Run("VQ-VAE checkpoint", Cases, 60_000,
            b => File.WriteAllBytes(path, b), () =>
            {
                var loaded = VqVaeCheckpoint.Load(path, Device);
                loaded.OptimizerState?.Dispose();
                loaded.Model.Dispose();
                return true;
            });
    }
}

[TestFixture, Category("Cpu")]
public class PriorCheckpointFuzzTests : SafetensorsFuzzFixture
{
    [Test]
    public void Mutated_prior_checkpoints_are_loaded_or_refused_with_the_project_exception()
    {
        var valid = PriorFile(1);
        byte[][] donors = [PriorFile(2), VqVaeFile(trainingState: false, seed: 3)];
        var path = Path.Combine(Dir, "prior.safetensors");
        new FileFuzzer(valid, HeaderLength, donors, SafetensorsMutations.Mutate).Run("prior checkpoint", Cases, 70_000,
            b => File.WriteAllBytes(path, b), () =>
            {
                var loaded = PriorCheckpoint.Load(path, Device);
                loaded.OptimizerState?.Dispose();
                loaded.Prior.Dispose();
                return true;
            });
    }
}

[TestFixture, Category("Cpu")]
public class CodeMapCacheFuzzTests : FuzzFixture
{
    [Test]
    public void Mutated_code_map_caches_are_reused_or_found_stale_never_an_exception()
    {
        var key = new CodeMapCacheKey(new string('b', 64), "shapes, seed 0", CodebookSize: 4, LatentHeight: 2, LatentWidth: 2);
        CodeMapSet Set(string name, int count, int seed)
        {
            var r = new Random(seed);
            return new CodeMapSet(name, Enumerable.Range(0, count * 4).Select(_ => r.Next(4)).ToArray(),
                                  Enumerable.Range(0, count).Select(_ => r.Next(3)).ToArray(), count, 2, 2, classes: 3);
        }
        byte[] File(int seed)
        {
            var p = Path.Combine(Dir, $"valid-{seed}.safetensors");
            CodeMapCache.Save(p, key, Set("train", 12, seed), Set("test", 4, seed + 1));
            return System.IO.File.ReadAllBytes(p);
        }
        var valid = File(1);
        var path = Path.Combine(Dir, "codes.safetensors");
        // The cache refuses by design with a reason (and is rebuilt), so a refusal is TryLoad's null, never an exception.
        new FileFuzzer(valid, [new FuzzField("header length", 0, 8, false)], [File(5)], SafetensorsMutations.Mutate).Run("code-map cache", Cases, 80_000,
            b => System.IO.File.WriteAllBytes(path, b), () =>
            {
                var sets = CodeMapCache.TryLoad(path, key, out var reason);
                Assert.That(reason, Is.Not.Empty);
                if (sets is { } s) Assert.That(s.Train.Codes.Concat(s.Test.Codes), Is.All.InRange(0, 3), "a reused cache holds only codes below K");
                return sets is not null;
            }, refusedAs: "as stale, with a reason (to be rebuilt)");
    }
}

[TestFixture, Category("Cpu")]
public class ConfigFuzzTests : SafetensorsFuzzFixture
{
    /// <summary>
    /// The model config as the program reads it: the JSON of <c>config.json</c>, kept in each checkpoint's metadata and read
    /// by <see cref="VqVaeCheckpoint.ReadHeader"/> (resume, inference, the prior's VQ-VAE). The mutated bytes are the JSON;
    /// bytes that are not UTF-8 reach the reader as the replacement characters a string holds.
    /// </summary>
    [Test]
    public void Mutated_model_configs_are_read_or_refused_with_the_project_exception()
    {
        var checkpoint = Safetensors.Read(WriteValid());
        var valid = Encoding.UTF8.GetBytes(checkpoint.Metadata["config"]);
        var donors = new[] { Encoding.UTF8.GetBytes(VqVaeConfig.Preset("cifar10").ToJson()), Encoding.UTF8.GetBytes(SmallPrior.ToJson()) };
        var path = Path.Combine(Dir, "config-in-checkpoint.safetensors");
        static (string, byte[])? Json(byte[] bytes, Random r)
        {
            var (mutation, json) = JsonMutations.Mutate(Encoding.UTF8.GetString(bytes), r);
            return (mutation, Encoding.UTF8.GetBytes(json));
        }
        new FileFuzzer(valid, [], donors, Json).Run("config (checkpoint metadata)", Cases, 90_000, b =>
            {
                var metadata = checkpoint.Metadata.ToDictionary();
                metadata["config"] = Encoding.UTF8.GetString(b);
                Safetensors.Write(path, [.. checkpoint.Tensors.Values], metadata);
            }, () =>
            {
                var header = VqVaeCheckpoint.ReadHeader(path);
                Assert.That(header.Config.Validate(), Is.SameAs(header.Config), "an accepted config is a valid one");
                return true;
            });
    }

    private string WriteValid()
    {
        var path = Path.Combine(Dir, "valid.safetensors");
        File.WriteAllBytes(path, VqVaeFile(trainingState: true, seed: 1));
        return path;
    }
}
