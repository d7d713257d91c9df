using VqVaeCuda.Device;
using VqVaeCuda.Device.Cuda;
using VqVaeCuda.Device.Host;
using VqVaeCuda.Diagnostics;
using VqVaeCuda.Kernels;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Devices;

/// <summary>
/// A launch that a GPU would refuse for the kernel's own sake — a block beyond its <c>__launch_bounds__</c> or register
/// limit, static + dynamic shared memory beyond 48 KiB — is refused the same way on the CPU device.
/// </summary>
[TestFixture, Category("Cpu")]
public class KernelLaunchLimitTests
{
    [TestCase(32, null, 1024)]
    [TestCase(64, null, 1024)]
    [TestCase(65, null, 896)]   // 65·32 = 2080 → 2304 per warp (256-register units); 65536 / 2304 = 28 warps
    [TestCase(128, null, 512)]
    [TestCase(255, null, 256)]  // 255·32 = 8160 → 8192 per warp; 8 warps
    [TestCase(40, 256, 256)]
    public void The_register_limited_block_follows_the_per_warp_allocation(int registers, int? launchBounds, int expected) =>
        Assert.That(KernelLaunchLimits.RegisterLimitedThreads(registers, launchBounds), Is.EqualTo(expected));

    [Test]
    public void A_block_beyond_launch_bounds_is_refused_on_the_cpu()
    {
        using var device = TestDevices.Cpu();
        var kernel = device.GetKernel("vq_nearest_fused_f32");
        Assert.That(kernel.Definition.LaunchBoundsThreads, Is.EqualTo(256));
        var args = kernel.Definition.Parameters.Select(p => p.Kind switch
        {
            'p' => (KernelArg)new DevicePointer(0x1000),
            'f' => (KernelArg)1f,
            _ => p.Size == 8 ? (KernelArg)1L : (KernelArg)1,
        }).ToArray();
        var error = Assert.Throws<KernelLaunchException>(() => LaunchValidator.Validate(kernel, 1, 512, 0, args, device.Capabilities));
        Assert.That(error!.Message, Does.Contain("at most 256").And.Contain("__launch_bounds__"));
        Assert.DoesNotThrow(() => LaunchValidator.Validate(kernel, 1, 256, 0, args, device.Capabilities));
    }

    [Test, Category("Nvrtc")]
    public void Static_shared_memory_from_the_ptxas_report_counts_against_the_limit()
    {
        TestDevices.RequireNvrtc();
        var cacheDirectory = Path.Combine(Path.GetTempPath(), "vqvae-test-cache-" + Guid.NewGuid().ToString("N"));
        try
        {
            var limits = KernelReport.LaunchLimits(KernelSourceSet.Embedded, ["sm_70", "sm_80", "sm_90"], new KernelCache(cacheDirectory));
            using var device = new HostDevice(new HostDeviceOptions { KernelLimits = d => limits.GetValueOrDefault(d.Name) });
            using var plain = TestDevices.Cpu();
            var tiled = device.GetKernel("transpose_f32_tiled");
            Assert.That(tiled.Limits!.StaticSharedBytes, Is.EqualTo(32 * 33 * sizeof(float)));
            KernelArg[] args = [new DevicePointer(0x1000), new DevicePointer(0x2000), 32, 32];
            int dynamic = 48 * 1024 - tiled.Limits.StaticSharedBytes + 4;
            var error = Assert.Throws<KernelLaunchException>(() => LaunchValidator.Validate(tiled, 1, 256, dynamic, args, device.Capabilities));
            Assert.That(error!.Message, Does.Contain("+ 4224 static").And.Contain("ptxas"));
            Assert.DoesNotThrow(() => LaunchValidator.Validate(tiled, 1, 256, dynamic - 4, args, device.Capabilities));
            // Without the report the CPU library cannot know the static part; the dynamic part alone fits.
            Assert.DoesNotThrow(() => LaunchValidator.Validate(plain.GetKernel("transpose_f32_tiled"), 1, 256, dynamic, args, plain.Capabilities));
        }
        finally
        {
            if (Directory.Exists(cacheDirectory)) Directory.Delete(cacheDirectory, recursive: true);
        }
    }
}
