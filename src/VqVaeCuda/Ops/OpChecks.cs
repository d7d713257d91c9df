using VqVaeCuda.Tensors;

namespace VqVaeCuda.Ops;

/// <summary>A shape, element type or device mismatch, found before any launch; names the op and the tensors.</summary>
public sealed class OpArgumentException(string message) : ArgumentException(message);

/// <summary>The checks ops run on their inputs before launching anything.</summary>
public static class OpChecks
{
    /// <summary>All tensors on one device.</summary>
    public static void SameDevice(string op, params Tensor[] tensors)
    {
        for (int i = 1; i < tensors.Length; i++)
            if (!ReferenceEquals(tensors[i].Device, tensors[0].Device))
                throw new OpArgumentException($"{op}: {tensors[0].Describe()} is on {tensors[0].Device.Name} but {tensors[i].Describe()} is on {tensors[i].Device.Name}");
    }

    /// <summary>Equal shapes.</summary>
    public static void SameShape(string op, Tensor a, Tensor b)
    {
        SameDevice(op, a, b);
        if (a.Shape != b.Shape) throw new OpArgumentException($"{op}: shapes differ: {a.Describe()} vs {b.Describe()}");
    }

    /// <summary>The element type.</summary>
    public static void DTypeIs(string op, Tensor t, DType dtype, string role)
    {
        if (t.DType != dtype) throw new OpArgumentException($"{op}: {role} must be {dtype.ToString().ToLowerInvariant()}, got {t.Describe()}");
    }

    /// <summary>The rank.</summary>
    public static void Rank(string op, Tensor t, int rank, string role)
    {
        if (t.Shape.Rank != rank) throw new OpArgumentException($"{op}: {role} must have rank {rank}, got {t.Describe()}");
    }

    /// <summary>Any condition, with a message that names the op.</summary>
    public static void Require(bool condition, string op, string message)
    {
        if (!condition) throw new OpArgumentException($"{op}: {message}");
    }
}
