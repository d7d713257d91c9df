using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Tensors;
using VqVaeCuda.Tests.Support;
using VectorQuantizer = VqVaeCuda.Modules.VectorQuantizer;

namespace VqVaeCuda.Tests.Modules;

/// <summary>The VectorQuantizer module's public codebook life: EMA update, usage, dead-code restarts, k-means.</summary>
public class VectorQuantizerModuleTests(DeviceKind kind) : DeviceSpecification(kind)
{
    private const int K = 8, D = 4;

    private Device.IDevice _device = null!;
    private Arena _arena = null!;
    private VectorQuantizer? _quantizer;

    [SetUp]
    public void SetUp()
    {
        _device = Open();
        _arena = new Arena(_device, 4 << 20);
    }

    [TearDown]
    public void TearDown()
    {
        _quantizer?.Dispose();
        _arena.Dispose();
        _device.Dispose();
    }

    private VectorQuantizer Make(bool useEma)
    {
        _quantizer = new VectorQuantizer(K, D, beta: 0.25f, useEma: useEma);
        _quantizer.Allocate(_device, seed: 3);
        return _quantizer;
    }

    private static Tensor Ze(OpContext ctx, float offset = 0f)
    {
        var z = ctx.NewTensor(new Shape(2, D, 3, 3));
        z.CopyFrom(TestData.Floats(2 * D * 9).Select(v => v + offset).ToArray());
        return z;
    }

    [Test]
    public void A_forward_changes_no_state_and_the_explicit_EMA_update_moves_the_codebook()
    {
        var q = Make(useEma: true);
        var ctx = new OpContext(_arena);
        var zE = Ze(ctx);
        var before = q.Codebook.Value.ToArray();
        var result = q.Forward(ctx, zE);
        q.Forward(ctx, zE);
        Assert.That(q.Codebook.Value.ToArray(), Is.EqualTo(before), "forward leaves the codebook");
        Assert.That(q.Ema!.ClusterSizes.ToArray(), Is.All.EqualTo(1f), "forward leaves the EMA counts");

        q.UpdateCodebook(ctx, zE, result);
        var counts = result.Counts.ToIntArray();
        var sizes = q.Ema.ClusterSizes.ToArray();
        for (int k = 0; k < K; k++)
            Assert.That(sizes[k], Is.EqualTo(0.99f * 1f + 0.01f * counts[k]).Within(1e-6f), $"N_{k}");
        Assert.That(q.Codebook.Value.ToArray(), Is.Not.EqualTo(before));

        q.Eval();
        Assert.Throws<InvalidOperationException>(() => q.UpdateCodebook(ctx, zE, result));
        Assert.Throws<InvalidOperationException>(() => q.RestartDeadCodes(zE, 10, 1, seed: 0));
    }

    [Test]
    public void Without_EMA_the_codebook_learns_by_gradient_and_the_update_is_a_no_op()
    {
        var q = Make(useEma: false);
        Assert.That(q.Ema, Is.Null);
        Assert.That(q.StateDict().Keys, Is.EqualTo(new[] { "codebook" }));
        var tape = new Tape(_arena);
        var ctx = new OpContext(_arena, tape);
        var zE = Ze(ctx);
        var result = q.Forward(ctx, zE);
        var seed = ctx.NewTensor(result.Quantized.Shape);
        seed.CopyFrom(new float[seed.Count]);
        q.ZeroGrad();
        tape.Backward(result.Quantized, seed);
        Assert.That(q.Codebook.Grad.ToArray(), Has.Some.Not.EqualTo(0f), "the codebook loss's gradient reached the codebook");
        var before = q.Codebook.Value.ToArray();
        q.UpdateCodebook(new OpContext(_arena), zE, result);
        Assert.That(q.Codebook.Value.ToArray(), Is.EqualTo(before));
    }

    [Test]
    public void Dead_codes_move_onto_encoder_outputs_and_count_as_used()
    {
        var q = Make(useEma: true);
        var ctx = new OpContext(_arena);
        var zE = Ze(ctx, offset: 50f);  // all far along (1,1,1,1) from the ±1/K start: one code wins everything
        var result = q.Forward(ctx, zE);
        var usage = q.RecordUsage(result.Counts.ToIntArray(), step: 1);
        Assert.That(usage.CodesUsed, Is.LessThan(K));
        var dead = q.DeadCodes(step: 2, deadAfterSteps: 2);
        Assert.That(dead, Has.Length.EqualTo(K - usage.CodesUsed));

        Assert.That(q.RestartDeadCodes(zE, step: 2, deadAfterSteps: 2, seed: 5), Is.EqualTo(dead.Length));
        var vectors = VectorQuantizer.VectorsOf(zE).ToList();
        var codebook = q.Codebook.Value.ToArray();
        var sums = q.Ema!.EmbeddingSums.ToArray();
        var sizes = q.Ema.ClusterSizes.ToArray();
        foreach (int k in dead)
        {
            var code = codebook.AsSpan(k * D, D).ToArray();
            Assert.That(vectors.Any(v => v.SequenceEqual(code)), $"code {k} sits on an encoder output");
            Assert.That(sums.AsSpan(k * D, D).ToArray(), Is.EqualTo(code), $"m_{k} restarts at the code");
            Assert.That(sizes[k], Is.EqualTo(1f), $"N_{k} restarts at 1");
            Assert.That(q.CodeLastUsed[k], Is.EqualTo(2));
        }
        Assert.That(q.RestartDeadCodes(zE, step: 2, deadAfterSteps: 2, seed: 5), Is.Zero, "nothing is dead any more");
    }

    [Test]
    public void KMeans_initialisation_is_public_and_restarts_the_EMA_state_at_the_new_codebook()
    {
        var q = Make(useEma: true);
        float[][] centres = [[4, 0, 0, 0], [0, 4, 0, 0], [0, 0, 4, 0], [0, 0, 0, 4], [-4, 0, 0, 0], [0, -4, 0, 0], [0, 0, -4, 0], [0, 0, 0, -4]];
        var random = new Random(2);
        var points = Enumerable.Range(0, 400).Select(i => centres[i % K].Select(c => c + (float)(random.NextDouble() - 0.5) * 0.2f).ToArray()).ToList();
        q.InitialiseByKMeans(points, new Random(1));
        var codebook = q.Codebook.Value.ToArray();
        foreach (var c in centres)
            Assert.That(Enumerable.Range(0, K).Min(k => Enumerable.Range(0, D).Sum(j => Math.Pow(codebook[k * D + j] - c[j], 2))), Is.LessThan(0.05),
                        $"a code near ({string.Join(",", c)})");
        Assert.That(q.Ema!.EmbeddingSums.ToArray(), Is.EqualTo(codebook));
        Assert.That(q.Ema.ClusterSizes.ToArray(), Is.All.EqualTo(1f));
        Assert.Throws<ArgumentException>(() => q.InitialiseByKMeans(points.Take(K - 1).ToList(), new Random(1)));
    }
}
