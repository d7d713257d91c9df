using VqVaeCuda.Device;
using VqVaeCuda.Device.Cuda;
using VqVaeCuda.Device.Cuda.Native;
using VqVaeCuda.Device.Host;

namespace VqVaeCuda.Tests.Support;

/// <summary>
/// Opens the devices tests run on. A test that needs the CPU kernel library or NVRTC is skipped with
/// the reason where they are missing — unless VQVAE_REQUIRE_NATIVE=1 (set by CI), which turns that
/// skip into a failure so that a missing install step cannot hide behind a green run.
/// CUDA tests are skipped wherever no GPU answers.
/// </summary>
public static class TestDevices
{
    public const string RequireNativeVariable = "VQVAE_REQUIRE_NATIVE";

    public static bool NativeRequired => Environment.GetEnvironmentVariable(RequireNativeVariable) == "1";

    /// <summary>A checked CPU device running block threads in <paramref name="order"/>.</summary>
    public static HostDevice Cpu(ThreadOrder order = ThreadOrder.Ascending, ulong seed = 0x5EED)
    {
        try
        {
            return new HostDevice(new HostDeviceOptions { Checked = true, ThreadOrder = order, ShuffleSeed = seed });
        }
        catch (DeviceUnavailableException e)
        {
            MissingNative(e.Message);
            throw;  // unreachable: MissingNative always throws
        }
    }

    /// <summary>Skips (or, under CI, fails) when NVRTC cannot be loaded.</summary>
    public static void RequireNvrtc()
    {
        if (!Nvrtc.IsAvailable(out var whyNot)) MissingNative($"NVRTC is unavailable: {whyNot}");
    }

    /// <summary>A CUDA device, or the test is skipped with the reason none answered.</summary>
    public static CudaDevice Cuda()
    {
        if (CudaDevice.DeviceCount(out var whyNone) == 0)
            Assert.Ignore($"no CUDA device: {whyNone}");
        return new CudaDevice();
    }

    private static void MissingNative(string reason)
    {
        if (NativeRequired) Assert.Fail($"{reason} ({RequireNativeVariable}=1 makes this a failure)");
        Assert.Ignore(reason);
    }
}
