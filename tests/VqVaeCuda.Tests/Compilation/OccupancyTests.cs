using VqVaeCuda.Diagnostics;

namespace VqVaeCuda.Tests.Compilation;

/// <summary>The occupancy calculator against hand-worked cases from the architectures' published limits.</summary>
[TestFixture, Category("Cpu")]
public class OccupancyTests
{
    [Test]
    public void PtxasReport_reads_entry_functions_only()
    {
        const string log = """
            ptxas info    : 0 bytes gmem
            ptxas info    : Function properties for helper
            ptxas         .     16 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
            ptxas info    : Compiling entry function 'k' for 'sm_90'
            ptxas info    : Function properties for k
            ptxas         .     0 bytes stack frame, 4 bytes spill stores, 8 bytes spill loads
            ptxas info    : Used 40 registers, 4224 bytes smem, 380 bytes cmem[0]
            """;
        var usage = PtxasReport.Parse(log).Single();
        Assert.That(usage.Kernel, Is.EqualTo("k"));
        Assert.That(usage.Registers, Is.EqualTo(40));
        Assert.That(usage.StaticSharedBytes, Is.EqualTo(4224));
        Assert.That(usage.SpillStoreBytes, Is.EqualTo(4));
        Assert.That(usage.SpillLoadBytes, Is.EqualTo(8));
        Assert.That(usage.StackFrameBytes, Is.EqualTo(0));
    }

    // 256 threads = 8 warps. sm_80: 64 warps and 64K registers per SM, registers allocated per warp in units of 256.
    [TestCase("sm_80", 24, 0, 256, 1.00, "warps")]      // 24 regs -> 768/warp -> 85 warps by registers; 8 blocks fill 64 warps
    [TestCase("sm_80", 64, 0, 256, 0.50, "registers")]  // 64 regs -> 2048/warp -> 32 warps -> 4 blocks
    [TestCase("sm_70", 16, 48 * 1024, 256, 0.25, "shared memory")]  // 96 KiB per SM / 48 KiB -> 2 blocks -> 16 of 64 warps
    public void Occupancy_matches_hand_worked_cases(string arch, int registers, int sharedBytes, int threads, double expected, string limitedBy)
    {
        var result = Occupancy.Calculate(arch, registers, sharedBytes, 0, threads);
        Assert.That(result.Occupancy, Is.EqualTo(expected).Within(1e-9));
        Assert.That(result.LimitedBy, Is.EqualTo(limitedBy));
    }
}
