using VqVaeCuda.Data;
using VqVaeCuda.Device;
using VqVaeCuda.Device.Host;
using VqVaeCuda.Models;
using VqVaeCuda.Training;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Devices;

/// <summary>
/// Device faults are errors that say what happened (bytes asked and free; kernel, grid and block; the devices that
/// exist), and the library stays usable after them. NVRTC's log in a compile error: NvrtcCompileTests.
/// </summary>
[TestFixture, Category("Cpu"), NonParallelizable]
public class DeviceFaultTests
{
    /// <summary>An unchecked CPU device: its allocations are not touched, so asking for more than the machine has cannot
    /// bring the OOM killer even when the check under test is missing.</summary>
    private static HostDevice UncheckedCpu()
    {
        TestDevices.Cpu().Dispose();
        return new HostDevice(new HostDeviceOptions { Checked = false });
    }

    [Test]
    public void An_allocation_over_the_available_memory_names_the_bytes_asked_for_and_available()
    {
        using var device = UncheckedCpu();
        long asked = HostMemory.AvailableBytes() + (1L << 30);
        var error = Assert.Throws<DeviceOutOfMemoryException>(() => device.Allocate(asked).Dispose())!;
        Assert.That(error.RequestedBytes, Is.EqualTo(asked));
        Assert.That(error.AvailableBytes, Is.LessThan(asked));
        Assert.That(error.Message, Does.Contain("cpu").And.Contain($"asked for {asked} bytes").And.Contain("available"));
    }

    [Test]
    public void A_large_allocation_is_committed_so_that_the_next_check_sees_it()
    {
        // Untouched pages do not lower MemAvailable: without committing, two allocations of 60% of the memory would both
        // pass the check and be filled later by the kernels, and the OOM killer would end the process.
        using var device = UncheckedCpu();
        const long bytes = 512L << 20;
        long before = HostMemory.AvailableBytes();
        using var buffer = device.Allocate(bytes);
        long drop = before - HostMemory.AvailableBytes();
        Assert.That(drop, Is.GreaterThan(bytes / 2), $"available memory fell by {drop} bytes after allocating {bytes}");
    }

    [Test]
    public void An_absurd_allocation_is_an_out_of_memory_error_not_a_crash()
    {
        using var device = UncheckedCpu();
        var error = Assert.Throws<DeviceOutOfMemoryException>(() => device.Allocate(1L << 50).Dispose())!;
        Assert.That(error.Message, Does.Contain($"asked for {1L << 50} bytes"));
    }

    [Test]
    public void After_running_out_of_memory_a_new_model_is_created_and_trained_in_the_same_process()
    {
        using var device = TestDevices.Cpu();
        long liveBefore = HostDevice.LiveAllocationCount;
        // 2^20 hidden channels ask for tens of TiB of parameters: refused by the device before anything is allocated.
        Assert.Throws<DeviceOutOfMemoryException>(() => new VqVae(device, VqVaeConfig.Preset("tiny") with { Hidden = 1 << 20 }, seed: 1).Dispose());
        Assert.That(HostDevice.LiveAllocationCount, Is.EqualTo(liveBefore), "the refused model left no allocation behind");

        var train = SyntheticShapes.Generate(32, seed: 3);
        var test = SyntheticShapes.Generate(8, seed: 4, firstIndex: 32);
        var options = new TrainingOptions { Steps = 3, BatchSize = 8, LearningRate = 1e-3, LogEvery = 1, EvaluateEvery = 0 };
        using var trainer = new VqVaeTrainer(new VqVae(device, VqVaeConfig.Preset("tiny"), seed: 1), train, test, options, runDirectory: null);
        var losses = Enumerable.Range(0, 3).Select(_ => trainer.TrainStep()).ToList();
        Assert.That(losses.Select(l => l.ReconstructionMse), Is.All.Positive.And.All.LessThan(10.0));
        Assert.That(trainer.Step, Is.EqualTo(3));
    }

    [Test]
    public void A_failed_launch_names_the_kernel_grid_and_block()
    {
        using var device = TestDevices.Cpu();
        using var buffer = device.Allocate(64 * sizeof(float));
        var error = Assert.Throws<HostDeviceException>(() => device.Launch(device.GetKernel("test_barrier_in_no_sync"), 1, 64, 0, buffer))!;
        Assert.That(error.Message, Does.Contain("'test_barrier_in_no_sync'").And.Contain("grid (1,1,1)").And.Contain("block (64,1,1)"));
        // The device goes on working after a failed launch.
        device.Launch(device.GetKernel("fill_f32"), 1, 64, 0, buffer, 2f, 64);
        Assert.That(device.DownloadFloats(buffer), Is.All.EqualTo(2f));
    }

    [Test]
    public void An_unknown_device_lists_the_devices_that_exist()
    {
        TestDevices.Cpu().Dispose();
        var error = Assert.Throws<ArgumentException>(() => DeviceSelector.Open("gpu"))!;
        Assert.That(error.Message, Does.Contain("unknown device 'gpu'").And.Contain("devices here: cpu"));
    }
}
