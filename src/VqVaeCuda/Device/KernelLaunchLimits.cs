namespace VqVaeCuda.Device;

/// <summary>
/// What one compiled kernel allows a launch to ask for, beyond the device's limits: a block size capped by
/// <c>__launch_bounds__</c> or by its register use, and the static shared memory that every block of it takes before
/// any dynamic shared memory.
/// </summary>
/// <param name="MaxThreadsPerBlock">The largest block the kernel can be launched with.</param>
/// <param name="StaticSharedBytes">Shared memory the kernel declares statically, per block.</param>
/// <param name="Origin">Where the numbers come from, for messages: "driver (cuFuncGetAttribute)", "__launch_bounds__", "ptxas sm_70/sm_80/sm_90".</param>
public sealed record KernelLaunchLimits(int MaxThreadsPerBlock, int StaticSharedBytes, string Origin)
{
    /// <summary>Registers of one multiprocessor's register file available to one block on sm_70 and newer.</summary>
    public const int RegistersPerBlock = 65536;

    /// <summary>
    /// The largest block a kernel using <paramref name="registersPerThread"/> registers can be launched with: registers
    /// are allocated per warp in units of <paramref name="allocationUnit"/>, and a block's warps must all fit in the
    /// register file (<paramref name="registersPerBlock"/>). This is the rule behind the driver's
    /// CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK; <paramref name="launchBounds"/> caps it further.
    /// </summary>
    public static int RegisterLimitedThreads(int registersPerThread, int? launchBounds = null, int registersPerBlock = RegistersPerBlock,
                                             int allocationUnit = 256, int warpSize = 32, int maxThreads = 1024)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(registersPerThread);
        int perWarp = (registersPerThread * warpSize + allocationUnit - 1) / allocationUnit * allocationUnit;
        int threads = perWarp == 0 ? maxThreads : Math.Min(maxThreads, registersPerBlock / perWarp * warpSize);
        return launchBounds is int bound ? Math.Min(threads, bound) : threads;
    }
}
