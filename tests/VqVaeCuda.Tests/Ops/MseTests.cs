using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Ops;

/// <summary>Losses.Mse (kernels/losses.cu) against a double-precision C# reference and finite differences.</summary>
public class MseTests(DeviceKind kind) : DeviceSpecification(kind)
{
    private static double Reference(float[] p, float[] t) => p.Zip(t, (a, b) => ((double)a - b) * ((double)a - b)).Sum() / p.Length;

    // 1..130k elements: a single partial, several, and more than 512·256 (the grid cap, so blocks loop).
    [TestCase(1, 1)]
    [TestCase(100, 3000)]
    [TestCase(140_000, 160_000)]
    public void Forward_is_the_mean_of_squared_differences(int lo, int hi)
    {
        int n = lo == 1 ? 1 : TestData.OddSize(lo, hi);
        var p = TestData.Floats(n);
        var t = TestData.Floats(n);
        using var device = Open();
        using var arena = new Arena(device, 4L << 20);
        var ctx = new OpContext(arena);
        var loss = Losses.Mse(ctx, ctx.Floats(p, n), ctx.Floats(t, n));
        Assert.That(loss.Shape, Is.EqualTo(new Shape(1)));
        Assert.That(loss.ToArray()[0], Is.EqualTo(Reference(p, t)).Within(1e-3).Percent);
    }

    [Test]
    public void Forward_is_the_two_pass_sum_tree_of_the_scaled_squares()
    {
        // 1 100 001 elements: on the cpu device 68 blocks (256 threads' worth of 64 elements each), each summed by one thread
        // in eight lanes (mse_partials_chunks_f32) and scaled by 1/n before pass 2; a GPU's grid has its own block count and
        // folds each block's grid-stride slices, and the model follows the device's form.
        const int n = 1_100_001;
        var p = TestData.Floats(n);
        var t = TestData.Floats(n);
        foreach (var order in Orders(ThreadOrder.Ascending, ThreadOrder.Descending))
        {
            using var device = Open(order);
            int blocks = ScalarReduction.Blocks(n, device);
            if (OnCpu) Assert.That(blocks, Is.EqualTo(68), "ceil(n / (256 threads · 64 elements)) on the cpu device");
            using var arena = new Arena(device, 16L << 20);
            var ctx = new OpContext(arena);
            var loss = Losses.Mse(ctx, ctx.Floats(p, n), ctx.Floats(t, n)).ToArray()[0];
            float Term(int i) => (p[i] - t[i]) * (p[i] - t[i]);
            float expected = OnCpu
                ? KernelOrderModels.ChunkTwoPassSum(n, blocks, LossKernels.ChunkLength(n, blocks), Term, scale: (float)(1.0 / n))
                : KernelOrderModels.TwoPassSum(n, blocks, Term, scale: (float)(1.0 / n));
            // Every term is positive: the sum of magnitudes is the loss itself.
            Assert.That(loss, Is.EqualTo(expected).Within(DeviceTolerance.OrderedSum(Kind, expected)), $"{order}");
        }
    }

    [TestCase(1)]
    [TestCase(7)]
    [TestCase(100_003)]
    public void Both_forms_of_pass_one_give_the_partial_sums_of_their_trees(int n)
    {
        // Each device runs one form (LossKernels.MsePartials): both are held here to their trees, the chunk form with more
        // blocks than runs of sixteen when n is small (empty runs write 0).
        const int blocks = 5;
        const float scale = 0.25f;
        var p = TestData.Floats(n);
        var t = TestData.Floats(n);
        float Term(int i) => (p[i] - t[i]) * (p[i] - t[i]);
        foreach (var form in KernelForms.Both)
        foreach (var order in Orders(ThreadOrder.Ascending, ThreadOrder.Descending, ThreadOrder.Shuffled))
        {
            using var device = Open(order);
            using var arena = new Arena(device, 4L << 20);
            var ctx = new OpContext(arena);
            var partials = ctx.Zeros(new Shape(blocks));
            LossKernels.MsePartials(device, form, ctx.Floats(p, n).Pointer, ctx.Floats(t, n).Pointer, partials.Pointer, scale, n, blocks);
            var expected = Enumerable.Range(0, blocks).Select(b => scale * (form == KernelLaunch.KernelForm.Cpu
                ? KernelOrderModels.ChunkSum(n, LossKernels.ChunkLength(n, blocks), b, Term)
                : KernelOrderModels.GridStrideBlockSum(n, blocks, ScalarReduction.Block, b, Term))).ToArray();
            var actual = partials.ToArray();
            for (int b = 0; b < blocks; b++)
                Assert.That(actual[b], Is.EqualTo(expected[b]).Within(DeviceTolerance.OrderedSum(Kind, Math.Abs(expected[b]))), $"{form}, {order}, block {b}");
        }
    }

    [Test]
    public void Backward_matches_finite_differences_for_prediction_and_target()
    {
        // Few elements, so that each gradient 2(p − t)/n is large enough for a tight tolerance to mean something.
        using var device = Open();
        var shape = new Shape(2, 1, 2, 3);
        GradientCheck.Check(device, [new(TestData.Floats(12), shape, "prediction"), new(TestData.Floats(12), shape, "target")],
                            (ctx, x) => Losses.Mse(ctx, x[0], x[1]), relativeTolerance: 2e-3, arenaBytes: 1L << 20);
    }

    [Test]
    public void Only_the_prediction_gets_a_gradient_when_the_target_is_a_constant()
    {
        int n = TestData.OddSize(500, 2000);
        var p = TestData.Floats(n);
        var t = TestData.Floats(n);
        using var device = Open();
        using var arena = new Arena(device, 4L << 20);
        var tape = new Tape(arena);
        var ctx = new OpContext(arena, tape);
        var pt = ctx.Floats(p, n);
        var tt = ctx.Floats(t, n);
        pt.RequiresGrad = true;
        var loss = Losses.Mse(ctx, pt, tt);
        // An upstream gradient other than 1: the kernel must read dL from the device.
        var seed = ctx.Floats([0.5f], 1);
        tape.Backward(loss, seed);
        Assert.That(tape.TryGradOf(tt), Is.Null, "the stop-gradient side receives nothing");
        var expected = p.Zip(t, (a, b) => 2.0 * ((double)a - b) / n * 0.5).ToArray();
        TensorFactory.AssertClose(tape.GradOf(pt).ToArray(), expected, 1e-6, "d prediction");
    }

    [Test]
    public void Bad_inputs_are_refused_naming_the_op()
    {
        using var device = Open();
        using var arena = new Arena(device, 1 << 20);
        var ctx = new OpContext(arena);
        var a = ctx.NewTensor(new Shape(2, 3));
        Assert.That(() => Losses.Mse(ctx, a, ctx.NewTensor(new Shape(3, 2))),
                    Throws.TypeOf<OpArgumentException>().With.Message.StartsWith("mse:").And.Message.Contains("[2,3]").And.Message.Contains("[3,2]"));
        Assert.That(() => Losses.Mse(ctx, a, ctx.NewTensor(new Shape(2, 3), DType.Int32)),
                    Throws.TypeOf<OpArgumentException>().With.Message.StartsWith("mse:").And.Message.Contains("target"));
    }

    /// <summary>The cpu device's thread orders: a GPU has one order, its own.</summary>
    [TestFixture, Category("Cpu")]
    public class ThreadOrders
    {
        [Test]
        public void Forward_and_backward_are_bit_equal_in_every_thread_order()
        {
            int k = TestData.OddSize(1000, 3000);
            var p = TestData.Floats(3 * k);
            var t = TestData.Floats(3 * k);
            var runs = TensorFactory.InEveryOrder((ctx, tape) =>
            {
                var pt = ctx.Floats(p, 3, k);
                pt.RequiresGrad = true;
                var loss = Losses.Mse(ctx, pt, ctx.Floats(t, 3, k));
                tape.Backward(loss);
                return [.. loss.ToArray(), .. tape.GradOf(pt).ToArray()];
            });
            TensorFactory.AssertBitEqual(runs, "mse loss and gradient");
        }
    }
}
