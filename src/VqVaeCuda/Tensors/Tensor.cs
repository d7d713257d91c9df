using VqVaeCuda.Device;

namespace VqVaeCuda.Tensors;

/// <summary>
/// A dense, contiguous tensor in device memory: a shape, an element type and a pointer. A tensor either
/// owns its memory (<see cref="Allocate"/>, <see cref="FromArray(IDevice, float[], Shape)"/>; dispose it) or is a
/// view into memory owned by something else — an <see cref="Arena"/>, a <see cref="ParameterStore"/>,
/// another tensor — and then disposing it does nothing.
/// </summary>
public sealed class Tensor : IDisposable
{
    private DeviceBuffer? _owned;

    internal Tensor(IDevice device, DevicePointer pointer, Shape shape, DType dtype, DeviceBuffer? owned = null)
    {
        Device = device;
        Pointer = pointer;
        Shape = shape;
        DType = dtype;
        _owned = owned;
    }

    /// <summary>The device holding the data.</summary>
    public IDevice Device { get; }

    /// <summary>Address of element 0.</summary>
    public DevicePointer Pointer { get; }

    /// <summary>The shape.</summary>
    public Shape Shape { get; }

    /// <summary>The element type.</summary>
    public DType DType { get; }

    /// <summary>Number of elements.</summary>
    public long Count => Shape.Count;

    /// <summary>Size in bytes (every element type is 4 bytes).</summary>
    public long Bytes => Count * 4;

    /// <summary>
    /// Whether gradients flow to this tensor. Parameters and tensors derived from them do; inputs do not.
    /// Ops set it on their outputs when any input has it.
    /// </summary>
    public bool RequiresGrad { get; set; }

    /// <summary>A persistent gradient buffer (parameters); when null the tape allocates one per step.</summary>
    public Tensor? PersistentGrad { get; internal set; }

    /// <summary>An optional name for messages ("encoder.conv1.weight").</summary>
    public string? Name { get; init; }

    /// <summary>"[2,3,32,32] float32 on cpu".</summary>
    public string Describe() => $"{(Name is null ? "" : Name + " ")}{Shape} {DType.ToString().ToLowerInvariant()}";

    /// <summary>A new tensor owning fresh (uninitialised) device memory.</summary>
    public static Tensor Allocate(IDevice device, Shape shape, DType dtype = DType.Float32)
    {
        var buffer = device.Allocate(shape.Count * 4);
        return new Tensor(device, buffer.Pointer, shape, dtype, buffer);
    }

    /// <summary>A new float tensor holding <paramref name="data"/>.</summary>
    public static Tensor FromArray(IDevice device, float[] data, Shape shape)
    {
        if (data.LongLength != shape.Count)
            throw new ArgumentException($"{data.Length} values do not fill a tensor of shape {shape} ({shape.Count} elements)");
        var t = Allocate(device, shape);
        device.CopyToDevice<float>(data, t.Pointer);
        return t;
    }

    /// <summary>A new int32 tensor holding <paramref name="data"/>.</summary>
    public static Tensor FromArray(IDevice device, int[] data, Shape shape)
    {
        if (data.LongLength != shape.Count)
            throw new ArgumentException($"{data.Length} values do not fill a tensor of shape {shape} ({shape.Count} elements)");
        var t = Allocate(device, shape, DType.Int32);
        device.CopyToDevice<int>(data, t.Pointer);
        return t;
    }

    /// <summary>Copies the data to the host (float32 tensors).</summary>
    public float[] ToArray()
    {
        if (DType != DType.Float32) throw new InvalidOperationException($"ToArray on {Describe()}: use ToIntArray");
        var result = new float[Count];
        Device.CopyToHost<float>(Pointer, result);
        return result;
    }

    /// <summary>Copies the data to the host (int32 tensors).</summary>
    public int[] ToIntArray()
    {
        if (DType != DType.Int32) throw new InvalidOperationException($"ToIntArray on {Describe()}: use ToArray");
        var result = new int[Count];
        Device.CopyToHost<int>(Pointer, result);
        return result;
    }

    /// <summary>Overwrites the data from the host.</summary>
    public void CopyFrom(ReadOnlySpan<float> data)
    {
        if (data.Length != Count) throw new ArgumentException($"{data.Length} values for {Describe()}");
        Device.CopyToDevice(data, Pointer);
    }

    /// <summary>Overwrites the data from the host (int32 tensors).</summary>
    public void CopyFrom(ReadOnlySpan<int> data)
    {
        if (data.Length != Count) throw new ArgumentException($"{data.Length} values for {Describe()}");
        Device.CopyToDevice(data, Pointer);
    }

    /// <summary>The same memory seen with another shape of the same element count (a view: owns nothing).</summary>
    public Tensor Reshape(Shape shape)
    {
        if (shape.Count != Count) throw new ArgumentException($"cannot reshape {Describe()} to {shape}: {Count} vs {shape.Count} elements");
        return new Tensor(Device, Pointer, shape, DType) { RequiresGrad = RequiresGrad, Name = Name };
    }

    /// <summary>Frees owned memory; a view does nothing.</summary>
    public void Dispose()
    {
        _owned?.Dispose();
        _owned = null;
    }

    /// <inheritdoc />
    public override string ToString() => $"Tensor({Describe()} on {Device.Name})";
}
