using VqVaeCuda.Device;
using VqVaeCuda.Kernels;

namespace VqVaeCuda.Verification;

/// <summary>
/// A device that passes everything to another and remembers the name of every kernel launched through it: how
/// <c>vqvae verify</c> knows which kernels of <see cref="IDevice.Sources"/> its checks reached. Buffers allocated
/// through it belong to it (their <see cref="DeviceBuffer.Dispose"/> comes back here and goes on to the inner device).
/// It does not own the inner device. <see cref="Launch"/> and <see cref="Gemm"/> are virtual so that a test can break
/// a kernel or the GEMM and watch verify catch it.
/// </summary>
public class KernelRecordingDevice(IDevice inner) : IDevice, IGraphCapture
{
    private readonly HashSet<string> _launched = new(StringComparer.Ordinal);

    /// <summary>The device doing the work.</summary>
    public IDevice Inner { get; } = inner;

    /// <summary>Names of the kernels launched so far.</summary>
    public IReadOnlyCollection<string> Launched => _launched;

    /// <inheritdoc />
    public string Name => Inner.Name;

    /// <inheritdoc />
    public DeviceKind Kind => Inner.Kind;

    /// <inheritdoc />
    public DeviceCapabilities Capabilities => Inner.Capabilities;

    /// <inheritdoc />
    public KernelSourceSet Sources => Inner.Sources;

    /// <inheritdoc />
    public DeviceBuffer Allocate(long bytes)
    {
        var buffer = Inner.Allocate(bytes);
        return new DeviceBuffer(this, buffer.Pointer, buffer.Bytes);
    }

    /// <inheritdoc />
    public void Free(DevicePointer pointer) => Inner.Free(pointer);

    /// <inheritdoc />
    public void CopyToDevice<T>(ReadOnlySpan<T> source, DevicePointer destination) where T : unmanaged => Inner.CopyToDevice(source, destination);

    /// <inheritdoc />
    public void CopyToHost<T>(DevicePointer source, Span<T> destination) where T : unmanaged => Inner.CopyToHost(source, destination);

    /// <inheritdoc />
    public void Copy(DevicePointer source, DevicePointer destination, long bytes) => Inner.Copy(source, destination, bytes);

    /// <inheritdoc />
    public void FillBytes(DevicePointer destination, byte value, long bytes) => Inner.FillBytes(destination, value, bytes);

    /// <inheritdoc />
    public Kernel GetKernel(string name) => Inner.GetKernel(name);

    /// <inheritdoc />
    public virtual void Launch(Kernel kernel, Dim3 grid, Dim3 block, int dynamicSharedBytes, params ReadOnlySpan<KernelArg> args)
    {
        _launched.Add(kernel.Name);
        Inner.Launch(kernel, grid, block, dynamicSharedBytes, args);
    }

    /// <inheritdoc />
    public virtual void Gemm(GemmOp transA, GemmOp transB, int m, int n, int k, float alpha, DevicePointer a, int lda, DevicePointer b, int ldb,
                     float beta, DevicePointer c, int ldc) =>
        Inner.Gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    /// <inheritdoc />
    public void GemmStridedBatched(GemmOp transA, GemmOp transB, int m, int n, int k, float alpha, DevicePointer a, int lda, long strideA,
                                   DevicePointer b, int ldb, long strideB, float beta, DevicePointer c, int ldc, long strideC, int batch) =>
        Inner.GemmStridedBatched(transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch);

    /// <inheritdoc />
    public long KernelLaunches => Inner.KernelLaunches;

    /// <inheritdoc />
    public long GemmCalls => Inner.GemmCalls;

    /// <inheritdoc />
    public void Synchronize() => Inner.Synchronize();

    /// <inheritdoc />
    public DeviceEvent Record() => Inner.Record();

    /// <inheritdoc />
    public double ElapsedMilliseconds(DeviceEvent start, DeviceEvent end) => Inner.ElapsedMilliseconds(start, end);

    /// <summary>Whether the device under test is capturing (graph capture passes through to it).</summary>
    public bool IsCapturing => Inner is IGraphCapture { IsCapturing: true };

    /// <summary>Starts a capture on the device under test; launches keep being recorded here (at capture, once).</summary>
    /// <exception cref="InvalidOperationException">The device under test cannot capture.</exception>
    public void BeginCapture() => InnerCapture.BeginCapture();

    /// <summary>Ends the capture on the device under test.</summary>
    public CapturedGraph EndCapture() => InnerCapture.EndCapture();

    private IGraphCapture InnerCapture => Inner as IGraphCapture ?? throw new InvalidOperationException($"{Inner.Name} cannot capture graphs");

    /// <summary>Does not dispose <see cref="Inner"/>: its owner does.</summary>
    public void Dispose() => GC.SuppressFinalize(this);
}
