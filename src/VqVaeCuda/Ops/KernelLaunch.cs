using VqVaeCuda.Device;

namespace VqVaeCuda.Ops;

/// <summary>
/// What every typed launcher shares (one launcher per kernel file: <see cref="ElementwiseKernels"/>,
/// <see cref="NearestCodeKernels"/>, ...): looking a kernel up on the device (compiled and loaded once)
/// and the grid-stride launch shape most kernel files state — block (256,1,1), grid
/// (min(ceil(count/256), 65535),1,1). Kernel names live in the launchers, never in the ops.
/// </summary>
internal static class KernelLaunch
{
    /// <summary>Threads per block of the grid-stride kernels (and of the reductions: VQ_REDUCE_BLOCK).</summary>
    public const int Block = 256;

    /// <summary>The most blocks a grid-stride launch uses; the loop inside the kernel covers the rest.</summary>
    public const int MaxGridStrideBlocks = 65535;

    /// <summary>The grid of a grid-stride launch over <paramref name="count"/> elements.</summary>
    public static Dim3 GridStride(long count) => new((uint)Math.Clamp((count + Block - 1) / Block, 1, MaxGridStrideBlocks));

    /// <summary>Launches <paramref name="kernel"/> with no dynamic shared memory.</summary>
    public static void Launch(IDevice device, string kernel, Dim3 grid, Dim3 block, params ReadOnlySpan<KernelArg> args) =>
        device.Launch(device.GetKernel(kernel), grid, block, 0, args);

    /// <summary>A grid-stride launch over <paramref name="count"/> elements.</summary>
    public static void LaunchGridStride(IDevice device, string kernel, long count, params ReadOnlySpan<KernelArg> args) =>
        Launch(device, kernel, GridStride(count), Block, args);

    /// <summary>
    /// Which kernel of a pair runs where a kernel file has one for each device kind: the GPU form (coalesced: consecutive
    /// threads on consecutive elements) or the CPU form (a thread walks contiguous memory in order, as the cpu device runs
    /// a block's threads one after another). The pointwise kernels (<see cref="LaunchPointwise"/>) and the convolution's
    /// layout kernels (<see cref="ConvKernels"/>) have both; `vqvae verify` runs both forms on every device.
    /// </summary>
    internal enum KernelForm { Gpu, Cpu }

    /// <summary>The form <paramref name="device"/> runs.</summary>
    internal static KernelForm FormFor(IDevice device) => device.Kind == DeviceKind.Host ? KernelForm.Cpu : KernelForm.Gpu;

    /// <summary>Elements below which the cpu device's pointwise kernels run as one run: a block costs more to schedule.</summary>
    public const int ElementsPerRun = 2048;

    /// <summary>
    /// A pointwise kernel in the given form (<paramref name="form"/>: <see cref="FormFor"/> the device, or each in turn in
    /// verify): the GPU's <paramref name="gridStrideKernel"/> (grid-stride, coalesced), or the cpu device's
    /// <paramref name="chunksKernel"/> twin (common.cuh, vq_chunk_bounds: one contiguous run per single-thread block, a
    /// loop the compiler vectorises) in min(⌈count/2048⌉, 4 per worker) runs, so every worker has several to take. Both
    /// compute each element the same way: the bits do not depend on the form.
    /// </summary>
    public static void LaunchPointwise(IDevice device, KernelForm form, string gridStrideKernel, string chunksKernel, long count,
                                       params ReadOnlySpan<KernelArg> args)
    {
        if (form == KernelForm.Gpu)
        {
            LaunchGridStride(device, gridStrideKernel, count, args);
            return;
        }
        long runs = Math.Clamp((count + ElementsPerRun - 1) / ElementsPerRun, 1, 4L * Math.Max(1, device.Capabilities.Multiprocessors));
        Launch(device, chunksKernel, new Dim3((uint)runs), new Dim3(1), args);
    }
}
