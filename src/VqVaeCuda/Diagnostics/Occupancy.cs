using System.Text.RegularExpressions;

namespace VqVaeCuda.Diagnostics;

/// <summary>The per-SM limits of one GPU architecture that decide how many blocks of a kernel fit at once.</summary>
/// <param name="Architecture">"sm_80" etc.</param>
/// <param name="MaxWarpsPerSM">Resident warps per SM (max threads per SM / 32).</param>
/// <param name="MaxBlocksPerSM">Resident blocks per SM.</param>
/// <param name="RegistersPerSM">32-bit registers in one SM's register file.</param>
/// <param name="MaxRegistersPerBlock">Registers one block may hold.</param>
/// <param name="MaxRegistersPerThread">Registers one thread may use.</param>
/// <param name="RegisterAllocationUnit">Registers are given to a warp in multiples of this.</param>
/// <param name="RegisterSubPartitions">The register file is split evenly between this many warp schedulers; a warp's registers come from one.</param>
/// <param name="SharedMemoryPerSM">Largest shared-memory carve-out of an SM, in bytes.</param>
/// <param name="MaxSharedMemoryPerBlock">Largest shared memory one block may use after opting in, in bytes.</param>
/// <param name="SharedMemoryAllocationUnit">A block's shared memory is rounded up to a multiple of this.</param>
/// <param name="ReservedSharedMemoryPerBlock">Shared memory the driver keeps for itself in every block (1 KiB from sm_80 on).</param>
public sealed record ArchitectureLimits(
    string Architecture,
    int MaxWarpsPerSM,
    int MaxBlocksPerSM,
    int RegistersPerSM,
    int MaxRegistersPerBlock,
    int MaxRegistersPerThread,
    int RegisterAllocationUnit,
    int RegisterSubPartitions,
    int SharedMemoryPerSM,
    int MaxSharedMemoryPerBlock,
    int SharedMemoryAllocationUnit,
    int ReservedSharedMemoryPerBlock);

/// <summary>Theoretical occupancy of a kernel launch shape on one architecture.</summary>
/// <param name="ActiveBlocksPerSM">Blocks resident on one SM at once.</param>
/// <param name="ActiveWarpsPerSM">Warps resident on one SM at once.</param>
/// <param name="MaxWarpsPerSM">The architecture's maximum.</param>
/// <param name="Occupancy">ActiveWarpsPerSM / MaxWarpsPerSM, in [0, 1].</param>
/// <param name="LimitedBy">"warps", "registers", "shared memory" or "blocks": the limit that binds (the first of these, in this order, on a tie).</param>
/// <param name="BlockLimitWarps">Blocks per SM allowed by the warp slots alone.</param>
/// <param name="BlockLimitRegisters">Blocks per SM allowed by the register file alone (int.MaxValue when no registers are used).</param>
/// <param name="BlockLimitSharedMemory">Blocks per SM allowed by shared memory alone (int.MaxValue when none is used).</param>
/// <param name="BlockLimitBlocks">The architecture's blocks-per-SM cap.</param>
public sealed record OccupancyResult(
    int ActiveBlocksPerSM,
    int ActiveWarpsPerSM,
    int MaxWarpsPerSM,
    double Occupancy,
    string LimitedBy,
    int BlockLimitWarps,
    int BlockLimitRegisters,
    int BlockLimitSharedMemory,
    int BlockLimitBlocks);

/// <summary>
/// Theoretical occupancy, computed the way NVIDIA's occupancy calculator (<c>cuda_occupancy.h</c>,
/// <c>cudaOccMaxActiveBlocksPerMultiprocessor</c>) does it, for the architectures this project targets.
/// Needs no GPU: it is how the kernel report judges kernels compiled by NVRTC on a machine without one.
/// </summary>
/// <remarks>
/// <para>Figures from the CUDA C++ Programming Guide, "Technical Specifications per Compute Capability",
/// and from <c>cuda_occupancy.h</c> (allocation granularities, sub-partitions, the 1 KiB per-block
/// reservation added from compute capability 8.0 on). The shared-memory capacity is the SM's largest
/// carve-out: the driver picks a carve-out large enough for the launch, so that is the theoretical bound.</para>
/// <para>Not modelled: partitioned global caching (Maxwell/Pascal only), and the blocks the hardware may
/// refuse when a user sets a smaller carve-out preference.</para>
/// </remarks>
public static partial class Occupancy
{
    private const int WarpSize = 32;
    private const int MaxThreadsPerBlock = 1024;
    private const int KiB = 1024;

    private static readonly Dictionary<string, ArchitectureLimits> Table = new[]
    {
        // Volta (V100): 96 KiB configurable shared memory, 256-byte shared allocation granularity, no reservation.
        new ArchitectureLimits("sm_70", 64, 32, 65536, 65536, 255, 256, 4, 96 * KiB, 96 * KiB, 256, 0),
        // Turing: 32 warps and 16 blocks per SM, 64 KiB shared.
        new ArchitectureLimits("sm_75", 32, 16, 65536, 65536, 255, 256, 4, 64 * KiB, 64 * KiB, 256, 0),
        // A100: 164 KiB shared per SM, 163 KiB per block; from here on 128-byte granularity and 1 KiB reserved per block.
        new ArchitectureLimits("sm_80", 64, 32, 65536, 65536, 255, 256, 4, 164 * KiB, 163 * KiB, 128, KiB),
        // GA10x: 48 warps, 16 blocks, 100 KiB shared per SM, 99 KiB per block.
        new ArchitectureLimits("sm_86", 48, 16, 65536, 65536, 255, 256, 4, 100 * KiB, 99 * KiB, 128, KiB),
        // Ada: as GA10x but 24 blocks per SM.
        new ArchitectureLimits("sm_89", 48, 24, 65536, 65536, 255, 256, 4, 100 * KiB, 99 * KiB, 128, KiB),
        // Hopper (H100): 228 KiB shared per SM, 227 KiB per block.
        new ArchitectureLimits("sm_90", 64, 32, 65536, 65536, 255, 256, 4, 228 * KiB, 227 * KiB, 128, KiB),
    }.ToDictionary(l => l.Architecture, StringComparer.Ordinal);

    /// <summary>The architectures with known limits, ascending.</summary>
    public static IReadOnlyList<string> SupportedArchitectures { get; } = Table.Keys.Order(StringComparer.Ordinal).ToArray();

    /// <summary>The limits of <paramref name="architecture"/> ("sm_80"; an arch-specific variant such as "sm_90a" maps to its base).</summary>
    /// <exception cref="ArgumentException">An architecture without a table entry.</exception>
    public static ArchitectureLimits Limits(string architecture) =>
        TryGetLimits(architecture, out var limits)
            ? limits
            : throw new ArgumentException(
                $"no occupancy data for '{architecture}'; known architectures: {string.Join(", ", SupportedArchitectures)}", nameof(architecture));

    /// <summary>True when <paramref name="architecture"/> has a table entry.</summary>
    public static bool TryGetLimits(string architecture, out ArchitectureLimits limits)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        var m = ArchitectureName().Match(architecture.Trim());
        if (m.Success && Table.TryGetValue(m.Groups["base"].Value, out var found))
        {
            limits = found;
            return true;
        }
        limits = null!;
        return false;
    }

    /// <summary>Theoretical occupancy of blocks of <paramref name="threadsPerBlock"/> threads on <paramref name="architecture"/>.</summary>
    /// <param name="architecture">"sm_70", "sm_75", "sm_80", "sm_86", "sm_89" or "sm_90".</param>
    /// <param name="registersPerThread">From ptxas ("Used N registers").</param>
    /// <param name="staticSharedBytes">From ptxas ("N bytes smem").</param>
    /// <param name="dynamicSharedBytes">The launch's dynamic shared memory.</param>
    /// <param name="threadsPerBlock">Threads per block, 1 to 1024.</param>
    public static OccupancyResult Calculate(string architecture, int registersPerThread, int staticSharedBytes, int dynamicSharedBytes,
                                            int threadsPerBlock) =>
        Calculate(Limits(architecture), registersPerThread, staticSharedBytes, dynamicSharedBytes, threadsPerBlock);

    /// <summary>As <see cref="Calculate(string, int, int, int, int)"/> with explicit limits (for an architecture not in the table).</summary>
    public static OccupancyResult Calculate(ArchitectureLimits limits, int registersPerThread, int staticSharedBytes, int dynamicSharedBytes,
                                            int threadsPerBlock)
    {
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentOutOfRangeException.ThrowIfNegative(registersPerThread);
        ArgumentOutOfRangeException.ThrowIfNegative(staticSharedBytes);
        ArgumentOutOfRangeException.ThrowIfNegative(dynamicSharedBytes);
        if (threadsPerBlock < 1 || threadsPerBlock > MaxThreadsPerBlock)
            throw new ArgumentOutOfRangeException(nameof(threadsPerBlock), threadsPerBlock, $"threads per block must be 1..{MaxThreadsPerBlock}");

        int warpsPerBlock = DivideRoundUp(threadsPerBlock, WarpSize);

        int byWarps = limits.MaxWarpsPerSM / warpsPerBlock;
        int byBlocks = limits.MaxBlocksPerSM;
        int byRegisters = RegisterLimit(limits, registersPerThread, warpsPerBlock);
        int bySharedMemory = SharedMemoryLimit(limits, (long)staticSharedBytes + dynamicSharedBytes);

        int blocks = Math.Min(Math.Min(byWarps, byBlocks), Math.Min(byRegisters, bySharedMemory));
        // cuda_occupancy.h reports every limit equal to the minimum; we name one, in its order of checks.
        string limitedBy = blocks == byWarps ? "warps"
            : blocks == byRegisters ? "registers"
            : blocks == bySharedMemory ? "shared memory"
            : "blocks";
        int activeWarps = blocks * warpsPerBlock;
        return new OccupancyResult(blocks, activeWarps, limits.MaxWarpsPerSM, (double)activeWarps / limits.MaxWarpsPerSM, limitedBy,
                                   byWarps, byRegisters, bySharedMemory, byBlocks);
    }

    private static int RegisterLimit(ArchitectureLimits limits, int registersPerThread, int warpsPerBlock)
    {
        if (registersPerThread == 0) return int.MaxValue;
        if (registersPerThread > limits.MaxRegistersPerThread) return 0;
        int perWarp = RoundUp(registersPerThread * WarpSize, limits.RegisterAllocationUnit);
        // The launch check assumes a block's warps are spread over all sub-partitions at once, so a block
        // is charged as if its warp count were rounded up to a multiple of the sub-partition count.
        long assumedPerBlock = (long)perWarp * RoundUp(warpsPerBlock, limits.RegisterSubPartitions);
        long allocatedPerBlock = (long)perWarp * warpsPerBlock;
        if (assumedPerBlock > limits.MaxRegistersPerBlock || allocatedPerBlock > limits.MaxRegistersPerBlock) return 0;
        // A warp's registers all come from one sub-partition's slice of the file.
        int warpsPerSubPartition = limits.RegistersPerSM / limits.RegisterSubPartitions / perWarp;
        return warpsPerSubPartition * limits.RegisterSubPartitions / warpsPerBlock;
    }

    private static int SharedMemoryLimit(ArchitectureLimits limits, long sharedBytes)
    {
        long perBlock = RoundUp(sharedBytes + limits.ReservedSharedMemoryPerBlock, limits.SharedMemoryAllocationUnit);
        if (perBlock == 0) return int.MaxValue;
        if (perBlock > limits.MaxSharedMemoryPerBlock + limits.ReservedSharedMemoryPerBlock) return 0;
        return (int)(limits.SharedMemoryPerSM / perBlock);
    }

    private static int DivideRoundUp(int x, int y) => (x + y - 1) / y;
    private static int RoundUp(int x, int y) => DivideRoundUp(x, y) * y;
    private static long RoundUp(long x, long y) => (x + y - 1) / y * y;

    [GeneratedRegex(@"^(?<base>sm_\d+)[a-z]?$", RegexOptions.CultureInvariant)]
    private static partial Regex ArchitectureName();
}
