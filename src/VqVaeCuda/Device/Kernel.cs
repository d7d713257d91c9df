using VqVaeCuda.Kernels;

namespace VqVaeCuda.Device;

/// <summary>A kernel loaded on one device. Obtain it from <see cref="IDevice.GetKernel"/>; it lives as long as the device.</summary>
public sealed class Kernel
{
    internal Kernel(KernelDefinition definition, nint handle)
    {
        Definition = definition;
        Handle = handle;
    }

    /// <summary>The kernel's name.</summary>
    public string Name => Definition.Name;

    /// <summary>Its declaration in the kernel sources.</summary>
    public KernelDefinition Definition { get; }

    /// <summary>Device-specific handle: a CUfunction on the GPU, the registry index on the CPU.</summary>
    internal nint Handle { get; }

    /// <inheritdoc />
    public override string ToString() => Definition.Signature;
}
