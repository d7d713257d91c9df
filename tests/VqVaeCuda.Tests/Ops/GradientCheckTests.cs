using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Ops;

/// <summary>
/// The finite-difference check itself: it passes a correct backward and fails each kind of wrong one, so that every
/// "gradients match finite differences" test in this project means something.
/// </summary>
public class GradientCheckTests(DeviceKind kind) : DeviceSpecification(kind)
{
    public enum Fault { None, ScaledBy09, ScaledBy11, Zero, OneInputZero, ShiftedByOneElement, SignFlipped }

    /// <summary>y = a + b with a backward that makes <paramref name="fault"/>: da = s·dy, db = dy when correct.</summary>
    private static Tensor AddWith(Fault fault, OpContext ctx, Tensor a, Tensor b)
    {
        var output = ctx.NewTensor(a.Shape);
        int n = (int)a.Count;
        ElementwiseKernels.Add(ctx.Device, a.Pointer, b.Pointer, output.Pointer, n);
        ctx.Record("add with a faulty backward", output, [a, b], tape =>
        {
            var dy = tape.GradOf(output);
            var da = tape.GradOf(a);
            switch (fault)
            {
                case Fault.None or Fault.OneInputZero: ElementwiseKernels.Axpy(ctx.Device, dy.Pointer, da.Pointer, 1f, n); break;
                case Fault.ScaledBy09: ElementwiseKernels.Axpy(ctx.Device, dy.Pointer, da.Pointer, 0.9f, n); break;
                case Fault.ScaledBy11: ElementwiseKernels.Axpy(ctx.Device, dy.Pointer, da.Pointer, 1.1f, n); break;
                case Fault.SignFlipped: ElementwiseKernels.Axpy(ctx.Device, dy.Pointer, da.Pointer, -1f, n); break;
                case Fault.ShiftedByOneElement:
                    // da[j] += dy[j + 1]: an indexing slip, with every value of the right size.
                    ElementwiseKernels.Axpy(ctx.Device, dy.Pointer.OffsetFloats(1), da.Pointer, 1f, n - 1);
                    break;
                case Fault.Zero: break;
            }
            if (fault != Fault.OneInputZero) ElementwiseKernels.Axpy(ctx.Device, dy.Pointer, tape.GradOf(b).Pointer, 1f, n);
        });
        return output;
    }

    private void RunCheck(Fault fault)
    {
        using var device = Open();
        var shape = new Shape(3, 5, 7);
        GradientCheck.Run(device, [new(TestData.Floats(105), shape, "a"), new(TestData.Floats(105), shape, "b")],
                          (ctx, t) => AddWith(fault, ctx, t[0], t[1]), samplesPerInput: 12, arenaBytes: 1L << 20);
    }

    [Test]
    public void A_correct_backward_passes() => RunCheck(Fault.None);

    [TestCase(Fault.ScaledBy09, "finite difference")]
    [TestCase(Fault.ScaledBy11, "finite difference")]
    [TestCase(Fault.SignFlipped, "finite difference")]
    [TestCase(Fault.ShiftedByOneElement, "finite difference")]
    [TestCase(Fault.Zero, "zero everywhere")]
    [TestCase(Fault.OneInputZero, "d/db: the analytic gradient is zero everywhere")]
    public void A_wrong_backward_fails(Fault fault, string message)
    {
        var error = Assert.Throws<GradientMismatchException>(() => RunCheck(fault));
        Assert.That(error!.Message, Does.Contain(message));
    }

    [Test]
    public void A_gradient_with_too_few_clearly_non_zero_elements_fails()
    {
        // One element in a hundred carries the gradient: a backward that lost the rest must not pass on that one.
        var sparse = new float[100];
        sparse[17] = 1f;
        Assert.That(() => GradientCheck.ClearlyNonZeroElements(sparse, "x", required: 12),
                    Throws.TypeOf<GradientMismatchException>().With.Message.Contains("only 1 of 100"));
        Assert.That(GradientCheck.ClearlyNonZeroElements([0f, 1f, -0.5f, 0.01f], "x", required: 2), Is.EqualTo(new[] { 1, 2 }));
    }

    [Test]
    public void The_tolerance_is_relative_to_the_element_with_a_floor_tied_to_the_tensor()
    {
        // A small element of a large gradient: 10% off fails although the error (1e-3) is far below 1.
        Assert.That(() => GradientCheck.Compare(0.01, 0.011, 2e-2, largest: 0.2, "x"), Throws.TypeOf<GradientMismatchException>());
        Assert.That(() => GradientCheck.Compare(0.01, 0.0101, 2e-2, largest: 0.2, "x"), Throws.Nothing);
        Assert.That(() => GradientCheck.Compare(0, 1e-4, 2e-2, largest: 0.2, "x"), Throws.Nothing, "within the noise floor 1e-3 × 0.2");
        Assert.That(() => GradientCheck.Compare(double.NaN, 0, 2e-2, largest: 1, "x"), Throws.TypeOf<GradientMismatchException>());
    }
}
