using VqVaeCuda.Autodiff;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Ops;

/// <summary>
/// Table lookups (kernels/embedding.cu): codebook rows for code maps, the prior's input embedding,
/// class-label conditioning. The backward scatter-adds the output gradient into the table's rows,
/// deterministically: the gradients of the positions that used a row are summed in an order fixed by
/// the indices alone (kernels/segment_sum.cu, the quantizer's per-code sums), so results are bit-equal
/// across thread orders and runs (no float atomics).
/// <para>
/// Indices are int32 and are not checked on the host (they usually come from the device, e.g. the
/// quantizer's argmin, and checking them would cost a copy and a sync in the middle of a step). An
/// index outside [0, V) yields a NaN output row — which shows in the loss — and no gradient; it
/// never reads or writes out of bounds.
/// </para>
/// </summary>
public static class Embedding
{
    /// <summary>
    /// out[s..., :] = table[indices[s...], :]: <paramref name="table"/> [V, D], <paramref name="indices"/> int32 of
    /// any shape S; the result is [S..., D]. Backward: d table[v] += Σ over positions s with indices[s] = v of d out[s].
    /// </summary>
    /// <exception cref="OpArgumentException">The table is not float32 [V, D], the indices not int32, or the devices differ.</exception>
    public static Tensor Lookup(OpContext ctx, Tensor table, Tensor indices)
    {
        const string op = "embedding";
        var (rows, dim) = CheckTable(op, table, indices, "indices");
        var output = indices.Shape.Dims.ToArray().Append(dim).ToArray();
        return Gather(ctx, op, table, indices, new Shape(output), rows, dim, inner: 1);
    }

    /// <summary>
    /// A code map's embedding in channel-first layout, the Gated PixelCNN's input:
    /// out[n, :, h, w] = table[codes[n, h, w], :]. <paramref name="table"/> [V, D], <paramref name="codes"/> int32
    /// [N, H, W]; the result is [N, D, H, W]. Backward as <see cref="Lookup"/>.
    /// </summary>
    /// <exception cref="OpArgumentException">The table is not float32 [V, D], the codes not int32 [N, H, W], or the devices differ.</exception>
    public static Tensor LookupNchw(OpContext ctx, Tensor table, Tensor codes)
    {
        const string op = "embedding_nchw";
        var (rows, dim) = CheckTable(op, table, codes, "codes");
        OpChecks.Rank(op, codes, 3, "codes ([N, H, W])");
        int n = codes.Shape[0], h = codes.Shape[1], w = codes.Shape[2];
        return Gather(ctx, op, table, codes, new Shape(n, dim, h, w), rows, dim, inner: h * w);
    }

    /// <summary>
    /// Class-label conditioning: out[n, :] = table[labels[n], :], <paramref name="table"/> [classes, D],
    /// <paramref name="labels"/> int32 [N]; the result is [N, D] (the h of the conditional gate,
    /// <see cref="Gating.GatedTanhSigmoid(OpContext, Tensor, Tensor)"/>). <see cref="Lookup"/> restricted to rank-1 labels.
    /// </summary>
    /// <exception cref="OpArgumentException">The table is not float32 [classes, D], the labels not int32 [N], or the devices differ.</exception>
    public static Tensor LookupLabels(OpContext ctx, Tensor table, Tensor labels)
    {
        const string op = "embedding_labels";
        var (rows, dim) = CheckTable(op, table, labels, "labels");
        OpChecks.Rank(op, labels, 1, "labels ([N])");
        return Gather(ctx, op, table, labels, new Shape(labels.Shape[0], dim), rows, dim, inner: 1);
    }

    private static (int Rows, int Dim) CheckTable(string op, Tensor table, Tensor indices, string role)
    {
        OpChecks.SameDevice(op, table, indices);
        OpChecks.DTypeIs(op, table, DType.Float32, "table");
        OpChecks.Rank(op, table, 2, "table ([V, D])");
        OpChecks.DTypeIs(op, indices, DType.Int32, role);
        ScalarReduction.CountAsInt(op, table, "table");
        OpChecks.Require(indices.Count * table.Shape[1] <= int.MaxValue, op,
                         $"output of {indices.Describe()} rows of {table.Describe()} would exceed {int.MaxValue} elements");
        return (table.Shape[0], table.Shape[1]);
    }

    /// <summary>
    /// out[(o·D + d)·inner + p] = table[indices[o·inner + p]·D + d]: rows layout with inner = 1,
    /// channel-first with inner = H·W.
    /// </summary>
    private static Tensor Gather(OpContext ctx, string op, Tensor table, Tensor indices, Shape outputShape, int rows, int dim, int inner)
    {
        int s = (int)indices.Count;
        int m = s * dim;
        var output = ctx.NewTensor(outputShape, purpose: op);
        EmbeddingKernels.Gather(ctx.Device, table.Pointer, indices.Pointer, output.Pointer, rows, dim, inner, m);
        ctx.Record(op, output, [table], tape =>
        {
            if (!table.RequiresGrad) return;
            // The output gradient holds S vectors of D components in the [outer, D, inner] layout; sum them by index.
            var sums = SegmentSums.ByKey(ctx, $"{op} row gradients", tape.GradOf(output), s, dim, inner, indices, rows);
            ElementwiseKernels.Axpy(ctx.Device, sums.Pointer, tape.GradOf(table).Pointer, 1f, rows * dim);
        });
        return output;
    }
}
