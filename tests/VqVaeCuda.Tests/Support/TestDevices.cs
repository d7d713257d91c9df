using VqVaeCuda.Device;
using VqVaeCuda.Device.Cuda;
using VqVaeCuda.Device.Cuda.Native;
using VqVaeCuda.Device.Host;
using NUnit.Framework.Internal;

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
        RequireCuda();
        return new CudaDevice();
    }

    // Probed once per test run: every cuda fixture asks, and the answer cannot change while the tests run.
    private static readonly Lazy<string?> WhyNoCuda = new(() => CudaDevice.DeviceCount(out var whyNone) == 0 ? whyNone ?? "none found" : null);

    /// <summary>Skips the test (or the whole fixture, from a one-time set-up) when no CUDA device answers.</summary>
    public static void RequireCuda()
    {
        if (WhyNoCuda.Value is { } why) Assert.Ignore($"no CUDA device: {why}");
    }

    /// <summary>
    /// The device of <paramref name="kind"/>: the checked cpu device running block threads in <paramref name="order"/>,
    /// or cuda:0 (where <paramref name="order"/> means nothing: the GPU schedules its own threads).
    /// </summary>
    public static IDevice Open(DeviceKind kind, ThreadOrder order = ThreadOrder.Ascending) =>
        kind == DeviceKind.Host ? Cpu(order) : Cuda();

    /// <summary>
    /// The fixtures of a <see cref="DeviceSpecification"/>: the cpu device (category <c>Cpu</c>) and cuda:0
    /// (category <c>Cuda</c>), named <c>(cpu)</c> and <c>(cuda)</c> in test names.
    /// </summary>
    public static IEnumerable<TestFixtureData> EveryDevice()
    {
        foreach (var (kind, name, category) in new[] { (DeviceKind.Host, "cpu", "Cpu"), (DeviceKind.Cuda, "cuda", "Cuda") })
        {
            var fixture = new TestFixtureData(kind).SetArgDisplayNames(name);
            fixture.Properties.Add(PropertyNames.Category, category);
            yield return fixture;
        }
    }

    private static void MissingNative(string reason)
    {
        if (NativeRequired) Assert.Fail($"{reason} ({RequireNativeVariable}=1 makes this a failure)");
        Assert.Ignore(reason);
    }
}
