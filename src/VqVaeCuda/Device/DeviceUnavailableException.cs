namespace VqVaeCuda.Device;

/// <summary>A device that cannot be opened here, with the reason (missing library, no GPU, ...).</summary>
public sealed class DeviceUnavailableException(string device, string reason)
    : Exception($"device '{device}' is unavailable: {reason}")
{
    /// <summary>The device asked for ("cpu", "cuda:0").</summary>
    public string Device { get; } = device;
    /// <summary>Why it cannot be used.</summary>
    public string Reason { get; } = reason;
}
