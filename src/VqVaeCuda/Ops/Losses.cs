using VqVaeCuda.Autodiff;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Ops;

/// <summary>Regression losses (kernels/losses.cu). The loss is a [1] tensor that stays on the device.</summary>
public static class Losses
{
    /// <summary>
    /// Mean squared error: L = (1/n) Σ (prediction − target)², a [1] tensor, reduced deterministically
    /// in two passes (no float atomics). Backward: d prediction += 2(p − t)/n · dL, and when the target
    /// requires a gradient, d target −= 2(p − t)/n · dL; dL is read on the device.
    /// For the VQ-VAE's codebook and commitment terms pass a non-differentiable copy as one side
    /// (the stop-gradient): only the side that requires a gradient receives one.
    /// </summary>
    /// <exception cref="OpArgumentException">Devices, shapes or element types differ or are not float32.</exception>
    public static Tensor Mse(OpContext ctx, Tensor prediction, Tensor target)
    {
        const string op = "mse";
        OpChecks.SameDevice(op, prediction, target);
        OpChecks.DTypeIs(op, prediction, DType.Float32, "prediction");
        OpChecks.DTypeIs(op, target, DType.Float32, "target");
        OpChecks.SameShape(op, prediction, target);
        int n = ScalarReduction.CountAsInt(op, prediction, "prediction");

        var loss = ctx.NewTensor(new Shape(1), purpose: op);
        int blocks = ScalarReduction.Blocks(n, ctx.Device);
        var partials = ScalarReduction.Partials(ctx, blocks, op);
        LossKernels.MsePartials(ctx.Device, prediction.Pointer, target.Pointer, partials.Pointer, (float)(1.0 / n), n, blocks);
        ScalarReduction.SumPartials(ctx, partials, loss);

        ctx.Record(op, loss, [prediction, target], tape =>
        {
            var dloss = tape.GradOf(loss);
            float alpha = (float)(2.0 / n);
            if (prediction.RequiresGrad)
                LossKernels.MseBackward(ctx.Device, prediction.Pointer, target.Pointer, dloss.Pointer, tape.GradOf(prediction).Pointer, alpha, n);
            if (target.RequiresGrad)
                LossKernels.MseBackward(ctx.Device, prediction.Pointer, target.Pointer, dloss.Pointer, tape.GradOf(target).Pointer, -alpha, n);
        });
        return loss;
    }
}
