namespace VqVaeCuda.Device;

/// <summary>
/// Device memory owned by the caller. Free it with <see cref="Dispose"/> (or a using block); there is
/// deliberately no finalizer, because freeing GPU memory from the finalizer thread races with the
/// device's own lifetime.
/// </summary>
public sealed class DeviceBuffer : IDisposable
{
    private readonly IDevice _device;
    private DevicePointer _pointer;

    internal DeviceBuffer(IDevice device, DevicePointer pointer, long bytes)
    {
        _device = device;
        _pointer = pointer;
        Bytes = bytes;
    }

    /// <summary>Size in bytes.</summary>
    public long Bytes { get; }

    /// <summary>Size in float32 elements (Bytes / 4).</summary>
    public long FloatCount => Bytes / sizeof(float);

    /// <summary>The device that owns the memory.</summary>
    public IDevice Device => _device;

    /// <summary>True once disposed.</summary>
    public bool IsDisposed => _pointer.Address == 0 && Bytes != 0;

    /// <summary>The start of the buffer.</summary>
    public DevicePointer Pointer =>
        _pointer.Address != 0 || Bytes == 0 ? _pointer : throw new ObjectDisposedException(nameof(DeviceBuffer), "the device buffer has been freed");

    /// <summary>Frees the memory. Idempotent.</summary>
    public void Dispose()
    {
        var p = _pointer;
        if (p.Address == 0) return;
        _pointer = default;
        _device.Free(p);
    }

    /// <inheritdoc />
    public override string ToString() => $"DeviceBuffer({Bytes} bytes at {_pointer} on {_device.Name})";
}
