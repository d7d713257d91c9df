using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Ops;

/// <summary>CrossEntropy.SoftmaxCrossEntropy (kernels/softmax.cu) against a double-precision reference and finite differences.</summary>
public class CrossEntropyTests(DeviceKind kind) : DeviceSpecification(kind)
{
    /// <summary>Per position q = o·inner + p: log-softmax of logits[(o·K + k)·inner + p] over k, in double.</summary>
    private static double[][] LogSoftmax(float[] logits, int outer, int classes, int inner)
    {
        var result = new double[outer * inner][];
        for (int o = 0; o < outer; o++)
            for (int p = 0; p < inner; p++)
            {
                var l = Enumerable.Range(0, classes).Select(k => (double)logits[(o * classes + k) * inner + p]).ToArray();
                double max = l.Max();
                double lse = max + Math.Log(l.Sum(v => Math.Exp(v - max)));
                result[o * inner + p] = l.Select(v => v - lse).ToArray();
            }
        return result;
    }

    private static double ReferenceLoss(float[] logits, int[] targets, int outer, int classes, int inner)
    {
        var logp = LogSoftmax(logits, outer, classes, inner);
        return -targets.Select((t, q) => logp[q][t]).Sum() / targets.Length;
    }

    private static double[] ReferenceGradient(float[] logits, int[] targets, int outer, int classes, int inner, double dloss)
    {
        var logp = LogSoftmax(logits, outer, classes, inner);
        var g = new double[logits.Length];
        for (int o = 0; o < outer; o++)
            for (int k = 0; k < classes; k++)
                for (int p = 0; p < inner; p++)
                {
                    int q = o * inner + p;
                    g[(o * classes + k) * inner + p] = (Math.Exp(logp[q][k]) - (targets[q] == k ? 1 : 0)) / targets.Length * dloss;
                }
        return g;
    }

    // [N, K, H, W] with [N, H, W], and [N, K] with [N] (h = w = 0 marks the rank-2 form).
    [TestCase(4, 512, 8, 8)]
    [TestCase(3, 17, 5, 7)]
    [TestCase(37, 10, 0, 0)]
    [TestCase(700, 3, 0, 0)]
    public void Forward_and_backward_equal_the_reference(int n, int k, int h, int w)
    {
        int inner = h == 0 ? 1 : h * w;
        int[] logitShape = h == 0 ? [n, k] : [n, k, h, w];
        int[] targetShape = h == 0 ? [n] : [n, h, w];
        var logits = TestData.Floats(n * k * inner, -3f, 3f);
        var targets = TensorFactory.RandomInts(n * inner, 0, k);
        using var device = Open();
        using var arena = new Arena(device, 4L << 20);
        var tape = new Tape(arena);
        var ctx = new OpContext(arena, tape);
        var lt = ctx.Floats(logits, logitShape);
        lt.RequiresGrad = true;
        var loss = CrossEntropy.SoftmaxCrossEntropy(ctx, lt, ctx.Ints(targets, targetShape));
        Assert.That(loss.Shape, Is.EqualTo(new Shape(1)));
        Assert.That(loss.ToArray()[0], Is.EqualTo(ReferenceLoss(logits, targets, n, k, inner)).Within(1e-3).Percent);
        tape.Backward(loss, ctx.Floats([0.75f], 1));
        TensorFactory.AssertClose(tape.GradOf(lt).ToArray(), ReferenceGradient(logits, targets, n, k, inner, 0.75), 1e-6, "d logits");
    }

    [Test]
    public void Large_logits_do_not_overflow()
    {
        // exp(±1000) overflows float; subtracting the max keeps every term in range.
        const int n = 5, k = 7;
        var logits = TestData.Floats(n * k, -1f, 1f).Select((v, i) => v + (i % 2 == 0 ? 1000f : -1000f)).ToArray();
        var targets = TensorFactory.RandomInts(n, 0, k);
        using var device = Open();
        using var arena = new Arena(device, 1 << 20);
        var tape = new Tape(arena);
        var ctx = new OpContext(arena, tape);
        var lt = ctx.Floats(logits, n, k);
        lt.RequiresGrad = true;
        var loss = CrossEntropy.SoftmaxCrossEntropy(ctx, lt, ctx.Ints(targets, n));
        Assert.That(loss.ToArray()[0], Is.EqualTo(ReferenceLoss(logits, targets, n, k, 1)).Within(1e-2).Percent);
        tape.Backward(loss);
        Assert.That(tape.GradOf(lt).ToArray(), Has.All.Matches<float>(float.IsFinite));
    }

    [Test]
    public void Backward_matches_finite_differences_for_feature_maps()
    {
        // Few positions, so that each gradient (softmax − onehot)/P is large enough for a tight tolerance to mean something.
        var targets = TensorFactory.RandomInts(2 * 1 * 2, 0, 6);
        using var device = Open();
        GradientCheck.Check(device, [new(TestData.Floats(2 * 6 * 1 * 2, -2f, 2f), new Shape(2, 6, 1, 2), "logits")],
                            (ctx, t) => CrossEntropy.SoftmaxCrossEntropy(ctx, t[0], ctx.Ints(targets, 2, 1, 2)), samplesPerInput: 16,
                            relativeTolerance: 2e-3, arenaBytes: 1L << 20);
    }

    [Test]
    public void Backward_matches_finite_differences_for_vectors()
    {
        var targets = TensorFactory.RandomInts(2, 0, 9);
        using var device = Open();
        GradientCheck.Check(device, [new(TestData.Floats(2 * 9, -2f, 2f), new Shape(2, 9), "logits")],
                            (ctx, t) => CrossEntropy.SoftmaxCrossEntropy(ctx, t[0], ctx.Ints(targets, 2)), samplesPerInput: 16,
                            relativeTolerance: 2e-3, arenaBytes: 1L << 20);
    }

    [Test]
    public void A_target_out_of_range_makes_the_loss_nan()
    {
        using var device = Open();
        using var arena = new Arena(device, 1 << 20);
        var ctx = new OpContext(arena);
        var loss = CrossEntropy.SoftmaxCrossEntropy(ctx, ctx.Floats(TestData.Floats(3 * 4), 3, 4), ctx.Ints([0, 4, 2], 3));
        Assert.That(float.IsNaN(loss.ToArray()[0]));
    }

    [Test]
    public void Bad_inputs_are_refused_naming_the_op()
    {
        using var device = Open();
        using var arena = new Arena(device, 1 << 20);
        var ctx = new OpContext(arena);
        var logits = ctx.NewTensor(new Shape(2, 5, 3, 3));
        Assert.That(() => CrossEntropy.SoftmaxCrossEntropy(ctx, logits, ctx.NewTensor(new Shape(2, 3, 3))),
                    Throws.TypeOf<OpArgumentException>().With.Message.StartsWith("softmax_cross_entropy:").And.Message.Contains("int32"));
        Assert.That(() => CrossEntropy.SoftmaxCrossEntropy(ctx, logits, ctx.NewTensor(new Shape(2, 5, 3), DType.Int32)),
                    Throws.TypeOf<OpArgumentException>().With.Message.StartsWith("softmax_cross_entropy:").And.Message.Contains("[2,3,3]"));
        Assert.That(() => CrossEntropy.SoftmaxCrossEntropy(ctx, ctx.NewTensor(new Shape(5)), ctx.NewTensor(new Shape(5), DType.Int32)),
                    Throws.TypeOf<OpArgumentException>().With.Message.StartsWith("softmax_cross_entropy:"));
    }

    /// <summary>The cpu device's thread orders: a GPU has one order, its own.</summary>
    [TestFixture, Category("Cpu")]
    public class ThreadOrders
    {
        [Test]
        public void Forward_and_backward_are_bit_equal_in_every_thread_order()
        {
            const int n = 6, k = 33, h = 9, w = 10;
            var logits = TestData.Floats(n * k * h * w, -3f, 3f);
            var targets = TensorFactory.RandomInts(n * h * w, 0, k);
            var runs = TensorFactory.InEveryOrder((ctx, tape) =>
            {
                var lt = ctx.Floats(logits, n, k, h, w);
                lt.RequiresGrad = true;
                var loss = CrossEntropy.SoftmaxCrossEntropy(ctx, lt, ctx.Ints(targets, n, h, w));
                tape.Backward(loss);
                return [.. loss.ToArray(), .. tape.GradOf(lt).ToArray()];
            });
            TensorFactory.AssertBitEqual(runs, "cross-entropy loss and gradient");
        }
    }
}
