using VqVaeCuda.Autodiff;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Ops;

/// <summary>Elementwise arithmetic on whole tensors (kernels/elementwise.cu).</summary>
public static class Elementwise
{
    /// <summary>out = a + b (the residual connection). Backward: da += dout, db += dout.</summary>
    public static Tensor Add(OpContext ctx, Tensor a, Tensor b)
    {
        const string op = "add";
        OpChecks.SameShape(op, a, b);
        OpChecks.DTypeIs(op, a, DType.Float32, "a");
        OpChecks.DTypeIs(op, b, DType.Float32, "b");
        var output = ctx.NewTensor(a.Shape, purpose: op);
        int n = (int)a.Count;
        ElementwiseKernels.Add(ctx.Device, a.Pointer, b.Pointer, output.Pointer, n);
        ctx.Record(op, output, [a, b], tape =>
        {
            var dout = tape.GradOf(output);
            if (a.RequiresGrad) ElementwiseKernels.Axpy(ctx.Device, dout.Pointer, tape.GradOf(a).Pointer, 1f, n);
            if (b.RequiresGrad) ElementwiseKernels.Axpy(ctx.Device, dout.Pointer, tape.GradOf(b).Pointer, 1f, n);
        });
        return output;
    }
}
