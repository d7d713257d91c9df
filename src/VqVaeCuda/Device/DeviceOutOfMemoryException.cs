namespace VqVaeCuda.Device;

/// <summary>
/// A device could not give the memory asked for. The message names the device, the bytes asked for and the bytes
/// free, so the user sees how far off the request is (a smaller batch, a smaller model). Nothing was allocated: the
/// device stays usable.
/// </summary>
public sealed class DeviceOutOfMemoryException : OutOfMemoryException
{
    /// <summary>A refusal of <paramref name="requestedBytes"/> on <paramref name="device"/>, which had <paramref name="availableBytes"/> free.</summary>
    public DeviceOutOfMemoryException(string device, long requestedBytes, long availableBytes, string? detail = null, Exception? inner = null)
        : base($"{device} device: out of memory: asked for {HostMemory.Describe(requestedBytes)}, {HostMemory.Describe(availableBytes)} available" +
               (detail is null ? "" : $" ({detail})"), inner)
    {
        Device = device;
        RequestedBytes = requestedBytes;
        AvailableBytes = availableBytes;
    }

    /// <summary>The device ("cpu", "cuda:0").</summary>
    public string Device { get; }

    /// <summary>Bytes the allocation asked for.</summary>
    public long RequestedBytes { get; }

    /// <summary>Bytes the device reported free when it refused.</summary>
    public long AvailableBytes { get; }
}
