using VqVaeCuda.Autodiff;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Ops;

/// <summary>Pointwise nonlinearities (kernels/activations.cu). Forward and backward side by side.</summary>
public static class Activations
{
    /// <summary>y = max(x, 0). Backward: dx += dy where y &gt; 0.</summary>
    public static Tensor Relu(OpContext ctx, Tensor x)
    {
        const string op = "relu";
        OpChecks.DTypeIs(op, x, DType.Float32, "input");
        var y = ctx.NewTensor(x.Shape, purpose: op);
        ActivationKernels.ReluForward(ctx.Device, x.Pointer, y.Pointer, (int)x.Count);
        ctx.Record(op, y, [x], tape =>
        {
            if (!x.RequiresGrad) return;
            ActivationKernels.ReluBackward(ctx.Device, y.Pointer, tape.GradOf(y).Pointer, tape.GradOf(x).Pointer, (int)x.Count);
        });
        return y;
    }
}
