using VqVaeCuda.Device;
using static VqVaeCuda.Ops.KernelLaunch;

namespace VqVaeCuda.Benchmarks;

/// <summary>
/// Launches of the one kernel of kernels/testing/semantics.cu that the benchmarks use (the tests launch the
/// rest of that file directly): <c>test_barrier_loop</c>, to time a block-wide barrier.
/// </summary>
internal static class BarrierKernels
{
    /// <summary>Each thread of <paramref name="blocks"/> blocks of <paramref name="threads"/> runs <paramref name="iterations"/> barriers.</summary>
    public static void BarrierLoop(IDevice device, DevicePointer output, int blocks, int threads, int iterations) =>
        Launch(device, "test_barrier_loop", blocks, threads, output, iterations);
}
