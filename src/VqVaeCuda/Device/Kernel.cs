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

    /// <summary>
    /// What this compiled kernel allows a launch: from the driver on a GPU (cuFuncGetAttribute); on the CPU from the
    /// ptxas report when the device was given one (<see cref="Host.HostDeviceOptions.KernelLimits"/>), else from
    /// <c>__launch_bounds__</c>; null when nothing is known beyond the device's limits.
    /// </summary>
    public KernelLaunchLimits? Limits { get; internal init; }

    /// <summary>Device-specific handle: a CUfunction on the GPU, the registry index on the CPU.</summary>
    internal nint Handle { get; }

    /// <inheritdoc />
    public override string ToString() => Definition.Signature;
}
