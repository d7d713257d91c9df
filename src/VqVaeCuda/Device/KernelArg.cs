namespace VqVaeCuda.Device;

/// <summary>
/// One kernel argument: a pointer or a 4/8-byte scalar, stored by value. Implicit conversions make
/// launches read like CUDA's: <c>device.Launch(kernel, grid, block, 0, x, y, 2.0f, n)</c>.
/// Both devices receive the arguments in cuLaunchKernel's form, an array of pointers to values.
/// </summary>
public readonly struct KernelArg
{
    /// <summary>The value's bits (zero-extended).</summary>
    public readonly ulong Bits;
    /// <summary>Bytes the kernel parameter occupies (4 or 8).</summary>
    public readonly int Size;
    /// <summary>p pointer, f float, d double, i signed integer, u unsigned integer: matches the kernel registry.</summary>
    public readonly char Kind;

    private KernelArg(ulong bits, int size, char kind)
    {
        Bits = bits;
        Size = size;
        Kind = kind;
    }

    /// <summary>A device pointer.</summary>
    public static implicit operator KernelArg(DevicePointer p) => new(p.Address, 8, 'p');
    /// <summary>The start of a buffer.</summary>
    public static implicit operator KernelArg(DeviceBuffer b) => new(b.Pointer.Address, 8, 'p');
    /// <summary>A 32-bit float.</summary>
    public static implicit operator KernelArg(float v) => new(BitConverter.SingleToUInt32Bits(v), 4, 'f');
    /// <summary>A 64-bit float.</summary>
    public static implicit operator KernelArg(double v) => new(BitConverter.DoubleToUInt64Bits(v), 8, 'd');
    /// <summary>A 32-bit signed integer.</summary>
    public static implicit operator KernelArg(int v) => new((uint)v, 4, 'i');
    /// <summary>A 32-bit unsigned integer.</summary>
    public static implicit operator KernelArg(uint v) => new(v, 4, 'u');
    /// <summary>A 64-bit signed integer.</summary>
    public static implicit operator KernelArg(long v) => new((ulong)v, 8, 'i');
    /// <summary>A 64-bit unsigned integer.</summary>
    public static implicit operator KernelArg(ulong v) => new(v, 8, 'u');

    /// <summary>
    /// Lays out <paramref name="args"/> in cuLaunchKernel's convention, used by both devices: one 8-byte
    /// slot per value in <paramref name="values"/>, and <paramref name="pointers"/>[i] pointing at slot i.
    /// On a little-endian machine a 4-byte value is the low half of its slot, which is what the kernel
    /// reads. The caller owns both arrays (stack memory: the launch copies the values during the call).
    /// </summary>
    internal static unsafe void ToLaunchParameters(ReadOnlySpan<KernelArg> args, ulong* values, void** pointers)
    {
        for (int i = 0; i < args.Length; i++)
        {
            values[i] = args[i].Bits;
            pointers[i] = &values[i];
        }
    }

    /// <summary>Readable kind, for error messages.</summary>
    public string Describe() => Describe(Kind, Size);

    internal static string Describe(char kind, int size) => kind switch
    {
        'p' => "pointer",
        'f' => "float",
        'd' => "double",
        'i' => size == 8 ? "long" : "int",
        'u' => size == 8 ? "unsigned long" : "unsigned int",
        _ => $"{size}-byte value",
    };
}
