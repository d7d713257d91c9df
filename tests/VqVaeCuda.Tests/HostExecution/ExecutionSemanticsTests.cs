using VqVaeCuda.Device;
using VqVaeCuda.Device.Host;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.HostExecution;

/// <summary>The CPU target behaves like CUDA's execution model (kernels in kernels/testing/semantics.cu).</summary>
[TestFixture, Category("Cpu")]
public class ExecutionSemanticsTests
{
    private static readonly ThreadOrder[] AllOrders = [ThreadOrder.Ascending, ThreadOrder.Descending, ThreadOrder.Shuffled];

    [TestCaseSource(nameof(AllOrders))]
    public void Shared_memory_is_shared_within_a_block_and_separate_between_blocks(ThreadOrder order)
    {
        using var device = TestDevices.Cpu(order);
        const int blocks = 257, threads = 96;
        using var output = device.Allocate(blocks * threads * sizeof(int));
        device.Launch(device.GetKernel("test_shared_per_block"), blocks, threads, 0, output);

        var result = device.DownloadInts(output);
        for (int b = 0; b < blocks; b++)
            for (int t = 0; t < threads; t++)
                Assert.That(result[b * threads + t], Is.EqualTo(b * 100000 + (t + 1) % threads), $"block {b} thread {t}");
    }

    [TestCaseSource(nameof(AllOrders))]
    public void Dynamic_shared_memory_is_per_block_and_sized_by_the_launch(ThreadOrder order)
    {
        using var device = TestDevices.Cpu(order);
        const int blocks = 33, threads = 160;
        var input = TestData.Floats(blocks * threads);
        using var x = device.Upload(input);
        using var y = device.Allocate(x.Bytes);
        device.Launch(device.GetKernel("test_dynamic_shared"), blocks, threads, threads * sizeof(float), x, y);
        var output = device.DownloadFloats(y);
        for (int b = 0; b < blocks; b++)
            for (int t = 0; t < threads; t++)
                Assert.That(output[b * threads + t], Is.EqualTo(input[b * threads + threads - 1 - t]), $"block {b} thread {t}");
    }

    [Test]
    public void A_missing_barrier_gives_different_results_in_different_thread_orders()
    {
        var ascending = NeighbourRead(ThreadOrder.Ascending, useBarrier: false, out _);
        var descending = NeighbourRead(ThreadOrder.Descending, useBarrier: false, out _);
        Assert.That(descending, Is.Not.EqualTo(ascending), "the race must be visible to the order check");
    }

    [Test]
    public void The_same_kernel_with_its_barrier_gives_equal_correct_results_in_every_order()
    {
        var reference = NeighbourRead(ThreadOrder.Ascending, useBarrier: true, out var input);
        const int threads = 200;
        for (int g = 0; g < input.Length; g++)
        {
            int block = g / threads, t = g % threads;
            Assert.That(reference[g], Is.EqualTo(input[block * threads + (t + 1) % threads]), $"element {g}");
        }
        Assert.That(NeighbourRead(ThreadOrder.Descending, true, out _, input), Is.EqualTo(reference));
        Assert.That(NeighbourRead(ThreadOrder.Shuffled, true, out _, input), Is.EqualTo(reference));
    }

    private static float[] NeighbourRead(ThreadOrder order, bool useBarrier, out float[] input, float[]? given = null)
    {
        const int blocks = 9, threads = 200;
        input = given ?? TestData.Floats(blocks * threads);
        using var device = TestDevices.Cpu(order);
        using var x = device.Upload(input);
        using var y = device.Allocate(x.Bytes);
        device.Launch(device.GetKernel("test_neighbour_read"), blocks, threads, 0, x, y, useBarrier ? 1 : 0);
        return device.DownloadFloats(y);
    }

    // blockDim 64: full warps; 48: the second warp has 16 lanes; divergent: odd warps skip the warp ops.
    [TestCase(64, 5, 3, 32, false)]
    [TestCase(48, 3, 1, 32, false)]
    [TestCase(48, 7, 2, 8, false)]
    [TestCase(100, 31, 4, 16, false)]
    [TestCase(128, 2, 5, 32, true)]
    [TestCase(80, 9, 1, 4, true)]
    public void Warp_shuffles_and_votes_match_a_model_of_a_warp(int blockThreads, int srcLane, int delta, int width, bool divergent)
    {
        const int blocks = 3;
        int threshold = 0;
        var r = TestData.Random;
        var input = Enumerable.Range(0, blocks * blockThreads).Select(_ => r.Next(-100, 100)).ToArray();

        foreach (var order in AllOrders)
        {
            using var device = TestDevices.Cpu(order);
            using var inBuf = device.Upload(input);
            using var outBuf = device.Allocate(8L * input.Length * sizeof(int));
            device.Launch(device.GetKernel("test_warp_ops"), blocks, blockThreads, 0, inBuf, outBuf, srcLane, delta, width, threshold,
                          divergent ? 1 : 0);
            var output = device.DownloadInts(outBuf);

            for (int b = 0; b < blocks; b++)
                for (int warpStart = 0; warpStart < blockThreads; warpStart += 32)
                {
                    int lanes = Math.Min(32, blockThreads - warpStart);
                    var v = input.AsSpan(b * blockThreads + warpStart, lanes).ToArray();
                    bool skipped = divergent && (warpStart / 32) % 2 == 1;
                    for (int lane = 0; lane < lanes; lane++)
                    {
                        var o = output.AsSpan(8 * (b * blockThreads + warpStart + lane), 8).ToArray();
                        string where = $"order {order}, block {b}, warp {warpStart / 32}, lane {lane}";
                        if (skipped)
                        {
                            Assert.That(o, Is.All.EqualTo(-7), where);
                            continue;
                        }
                        Assert.That(o[0], Is.EqualTo(WarpModel.ShflIdx(v, lane, srcLane, width)), $"__shfl_sync, {where}");
                        Assert.That(o[1], Is.EqualTo(WarpModel.ShflUp(v, lane, delta, width)), $"__shfl_up_sync, {where}");
                        Assert.That(o[2], Is.EqualTo(WarpModel.ShflDown(v, lane, delta, width)), $"__shfl_down_sync, {where}");
                        Assert.That(o[3], Is.EqualTo(WarpModel.ShflXor(v, lane, delta, width)), $"__shfl_xor_sync, {where}");
                        Assert.That((uint)o[4], Is.EqualTo(WarpModel.Ballot(v, threshold)), $"__ballot_sync, {where}");
                        Assert.That(o[5] != 0, Is.EqualTo(WarpModel.Any(v, threshold)), $"__any_sync, {where}");
                        Assert.That(o[6] != 0, Is.EqualTo(WarpModel.All(v, threshold)), $"__all_sync, {where}");
                        Assert.That(o[7], Is.EqualTo(1), $"after __syncwarp, {where}");
                    }
                }
        }
    }

    [Test]
    public void Atomics_from_many_parallel_blocks_are_exact()
    {
        using var device = TestDevices.Cpu();
        int n = TestData.OddSize(100_000, 200_000);
        using var counter = device.Upload(new[] { 0 });
        using var maxIndex = device.Upload(new[] { int.MinValue });
        using var minIndex = device.Upload(new[] { int.MaxValue });
        using var casCounter = device.Upload(new[] { 0 });
        using var floatSum = device.Upload(new[] { 0f });

        device.Launch(device.GetKernel("test_atomics"), Dim3.Cover(n, 128), 128, 0, counter, maxIndex, minIndex, casCounter, floatSum, n);

        Assert.Multiple(() =>
        {
            Assert.That(device.DownloadInts(counter)[0], Is.EqualTo(n), "atomicAdd(int)");
            Assert.That(device.DownloadInts(maxIndex)[0], Is.EqualTo(n - 1), "atomicMax");
            Assert.That(device.DownloadInts(minIndex)[0], Is.EqualTo(0), "atomicMin");
            Assert.That(device.DownloadInts(casCounter)[0], Is.EqualTo(n), "atomicCAS increment loop");
            // Whole numbers below 2^24 add exactly in float, so any order gives exactly n.
            Assert.That(device.DownloadFloats(floatSum)[0], Is.EqualTo((float)n), "atomicAdd(float)");
        });
    }

    [Test]
    public void Checked_mode_names_a_kernel_that_writes_one_element_past_its_buffer()
    {
        using var device = TestDevices.Cpu();
        const int n = 1000;
        using var buffer = device.Allocate(n * sizeof(float));
        var error = Assert.Throws<HostDeviceException>(() =>
            device.Launch(device.GetKernel("test_write_past_end"), Dim3.Cover(n + 1, 256), 256, 0, buffer, n));
        Assert.That(error!.Message, Does.Contain("test_write_past_end").And.Contain("0 bytes past its end"));
    }

    [Test]
    public void Checked_mode_fills_fresh_allocations_with_NaN()
    {
        using var device = TestDevices.Cpu();
        using var buffer = device.Allocate(37 * sizeof(float));
        Assert.That(device.DownloadFloats(buffer), Is.All.NaN);
    }

    [Test]
    public void A_barrier_in_a_kernel_registered_barrier_free_is_a_loud_error()
    {
        using var device = TestDevices.Cpu();
        using var buffer = device.Allocate(64 * sizeof(float));
        var error = Assert.Throws<HostDeviceException>(() =>
            device.Launch(device.GetKernel("test_barrier_in_no_sync"), 1, 64, 0, buffer));
        Assert.That(error!.Message, Does.Contain("VQ_KERNEL_NO_SYNC").And.Contain("__syncthreads"));
    }

    [Test]
    public void Blocks_that_never_synchronise_run_without_fiber_switches()
    {
        using var device = TestDevices.Cpu();
        const int blocks = 12, threads = 128;
        using var x = device.Upload(TestData.Floats(blocks * threads));
        using var y = device.Allocate(x.Bytes);

        ulong before = HostDevice.FiberResumeCount;
        device.Launch(device.GetKernel("fill_f32"), blocks, threads, 0, y, 1f, blocks * threads);
        Assert.That(HostDevice.FiberResumeCount - before, Is.Zero, "a VQ_KERNEL_NO_SYNC kernel runs as plain calls");

        before = HostDevice.FiberResumeCount;
        device.Launch(device.GetKernel("test_neighbour_read"), blocks, threads, 0, x, y, 0);
        Assert.That(HostDevice.FiberResumeCount - before, Is.EqualTo((ulong)blocks),
                    "a synchronising kernel whose block reaches no barrier: one probe fiber per block, then plain calls");

        before = HostDevice.FiberResumeCount;
        device.Launch(device.GetKernel("test_neighbour_read"), blocks, threads, 0, x, y, 1);
        Assert.That(HostDevice.FiberResumeCount - before, Is.EqualTo((ulong)(2 * blocks * threads)),
                    "one barrier: every thread is resumed twice");
    }

    [Test]
    public void Thread_orders_really_differ()
    {
        // Guards the other tests: if the order option were ignored, every "equal in all orders"
        // assertion would pass trivially. The racy kernel must see the first thread's stale read.
        var ascending = NeighbourRead(ThreadOrder.Ascending, false, out var input);
        var shuffled = NeighbourRead(ThreadOrder.Shuffled, false, out _, input);
        Assert.That(shuffled, Is.Not.EqualTo(ascending));
    }
}
