namespace VqVaeCuda.Device;

/// <summary>Which implementation of <see cref="IDevice"/> runs the kernels.</summary>
public enum DeviceKind
{
    /// <summary>An NVIDIA GPU through the CUDA driver API, NVRTC and cuBLAS.</summary>
    Cuda,
    /// <summary>The CPU, running the same kernel sources compiled as C++ (device name <c>cpu</c>).</summary>
    Host,
}

/// <summary>Order in which the CPU device runs the threads of a block. Results must not depend on it.</summary>
public enum ThreadOrder
{
    /// <summary>threadIdx 0, 1, 2, …</summary>
    Ascending = 0,
    /// <summary>Last thread first.</summary>
    Descending = 1,
    /// <summary>A seeded random permutation per block.</summary>
    Shuffled = 2,
}

/// <summary>What a device is and what it allows a launch to ask for.</summary>
/// <param name="Name">Human-readable name, e.g. "NVIDIA H100 80GB HBM3" or "cpu (2 workers)".</param>
/// <param name="Architecture">"sm_90" for a GPU, the CPU architecture ("x86_64") for the host.</param>
/// <param name="Multiprocessors">SMs on a GPU; worker threads on the CPU.</param>
/// <param name="TotalMemoryBytes">Device memory (host: physical memory).</param>
/// <param name="MaxThreadsPerBlock">1024 on every current GPU and on the CPU device.</param>
/// <param name="MaxSharedMemoryPerBlock">Bytes of shared memory one block may use without opt-in.</param>
public sealed record DeviceCapabilities(
    string Name,
    string Architecture,
    int Multiprocessors,
    long TotalMemoryBytes,
    int MaxThreadsPerBlock,
    int MaxSharedMemoryPerBlock)
{
    /// <summary>
    /// Whether kernels were compiled to contract a·b + c into fused multiply-adds (one rounding instead of two). Always
    /// false on the CPU device (its library is built with <c>-ffp-contract=off</c>); on a GPU,
    /// <see cref="Cuda.CudaDeviceOptions.FusedMultiplyAdd"/>. Results of the two devices agree to the last bit only where
    /// both are false; <c>verify</c> and the CUDA tests state it.
    /// </summary>
    public bool FusedMultiplyAdd { get; init; }

    /// <summary>Whether GEMM may round its inputs to TF32 (<see cref="Cuda.CudaDeviceOptions.AllowTf32"/>). Always false on the CPU device.</summary>
    public bool Tf32Gemm { get; init; }

    /// <summary>
    /// How kernels reach the device, for reports: "cubin sm_90", "PTX compute_90, JIT-compiled by the driver", or on the
    /// CPU "C++ (libvqvae_host, -ffp-contract=off)".
    /// </summary>
    public string KernelTarget { get; init; } = "";
}
