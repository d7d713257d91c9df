using VqVaeCuda.Autodiff;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Ops;

/// <summary>Classification loss of the prior (kernels/softmax.cu). The loss is a [1] tensor that stays on the device.</summary>
public static class CrossEntropy
{
    /// <summary>
    /// Softmax cross-entropy over axis 1, averaged over positions: L = (1/P) Σ_q (logsumexp_k l[q, k] − l[q, t_q]).
    /// <paramref name="logits"/> [N, K, H, W] with <paramref name="targets"/> int32 [N, H, W] (P = N·H·W: the
    /// PixelCNN's per-position code distribution), or [N, K] with [N] (P = N); in general logits of rank r ≥ 2
    /// and targets of the logits' shape without axis 1. Numerically stable (the max is subtracted before exp).
    /// Backward: d logits += (softmax − onehot(t)) / P · dL, with dL read on the device. Targets get no gradient.
    /// A target outside [0, K) is not checked on the host (targets usually live on the device): it makes the
    /// loss and its position's gradients NaN, and never reads out of bounds.
    /// </summary>
    /// <exception cref="OpArgumentException">Logits not float32 of rank ≥ 2, targets not int32 of the matching shape, or different devices.</exception>
    public static Tensor SoftmaxCrossEntropy(OpContext ctx, Tensor logits, Tensor targets)
    {
        const string op = "softmax_cross_entropy";
        OpChecks.SameDevice(op, logits, targets);
        OpChecks.DTypeIs(op, logits, DType.Float32, "logits");
        OpChecks.DTypeIs(op, targets, DType.Int32, "targets");
        OpChecks.Require(logits.Shape.Rank >= 2, op, $"logits must be [N, K] or [N, K, H, W], got {logits.Describe()}");
        var expected = logits.Shape.Dims.ToArray().Where((_, i) => i != 1).ToArray();
        OpChecks.Require(targets.Shape == new Shape(expected), op,
                         $"targets must be [{string.Join(",", expected)}] (logits {logits.Shape} without the class axis), got {targets.Describe()}");
        int m = ScalarReduction.CountAsInt(op, logits, "logits");
        int classes = logits.Shape[1];
        int positions = (int)targets.Count;
        int inner = positions / logits.Shape[0];

        var loss = ctx.NewTensor(new Shape(1), purpose: op);
        var lse = ctx.NewTensor(targets.Shape, purpose: $"{op} log-sum-exp per position");
        int blocks = ScalarReduction.Blocks(positions, ctx.Device);
        var partials = ScalarReduction.Partials(ctx, blocks, op);
        float scale = (float)(1.0 / positions);
        SoftmaxKernels.CrossEntropyPartials(ctx.Device, logits.Pointer, targets.Pointer, lse.Pointer, partials.Pointer, blocks, classes, inner, positions,
                                            scale);
        ScalarReduction.SumPartials(ctx, partials, loss);

        ctx.Record(op, loss, [logits], tape =>
        {
            if (!logits.RequiresGrad) return;
            SoftmaxKernels.CrossEntropyBackward(ctx.Device, logits.Pointer, targets.Pointer, lse.Pointer, tape.GradOf(loss).Pointer,
                                                tape.GradOf(logits).Pointer, classes, inner, positions, scale);
        });
        return loss;
    }
}
