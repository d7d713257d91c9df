using VqVaeCuda.Optim;
using VqVaeCuda.Device.Host;
using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Checkpoints;
using VqVaeCuda.Models;
using VqVaeCuda.Modules;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;
using VqVaeCuda.Tests.Support;
using Embedding = VqVaeCuda.Modules.Embedding;

namespace VqVaeCuda.Tests.Modules;

/// <summary>Module: names, state dicts, strict loading, modes — torch.nn.Module's contract.</summary>
public class ModuleTests(DeviceKind kind) : DeviceSpecification(kind)
{
    private static readonly VqVaeConfig Tiny = VqVaeConfig.Preset("tiny");

    private static Dictionary<string, float[]> Snapshot(Module m) => m.StateDict().ToDictionary(e => e.Key, e => e.Value.ToArray());

    [Test]
    public void Module_names_are_the_checkpoint_names()
    {
        using var device = Open();
        // The format-1 fixture was written before modules existed, from hand-written names: the module tree must produce them.
        var (tensors, metadata) = Safetensors.Read(Path.Combine(TestContext.CurrentContext.TestDirectory, "Fixtures", "vqvae-format1-step5.safetensors"));
        using var model = new VqVae(device, VqVaeConfig.FromJson(metadata["config"]));
        var fileModelNames = tensors.Keys.Where(k => !k.StartsWith("optimizer.") && !k.StartsWith("trainer.")).Order(StringComparer.Ordinal);
        Assert.That(model.StateDict().Keys.Order(StringComparer.Ordinal), Is.EqualTo(fileModelNames));
        Assert.That(model.NamedParameters().Select(p => p.Name).Take(3), Is.EqualTo(new[] { "encoder.conv1.weight", "encoder.conv1.bias", "encoder.conv2.weight" }));
        Assert.That(model.NamedParameters().Select(p => p.Name),
                    Does.Contain("encoder.residual.0.conv3.weight").And.Contain("quantizer.codebook").And.Contain("decoder.deconv2.bias"));
        Assert.That(model.NamedBuffers().Select(b => b.Name), Is.EqualTo(new[] { "quantizer.ema.cluster_sizes", "quantizer.ema.embedding_sums" }));
        foreach (var (name, p) in model.NamedParameters()) Assert.That(p.Name, Is.EqualTo(name), "a parameter knows its path");
        Assert.That(model.NamedChildren().Select(c => c.Name), Is.EqualTo(new[] { "encoder", "quantizer", "decoder" }));
    }

    [Test]
    public void A_state_dict_round_trip_is_bit_exact_and_gives_the_same_outputs()
    {
        using var device = Open();
        using var source = new VqVae(device, Tiny, seed: 1);
        using var target = new VqVae(device, Tiny, seed: 2);
        Assert.That(Snapshot(target)["encoder.conv1.weight"], Is.Not.EqualTo(Snapshot(source)["encoder.conv1.weight"]), "different starts");
        var result = target.LoadStateDict(source.StateDict());
        Assert.That(result.MissingKeys, Is.Empty);
        Assert.That(result.UnexpectedKeys, Is.Empty);
        var expected = Snapshot(source);
        var actual = Snapshot(target);
        Assert.That(actual.Keys, Is.EqualTo(expected.Keys));
        foreach (var (name, values) in expected) Assert.That(actual[name], Is.EqualTo(values), name);

        using var arena = new Arena(device, 32 << 20);
        float[] Reconstruct(VqVae m)
        {
            arena.Reset();
            var ctx = new OpContext(arena);
            var x = ctx.NewTensor(new Shape(2, 1, 28, 28));
            x.CopyFrom(TestData.Floats(2 * 28 * 28, 0, 1));
            return m.Forward(ctx, x).Reconstruction.ToArray();
        }
        Assert.That(Reconstruct(target), Is.EqualTo(Reconstruct(source)));
    }

    [Test]
    public void A_state_dict_loads_across_devices_through_the_host()
    {
        // From the cpu device to this fixture's (on the cpu: one running another thread order).
        using var cpu = Open();
        using var other = Open(ThreadOrder.Descending);
        using var source = new VqVae(cpu, Tiny, seed: 1);
        using var target = new VqVae(other, Tiny, seed: 2);
        target.LoadStateDict(source.StateDict());
        Assert.That(target.Quantizer.Codebook.Value.ToArray(), Is.EqualTo(source.Quantizer.Codebook.Value.ToArray()));
    }

    [Test]
    public void A_strict_load_names_every_missing_unexpected_and_mismatched_entry_and_changes_nothing()
    {
        using var device = Open();
        using var source = new VqVae(device, Tiny, seed: 1);
        using var target = new VqVae(device, Tiny, seed: 2);
        using var wrongShape = Tensor.Allocate(device, new Shape(3, 3));
        using var extra = Tensor.Allocate(device, new Shape(4));
        var state = new StateDict();
        foreach (var (name, t) in source.StateDict())
        {
            if (name == "decoder.conv1.bias") continue;                      // missing
            state.Add(name, name == "encoder.conv2.weight" ? wrongShape : t);  // mismatched
        }
        state.Add("prior.embedding.weight", extra);                           // unexpected
        var before = Snapshot(target);

        var e = Assert.Throws<StateDictException>(() => target.LoadStateDict(state))!;
        Assert.That(e.MissingKeys, Is.EqualTo(new[] { "decoder.conv1.bias" }));
        Assert.That(e.UnexpectedKeys, Is.EqualTo(new[] { "prior.embedding.weight" }));
        Assert.That(e.Mismatched, Has.Count.EqualTo(1));
        Assert.That(e.Message, Does.Contain("decoder.conv1.bias").And.Contain("prior.embedding.weight")
                                   .And.Contain("encoder.conv2.weight").And.Contain("[3,3]").And.Contain("[32,16,4,4]"));
        var after = Snapshot(target);
        foreach (var (name, values) in before) Assert.That(after[name], Is.EqualTo(values), $"{name} unchanged");
    }

    [Test]
    public void A_non_strict_load_reports_what_it_left_aside_but_still_refuses_a_shape_mismatch()
    {
        using var device = Open();
        using var source = new VqVae(device, Tiny, seed: 1);
        using var target = new VqVae(device, Tiny, seed: 2);
        var encoderOnly = new StateDict();
        foreach (var (name, t) in source.StateDict())
            if (name.StartsWith("encoder.", StringComparison.Ordinal))
                encoderOnly.Add(name, t);
        var decoderBefore = target.StateDict()["decoder.conv1.weight"].ToArray();
        var result = target.LoadStateDict(encoderOnly, strict: false);
        Assert.That(result.MissingKeys, Does.Contain("quantizer.codebook").And.Contain("decoder.conv1.weight"));
        Assert.That(result.UnexpectedKeys, Is.Empty);
        Assert.That(target.StateDict()["encoder.conv3.weight"].ToArray(), Is.EqualTo(source.StateDict()["encoder.conv3.weight"].ToArray()));
        Assert.That(target.StateDict()["decoder.conv1.weight"].ToArray(), Is.EqualTo(decoderBefore));

        using var wrong = Tensor.Allocate(device, new Shape(7));
        var bad = new StateDict();
        bad.Add("encoder.conv1.bias", wrong);
        Assert.Throws<StateDictException>(() => target.LoadStateDict(bad, strict: false));
    }

    [TestCase(128, 16, TestName = "Loading the state of a model with another K names the codebook and EMA shapes")]
    [TestCase(64, 8, TestName = "Loading the state of a model with another D names every tensor whose shape differs")]
    public void Loading_another_models_state(int k, int d)
    {
        using var device = Open();
        using var other = new VqVae(device, Tiny with { CodebookSize = k, EmbeddingDim = d }, seed: 1);
        using var target = new VqVae(device, Tiny, seed: 2);
        var before = Snapshot(target);
        var e = Assert.Throws<StateDictException>(() => target.LoadStateDict(other.StateDict()))!;
        Assert.That(e.Message, Does.Contain("quantizer.codebook").And.Contain($"[{k},{d}]").And.Contain("[64,16]"));
        if (d != Tiny.EmbeddingDim)
            Assert.That(e.Mismatched.Select(m => m.Split(':')[0]), Does.Contain("encoder.pre_quantize.weight").And.Contain("decoder.conv1.weight"));
        else
            Assert.That(e.Mismatched.Select(m => m.Split(':')[0]), Is.EquivalentTo(new[] { "quantizer.codebook", "quantizer.ema.cluster_sizes", "quantizer.ema.embedding_sums" }));
        var after = Snapshot(target);
        foreach (var (name, values) in before) Assert.That(after[name], Is.EqualTo(values), $"{name} unchanged");
    }

    [Test]
    public void Train_and_eval_set_the_mode_of_the_whole_tree()
    {
        using var device = Open();
        using var model = new VqVae(device, Tiny);
        Assert.That(model.NamedModules().All(m => m.Module.IsTraining), "training mode by default");
        model.Eval();
        Assert.That(model.NamedModules().All(m => !m.Module.IsTraining));
        model.Train();
        Assert.That(model.NamedModules().All(m => m.Module.IsTraining));
    }

    private sealed class BadNames : Module
    {
        public BadNames(bool dotted)
        {
            if (dotted) RegisterParameter("a.b", new Parameter(new Shape(2), Initializer.Zeros));
            else
            {
                RegisterParameter("w", new Parameter(new Shape(2), Initializer.Zeros));
                RegisterModule("w", new Conv2d(1, 1, 1));
            }
        }
    }

    [Test]
    public void A_module_has_no_state_before_it_is_allocated_and_is_allocated_once()
    {
        using var device = Open();
        using var conv = new Conv2d(3, 8, 3, padding: 1);
        Assert.Throws<InvalidOperationException>(() => conv.StateDict());
        Assert.Throws<InvalidOperationException>(() => _ = conv.Weight.Value);
        conv.Allocate(device, seed: 4);
        Assert.That(conv.StateDict().Keys, Is.EqualTo(new[] { "weight", "bias" }));
        Assert.That(conv.Weight.Value.Shape, Is.EqualTo(new Shape(8, 3, 3, 3)));
        float bound = 1f / MathF.Sqrt(27);
        Assert.That(conv.Weight.Value.ToArray(), Has.All.InRange(-bound, bound).And.Some.Not.EqualTo(0f));
        Assert.Throws<InvalidOperationException>(() => conv.Allocate(device));
    }

    [Test]
    public void A_masked_convolution_keeps_its_mask_out_of_the_state_dict_and_applies_it()
    {
        using var device = Open();
        using var layer = new MaskedConv2d(2, 3, ConvMasks.PixelCnn(3, MaskType.A), 1, 1);
        layer.Allocate(device, seed: 1);
        Assert.That(layer.StateDict().Keys, Is.EqualTo(new[] { "weight", "bias" }));
        Assert.That(layer.NamedBuffers().Select(b => b.Name), Is.EqualTo(new[] { "mask" }));
        // Mask A: the output at a pixel does not depend on that pixel or any later one.
        using var arena = new Arena(device, 1 << 20);
        var ctx = new OpContext(arena);
        var x = ctx.NewTensor(new Shape(1, 2, 4, 4));
        var pixels = TestData.Floats(32);
        x.CopyFrom(pixels);
        var y0 = layer.Forward(ctx, x).ToArray();
        for (int c = 0; c < 2; c++) pixels[c * 16 + 1 * 4 + 2] += 5f;  // change pixel (1, 2) in both channels
        x.CopyFrom(pixels);
        var y1 = layer.Forward(ctx, x).ToArray();
        for (int o = 0; o < 3; o++)
            for (int p = 0; p <= 1 * 4 + 2; p++)
                Assert.That(y1[o * 16 + p], Is.EqualTo(y0[o * 16 + p]), $"output {o} at raster position {p}");
        Assert.That(y1[0 * 16 + 1 * 4 + 3], Is.Not.EqualTo(y0[0 * 16 + 1 * 4 + 3]), "the next position sees it");
    }

    [Test]
    public void An_embedding_looks_up_rows_and_code_maps()
    {
        using var device = Open();
        using var embedding = new Embedding(5, 3);
        embedding.Allocate(device, seed: 1);
        var table = embedding.Weight.Value.ToArray();
        using var arena = new Arena(device, 1 << 20);
        var ctx = new OpContext(arena);
        var codes = ctx.NewTensor(new Shape(1, 1, 2), DType.Int32);
        codes.CopyFrom(new[] { 4, 1 });
        var y = embedding.ForwardNchw(ctx, codes).ToArray();  // [1, 3, 1, 2]
        for (int j = 0; j < 3; j++)
        {
            Assert.That(y[j * 2 + 0], Is.EqualTo(table[4 * 3 + j]));
            Assert.That(y[j * 2 + 1], Is.EqualTo(table[1 * 3 + j]));
        }
        Assert.That(embedding.Forward(ctx, codes).Shape, Is.EqualTo(new Shape(1, 1, 2, 3)));
    }

    /// <summary>Not device specifications: one counts the cpu device's live allocations, one checks names (no device).</summary>
    [TestFixture, Category("Cpu")]
    public class CpuOnly
    {
        [Test]
        public void Disposing_a_module_or_optimizer_state_dict_leaves_their_state_alone()
        {
            // The VQ-VAE's EMA buffers are tensors the quantizer owns (not views of the parameter store): a disposed
            // StateDict() once freed them under the model.
            using var device = TestDevices.Cpu();
            using var model = new VqVae(device, VqVaeConfig.Preset("tiny"), seed: 3);
            using var adam = new Adam(model.Parameters());
            var before = model.StateDict().ToDictionary(e => e.Key, e => e.Value.ToArray());
            long live = HostDevice.LiveAllocationCount;
            model.StateDict().Dispose();
            adam.StateDict().Dispose();
            model.StateDict().WithPrefixRemoved("quantizer.").Dispose();
            Assert.That(HostDevice.LiveAllocationCount, Is.EqualTo(live), "nothing freed");
            foreach (var (name, values) in model.StateDict()) Assert.That(values.ToArray(), Is.EqualTo(before[name]), name);
        }

        [Test]
        public void Names_must_be_unique_and_free_of_dots()
        {
            Assert.Throws<ArgumentException>(() => new BadNames(dotted: true));
            Assert.Throws<ArgumentException>(() => new BadNames(dotted: false));
        }
    }
}

/// <summary>Functional: the ops a module's forward composes, reachable from one place.</summary>
public class FunctionalTests(DeviceKind kind) : DeviceSpecification(kind)
{
    [Test]
    public void A_residual_block_is_its_functional_composition()
    {
        using var device = Open();
        using var block = new ResidualBlock(hidden: 4, residualHidden: 2);
        block.Allocate(device, seed: 6);
        using var arena = new Arena(device, 1 << 20);
        var ctx = new OpContext(arena);
        var x = ctx.NewTensor(new Shape(2, 4, 5, 5));
        x.CopyFrom(TestData.Floats(200));
        var expected = Functional.Add(ctx, x,
            Functional.Conv2d(ctx, Functional.Relu(ctx, Functional.Conv2d(ctx, Functional.Relu(ctx, x), block.Conv3.Weight.Value, block.Conv3.Bias.Value, 1, 1)),
                              block.Conv1.Weight.Value, block.Conv1.Bias.Value));
        Assert.That(block.Forward(ctx, x).ToArray(), Is.EqualTo(expected.ToArray()));
    }
}

/// <summary>A module prints as its tree.</summary>
public class ModulePrintingTests(DeviceKind kind) : DeviceSpecification(kind)
{
    [Test]
    public void A_module_prints_its_tree_with_names_and_shapes()
    {
        using var block = new ResidualBlock(hidden: 4, residualHidden: 2);
        Assert.That(block.ToString(), Is.EqualTo("ResidualBlock(\n  (conv3): Conv2d(weight [2,4,3,3], bias [2])\n  (conv1): Conv2d(weight [4,2,1,1], bias [4])\n)"));
        using var device = Open();
        using var model = new VqVae(device, VqVaeConfig.Preset("tiny"));
        Assert.That(model.ToString(), Does.Contain("  (quantizer): VectorQuantizer(codebook [64,16]\n    (ema): CodebookEma(cluster_sizes [64], embedding_sums [64,16])\n  )"));
    }
}
