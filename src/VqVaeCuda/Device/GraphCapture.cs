namespace VqVaeCuda.Device;

/// <summary>
/// Records a device's work once and replays it: on a GPU a CUDA graph (stream capture, then <c>cuGraphLaunch</c>), on the
/// CPU an ordered list of the recorded launches, GEMMs, device copies and fills. Both devices implement it, so one step
/// structure runs on either and a CPU test can prove that replay equals eager execution.
/// </summary>
/// <remarks>
/// <para><b>The contract of a capture</b> (between <see cref="BeginCapture"/> and <see cref="EndCapture"/>):</para>
/// <list type="bullet">
/// <item>Allowed: <see cref="IDevice.Launch"/>, <see cref="IDevice.Gemm"/>, <see cref="IDevice.GemmStridedBatched"/>,
/// <see cref="IDevice.Copy"/> (device to device), <see cref="IDevice.FillBytes"/>, and <see cref="IDevice.GetKernel"/> of a
/// kernel already loaded. These are recorded, <b>not run</b>: nothing executes until <see cref="CapturedGraph.Launch"/>.</item>
/// <item>Refused with <see cref="InvalidOperationException"/> on both devices: host synchronisation
/// (<see cref="IDevice.Synchronize"/>, <see cref="IDevice.Record"/>, <see cref="IDevice.ElapsedMilliseconds"/>), copies
/// between host and device (<see cref="IDevice.CopyToDevice{T}"/>, <see cref="IDevice.CopyToHost{T}"/>), allocation and
/// freeing (<see cref="IDevice.Allocate"/>, <see cref="IDevice.Free"/>, so no <see cref="DeviceBuffer"/> may be created or
/// disposed), and loading a kernel for the first time. Get every kernel and allocate every buffer before capturing.</item>
/// <item>Arguments are recorded by value: pointers, sizes and scalars are those of capture time at every replay. A value
/// that must change between replays (a step counter, a learning rate) must live in device memory and be written by a
/// kernel or copy inside the graph, or by the host before <see cref="CapturedGraph.Launch"/> (with a copy outside capture).</item>
/// <item>The buffers a graph uses must outlive it; it does not own them.</item>
/// <item>On a GPU the capture is thread-local (CU_STREAM_CAPTURE_MODE_THREAD_LOCAL): begin, record and end on one thread,
/// and use no other thread's work on this device meanwhile. GEMM inside a capture works because the cuBLAS handle runs on
/// the capturing stream and has a fixed workspace (<c>cublasSetWorkspace</c>, set at <see cref="BeginCapture"/>), so cuBLAS
/// allocates nothing during capture.</item>
/// <item>A failed launch during capture invalidates it: <see cref="EndCapture"/> then throws, and the device leaves capture
/// mode either way.</item>
/// </list>
/// <para><see cref="IDevice.KernelLaunches"/> and <see cref="IDevice.GemmCalls"/> count the captured work once, at capture;
/// replays do not add to them.</para>
/// </remarks>
public interface IGraphCapture
{
    /// <summary>True between <see cref="BeginCapture"/> and <see cref="EndCapture"/>.</summary>
    bool IsCapturing { get; }

    /// <summary>Starts recording this device's work instead of running it.</summary>
    /// <exception cref="InvalidOperationException">A capture is already in progress.</exception>
    void BeginCapture();

    /// <summary>Stops recording and returns the recorded work, ready to <see cref="CapturedGraph.Launch"/>.</summary>
    /// <exception cref="InvalidOperationException">No capture is in progress.</exception>
    CapturedGraph EndCapture();
}

/// <summary>Work recorded by <see cref="IGraphCapture"/>; launch it as often as needed, dispose it when done.</summary>
public abstract class CapturedGraph : IDisposable
{
    /// <summary>Kernel launches, GEMMs, copies and fills recorded.</summary>
    public abstract int OperationCount { get; }

    /// <summary>
    /// Runs the recorded work, in order, after all earlier work on the device (asynchronously on a GPU, like a launch).
    /// </summary>
    /// <exception cref="ObjectDisposedException">The graph or its device is disposed.</exception>
    public abstract void Launch();

    /// <inheritdoc />
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the graph's driver objects (GPU) or recorded list (CPU).</summary>
    protected abstract void Dispose(bool disposing);
}
