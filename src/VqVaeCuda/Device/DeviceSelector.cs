using VqVaeCuda.Device.Cuda;
using VqVaeCuda.Device.Host;

namespace VqVaeCuda.Device;

/// <summary>A device that was opened, and why that one.</summary>
/// <param name="Device">The device.</param>
/// <param name="Reason">One sentence for the user, e.g. "auto: no CUDA device (libcuda.so.1 not found); using the CPU".</param>
public sealed record SelectedDevice(IDevice Device, string Reason);

/// <summary>Options for <see cref="DeviceSelector.Open"/>.</summary>
public sealed record DeviceSelectorOptions
{
    /// <summary>Options of the CPU device when it is chosen.</summary>
    public HostDeviceOptions Host { get; init; } = new();

    /// <summary>Options of a CUDA device when it is chosen.</summary>
    public CudaDeviceOptions Cuda { get; init; } = new();
}

/// <summary>
/// Turns a device specification — <c>auto</c>, <c>cuda</c>, <c>cuda:N</c> or <c>cpu</c> — into an open
/// device. <c>auto</c> takes the first CUDA device when one answers, else the CPU, and says which and why.
/// </summary>
public static class DeviceSelector
{
    /// <summary>The accepted forms, for help texts.</summary>
    public const string Forms = "auto | cuda | cuda:N | cpu";

    /// <summary>Opens the device named by <paramref name="specification"/>.</summary>
    /// <exception cref="ArgumentException">The specification is not one of the accepted forms.</exception>
    /// <exception cref="DeviceUnavailableException">The named device cannot be opened here (the message says why).</exception>
    public static SelectedDevice Open(string specification, DeviceSelectorOptions? options = null)
    {
        options ??= new DeviceSelectorOptions();
        var spec = (specification ?? "").Trim().ToLowerInvariant();
        switch (spec)
        {
            case "auto":
            {
                int count = CudaDevice.DeviceCount(out var whyNone);
                if (count > 0)
                {
                    var gpu = new CudaDevice(0, options.Cuda);
                    return new SelectedDevice(gpu, $"auto: {count} CUDA device(s) found; using cuda:0 ({gpu.Capabilities.Name})");
                }
                return new SelectedDevice(new HostDevice(options.Host), $"auto: no CUDA device ({whyNone}); using the CPU");
            }
            case "cpu":
                return new SelectedDevice(new HostDevice(options.Host), "cpu: requested");
            case "cuda":
                return OpenCuda(0, options);
        }
        if (spec.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(spec.AsSpan(5), out int ordinal) && ordinal >= 0)
            return OpenCuda(ordinal, options);
        throw new ArgumentException($"unknown device '{specification}'; expected {Forms}; devices here: {DescribeDevices()}");
    }

    /// <summary>The devices that exist here, for messages: "cpu, cuda:0, cuda:1", or "cpu (no CUDA device: libcuda.so.1 not found)".</summary>
    public static string DescribeDevices()
    {
        var names = new List<string>();
        names.Add(HostRuntime.IsAvailable(out var whyNoCpu) ? "cpu" : $"none on the CPU ({whyNoCpu})");
        int count = CudaDevice.DeviceCount(out var whyNoGpu);
        if (count > 0) names.AddRange(Enumerable.Range(0, count).Select(i => $"cuda:{i}"));
        string devices = string.Join(", ", names);
        return count > 0 ? devices : $"{devices} (no CUDA device: {whyNoGpu ?? "none found"})";
    }

    private static SelectedDevice OpenCuda(int ordinal, DeviceSelectorOptions options)
    {
        int count = CudaDevice.DeviceCount(out var whyNone);
        if (count == 0)
            throw new DeviceUnavailableException($"cuda:{ordinal}", $"{whyNone ?? "no CUDA device"}; devices here: " +
                                                                    (HostRuntime.IsAvailable(out _) ? "cpu" : "none"));
        if (ordinal >= count)
            throw new DeviceUnavailableException($"cuda:{ordinal}", $"only {count} CUDA device(s) present; devices here: {DescribeDevices()}");
        var device = new CudaDevice(ordinal, options.Cuda);
        return new SelectedDevice(device, $"cuda:{ordinal}: requested ({device.Capabilities.Name})");
    }
}
