using VqVaeCuda.Autodiff;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Optim;

/// <summary>
/// Global gradient-norm clipping, as <c>torch.nn.utils.clip_grad_norm_(params, max_norm)</c> with the 2-norm
/// (kernels/clip.cu). Everything stays on the device: the norm is a deterministic two-pass reduction, and
/// the scaling kernel reads it from device memory and computes its own coefficient, so clipping never
/// waits on the host. The norm is returned as a [1] tensor for a caller that wants to log it.
/// </summary>
public static class GradientClipping
{
    /// <summary>Added to the norm in the coefficient max_norm / (norm + ε), as PyTorch does.</summary>
    public const float Epsilon = 1e-6f;

    private const string Op = "clip_grad_norm";

    /// <summary>The 2-norm of all of <paramref name="gradients"/>, as a [1] tensor from the context's arena.</summary>
    /// <exception cref="OpArgumentException">Not float32, or not on the context's device.</exception>
    public static Tensor GlobalNorm(OpContext ctx, Tensor gradients)
    {
        OpChecks.DTypeIs(Op, gradients, DType.Float32, "gradients");
        OpChecks.Require(ReferenceEquals(gradients.Device, ctx.Device), Op,
                         $"gradients {gradients.Describe()} are on {gradients.Device.Name}, the context on {ctx.Device.Name}");
        int n = ScalarReduction.CountAsInt(Op, gradients, "gradients");
        var norm = ctx.NewTensor(new Shape(1), purpose: "gradient norm");
        int blocks = ScalarReduction.Blocks(n, ctx.Device);
        var partials = ScalarReduction.Partials(ctx, blocks, Op);
        ClipKernels.SumOfSquaresPartials(ctx.Device, gradients.Pointer, partials.Pointer, n, blocks);
        ClipKernels.SqrtOfSum(ctx.Device, partials.Pointer, norm.Pointer, blocks);
        return norm;
    }

    /// <summary>
    /// Scales <paramref name="gradients"/> in place by min(1, maxNorm / (norm + 1e-6)) — i.e. only when the
    /// norm exceeds maxNorm — and returns the norm before clipping, a [1] tensor from the context's arena.
    /// Non-finite gradients behave as in PyTorch: an infinite norm zeroes the finite gradients, a NaN norm
    /// makes every gradient NaN.
    /// </summary>
    /// <exception cref="OpArgumentException">Not float32, not on the context's device, or maxNorm not finite and positive.</exception>
    public static Tensor ClipByGlobalNorm(OpContext ctx, Tensor gradients, float maxNorm)
    {
        OpChecks.Require(float.IsFinite(maxNorm) && maxNorm > 0, Op, $"max norm must be finite and positive, got {maxNorm}");
        var norm = GlobalNorm(ctx, gradients);
        int n = (int)gradients.Count;
        ClipKernels.Scale(ctx.Device, gradients.Pointer, norm.Pointer, maxNorm, n);
        return norm;
    }

    /// <summary>
    /// <see cref="ClipByGlobalNorm(OpContext, Tensor, float)"/> over every gradient of <paramref name="parameters"/>
    /// (its flat gradient buffer: one reduction and one scaling launch for the whole model).
    /// </summary>
    /// <exception cref="OpArgumentException">Not on the context's device, or maxNorm not finite and positive.</exception>
    /// <exception cref="InvalidOperationException">The store is not allocated.</exception>
    public static Tensor ClipByGlobalNorm(OpContext ctx, ParameterStore parameters, float maxNorm) =>
        ClipByGlobalNorm(ctx, parameters.FlatGrads, maxNorm);
}
