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
}
