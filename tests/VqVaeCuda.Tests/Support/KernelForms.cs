using VqVaeCuda.Ops;

namespace VqVaeCuda.Tests.Support;

/// <summary>The two forms of a kernel pair (<see cref="KernelLaunch.KernelForm"/>): tests run both on every device.</summary>
public static class KernelForms
{
    /// <summary>The GPU form, then the CPU form.</summary>
    internal static KernelLaunch.KernelForm[] Both { get; } = [KernelLaunch.KernelForm.Gpu, KernelLaunch.KernelForm.Cpu];
}
