namespace VqVaeCuda.Device;

/// <summary>A launch refused before anything ran: bad shape, too much shared memory, or wrong arguments.</summary>
public sealed class KernelLaunchException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The checks every launch passes on both devices before it runs, so that a bad launch fails the
/// same way, with the same message, on the CPU as on a GPU (where the driver would otherwise answer
/// with a bare CUDA_ERROR_INVALID_VALUE, or silently read garbage for a wrong argument).
/// </summary>
internal static class LaunchValidator
{
    // CUDA's limits for every architecture since sm_30.
    private const uint MaxGridX = int.MaxValue;
    private const uint MaxGridYZ = 65535;
    private static readonly Dim3 MaxBlock = new(1024, 1024, 64);

    public static void Validate(Kernel kernel, Dim3 grid, Dim3 block, int dynamicSharedBytes, ReadOnlySpan<KernelArg> args,
                                DeviceCapabilities caps)
    {
        var name = kernel.Name;
        if (grid.X == 0 || grid.Y == 0 || grid.Z == 0)
            throw new KernelLaunchException($"launch of '{name}': grid {grid} has a zero dimension");
        if (block.X == 0 || block.Y == 0 || block.Z == 0)
            throw new KernelLaunchException($"launch of '{name}': block {block} has a zero dimension");
        if (grid.X > MaxGridX || grid.Y > MaxGridYZ || grid.Z > MaxGridYZ)
            throw new KernelLaunchException($"launch of '{name}': grid {grid} exceeds the limit ({MaxGridX},{MaxGridYZ},{MaxGridYZ})");
        if (block.X > MaxBlock.X || block.Y > MaxBlock.Y || block.Z > MaxBlock.Z)
            throw new KernelLaunchException($"launch of '{name}': block {block} exceeds the per-dimension limit {MaxBlock}");
        // Not a CUDA limit but the kernels': their grid-stride loops step by blockDim.x·gridDim.x in 32 bits
        // (kernels/common.cuh, vq_grid_next). Dim3.Cover of any int count stays below it.
        if ((ulong)grid.X * block.X >= 1UL << 32)
            throw new KernelLaunchException(
                $"launch of '{name}': grid {grid} × block {block} is {(ulong)grid.X * block.X} threads along x; the kernels' grid-stride loops allow fewer than 2^32");
        if (block.Volume > (ulong)caps.MaxThreadsPerBlock)
            throw new KernelLaunchException(
                $"launch of '{name}': block {block} has {block.Volume} threads; the device allows at most {caps.MaxThreadsPerBlock}");
        if (kernel.Limits is { } limits && block.Volume > (ulong)limits.MaxThreadsPerBlock)
            throw new KernelLaunchException(
                $"launch of '{name}': block {block} has {block.Volume} threads; this kernel allows at most {limits.MaxThreadsPerBlock} ({limits.Origin})");
        if (dynamicSharedBytes < 0)
            throw new KernelLaunchException($"launch of '{name}': {dynamicSharedBytes} bytes of dynamic shared memory is negative");
        // The limit is on static + dynamic shared memory together. Beyond it a GPU needs the per-kernel opt-in
        // (cuFuncSetAttribute MAX_DYNAMIC_SHARED_SIZE_BYTES), which this engine does not use, so the CPU device can keep
        // the same limit and refuse exactly what a GPU would.
        long staticShared = kernel.Limits?.StaticSharedBytes ?? 0;
        if (staticShared + dynamicSharedBytes > caps.MaxSharedMemoryPerBlock)
            throw new KernelLaunchException(
                $"launch of '{name}': {dynamicSharedBytes} bytes of dynamic shared memory" +
                (staticShared > 0 ? $" + {staticShared} static ({kernel.Limits!.Origin}) = {staticShared + dynamicSharedBytes}" : "") +
                $"; the device allows at most {caps.MaxSharedMemoryPerBlock} per block without an opt-in, which this engine does not use");

        var parameters = kernel.Definition.Parameters;
        if (args.Length != parameters.Count)
            throw new KernelLaunchException(
                $"launch of '{name}': {args.Length} arguments given, the kernel takes {parameters.Count}: {kernel.Definition.Signature}");
        for (int i = 0; i < args.Length; i++)
        {
            var p = parameters[i];
            var a = args[i];
            bool compatible = p.Kind == a.Kind && p.Size == a.Size
                              // An int literal passed for an unsigned parameter (or the reverse) is the same bits.
                              || (p.Kind is 'i' or 'u' && a.Kind is 'i' or 'u' && p.Size == a.Size);
            if (!compatible)
                throw new KernelLaunchException(
                    $"launch of '{name}': argument {i + 1} ('{p}') takes {KernelArg.Describe(p.Kind, p.Size)}, got {a.Describe()}");
            if (p.Kind == 'p' && a.Bits == 0 && !p.MayBeNull)
                throw new KernelLaunchException($"launch of '{name}': argument {i + 1} ('{p}') is a null pointer");
        }
    }
}
