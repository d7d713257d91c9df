using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using VqVaeCuda.Device.Native;
using VqVaeCuda.Kernels;

namespace VqVaeCuda.Device.Host;

/// <summary>Options of the CPU device.</summary>
public sealed record HostDeviceOptions
{
    /// <summary>
    /// Pad every allocation with canary bytes, fill fresh memory with NaN, and verify the canaries
    /// after each launch, naming the kernel that wrote out of bounds. Slower; on in the tests.
    /// </summary>
    public bool Checked { get; init; }

    /// <summary>The order in which a block's threads run. Correct kernels give the same results in every order.</summary>
    public ThreadOrder ThreadOrder { get; init; } = ThreadOrder.Ascending;

    /// <summary>Seed of the per-block permutation when <see cref="ThreadOrder"/> is Shuffled.</summary>
    public ulong ShuffleSeed { get; init; } = 0x5EED;

    /// <summary>OS threads that run blocks; 0 = one per core.</summary>
    public int Workers { get; init; }

    /// <summary>
    /// Per-kernel launch limits as a GPU would enforce them (block size capped by registers and <c>__launch_bounds__</c>,
    /// static shared memory), e.g. Diagnostics' <c>KernelReport.LaunchLimits</c> from NVRTC's ptxas report, so that a
    /// launch that would fail on a GPU fails here too. Null (or a null answer for a kernel) falls back to the kernel's
    /// <c>__launch_bounds__</c> alone: the CPU library itself does not know registers or static shared memory.
    /// </summary>
    public Func<KernelDefinition, KernelLaunchLimits?>? KernelLimits { get; init; }
}

/// <summary>
/// The <c>cpu</c> device: the kernels of <c>kernels/*.cu</c>, compiled as C++ into libvqvae_host, run by
/// its block scheduler; GEMM by OpenBLAS. Device pointers are ordinary host pointers, and every
/// launch has finished when <see cref="Launch"/> returns.
/// </summary>
public sealed unsafe class HostDevice : IDevice, IGraphCapture
{
    private const int ErrorCapacity = 2048;
    private const long LargeAllocationBytes = 16L << 20;
    private readonly Dictionary<string, Kernel> _kernels = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HostRuntime.RegisteredKernel> _registry;
    private readonly object _gate = new();
    private bool _disposed;

    /// <summary>Opens the CPU device.</summary>
    /// <exception cref="DeviceUnavailableException">libvqvae_host is missing (the message says how to build it).</exception>
    public HostDevice(HostDeviceOptions? options = null)
    {
        Options = options ?? new HostDeviceOptions();
        if (!HostRuntime.IsAvailable(out var whyNot))
            throw new DeviceUnavailableException("cpu", whyNot ?? "libvqvae_host is unavailable");
        if (Options.Workers > 0 || HostRuntime.vqh_worker_count() < 1) HostRuntime.vqh_set_worker_count(Options.Workers);
        _registry = HostRuntime.Registry().ToDictionary(k => k.Name, StringComparer.Ordinal);
        Sources = KernelSourceSet.Embedded;
        Capabilities = new DeviceCapabilities(
            Name: $"cpu ({HostRuntime.vqh_worker_count()} workers, {RuntimeInformation.ProcessArchitecture})",
            Architecture: RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant(),
            Multiprocessors: HostRuntime.vqh_worker_count(),
            TotalMemoryBytes: GC.GetGCMemoryInfo().TotalAvailableMemoryBytes,
            MaxThreadsPerBlock: 1024,
            // CUDA's default per-block limit without opt-in, so kernels that run here also fit a GPU.
            MaxSharedMemoryPerBlock: 48 * 1024)
        {
            FusedMultiplyAdd = false,
            Tf32Gemm = false,
            KernelTarget = "C++ (libvqvae_host, -ffp-contract=off)",
        };
    }

    /// <summary>This device's options.</summary>
    public HostDeviceOptions Options { get; }

    /// <inheritdoc />
    public string Name => "cpu";

    /// <inheritdoc />
    public DeviceKind Kind => DeviceKind.Host;

    /// <inheritdoc />
    public DeviceCapabilities Capabilities { get; }

    /// <inheritdoc />
    public KernelSourceSet Sources { get; }

    /// <summary>Live allocations of the native library (all HostDevice instances), for leak tests.</summary>
    public static long LiveAllocationCount => HostRuntime.vqh_live_allocation_count();

    /// <summary>
    /// Fiber resumes of the CPU scheduler since the library loaded (all devices and threads). A block
    /// that never synchronises adds at most one (its first thread, run as a probe).
    /// </summary>
    internal static ulong FiberResumeCount => HostRuntime.vqh_fiber_resume_count();

    /// <inheritdoc />
    public DeviceBuffer Allocate(long bytes)
    {
        ThrowIfDisposed();
        RefuseDuringCapture(nameof(Allocate));
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        // Linux overcommits: an allocation beyond what the machine has succeeds, and the OOM killer ends the process when
        // the pages are touched (checked mode fills them at once). Large requests are therefore checked first; small ones
        // are not worth reading /proc/meminfo for.
        if (bytes >= LargeAllocationBytes)
        {
            long available = HostMemory.AvailableBytes();
            if (bytes > available) throw new DeviceOutOfMemoryException(Name, bytes, available);
        }
        byte* err = stackalloc byte[ErrorCapacity];
        void* p = HostRuntime.vqh_alloc((nuint)Math.Max(bytes, 1), Options.Checked ? 1 : 0, err, ErrorCapacity);
        if (p == null)
            throw new DeviceOutOfMemoryException(Name, bytes, HostMemory.AvailableBytes(), HostRuntime.ErrorText(new ReadOnlySpan<byte>(err, ErrorCapacity)));
        // Pages not yet touched do not count against MemAvailable, so two large allocations of 60% each would both pass
        // the check above and the OOM killer would come when they are filled. Committing a large allocation at once (checked
        // mode already fills it) makes the next check see it.
        if (bytes >= LargeAllocationBytes && !Options.Checked) NativeMemory.Clear(p, (nuint)bytes);
        return new DeviceBuffer(this, new DevicePointer((ulong)p), bytes);
    }

    /// <inheritdoc />
    public void Free(DevicePointer pointer)
    {
        RefuseDuringCapture(nameof(Free));
        byte* err = stackalloc byte[ErrorCapacity];
        int rc = HostRuntime.vqh_free((void*)pointer.Address, err, ErrorCapacity);
        HostRuntime.Check(rc, new ReadOnlySpan<byte>(err, ErrorCapacity), "cpu device: free");
    }

    /// <inheritdoc />
    public void CopyToDevice<T>(ReadOnlySpan<T> source, DevicePointer destination) where T : unmanaged
    {
        ThrowIfDisposed();
        RefuseDuringCapture(nameof(CopyToDevice));
        source.CopyTo(new Span<T>((void*)destination.Address, source.Length));
    }

    /// <inheritdoc />
    public void CopyToHost<T>(DevicePointer source, Span<T> destination) where T : unmanaged
    {
        ThrowIfDisposed();
        RefuseDuringCapture(nameof(CopyToHost));
        new ReadOnlySpan<T>((void*)source.Address, destination.Length).CopyTo(destination);
    }

    /// <inheritdoc />
    public void Copy(DevicePointer source, DevicePointer destination, long bytes)
    {
        if (Recording(() => Buffer.MemoryCopy((void*)source.Address, (void*)destination.Address, bytes, bytes))) return;
        Buffer.MemoryCopy((void*)source.Address, (void*)destination.Address, bytes, bytes);
    }

    /// <inheritdoc />
    public void FillBytes(DevicePointer destination, byte value, long bytes)
    {
        if (Recording(() => NativeMemory.Fill((void*)destination.Address, (nuint)bytes, value))) return;
        NativeMemory.Fill((void*)destination.Address, (nuint)bytes, value);
    }

    /// <inheritdoc />
    public Kernel GetKernel(string name)
    {
        ThrowIfDisposed();
        lock (_gate)
        {
            if (_kernels.TryGetValue(name, out var cached)) return cached;
            var definition = Sources.Find(name);
            RefuseDuringCapture($"{nameof(GetKernel)}(\"{name}\") of a kernel not loaded before the capture");
            if (!_registry.TryGetValue(name, out var registered))
                throw new HostDeviceException(
                    $"kernel '{name}' ({definition.SourceName}) is not in {HostRuntime.LoadedFrom}: the CPU library is older than the sources; rebuild with `dotnet build`");
            CheckRegistryMatchesSource(definition, registered);
            var limits = Options.KernelLimits?.Invoke(definition)
                         ?? (definition.LaunchBoundsThreads is int bound ? new KernelLaunchLimits(bound, 0, "__launch_bounds__") : null);
            var kernel = new Kernel(definition, registered.Index) { Limits = limits };
            _kernels[name] = kernel;
            return kernel;
        }
    }

    /// <inheritdoc />
    public long KernelLaunches => _kernelLaunches;

    /// <inheritdoc />
    public long GemmCalls => _gemmCalls;

    private long _kernelLaunches, _gemmCalls;

    /// <inheritdoc />
    public void Launch(Kernel kernel, Dim3 grid, Dim3 block, int dynamicSharedBytes, params ReadOnlySpan<KernelArg> args)
    {
        ThrowIfDisposed();
        LaunchValidator.Validate(kernel, grid, block, dynamicSharedBytes, args, Capabilities);
        _kernelLaunches++;
        if (IsCapturing)
        {
            var recorded = args.ToArray();  // by value, as cuLaunchKernel copies them into the graph node
            Record(() => Execute(kernel, grid, block, dynamicSharedBytes, recorded));
            return;
        }
        Execute(kernel, grid, block, dynamicSharedBytes, args);
    }

    private void Execute(Kernel kernel, Dim3 grid, Dim3 block, int dynamicSharedBytes, ReadOnlySpan<KernelArg> args)
    {
        ulong* values = stackalloc ulong[Math.Max(1, args.Length)];
        void** pointers = stackalloc void*[Math.Max(1, args.Length)];
        KernelArg.ToLaunchParameters(args, values, pointers);
        uint* g = stackalloc uint[3] { grid.X, grid.Y, grid.Z };
        uint* b = stackalloc uint[3] { block.X, block.Y, block.Z };
        byte* err = stackalloc byte[ErrorCapacity];
        int rc = HostRuntime.vqh_launch((int)kernel.Handle, g, b, (uint)dynamicSharedBytes, pointers, (int)Options.ThreadOrder,
                                        Options.ShuffleSeed, err, ErrorCapacity);
        if (rc != 0)
            throw new HostDeviceException($"cpu device: kernel '{kernel.Name}' (grid {grid}, block {block}, {dynamicSharedBytes} bytes of dynamic shared memory) failed: " +
                                            HostRuntime.ErrorText(new ReadOnlySpan<byte>(err, ErrorCapacity)));
        if (Options.Checked) VerifyCanaries($"kernel '{kernel.Name}' (grid {grid}, block {block})");
    }

    /// <inheritdoc />
    public void Gemm(GemmOp transA, GemmOp transB, int m, int n, int k, float alpha, DevicePointer a, int lda, DevicePointer b, int ldb,
                     float beta, DevicePointer c, int ldc)
    {
        ThrowIfDisposed();
        GemmValidator.Validate(transA, transB, m, n, k, lda, ldb, ldc);
        if (m == 0 || n == 0) return;
        _gemmCalls++;
        void Run()
        {
            RunGemm(transA, transB, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
            if (Options.Checked) VerifyCanaries("GEMM");
        }
        if (!Recording(Run)) Run();
    }

    /// <inheritdoc />
    public void GemmStridedBatched(GemmOp transA, GemmOp transB, int m, int n, int k, float alpha, DevicePointer a, int lda, long strideA,
                                   DevicePointer b, int ldb, long strideB, float beta, DevicePointer c, int ldc, long strideC, int batch)
    {
        ThrowIfDisposed();
        GemmValidator.Validate(transA, transB, m, n, k, lda, ldb, ldc, batch);
        if (m == 0 || n == 0 || batch == 0) return;
        _gemmCalls++;
        void Run()
        {
            RunGemm(transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch);
            if (Options.Checked) VerifyCanaries("batched GEMM");
        }
        if (!Recording(Run)) Run();
    }

    /// <inheritdoc />
    public void Synchronize()
    {
        ThrowIfDisposed();  // launches complete before they return
        RefuseDuringCapture(nameof(Synchronize));
    }

    /// <inheritdoc />
    public DeviceEvent Record()
    {
        RefuseDuringCapture(nameof(Record));
        return new HostEvent(Stopwatch.GetTimestamp());
    }

    /// <inheritdoc />
    public double ElapsedMilliseconds(DeviceEvent start, DeviceEvent end)
    {
        RefuseDuringCapture(nameof(ElapsedMilliseconds));
        return Stopwatch.GetElapsedTime(((HostEvent)start).Timestamp, ((HostEvent)end).Timestamp).TotalMilliseconds;
    }

    // ---------------------------------------------------------------- graph capture: record, then replay in order

    private List<Action>? _recording;

    /// <inheritdoc />
    public bool IsCapturing => _recording is not null;

    /// <inheritdoc />
    /// <remarks>On the CPU a capture is a list: every launch, GEMM, device copy and fill is validated and recorded, not run.</remarks>
    public void BeginCapture()
    {
        ThrowIfDisposed();
        if (IsCapturing) throw new InvalidOperationException("cpu: a graph capture is already in progress");
        _recording = [];
    }

    /// <inheritdoc />
    public CapturedGraph EndCapture()
    {
        ThrowIfDisposed();
        var recorded = _recording ?? throw new InvalidOperationException($"cpu: {nameof(EndCapture)} without {nameof(BeginCapture)}");
        _recording = null;
        return new RecordedGraph(this, recorded);
    }

    private void Record(Action operation) => _recording!.Add(operation);

    // True when the operation was recorded instead of run.
    private bool Recording(Action operation)
    {
        if (!IsCapturing) return false;
        Record(operation);
        return true;
    }

    private void RefuseDuringCapture(string what)
    {
        if (IsCapturing)
            throw new InvalidOperationException($"cpu: {what} is not allowed during a graph capture " +
                                                "(no host synchronisation, host copies or allocation until EndCapture; see IGraphCapture)");
    }

    /// <summary>The CPU form of a CUDA graph: the recorded operations, replayed in order.</summary>
    private sealed class RecordedGraph(HostDevice device, List<Action> operations) : CapturedGraph
    {
        private List<Action>? _operations = operations;

        public override int OperationCount => _operations?.Count ?? 0;

        public override void Launch()
        {
            var operations = _operations;
            ObjectDisposedException.ThrowIf(operations is null, this);
            device.ThrowIfDisposed();
            device.RefuseDuringCapture("launching a captured graph");
            foreach (var operation in operations) operation();
        }

        protected override void Dispose(bool disposing) => _operations = null;
    }

    /// <inheritdoc />
    public void Dispose() => _disposed = true;

    private sealed class HostEvent(long timestamp) : DeviceEvent
    {
        public long Timestamp { get; } = timestamp;
    }

    private static void RequireBlas()
    {
        if (!OpenBlas.IsAvailable(out var whyNot)) throw new DeviceUnavailableException("cpu", $"GEMM needs a CBLAS library: {whyNot}");
    }

    // cblas_sgemm registered with libvqvae_host once per process: the library splits each product over its
    // worker threads, OpenBLAS running single-threaded on each (kernels/host/gemm.cpp says why).
    private static readonly Lazy<bool> SgemmRegistered = new(() =>
    {
        RequireBlas();
        var sgemm = OpenBlas.SingleThreadedSgemm();
        if (sgemm == IntPtr.Zero)
            throw new DeviceUnavailableException("cpu", $"{NativeLibraries.LoadedFrom(NativeLibraries.Blas)} has no cblas_sgemm");
        HostRuntime.vqh_set_sgemm(sgemm);
        return true;
    });

    private static void RunGemm(GemmOp transA, GemmOp transB, int m, int n, int k, float alpha, DevicePointer a, int lda, long strideA,
                                DevicePointer b, int ldb, long strideB, float beta, DevicePointer c, int ldc, long strideC, int batch)
    {
        _ = SgemmRegistered.Value;
        byte* err = stackalloc byte[ErrorCapacity];
        int rc = HostRuntime.vqh_sgemm_strided_batched(transA == GemmOp.Transpose ? 1 : 0, transB == GemmOp.Transpose ? 1 : 0, m, n, k, alpha,
                                                       (float*)a.Address, lda, strideA, (float*)b.Address, ldb, strideB, beta,
                                                       (float*)c.Address, ldc, strideC, batch, err, ErrorCapacity);
        HostRuntime.Check(rc, new ReadOnlySpan<byte>(err, ErrorCapacity), "cpu device: GEMM failed");
    }

    private static void VerifyCanaries(string after)
    {
        byte* err = stackalloc byte[ErrorCapacity];
        if (HostRuntime.vqh_check_allocations(err, ErrorCapacity) != 0)
            throw new HostDeviceException($"out-of-bounds write detected after {after}: {HostRuntime.ErrorText(new ReadOnlySpan<byte>(err, ErrorCapacity))}");
    }

    private static void CheckRegistryMatchesSource(KernelDefinition definition, HostRuntime.RegisteredKernel registered)
    {
        var kinds = string.Concat(definition.Parameters.Select(p => p.Kind));
        var sizes = definition.Parameters.Select(p => (ushort)p.Size).ToArray();
        if (kinds != registered.ArgKinds || !sizes.SequenceEqual(registered.ArgSizes) || (int)definition.SyncKind != registered.SyncKind)
            throw new HostDeviceException(
                $"kernel '{definition.Name}': the CPU library was built from a different declaration than {definition.SourceName} " +
                $"(library: kinds '{registered.ArgKinds}', sync {registered.SyncKind}; source: kinds '{kinds}', sync {(int)definition.SyncKind}); rebuild with `dotnet build`");
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
}
