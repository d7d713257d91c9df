namespace VqVaeCuda.Kernels;

/// <summary>How the CPU device may run a kernel's threads (the VQ_KERNEL_* registration in its source).</summary>
public enum KernelSyncKind
{
    /// <summary>VQ_KERNEL_NO_SYNC: never synchronises; threads run as plain calls.</summary>
    NoSync = 0,
    /// <summary>VQ_KERNEL_SYNC: every thread reaches the same barriers; threads run as fibers.</summary>
    Sync = 1,
    /// <summary>VQ_KERNEL_SYNC_DIVERGENT: only some threads synchronise; always fibers.</summary>
    SyncDivergent = 2,
}

/// <summary>One parameter of a kernel, as declared in its source.</summary>
/// <param name="Type">The declared type, e.g. "const float* __restrict__" or "int".</param>
/// <param name="Name">The parameter name.</param>
/// <param name="Kind">p pointer, f float, d double, i signed integer, u unsigned integer.</param>
/// <param name="Size">Bytes the parameter occupies.</param>
public sealed record KernelParameter(string Type, string Name, char Kind, int Size)
{
    /// <summary>The name ending that marks a pointer the kernel tests for null (an optional input, e.g. a bias).</summary>
    public const string OptionalPointerSuffix = "_or_null";

    /// <summary>A pointer the kernel reads only when it is not null: launches may pass null here and nowhere else.</summary>
    public bool MayBeNull => Kind == 'p' && Name.EndsWith(OptionalPointerSuffix, StringComparison.Ordinal);

    /// <inheritdoc />
    public override string ToString() => $"{Type} {Name}";
}

/// <summary>A kernel as declared in <c>kernels/*.cu</c>: where it lives, its parameters and registration.</summary>
/// <param name="Name">The extern "C" name.</param>
/// <param name="SourceName">The file that defines it, e.g. "reduce.cu" or "testing/semantics.cu".</param>
/// <param name="Parameters">Its parameters in order.</param>
/// <param name="SyncKind">Its VQ_KERNEL_* registration.</param>
/// <param name="LaunchBoundsThreads">The first argument of <c>__launch_bounds__</c>, when declared.</param>
public sealed record KernelDefinition(
    string Name,
    string SourceName,
    IReadOnlyList<KernelParameter> Parameters,
    KernelSyncKind SyncKind,
    int? LaunchBoundsThreads)
{
    /// <summary>"name(type a, type b)".</summary>
    public string Signature => $"{Name}({string.Join(", ", Parameters)})";
}
