using VqVaeCuda.Autodiff;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Ops;

/// <summary>The gated activation of the Gated PixelCNN (kernels/gating.cu).</summary>
public static class Gating
{
    /// <summary>
    /// y = tanh(a) · σ(b) where x = [a; b] is split in halves along axis 1: x is [N, 2C, ...]
    /// ([N, 2C, H, W] for feature maps), y is [N, C, ...]. Backward: da += dy·(1 − tanh²a)·σ(b),
    /// db += dy·tanh(a)·σ(b)·(1 − σ(b)).
    /// </summary>
    /// <exception cref="OpArgumentException">x is not float32, has rank below 2, or an odd axis 1.</exception>
    public static Tensor GatedTanhSigmoid(OpContext ctx, Tensor x)
    {
        const string op = "gated_tanh_sigmoid";
        var (output, channels, inner) = CheckGateInput(op, x);
        int m = ScalarReduction.CountAsInt(op, output, "output");
        var y = ctx.NewTensor(output, purpose: op);
        GatingKernels.Forward(ctx.Device, x.Pointer, y.Pointer, channels, inner, m);
        ctx.Record(op, y, [x], tape =>
        {
            if (!x.RequiresGrad) return;
            GatingKernels.Backward(ctx.Device, x.Pointer, tape.GradOf(y).Pointer, tape.GradOf(x).Pointer, channels, inner, m);
        });
        return y;
    }

    /// <summary>
    /// The conditional gate of the Gated PixelCNN, y = tanh(a + h_a) · σ(b + h_b): as
    /// <see cref="GatedTanhSigmoid(OpContext, Tensor)"/> with a per-sample vector
    /// <paramref name="condition"/> [N, 2C] (Vᵀh, e.g. a class embedding from
    /// <see cref="Embedding.LookupLabels"/>) added to every position of the matching channel before
    /// the gate. Backward reaches both x and the condition; the condition's gradient sums each
    /// (n, channel) row over its positions in a fixed order (deterministic).
    /// </summary>
    /// <exception cref="OpArgumentException">Bad x (as above), or a condition that is not float32 [N, 2C] on x's device.</exception>
    public static Tensor GatedTanhSigmoid(OpContext ctx, Tensor x, Tensor condition)
    {
        const string op = "gated_tanh_sigmoid";
        OpChecks.SameDevice(op, x, condition);
        var (output, channels, inner) = CheckGateInput(op, x);
        OpChecks.DTypeIs(op, condition, DType.Float32, "condition");
        OpChecks.Require(condition.Shape.Rank == 2 && condition.Shape[0] == x.Shape[0] && condition.Shape[1] == x.Shape[1], op,
                         $"condition must be [N, 2C] = [{x.Shape[0]},{x.Shape[1]}] for input {x.Describe()}, got {condition.Describe()}");
        int m = ScalarReduction.CountAsInt(op, output, "output");
        int rows = (int)condition.Count;
        var y = ctx.NewTensor(output, purpose: op);
        GatingKernels.ConditionalForward(ctx.Device, x.Pointer, condition.Pointer, y.Pointer, channels, inner, m);
        ctx.Record(op, y, [x, condition], tape =>
        {
            var dy = tape.GradOf(y);
            if (x.RequiresGrad && condition.RequiresGrad)
            {
                // Both at once: each position's tanh and sigmoid computed once for dx and the row sums.
                GatingKernels.ConditionalBackwardBoth(ctx.Device, x.Pointer, condition.Pointer, dy.Pointer, tape.GradOf(x).Pointer,
                                                      tape.GradOf(condition).Pointer, channels, inner, rows / 2);
                return;
            }
            if (x.RequiresGrad)
                GatingKernels.ConditionalBackward(ctx.Device, x.Pointer, condition.Pointer, dy.Pointer, tape.GradOf(x).Pointer, channels, inner, m);
            if (condition.RequiresGrad)
                GatingKernels.ConditionBackward(ctx.Device, x.Pointer, condition.Pointer, dy.Pointer, tape.GradOf(condition).Pointer, channels, inner,
                                                rows);
        });
        return y;
    }

    /// <summary>The output shape [N, C, ...], C, and the element count of the trailing axes.</summary>
    private static (Shape Output, int Channels, int Inner) CheckGateInput(string op, Tensor x)
    {
        OpChecks.DTypeIs(op, x, DType.Float32, "input");
        OpChecks.Require(x.Shape.Rank >= 2, op, $"input must be [N, 2C, ...] (rank 2 or more), got {x.Describe()}");
        OpChecks.Require(x.Shape[1] % 2 == 0, op, $"input's axis 1 holds the two halves [a; b] and must be even, got {x.Describe()}");
        ScalarReduction.CountAsInt(op, x, "input");
        var dims = x.Shape.Dims.ToArray();
        int channels = dims[1] / 2;
        dims[1] = channels;
        int inner = 1;
        for (int i = 2; i < dims.Length; i++) inner *= dims[i];
        return (new Shape(dims), channels, inner);
    }
}
