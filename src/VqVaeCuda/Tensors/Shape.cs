namespace VqVaeCuda.Tensors;

/// <summary>The element type of a tensor. Activations and parameters are float32; code maps and labels int32.</summary>
public enum DType
{
    /// <summary>32-bit IEEE float.</summary>
    Float32,
    /// <summary>32-bit signed integer.</summary>
    Int32,
}

/// <summary>An immutable tensor shape, outermost dimension first (NCHW for images).</summary>
public sealed class Shape : IEquatable<Shape>
{
    private readonly int[] _dims;

    /// <summary>A shape with the given dimensions (each at least 1; rank 0 is a scalar).</summary>
    public Shape(params int[] dims)
    {
        foreach (var d in dims)
            if (d < 1) throw new ArgumentException($"shape [{string.Join(",", dims)}]: every dimension must be at least 1");
        _dims = (int[])dims.Clone();
        long count = 1;
        foreach (var d in dims) count = checked(count * d);
        Count = count;
    }

    /// <summary>Number of dimensions.</summary>
    public int Rank => _dims.Length;

    /// <summary>Dimension <paramref name="i"/> (negative counts from the end).</summary>
    public int this[int i] => _dims[i < 0 ? _dims.Length + i : i];

    /// <summary>Product of the dimensions.</summary>
    public long Count { get; }

    /// <summary>The dimensions.</summary>
    public ReadOnlySpan<int> Dims => _dims;

    /// <summary>Implicit conversion from dimensions: <c>Shape s = new[] { 2, 3 };</c>.</summary>
    public static implicit operator Shape(int[] dims) => new(dims);

    /// <inheritdoc />
    public bool Equals(Shape? other) => other is not null && _dims.AsSpan().SequenceEqual(other._dims);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is Shape s && Equals(s);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var d in _dims) h.Add(d);
        return h.ToHashCode();
    }

    /// <summary>Equality of dimensions.</summary>
    public static bool operator ==(Shape? a, Shape? b) => a is null ? b is null : a.Equals(b);

    /// <summary>Inequality of dimensions.</summary>
    public static bool operator !=(Shape? a, Shape? b) => !(a == b);

    /// <summary>"[2,3,32,32]".</summary>
    public override string ToString() => $"[{string.Join(",", _dims)}]";
}
