using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Ops;

public class ActivationTests(DeviceKind kind) : DeviceSpecification(kind)
{
    [Test]
    public void Relu_forward_equals_the_reference()
    {
        var x = TestData.Floats(TestData.OddSize(100, 3000));
        foreach (var order in Orders(ThreadOrder.Ascending, ThreadOrder.Descending))
        {
            using var device = Open(order);
            using var arena = new Arena(device, 1 << 20);
            var ctx = new OpContext(arena);
            var xt = ctx.NewTensor(new Shape(x.Length));
            xt.CopyFrom(x);
            Assert.That(Activations.Relu(ctx, xt).ToArray(), Is.EqualTo(x.Select(v => Math.Max(v, 0f)).ToArray()), $"{order}");
        }
    }

    [Test]
    public void Relu_backward_matches_finite_differences()
    {
        using var device = Open();
        // Keep inputs away from the kink at 0, where the finite difference straddles two slopes.
        var x = TestData.Floats(2 * 3 * 5 * 7).Select(v => v + MathF.Sign(v) * 0.1f).ToArray();
        GradientCheck.Check(device, [new(x, new Shape(2, 3, 5, 7), "x")], (ctx, t) => Activations.Relu(ctx, t[0]));
    }

    [Test]
    public void Gradients_accumulate_when_a_tensor_is_used_twice()
    {
        // y = relu(x) used by two consumers: the second relu's gradient adds to the first's.
        using var device = Open();
        var x = TestData.Floats(50).Select(v => v + MathF.Sign(v) * 0.1f).ToArray();
        GradientCheck.Check(device, [new(x, new Shape(50), "x")], (ctx, t) =>
        {
            var y = Activations.Relu(ctx, t[0]);
            return Elementwise.Add(ctx, Activations.Relu(ctx, y), y);
        });
    }

    [Test]
    public void Backward_twice_or_without_a_forward_is_a_clear_error()
    {
        using var device = Open();
        using var arena = new Arena(device, 1 << 20);
        var tape = new Tape(arena);
        var ctx = new OpContext(arena, tape);
        var x = ctx.NewTensor(new Shape(4));
        x.CopyFrom([1f, -1f, 2f, -2f]);
        var stray = ctx.NewTensor(new Shape(1));
        Assert.That(() => tape.Backward(stray), Throws.TypeOf<TapeException>().With.Message.Contains("without a forward"));
        x.RequiresGrad = true;
        var y = Activations.Relu(ctx, x);
        var seed = ctx.NewTensor(y.Shape);
        seed.CopyFrom([1f, 1f, 1f, 1f]);
        tape.Backward(y, seed);
        Assert.That(() => tape.Backward(y, seed), Throws.TypeOf<TapeException>().With.Message.Contains("already"));
    }
}
