using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
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

    /// <summary>
    /// Elements each thread of pass 1 adds before the block folds (at least: more once the grid is at <see cref="MaxBlocks"/>),
    /// on a GPU: eight coalesced loads per thread keep the memory pipeline as full as one load per thread does with 8× the
    /// blocks.
    /// </summary>
    public const int ElementsPerThread = 8;

    /// <summary>
    /// The same on the cpu device, whose synchronising kernels run their threads as fibers at ~35 ns per thread per
    /// shuffle or barrier: 64 elements a thread make the fold 8× cheaper again than 8 (the fashion-mnist quantizer's loss
    /// over 200k elements: 98 blocks of 256 fibers → 13). The same kernels; the tree (and so the bits) is fixed per device.
    /// </summary>
    public const int ElementsPerThreadOnCpu = 64;

    /// <summary>Blocks of pass 1 for <paramref name="count"/> elements on <paramref name="device"/>.</summary>
    public static int Blocks(long count, IDevice device) => Blocks(count, device, MaxBlocks);

    /// <summary>Blocks of pass 1 for <paramref name="count"/> elements on <paramref name="device"/> with at most <paramref name="maxBlocks"/> partials.</summary>
    public static int Blocks(long count, IDevice device, int maxBlocks)
    {
        long perBlock = (long)Block * (device.Kind == DeviceKind.Host ? ElementsPerThreadOnCpu : ElementsPerThread);
        return (int)Math.Clamp((count + perBlock - 1) / perBlock, 1, maxBlocks);
    }

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
