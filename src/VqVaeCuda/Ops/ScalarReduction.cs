using VqVaeCuda.Autodiff;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Ops;

/// <summary>
/// The launch shape of the deterministic two-pass reductions to a scalar (losses, gradient norm;
/// kernels/reduce_two_pass.cuh): pass 1 writes one partial sum per block, pass 2 (one block) adds the partials. The grid depends
/// only on the element count, so the tree of additions — and the result, bit for bit — is fixed for
/// a given size whatever order threads and blocks run in.
/// </summary>
internal static class ScalarReduction
{
    /// <summary>Threads per block: VQ_REDUCE_BLOCK in kernels/block_reduce.cuh.</summary>
    public const int Block = KernelLaunch.Block;

    /// <summary>
    /// At most this many partials: enough blocks to keep a GPU's memory system busy (a few per SM),
    /// few enough that pass 2 is one block's grid-stride loop.
    /// </summary>
    public const int MaxBlocks = 512;

    /// <summary>Blocks of pass 1 for <paramref name="count"/> elements.</summary>
    public static int Blocks(long count) => Blocks(count, MaxBlocks);

    /// <summary>
    /// Elements each thread of pass 1 adds before the block folds (at least: more once the grid is at <see cref="MaxBlocks"/>).
    /// Eight coalesced loads per thread keep a GPU's memory pipeline as full as one load per thread does with 8× the
    /// blocks; on the cpu device, whose synchronising kernels run their threads as fibers at ~35 ns per thread per
    /// shuffle or barrier, it makes the fold 8× cheaper (the fashion-mnist MSE over 50k pixels: 196 blocks → 25).
    /// </summary>
    public const int ElementsPerThread = 8;

    /// <summary>Blocks of pass 1 for <paramref name="count"/> elements with at most <paramref name="maxBlocks"/> partials.</summary>
    public static int Blocks(long count, int maxBlocks) =>
        (int)Math.Clamp((count + (long)Block * ElementsPerThread - 1) / ((long)Block * ElementsPerThread), 1, maxBlocks);

    /// <summary>The buffer pass 1 writes its partials to.</summary>
    public static Tensor Partials(OpContext ctx, int blocks, string op) => ctx.NewTensor(new Shape(blocks), purpose: $"{op} partial sums");

    /// <summary>Pass 2: <paramref name="result"/>[0] = Σ partials (reduce.cu's sum_f32_partials with one block).</summary>
    public static void SumPartials(OpContext ctx, Tensor partials, Tensor result) =>
        ReduceKernels.SumPartials(ctx.Device, partials.Pointer, result.Pointer, (int)partials.Count, blocks: 1);

    /// <summary>Element counts are int inside the kernels: refuses a tensor with more than int.MaxValue elements.</summary>
    public static int CountAsInt(string op, Tensor t, string role)
    {
        OpChecks.Require(t.Count <= int.MaxValue, op, $"{role} {t.Describe()} has {t.Count} elements; the kernels index with int (at most {int.MaxValue})");
        return (int)t.Count;
    }

    /// <summary>As <see cref="CountAsInt(string, Tensor, string)"/> for a tensor an op is about to create.</summary>
    public static int CountAsInt(string op, Shape shape, string role)
    {
        OpChecks.Require(shape.Count <= int.MaxValue, op, $"{role} {shape} would have {shape.Count} elements; the kernels index with int (at most {int.MaxValue})");
        return (int)shape.Count;
    }
}
