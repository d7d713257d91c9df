using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Ops;
using VqVaeCuda.Optim;
using VqVaeCuda.Tensors;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Optim;

/// <summary>Optim.GradientClipping (kernels/clip.cu): global 2-norm on the device, scaling only above the maximum.</summary>
public class GradientClippingTests(DeviceKind kind) : DeviceSpecification(kind)
{
    private static double ReferenceNorm(float[] g) => Math.Sqrt(g.Sum(v => (double)v * v));

    [Test]
    public void The_norm_is_the_square_root_of_the_two_pass_sum_tree()
    {
        foreach (var order in Orders(ThreadOrder.Ascending, ThreadOrder.Descending))
        {
            // 1 100 001 elements: 68 blocks of 256 threads on the cpu device (64 elements a thread), each looping over several grid strides.
            const int n = 1_100_001;
            var g = TestData.Floats(n);
            using var device = Open(order);
            int blocks = ScalarReduction.Blocks(n, device);
            if (OnCpu) Assert.That(blocks, Is.EqualTo(68), "ceil(n / (256 threads · 64 elements)) on the cpu device");
            using var arena = new Arena(device, 16L << 20);
            var ctx = new OpContext(arena);
            var norm = GradientClipping.GlobalNorm(ctx, ctx.Floats(g, n)).ToArray()[0];
            float expected = MathF.Sqrt(KernelOrderModels.TwoPassSum(n, blocks, i => g[i] * g[i]));
            // The squares are positive: their sum is the sum of magnitudes, and the square root halves its relative error.
            Assert.That(norm, Is.EqualTo(expected).Within(DeviceTolerance.OrderedSum(Kind, expected)), $"{order}");
        }
    }

    [TestCase(1, 2)]
    [TestCase(1000, 5000)]
    [TestCase(140_000, 160_000)]
    public void The_norm_equals_the_reference(int lo, int hi)
    {
        int n = lo == 1 ? 1 : TestData.OddSize(lo, hi);
        var g = TestData.Floats(n);
        using var device = Open();
        using var arena = new Arena(device, 4L << 20);
        var ctx = new OpContext(arena);
        Assert.That(GradientClipping.GlobalNorm(ctx, ctx.Floats(g, n)).ToArray()[0], Is.EqualTo(ReferenceNorm(g)).Within(1e-3).Percent);
    }

    [Test]
    public void Gradients_above_the_maximum_are_scaled_to_it()
    {
        int n = TestData.OddSize(2000, 6000);
        var g = TestData.Floats(n);
        double norm = ReferenceNorm(g);
        float maxNorm = (float)(norm / 3);
        using var device = Open();
        using var arena = new Arena(device, 1 << 20);
        var ctx = new OpContext(arena);
        var gt = ctx.Floats(g, n);
        var returned = GradientClipping.ClipByGlobalNorm(ctx, gt, maxNorm);
        Assert.That(returned.ToArray()[0], Is.EqualTo(norm).Within(1e-3).Percent, "the norm before clipping is returned");
        double coef = maxNorm / (norm + 1e-6);
        TensorFactory.AssertClose(gt.ToArray(), g.Select(v => v * coef).ToArray(), 1e-6, "clipped gradients");
        Assert.That(ReferenceNorm(gt.ToArray()), Is.EqualTo(maxNorm).Within(1e-2).Percent);
    }

    [Test]
    public void Gradients_at_or_below_the_maximum_are_left_bit_for_bit()
    {
        int n = TestData.OddSize(2000, 6000);
        var g = TestData.Floats(n);
        using var device = Open();
        using var arena = new Arena(device, 1 << 20);
        var ctx = new OpContext(arena);
        var gt = ctx.Floats(g, n);
        GradientClipping.ClipByGlobalNorm(ctx, gt, (float)(ReferenceNorm(g) * 1.01));
        Assert.That(gt.ToArray(), Is.EqualTo(g));
    }

    [Test]
    public void Clipping_a_parameter_store_covers_every_gradient()
    {
        using var device = Open();
        using var store = new ParameterStore(device);
        store.Declare("a", new Shape(3, 5), Initializer.Zeros);
        store.Declare("b", new Shape(70), Initializer.Zeros);
        store.Allocate(1);
        var ga = TestData.Floats(15);
        var gb = TestData.Floats(70);
        store["a"].Grad.CopyFrom(ga);
        store["b"].Grad.CopyFrom(gb);
        using var arena = new Arena(device, 1 << 20);
        var norm = GradientClipping.ClipByGlobalNorm(new OpContext(arena), store, 0.5f);
        double expected = ReferenceNorm([.. ga, .. gb]);
        Assert.That(norm.ToArray()[0], Is.EqualTo(expected).Within(1e-3).Percent);
        var clipped = store["a"].Grad.ToArray().Concat(store["b"].Grad.ToArray()).ToArray();
        Assert.That(ReferenceNorm(clipped), Is.EqualTo(0.5).Within(1e-2).Percent);
    }

    [Test]
    public void Bad_arguments_are_refused_naming_the_op()
    {
        using var device = Open();
        using var other = Open();
        using var arena = new Arena(device, 1 << 20);
        using var otherArena = new Arena(other, 1 << 20);
        var ctx = new OpContext(arena);
        var g = ctx.NewTensor(new Shape(10));
        foreach (var bad in new[] { 0f, -1f, float.NaN, float.PositiveInfinity })
            Assert.That(() => GradientClipping.ClipByGlobalNorm(ctx, g, bad),
                        Throws.TypeOf<OpArgumentException>().With.Message.StartsWith("clip_grad_norm:").And.Message.Contains("max norm"));
        Assert.That(() => GradientClipping.GlobalNorm(ctx, ctx.NewTensor(new Shape(10), DType.Int32)),
                    Throws.TypeOf<OpArgumentException>().With.Message.StartsWith("clip_grad_norm:").And.Message.Contains("float32"));
        Assert.That(() => GradientClipping.GlobalNorm(new OpContext(otherArena), g),
                    Throws.TypeOf<OpArgumentException>().With.Message.StartsWith("clip_grad_norm:"));
    }

    /// <summary>The cpu device's thread orders: a GPU has one order, its own.</summary>
    [TestFixture, Category("Cpu")]
    public class ThreadOrders
    {
        [TestCase(1, 2)]
        [TestCase(1000, 5000)]
        [TestCase(140_000, 160_000)]
        public void The_norm_equals_the_reference_and_is_bit_equal_in_every_thread_order(int lo, int hi)
        {
            int n = lo == 1 ? 1 : TestData.OddSize(lo, hi);
            var g = TestData.Floats(n);
            var runs = TensorFactory.InEveryOrder((ctx, _) => GradientClipping.GlobalNorm(ctx, ctx.Floats(g, n)).ToArray());
            Assert.That(runs[0][0], Is.EqualTo(ReferenceNorm(g)).Within(1e-3).Percent);
            TensorFactory.AssertBitEqual(runs, "gradient norm");
        }
    }
}
