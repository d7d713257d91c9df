using VqVaeCuda.Kernels;

namespace VqVaeCuda.Device;

/// <summary>Whether GEMM operands are used as stored or transposed (cuBLAS's cublasOperation_t).</summary>
public enum GemmOp
{
    /// <summary>As stored.</summary>
    None = 0,
    /// <summary>Transposed.</summary>
    Transpose = 1,
}

/// <summary>
/// A device that runs the project's kernels: a CUDA GPU or the CPU. Code above this layer never knows
/// which. Launches are asynchronous on the GPU and complete on return on the CPU; reading memory
/// back (<see cref="CopyToHost{T}"/>) waits for earlier work either way.
/// </summary>
public interface IDevice : IDisposable
{
    /// <summary>"cuda:0" or "cpu".</summary>
    string Name { get; }

    /// <summary>GPU or CPU.</summary>
    DeviceKind Kind { get; }

    /// <summary>What the device is and its launch limits.</summary>
    DeviceCapabilities Capabilities { get; }

    /// <summary>The kernels this device can run.</summary>
    KernelSourceSet Sources { get; }

    /// <summary>Allocates <paramref name="bytes"/> of device memory (contents unspecified).</summary>
    DeviceBuffer Allocate(long bytes);

    /// <summary>Frees memory from <see cref="Allocate"/>; normally called by <see cref="DeviceBuffer.Dispose"/>.</summary>
    void Free(DevicePointer pointer);

    /// <summary>Copies host data into device memory at <paramref name="destination"/>.</summary>
    void CopyToDevice<T>(ReadOnlySpan<T> source, DevicePointer destination) where T : unmanaged;

    /// <summary>Copies device memory into host memory, after all earlier work on the device.</summary>
    void CopyToHost<T>(DevicePointer source, Span<T> destination) where T : unmanaged;

    /// <summary>Copies <paramref name="bytes"/> within the device.</summary>
    void Copy(DevicePointer source, DevicePointer destination, long bytes);

    /// <summary>Sets <paramref name="bytes"/> bytes to <paramref name="value"/>.</summary>
    void FillBytes(DevicePointer destination, byte value, long bytes);

    /// <summary>The kernel called <paramref name="name"/>, compiled and loaded on first use.</summary>
    /// <exception cref="UnknownKernelException">No kernel has that name.</exception>
    Kernel GetKernel(string name);

    /// <summary>
    /// Launches <paramref name="kernel"/>. Shape, shared memory and arguments are checked against the
    /// device limits and the kernel's declared parameters before anything runs.
    /// </summary>
    void Launch(Kernel kernel, Dim3 grid, Dim3 block, int dynamicSharedBytes, params ReadOnlySpan<KernelArg> args);

    /// <summary>
    /// C = alpha·op(A)·op(B) + beta·C in cuBLAS's column-major convention: op(A) is m×k, op(B) is k×n,
    /// C is m×n, leading dimensions in elements. (A row-major product is the same call with the
    /// operands swapped: see the GEMM tests.)
    /// </summary>
    void Gemm(GemmOp transA, GemmOp transB, int m, int n, int k, float alpha, DevicePointer a, int lda,
              DevicePointer b, int ldb, float beta, DevicePointer c, int ldc);

    /// <summary><see cref="Gemm"/> over <paramref name="batch"/> matrices spaced by the given strides (elements).</summary>
    void GemmStridedBatched(GemmOp transA, GemmOp transB, int m, int n, int k, float alpha, DevicePointer a, int lda, long strideA,
                            DevicePointer b, int ldb, long strideB, float beta, DevicePointer c, int ldc, long strideC, int batch);

    /// <summary>Kernel launches submitted since the device was created (GEMM calls not included): the step benchmark's launch count.</summary>
    long KernelLaunches { get; }

    /// <summary>GEMM calls submitted since the device was created (a strided-batched call counts once).</summary>
    long GemmCalls { get; }

    /// <summary>Waits until all submitted work has finished.</summary>
    void Synchronize();

    /// <summary>Marks the current point in the device's work, for timing.</summary>
    DeviceEvent Record();

    /// <summary>Milliseconds of device work between two events (waits for <paramref name="end"/>).</summary>
    double ElapsedMilliseconds(DeviceEvent start, DeviceEvent end);
}

/// <summary>A point in a device's stream of work; dispose when done (GPU events are driver objects).</summary>
public abstract class DeviceEvent : IDisposable
{
    /// <inheritdoc />
    public virtual void Dispose() => GC.SuppressFinalize(this);
}
