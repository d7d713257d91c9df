namespace VqVaeCuda.Device;

/// <summary>
/// An address in a device's memory (a CUdeviceptr on the GPU, a plain pointer on the CPU device).
/// Kernels and GEMM take these; <see cref="DeviceBuffer"/> owns the memory they point into.
/// </summary>
public readonly record struct DevicePointer(ulong Address)
{
    /// <summary>The pointer <paramref name="bytes"/> further on.</summary>
    public DevicePointer Offset(long bytes) => new(checked((ulong)((long)Address + bytes)));

    /// <summary>The pointer <paramref name="elements"/> floats further on.</summary>
    public DevicePointer OffsetFloats(long elements) => Offset(elements * sizeof(float));

    /// <inheritdoc />
    public override string ToString() => $"0x{Address:x}";
}
