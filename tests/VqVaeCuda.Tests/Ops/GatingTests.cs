using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Ops;

/// <summary>Gating.GatedTanhSigmoid (kernels/gating.cu): y = tanh(a)·σ(b) over the two channel halves, optionally conditioned.</summary>
public class GatingTests(DeviceKind kind) : DeviceSpecification(kind)
{
    private static double Sigmoid(double b) => 1.0 / (1.0 + Math.Exp(-b));

    /// <summary>y[n,c,p] = tanh(x[n,c,p] + h[n,c]) · σ(x[n,C+c,p] + h[n,C+c]), h = 0 without a condition.</summary>
    private static double[] Reference(float[] x, float[]? h, int n, int c, int inner)
    {
        var y = new double[n * c * inner];
        for (int s = 0; s < n; s++)
            for (int k = 0; k < c; k++)
                for (int p = 0; p < inner; p++)
                {
                    double a = x[(s * 2 * c + k) * inner + p] + (h?[s * 2 * c + k] ?? 0.0);
                    double b = x[(s * 2 * c + c + k) * inner + p] + (h?[s * 2 * c + c + k] ?? 0.0);
                    y[(s * c + k) * inner + p] = Math.Tanh(a) * Sigmoid(b);
                }
        return y;
    }

    [TestCase(3, 5, 7, 9)]
    [TestCase(2, 4, 1, 1)]
    public void Forward_equals_the_reference(int n, int c, int h, int w)
    {
        var x = TestData.Floats(n * 2 * c * h * w, -4f, 4f);
        using var device = Open();
        using var arena = new Arena(device, 4L << 20);
        var ctx = new OpContext(arena);
        var y = Gating.GatedTanhSigmoid(ctx, ctx.Floats(x, n, 2 * c, h, w));
        Assert.That(y.Shape, Is.EqualTo(new Shape(n, c, h, w)));
        TensorFactory.AssertClose(y.ToArray(), Reference(x, null, n, c, h * w), 1e-6, "y");
    }

    [Test]
    public void Vectors_of_rank_2_are_split_the_same_way()
    {
        var x = TestData.Floats(4 * 6, -3f, 3f);
        using var device = Open();
        using var arena = new Arena(device, 1 << 20);
        var ctx = new OpContext(arena);
        var y = Gating.GatedTanhSigmoid(ctx, ctx.Floats(x, 4, 6));
        Assert.That(y.Shape, Is.EqualTo(new Shape(4, 3)));
        TensorFactory.AssertClose(y.ToArray(), Reference(x, null, 4, 3, 1), 1e-6, "y");
    }

    [Test]
    public void Conditioned_forward_adds_the_per_sample_vector_before_the_gate()
    {
        const int n = 3, c = 4, h = 5, w = 6;
        var x = TestData.Floats(n * 2 * c * h * w, -3f, 3f);
        var cond = TestData.Floats(n * 2 * c, -2f, 2f);
        using var device = Open();
        using var arena = new Arena(device, 4L << 20);
        var ctx = new OpContext(arena);
        var y = Gating.GatedTanhSigmoid(ctx, ctx.Floats(x, n, 2 * c, h, w), ctx.Floats(cond, n, 2 * c));
        TensorFactory.AssertClose(y.ToArray(), Reference(x, cond, n, c, h * w), 1e-6, "y");
    }

    [Test]
    public void Backward_matches_finite_differences()
    {
        using var device = Open();
        GradientCheck.Check(device, [new(TestData.Floats(2 * 6 * 4 * 5, -2f, 2f), new Shape(2, 6, 4, 5), "x")],
                            (ctx, t) => Gating.GatedTanhSigmoid(ctx, t[0]), samplesPerInput: 16, relativeTolerance: 5e-3, arenaBytes: 1L << 20);
    }

    [Test]
    public void Conditioned_backward_matches_finite_differences_for_input_and_condition()
    {
        using var device = Open();
        GradientCheck.Check(device,
                            [new(TestData.Floats(2 * 6 * 3 * 4, -2f, 2f), new Shape(2, 6, 3, 4), "x"),
                             new(TestData.Floats(2 * 6, -1f, 1f), new Shape(2, 6), "condition")],
                            (ctx, t) => Gating.GatedTanhSigmoid(ctx, t[0], t[1]), samplesPerInput: 12, relativeTolerance: 5e-3, arenaBytes: 1L << 20);
    }

    [Test]
    public void The_one_pass_conditioned_backward_gives_the_bits_of_the_two_kernels_it_replaces()
    {
        // Both gradients wanted: one pass (a thread per pair of rows). One at a time: the element kernel for dx, the row
        // kernel for the condition. Same values, same summation order.
        using var device = Open();
        using var arena = new Arena(device, 4L << 20);
        const int n = 3, c = 5, h = 7, w = 7;
        var x = TestData.Floats(n * 2 * c * h * w, -3f, 3f);
        var cond = TestData.Floats(n * 2 * c);
        var dy = TestData.Floats(n * c * h * w);
        (float[]? Dx, float[]? Dcond) Run(bool wantX, bool wantCondition)
        {
            arena.Reset();
            var tape = new Tape(arena);
            var ctx = new OpContext(arena, tape);
            var xt = ctx.Floats(x, n, 2 * c, h, w);
            var ct = ctx.Floats(cond, n, 2 * c);
            xt.RequiresGrad = wantX;
            ct.RequiresGrad = wantCondition;
            tape.Backward(Gating.GatedTanhSigmoid(ctx, xt, ct), ctx.Floats(dy, n, c, h, w));
            return (wantX ? tape.GradOf(xt).ToArray() : null, wantCondition ? tape.GradOf(ct).ToArray() : null);
        }
        var both = Run(true, true);
        Assert.That(both.Dx, Is.EqualTo(Run(true, false).Dx), "dx");
        Assert.That(both.Dcond, Is.EqualTo(Run(false, true).Dcond), "dcondition");
        Assert.That(both.Dcond!.Count(v => v != 0), Is.EqualTo(n * 2 * c), "every row has a gradient");
    }

    [Test]
    public void Bad_inputs_are_refused_naming_the_op()
    {
        using var device = Open();
        using var arena = new Arena(device, 1 << 20);
        var ctx = new OpContext(arena);
        Assert.That(() => Gating.GatedTanhSigmoid(ctx, ctx.NewTensor(new Shape(2, 5, 3, 3))),
                    Throws.TypeOf<OpArgumentException>().With.Message.StartsWith("gated_tanh_sigmoid:").And.Message.Contains("even"));
        Assert.That(() => Gating.GatedTanhSigmoid(ctx, ctx.NewTensor(new Shape(8))),
                    Throws.TypeOf<OpArgumentException>().With.Message.StartsWith("gated_tanh_sigmoid:"));
        Assert.That(() => Gating.GatedTanhSigmoid(ctx, ctx.NewTensor(new Shape(2, 4, 3, 3)), ctx.NewTensor(new Shape(2, 2))),
                    Throws.TypeOf<OpArgumentException>().With.Message.StartsWith("gated_tanh_sigmoid:").And.Message.Contains("[2,4]"));
        Assert.That(() => Gating.GatedTanhSigmoid(ctx, ctx.NewTensor(new Shape(2, 4), DType.Int32)),
                    Throws.TypeOf<OpArgumentException>().With.Message.StartsWith("gated_tanh_sigmoid:").And.Message.Contains("float32"));
    }

    /// <summary>The cpu device's thread orders: a GPU has one order, its own.</summary>
    [TestFixture, Category("Cpu")]
    public class ThreadOrders
    {
        [Test]
        public void Forward_and_backward_are_bit_equal_in_every_thread_order()
        {
            const int n = 2, c = 8, h = 9, w = 11;
            var x = TestData.Floats(n * 2 * c * h * w, -3f, 3f);
            var cond = TestData.Floats(n * 2 * c);
            var dy = TestData.Floats(n * c * h * w);
            var runs = TensorFactory.InEveryOrder((ctx, tape) =>
            {
                var xt = ctx.Floats(x, n, 2 * c, h, w);
                var ct = ctx.Floats(cond, n, 2 * c);
                xt.RequiresGrad = ct.RequiresGrad = true;
                var y = Gating.GatedTanhSigmoid(ctx, xt, ct);
                tape.Backward(y, ctx.Floats(dy, n, c, h, w));
                return [.. y.ToArray(), .. tape.GradOf(xt).ToArray(), .. tape.GradOf(ct).ToArray()];
            });
            TensorFactory.AssertBitEqual(runs, "gate output and gradients");
        }
    }
}
