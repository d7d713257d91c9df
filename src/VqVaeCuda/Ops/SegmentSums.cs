using VqVaeCuda.Autodiff;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Ops;

/// <summary>
/// The one deterministic sum by key (kernels/segment_sum.cu) on tensors: the quantizer's per-code sums of z_e
/// and the embedding's per-row sums of the output gradient.
/// </summary>
internal static class SegmentSums
{
    /// <summary>
    /// sums[k, :] = Σ of the vectors of <paramref name="values"/> ([outer, D, inner], M vectors) whose key is k, [K, D],
    /// deterministic; keys outside [0, K) are summed nowhere. Scratch comes from the context's arena.
    /// </summary>
    public static Tensor ByKey(OpContext ctx, string purpose, Tensor values, int m, int d, int inner, Tensor keys, int k)
    {
        var (_, tileCounts, baseLength, chunks) = SegmentSumKernels.Scratch(m, k);
        var sums = ctx.NewTensor(new Shape(k, d), purpose: purpose);
        var counts = ctx.Zeros(new Shape(tileCounts), DType.Int32, purpose);
        var @base = ctx.NewTensor(new Shape(baseLength), DType.Int32, purpose);
        var order = ctx.NewTensor(new Shape(m), DType.Int32, purpose);
        var sorted = ctx.NewTensor(new Shape(m), DType.Int32, purpose);
        var head = ctx.NewTensor(new Shape(chunks, d), purpose: purpose);
        var tail = ctx.NewTensor(new Shape(chunks, d), purpose: purpose);
        SegmentSumKernels.Sums(ctx.Device, values.Pointer, m, d, inner, keys.Pointer, k, sums.Pointer, counts.Pointer, @base.Pointer, order.Pointer,
                               sorted.Pointer, head.Pointer, tail.Pointer);
        return sums;
    }
}
