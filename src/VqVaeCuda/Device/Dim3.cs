namespace VqVaeCuda.Device;

/// <summary>A grid or block shape, as CUDA's <c>dim3</c>. Unset dimensions are 1.</summary>
public readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1)
{
    /// <summary>X·Y·Z.</summary>
    public ulong Volume => (ulong)X * Y * Z;

    /// <summary>One-dimensional shape.</summary>
    public static implicit operator Dim3(int x) => new(checked((uint)x));

    /// <summary>Enough blocks of <paramref name="blockSize"/> to cover <paramref name="count"/> items (at least 1).</summary>
    public static Dim3 Cover(long count, int blockSize) => new((uint)Math.Max(1, (count + blockSize - 1) / blockSize));

    /// <inheritdoc />
    public override string ToString() => $"({X},{Y},{Z})";
}
