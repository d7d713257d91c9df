using System.Collections.Concurrent;
using System.Globalization;
using VqVaeCuda.Device.Cuda.Native;
using VqVaeCuda.Kernels;

namespace VqVaeCuda.Device.Cuda;

/// <summary>Options of a CUDA device.</summary>
public sealed record CudaDeviceOptions
{
    /// <summary>Where compiled kernels are cached; null uses <see cref="KernelCache.ResolveDirectory"/>'s default.</summary>
    public string? KernelCacheDirectory { get; init; }

    /// <summary>
    /// Let GEMM round its inputs to TF32 on tensor cores (Ampere and newer): several times faster, with a
    /// 10-bit mantissa instead of 23. Off by default so that results match the CPU device closely. The CLI's
    /// <c>--tf32</c>; the handle's math mode is CUBLAS_TF32_TENSOR_OP_MATH when on.
    /// </summary>
    public bool AllowTf32 { get; init; }

    /// <summary>
    /// Let NVRTC contract a·b + c into fused multiply-adds (<c>--fmad=true</c>, NVRTC's own default). <b>Off by default</b>:
    /// the CPU device, the reference every GPU result is verified against, is built with <c>-ffp-contract=off</c>, and with
    /// contraction the two round differently, so near-ties in the nearest-code search can pick different codes and
    /// <c>verify</c> would compare two different computations. Our kernels are memory-bound apart from GEMM (cuBLAS, not
    /// affected by this flag), so the extra instructions should cost little; kernels/NOTES.md has the PTX instruction
    /// counts of both settings and the benchmark times both on a GPU. Part of the kernel cache key.
    /// </summary>
    public bool FusedMultiplyAdd { get; init; }
}

/// <summary>
/// A <c>cuda:N</c> device: the kernels of <c>kernels/*.cu</c> compiled by NVRTC for this GPU's own
/// architecture, or as PTX that the driver JIT-compiles when the GPU is newer than NVRTC (cached on disk), run through the driver API on one stream of the device's primary
/// context; GEMM by cuBLAS on the same stream. Launches, device copies and fills are asynchronous;
/// <see cref="CopyToHost{T}"/>, <see cref="Synchronize"/> and event timing wait for them.
/// </summary>
/// <remarks>
/// <para>The driver binds a context to the calling thread, not to this object, so every entry point that
/// talks to the driver first makes the primary context current. That costs a thread-local store in the
/// driver, and it lets any thread (test runners, thread-pool continuations) use the device.</para>
/// <para>Launches from several threads are ordered on the one stream in the order the driver receives them;
/// the device does not add locking beyond what module loading needs.</para>
/// </remarks>
public sealed unsafe class CudaDevice : IDevice, IGraphCapture
{
    private readonly int _ordinal;
    private readonly int _device;
    private readonly nint _context;
    private readonly nint _stream;
    private readonly KernelTarget _target;
    private readonly AllocationLedger _allocations = new();
    private readonly KernelModuleBuilder _builder;
    private readonly ConcurrentDictionary<string, Kernel> _kernels = new(StringComparer.Ordinal);
    private readonly Dictionary<string, nint> _modules = new(StringComparer.Ordinal);
    private readonly object _gate = new();
    private nint _cublas;
    private DeviceBuffer? _cublasWorkspace;
    private int _disposed;
    private int _captureThread;  // managed thread id of the capturing thread; 0 when not capturing

    /// <summary>Opens GPU number <paramref name="ordinal"/>.</summary>
    /// <exception cref="DeviceUnavailableException">No driver, no GPU, no such ordinal, no NVRTC, or an NVRTC that cannot target this GPU under this driver (the message says which).</exception>
    /// <exception cref="CudaException">A driver call failed while setting up the context or stream.</exception>
    public CudaDevice(int ordinal = 0, CudaDeviceOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(ordinal);
        _ordinal = ordinal;
        Options = options ?? new CudaDeviceOptions();
        Name = string.Create(CultureInfo.InvariantCulture, $"cuda:{ordinal}");

        int count = DeviceCount(out var whyNone);
        if (count == 0) throw new DeviceUnavailableException(Name, whyNone ?? "no CUDA device found");
        if (ordinal >= count)
            throw new DeviceUnavailableException(Name, $"there {(count == 1 ? "is 1 CUDA device" : $"are {count} CUDA devices")} (cuda:0..cuda:{count - 1})");
        // Without NVRTC no kernel can run; say so now rather than at the first GetKernel.
        if (!Nvrtc.IsAvailable(out var noNvrtc)) throw new DeviceUnavailableException(Name, noNvrtc ?? "NVRTC is unavailable");

        CudaDriver.Check(CudaDriver.cuDeviceGet(out _device, ordinal), nameof(CudaDriver.cuDeviceGet));
        int major = Attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
        int minor = Attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
        var architecture = string.Create(CultureInfo.InvariantCulture, $"sm_{major}{minor}");
        DriverVersion = CudaDriver.TryGetDriverVersion() ?? 0;
        _target = CudaCompatibility.ChooseTarget(major, minor, NvrtcCompiler.SupportedArchitectures, NvrtcCompiler.Version,
                                                 DriverVersion == 0 ? null : DriverVersion, out var noTarget)
                  ?? throw new DeviceUnavailableException(Name, noTarget ?? "no NVRTC target fits this GPU");
        CudaDriver.Check(CudaDriver.cuDeviceTotalMem_v2(out var totalMemory, _device), nameof(CudaDriver.cuDeviceTotalMem_v2));
        Capabilities = new DeviceCapabilities(
            Name: CudaDriver.GetDeviceName(_device),
            Architecture: architecture,
            Multiprocessors: Attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT),
            TotalMemoryBytes: (long)totalMemory,
            MaxThreadsPerBlock: Attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK),
            // Static + dynamic shared memory of a block may not exceed this without opt-in (cuFuncSetAttribute
            // MAX_DYNAMIC_SHARED_SIZE_BYTES), which this engine never does, so that every launch also fits the CPU device's
            // identical limit: it is the launch validator's limit.
            MaxSharedMemoryPerBlock: Attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK))
        {
            FusedMultiplyAdd = Options.FusedMultiplyAdd,
            Tf32Gemm = Options.AllowTf32,
            KernelTarget = _target.Description,
        };

        Sources = KernelSourceSet.Embedded;
        _builder = new KernelModuleBuilder(Sources, new KernelCache(KernelCache.ResolveDirectory(Options.KernelCacheDirectory)),
                                           fusedMultiplyAdd: Options.FusedMultiplyAdd);

        // The primary context is the one cuBLAS and any CUDA-runtime library in the process also use, so
        // device pointers can be shared with them.
        CudaDriver.Check(CudaDriver.cuDevicePrimaryCtxRetain(out _context, _device), nameof(CudaDriver.cuDevicePrimaryCtxRetain));
        try
        {
            CudaDriver.Check(CudaDriver.cuCtxSetCurrent(_context), nameof(CudaDriver.cuCtxSetCurrent));
            // Non-blocking: our work must not serialise with whatever another library queues on the legacy stream.
            CudaDriver.Check(CudaDriver.cuStreamCreate(out _stream, CudaFlags.CU_STREAM_NON_BLOCKING), nameof(CudaDriver.cuStreamCreate));
        }
        catch
        {
            _ = CudaDriver.cuDevicePrimaryCtxRelease_v2(_device);
            throw;
        }
    }

    /// <summary>This device's options.</summary>
    public CudaDeviceOptions Options { get; }

    /// <summary>The GPU's ordinal (N of <c>cuda:N</c>).</summary>
    public int Ordinal => _ordinal;

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public DeviceKind Kind => DeviceKind.Cuda;

    /// <inheritdoc />
    public DeviceCapabilities Capabilities { get; }

    /// <inheritdoc />
    public KernelSourceSet Sources { get; }

    /// <summary>
    /// What NVRTC compiles for: a cubin for the GPU's own architecture (or the newest same-major one NVRTC knows), or, for a
    /// GPU newer than NVRTC, PTX for the newest architecture NVRTC knows, JIT-compiled by the driver at load.
    /// </summary>
    public KernelTarget Target => _target;

    /// <summary>The NVRTC architecture name of <see cref="Target"/>: "sm_90" or "compute_90".</summary>
    public string CompileArchitecture => _target.Name;

    /// <summary>The driver's CUDA version (cuDriverGetVersion, e.g. 12080); 0 if it could not be read.</summary>
    public int DriverVersion { get; }

    /// <summary>Device allocations not yet freed (freed at <see cref="Dispose"/> if still live).</summary>
    public int LiveAllocations => _allocations.Count;

    /// <summary>The on-disk cache of compiled kernels this device uses.</summary>
    public KernelCache KernelCache => _builder.Cache!;

    /// <summary>
    /// Number of CUDA devices, or 0 with <paramref name="whyNone"/> saying why (driver library missing,
    /// <c>cuInit</c> failed — e.g. CUDA_ERROR_NO_DEVICE — or no devices). Never throws.
    /// </summary>
    public static int DeviceCount(out string? whyNone)
    {
        try
        {
            if (!CudaDriver.IsAvailable(out var noDriver))
            {
                whyNone = noDriver ?? "the CUDA driver library could not be loaded";
                return 0;
            }
            var init = CudaDriver.cuInit(0);
            if (init != CUresult.CUDA_SUCCESS)
            {
                whyNone = new CudaException(nameof(CudaDriver.cuInit), init).Message;
                return 0;
            }
            var counted = CudaDriver.cuDeviceGetCount(out var count);
            if (counted != CUresult.CUDA_SUCCESS)
            {
                whyNone = new CudaException(nameof(CudaDriver.cuDeviceGetCount), counted).Message;
                return 0;
            }
            whyNone = count == 0 ? "the CUDA driver reports no devices" : null;
            return count;
        }
        catch (Exception e)  // EntryPointNotFoundException from a stub or ancient libcuda, and anything else: callers only want a yes/no and a reason.
        {
            whyNone = $"CUDA driver probe failed: {e.GetType().Name}: {e.Message}";
            return 0;
        }
    }

    /// <inheritdoc />
    public DeviceBuffer Allocate(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        RefuseDuringCapture(nameof(Allocate));
        MakeCurrent();
        // cuMemAlloc rejects 0 bytes; a 1-byte allocation keeps zero-length buffers distinct and freeable, as on the CPU device.
        var result = CudaDriver.cuMemAlloc_v2(out var address, (nuint)Math.Max(bytes, 1));
        if (result == CUresult.CUDA_ERROR_OUT_OF_MEMORY)
        {
            // The driver's bare CUDA_ERROR_OUT_OF_MEMORY does not say how far off the request was: ask what is free.
            long free = CudaDriver.cuMemGetInfo_v2(out var freeBytes, out _) == CUresult.CUDA_SUCCESS ? (long)freeBytes : -1;
            throw new DeviceOutOfMemoryException(Name, bytes, free, inner: new CudaException(nameof(CudaDriver.cuMemAlloc_v2), result));
        }
        CudaDriver.Check(result, nameof(CudaDriver.cuMemAlloc_v2));
        try
        {
            _allocations.Add(address);
        }
        catch (InvalidOperationException)  // disposed meanwhile on another thread: the ledger was already drained
        {
            _ = CudaDriver.cuMemFree_v2(address);
            throw new ObjectDisposedException(Name);
        }
        return new DeviceBuffer(this, new DevicePointer(address), bytes);
    }

    /// <inheritdoc />
    /// <remarks>After <see cref="Dispose"/> this does nothing: dispose freed every live allocation (see <see cref="AllocationLedger"/>).</remarks>
    public void Free(DevicePointer pointer)
    {
        if (pointer.Address == 0) return;
        RefuseDuringCapture(nameof(Free));
        if (!_allocations.Remove(pointer.Address)) return;
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuMemFree_v2(pointer.Address), nameof(CudaDriver.cuMemFree_v2));
    }

    /// <inheritdoc />
    public void CopyToDevice<T>(ReadOnlySpan<T> source, DevicePointer destination) where T : unmanaged
    {
        if (source.IsEmpty) return;
        RefuseDuringCapture(nameof(CopyToDevice));
        MakeCurrent();
        var bytes = (nuint)source.Length * (nuint)sizeof(T);
        fixed (T* host = source)
        {
            CudaDriver.Check(CudaDriver.cuMemcpyHtoDAsync_v2(destination.Address, host, bytes, _stream), nameof(CudaDriver.cuMemcpyHtoDAsync_v2));
            // The span may be a stack buffer or unpinned array that is gone once we return, and pageable copies
            // are only staged, not finished, when the call returns: wait so the caller may reuse the memory.
            CudaDriver.Check(CudaDriver.cuStreamSynchronize(_stream), nameof(CudaDriver.cuStreamSynchronize));
        }
    }

    /// <inheritdoc />
    public void CopyToHost<T>(DevicePointer source, Span<T> destination) where T : unmanaged
    {
        if (destination.IsEmpty) return;
        RefuseDuringCapture(nameof(CopyToHost));
        MakeCurrent();
        var bytes = (nuint)destination.Length * (nuint)sizeof(T);
        fixed (T* host = destination)
        {
            // Queued on our stream, so it runs after every earlier launch; the sync makes the data readable.
            CudaDriver.Check(CudaDriver.cuMemcpyDtoHAsync_v2(host, source.Address, bytes, _stream), nameof(CudaDriver.cuMemcpyDtoHAsync_v2));
            CudaDriver.Check(CudaDriver.cuStreamSynchronize(_stream), nameof(CudaDriver.cuStreamSynchronize));
        }
    }

    /// <inheritdoc />
    public void Copy(DevicePointer source, DevicePointer destination, long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        if (bytes == 0) return;
        NoteIfCapturing();
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuMemcpyDtoDAsync_v2(destination.Address, source.Address, (nuint)bytes, _stream),
                         nameof(CudaDriver.cuMemcpyDtoDAsync_v2));
    }

    /// <inheritdoc />
    public void FillBytes(DevicePointer destination, byte value, long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        if (bytes == 0) return;
        NoteIfCapturing();
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuMemsetD8Async(destination.Address, value, (nuint)bytes, _stream), nameof(CudaDriver.cuMemsetD8Async));
    }

    /// <inheritdoc />
    public Kernel GetKernel(string name)
    {
        ThrowIfDisposed();
        if (_kernels.TryGetValue(name, out var cached)) return cached;
        lock (_gate)
        {
            if (_kernels.TryGetValue(name, out cached)) return cached;
            var definition = Sources.Find(name);
            RefuseDuringCapture($"{nameof(GetKernel)}(\"{name}\") of a kernel not loaded before the capture");
            MakeCurrent();
            var module = LoadModule(definition.SourceName);
            CudaDriver.Check(CudaDriver.cuModuleGetFunction(out var function, module, name), nameof(CudaDriver.cuModuleGetFunction));
            // The driver's own limits for this function: its block size is capped by __launch_bounds__ and by its registers.
            int FunctionAttribute(CUfunction_attribute a)
            {
                CudaDriver.Check(CudaDriver.cuFuncGetAttribute(out var value, a, function), nameof(CudaDriver.cuFuncGetAttribute));
                return value;
            }
            var limits = new KernelLaunchLimits(FunctionAttribute(CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK),
                                                FunctionAttribute(CUfunction_attribute.CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES),
                                                $"driver: {FunctionAttribute(CUfunction_attribute.CU_FUNC_ATTRIBUTE_NUM_REGS)} registers per thread");
            var kernel = new Kernel(definition, function) { Limits = limits };
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
        ArgumentNullException.ThrowIfNull(kernel);
        ThrowIfDisposed();
        // A Kernel from another device carries a handle that means nothing here (the CPU device's is a registry index).
        if (!_kernels.TryGetValue(kernel.Name, out var own) || !ReferenceEquals(own, kernel))
            throw new KernelLaunchException($"launch of '{kernel.Name}': the kernel was not obtained from {Name}; use {Name}.GetKernel");
        LaunchValidator.Validate(kernel, grid, block, dynamicSharedBytes, args, Capabilities);
        _kernelLaunches++;
        NoteIfCapturing();
        MakeCurrent();
        ulong* values = stackalloc ulong[Math.Max(1, args.Length)];
        void** pointers = stackalloc void*[Math.Max(1, args.Length)];
        KernelArg.ToLaunchParameters(args, values, pointers);
        var launched = CudaDriver.cuLaunchKernel(kernel.Handle, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, (uint)dynamicSharedBytes, _stream,
                                                 pointers, null);
        if (launched != CUresult.CUDA_SUCCESS)
        {
            var cause = new CudaException(nameof(CudaDriver.cuLaunchKernel), launched);
            throw new KernelLaunchException($"{Name}: kernel '{kernel.Name}' (grid {grid}, block {block}, {dynamicSharedBytes} bytes of dynamic shared memory) " +
                                            $"failed to launch: {cause.Message}", cause);
        }
    }

    /// <inheritdoc />
    public void Gemm(GemmOp transA, GemmOp transB, int m, int n, int k, float alpha, DevicePointer a, int lda, DevicePointer b, int ldb,
                     float beta, DevicePointer c, int ldc)
    {
        ThrowIfDisposed();
        GemmValidator.Validate(transA, transB, m, n, k, lda, ldb, ldc);
        if (m == 0 || n == 0) return;
        _gemmCalls++;
        NoteIfCapturing();
        var handle = CublasHandle();
        if (Options.AllowTf32)
        {
            Cublas.Check(
                Cublas.cublasGemmEx(handle, Op(transA), Op(transB), m, n, k,
                                    &alpha, a.Address, cudaDataType.CUDA_R_32F, lda,
                                    b.Address, cudaDataType.CUDA_R_32F, ldb,
                                    &beta, c.Address, cudaDataType.CUDA_R_32F, ldc,
                                    cublasComputeType_t.CUBLAS_COMPUTE_32F_FAST_TF32, cublasGemmAlgo_t.CUBLAS_GEMM_DEFAULT),
                nameof(Cublas.cublasGemmEx));
        }
        else
        {
            Cublas.Check(
                Cublas.cublasSgemm_v2(handle, Op(transA), Op(transB), m, n, k, alpha, a.Address, lda, b.Address, ldb, beta, c.Address, ldc),
                nameof(Cublas.cublasSgemm_v2));
        }
    }

    /// <inheritdoc />
    public void GemmStridedBatched(GemmOp transA, GemmOp transB, int m, int n, int k, float alpha, DevicePointer a, int lda, long strideA,
                                   DevicePointer b, int ldb, long strideB, float beta, DevicePointer c, int ldc, long strideC, int batch)
    {
        ThrowIfDisposed();
        GemmValidator.Validate(transA, transB, m, n, k, lda, ldb, ldc, batch);
        if (m == 0 || n == 0 || batch == 0) return;
        _gemmCalls++;
        NoteIfCapturing();
        // With AllowTf32 the handle's math mode (set at creation) lets this FP32 routine use TF32 as well.
        Cublas.Check(
            Cublas.cublasSgemmStridedBatched(CublasHandle(), Op(transA), Op(transB), m, n, k, alpha, a.Address, lda, strideA,
                                             b.Address, ldb, strideB, beta, c.Address, ldc, strideC, batch),
            nameof(Cublas.cublasSgemmStridedBatched));
    }

    /// <inheritdoc />
    public void Synchronize()
    {
        ThrowIfDisposed();
        RefuseDuringCapture(nameof(Synchronize));
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuStreamSynchronize(_stream), nameof(CudaDriver.cuStreamSynchronize));
    }

    /// <inheritdoc />
    public DeviceEvent Record()
    {
        ThrowIfDisposed();
        RefuseDuringCapture(nameof(Record));
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuEventCreate(out var handle, CudaFlags.CU_EVENT_DEFAULT), nameof(CudaDriver.cuEventCreate));
        try
        {
            CudaDriver.Check(CudaDriver.cuEventRecord(handle, _stream), nameof(CudaDriver.cuEventRecord));
        }
        catch
        {
            _ = CudaDriver.cuEventDestroy_v2(handle);
            throw;
        }
        return new CudaEvent(this, handle);
    }

    /// <inheritdoc />
    public double ElapsedMilliseconds(DeviceEvent start, DeviceEvent end)
    {
        ThrowIfDisposed();
        var first = OwnEvent(start, nameof(start));
        var last = OwnEvent(end, nameof(end));
        RefuseDuringCapture(nameof(ElapsedMilliseconds));
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuEventSynchronize(last), nameof(CudaDriver.cuEventSynchronize));
        CudaDriver.Check(CudaDriver.cuEventElapsedTime(out var milliseconds, first, last), nameof(CudaDriver.cuEventElapsedTime));
        return milliseconds;
    }

    /// <summary>
    /// Waits for the stream, frees every allocation still live, destroys the cuBLAS handle, unloads the modules, destroys
    /// the stream and releases the primary context. In that order: kernels still queued must finish before their module
    /// goes, and memory must be freed by us because the primary context outlives this device whenever cuBLAS, another
    /// library or a second device object on the same ordinal still holds it.
    /// </summary>
    /// <remarks>
    /// Teardown failures are ignored: after a sticky fault (an illegal address in a kernel) every driver call
    /// returns that fault, and throwing here would hide the exception that is already on its way out of the
    /// caller's <c>using</c> block. Each resource is still released exactly once.
    /// </remarks>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        lock (_gate)
        {
            _ = CudaDriver.cuCtxSetCurrent(_context);
            if (Volatile.Read(ref _captureThread) != 0)
            {
                // A capture left open (an exception inside it): end it so the stream can be synchronised and destroyed.
                if (CudaDriver.cuStreamEndCapture(_stream, out var abandoned) == CUresult.CUDA_SUCCESS && abandoned != 0)
                    _ = CudaDriver.cuGraphDestroy(abandoned);
                Volatile.Write(ref _captureThread, 0);
            }
            _ = CudaDriver.cuStreamSynchronize(_stream);
            if (_cublas != 0)
            {
                _ = Cublas.cublasDestroy_v2(_cublas);
                _cublas = 0;
            }
            _cublasWorkspace = null;  // its address is in the ledger, freed below
            foreach (var address in _allocations.Close()) _ = CudaDriver.cuMemFree_v2(address);
            foreach (var module in _modules.Values) _ = CudaDriver.cuModuleUnload(module);
            _modules.Clear();
            _kernels.Clear();
            _ = CudaDriver.cuStreamDestroy_v2(_stream);
            _ = CudaDriver.cuDevicePrimaryCtxRelease_v2(_device);
        }
    }

    /// <inheritdoc />
    public bool IsCapturing => Volatile.Read(ref _captureThread) != 0;

    /// <summary>The cuBLAS workspace given to the handle before a capture (NVIDIA's recommendation: 32 MiB on Hopper, 4 MiB before).</summary>
    private long CublasWorkspaceBytes => KernelTarget.Parse(Capabilities.Architecture).Architecture >= 90 ? 32L << 20 : 4L << 20;

    /// <inheritdoc />
    /// <remarks>
    /// Creates the cuBLAS handle if no GEMM has yet (it always has a fixed workspace: allocation is not allowed during
    /// capture, and without a workspace cuBLAS would allocate its own inside the capture), then starts a thread-local capture of the
    /// device's stream (cuStreamBeginCapture_v2, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL).
    /// </remarks>
    public void BeginCapture()
    {
        ThrowIfDisposed();
        if (IsCapturing) throw new InvalidOperationException($"{Name}: a graph capture is already in progress");
        _ = CublasHandle();  // created with its fixed workspace, outside the capture
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuStreamBeginCapture_v2(_stream, CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
                         nameof(CudaDriver.cuStreamBeginCapture_v2));
        _capturedOperations = 0;
        Volatile.Write(ref _captureThread, Environment.CurrentManagedThreadId);
    }

    /// <inheritdoc />
    /// <remarks>cuStreamEndCapture, then cuGraphInstantiateWithFlags (flags 0). The device leaves capture mode even when this throws.</remarks>
    public CapturedGraph EndCapture()
    {
        ThrowIfDisposed();
        if (!IsCapturing) throw new InvalidOperationException($"{Name}: {nameof(EndCapture)} without {nameof(BeginCapture)}");
        MakeCurrent();
        // Asked first: once ended, the stream no longer says that an earlier call broke the capture.
        bool invalidated = CudaDriver.cuStreamIsCapturing(_stream, out var status) == CUresult.CUDA_SUCCESS &&
                           status == CUstreamCaptureStatus.CU_STREAM_CAPTURE_STATUS_INVALIDATED;
        var ended = CudaDriver.cuStreamEndCapture(_stream, out var graph);
        Volatile.Write(ref _captureThread, 0);
        if (invalidated || ended == CUresult.CUDA_ERROR_STREAM_CAPTURE_INVALIDATED)
        {
            if (graph != 0) _ = CudaDriver.cuGraphDestroy(graph);
            throw new InvalidOperationException($"{Name}: the graph capture was invalidated by a failed or unsupported call during it " +
                                                "(see IGraphCapture for what a capture may contain)",
                                                new CudaException(nameof(CudaDriver.cuStreamEndCapture), CUresult.CUDA_ERROR_STREAM_CAPTURE_INVALIDATED));
        }
        CudaDriver.Check(ended, nameof(CudaDriver.cuStreamEndCapture));
        var instantiated = CudaDriver.cuGraphInstantiateWithFlags(out var exec, graph, 0);
        if (instantiated != CUresult.CUDA_SUCCESS)
        {
            _ = CudaDriver.cuGraphDestroy(graph);
            CudaDriver.Check(instantiated, nameof(CudaDriver.cuGraphInstantiateWithFlags));
        }
        return new CudaGraph(this, graph, exec, _capturedOperations);
    }

    private int _capturedOperations;

    // Counts what a capture records, for CapturedGraph.OperationCount.
    private void NoteIfCapturing()
    {
        if (IsCapturing) _capturedOperations++;
    }

    private void RefuseDuringCapture(string what)
    {
        if (Volatile.Read(ref _captureThread) != 0)
            throw new InvalidOperationException($"{Name}: {what} is not allowed during a graph capture " +
                                                "(no host synchronisation, host copies or allocation until EndCapture; see IGraphCapture)");
    }

    /// <summary>An instantiated CUDA graph; owns the graph and its executable until disposed.</summary>
    private sealed class CudaGraph(CudaDevice device, nint graph, nint exec, int operations) : CapturedGraph
    {
        private nint _graph = graph, _exec = exec;

        public override int OperationCount { get; } = operations;

        public override void Launch()
        {
            ObjectDisposedException.ThrowIf(_exec == 0, this);
            device.ThrowIfDisposed();
            device.RefuseDuringCapture("launching a captured graph");
            device.MakeCurrent();
            CudaDriver.Check(CudaDriver.cuGraphLaunch(_exec, device._stream), nameof(CudaDriver.cuGraphLaunch));
        }

        protected override void Dispose(bool disposing)
        {
            var e = Interlocked.Exchange(ref _exec, 0);
            var g = Interlocked.Exchange(ref _graph, 0);
            // Once the device has released its context, the graph went with it.
            if (device.IsDisposed) return;
            _ = CudaDriver.cuCtxSetCurrent(device._context);
            if (e != 0) _ = CudaDriver.cuGraphExecDestroy(e);
            if (g != 0) _ = CudaDriver.cuGraphDestroy(g);
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name} ({Capabilities.Name}, {Capabilities.Architecture})";

    internal bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    internal void MakeCurrent()
    {
        ThrowIfDisposed();
        CudaDriver.Check(CudaDriver.cuCtxSetCurrent(_context), nameof(CudaDriver.cuCtxSetCurrent));
    }

    private nint LoadModule(string sourceName)
    {
        if (_modules.TryGetValue(sourceName, out var loaded)) return loaded;
        var compiled = _builder.Build(sourceName, _target.Name);
        var result = LoadImage(compiled.Image, out var module, out var jitLog);
        if (compiled.FromCache && result is CUresult.CUDA_ERROR_INVALID_IMAGE or CUresult.CUDA_ERROR_NO_BINARY_FOR_GPU or CUresult.CUDA_ERROR_INVALID_PTX)
        {
            // A damaged cache entry that still looked complete: compile afresh (which also rewrites the entry).
            compiled = _builder.Build(sourceName, _target.Name, bypassCache: true);
            result = LoadImage(compiled.Image, out module, out jitLog);
        }
        if (result != CUresult.CUDA_SUCCESS)
        {
            var cause = new CudaException(nameof(CudaDriver.cuModuleLoadDataEx), result);
            var (nvrtcMajor, nvrtcMinor) = NvrtcCompiler.Version;
            string why = result == CUresult.CUDA_ERROR_UNSUPPORTED_PTX_VERSION
                ? $"the driver (CUDA {CudaCompatibility.FormatVersion(DriverVersion)}) cannot JIT-compile PTX from NVRTC {nvrtcMajor}.{nvrtcMinor}; " +
                  "install a newer driver or an NVRTC no newer than the driver"
                : cause.Message;
            throw new DeviceUnavailableException(Name, $"loading {sourceName} ({_target.Description}) failed: {why}" +
                                                       (string.IsNullOrWhiteSpace(jitLog) ? "" : $"; JIT log: {jitLog.Trim()}"));
        }
        _modules[sourceName] = module;
        return module;
    }

    /// <summary>
    /// Loads a cubin or NUL-terminated PTX. PTX is compiled by the driver here, so its error log is asked for: it is the
    /// only place that says why a JIT failed.
    /// </summary>
    private static CUresult LoadImage(byte[] image, out nint module, out string jitLog)
    {
        const int logCapacity = 8192;
        byte* log = stackalloc byte[logCapacity];
        log[0] = 0;
        CUjit_option* keys = stackalloc CUjit_option[2];
        void** values = stackalloc void*[2];
        keys[0] = CUjit_option.CU_JIT_ERROR_LOG_BUFFER;
        values[0] = log;
        keys[1] = CUjit_option.CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES;
        values[1] = (void*)(nint)logCapacity;  // a scalar option travels in the pointer slot itself
        CUresult result;
        fixed (byte* bytes = image) result = CudaDriver.cuModuleLoadDataEx(out module, bytes, 2, keys, values);
        jitLog = System.Runtime.InteropServices.Marshal.PtrToStringUTF8((nint)log) ?? "";
        return result;
    }

    private nint CublasHandle()
    {
        MakeCurrent();
        var handle = Volatile.Read(ref _cublas);
        if (handle != 0) return handle;
        lock (_gate)
        {
            if (_cublas != 0) return _cublas;
            if (!Cublas.IsAvailable(out var whyNot)) throw new DeviceUnavailableException(Name, $"GEMM needs cuBLAS: {whyNot}");
            // cuBLAS binds the handle to the context current now, which MakeCurrent made ours.
            RefuseDuringCapture("creating the cuBLAS handle (run one GEMM, or BeginCapture, before capturing)");
            Cublas.Check(Cublas.cublasCreate_v2(out handle), nameof(Cublas.cublasCreate_v2));
            try
            {
                Cublas.Check(Cublas.cublasSetStream_v2(handle, _stream), nameof(Cublas.cublasSetStream_v2));
                if (Options.AllowTf32)
                    Cublas.Check(Cublas.cublasSetMathMode(handle, cublasMath_t.CUBLAS_TF32_TENSOR_OP_MATH), nameof(Cublas.cublasSetMathMode));
                // The workspace is fixed when the handle is made, not at the first capture: allocation is refused during
                // capture (cuBLAS would otherwise allocate its own there), and eager and captured GEMMs must see the
                // same configuration, since cuBLAS may choose its algorithm (e.g. split-K) by the workspace it has, and a
                // replayed step is held to the eager step's bits.
                _cublasWorkspace ??= Allocate(CublasWorkspaceBytes);
                Cublas.Check(Cublas.cublasSetWorkspace_v2(handle, _cublasWorkspace.Pointer.Address, (nuint)_cublasWorkspace.Bytes),
                             nameof(Cublas.cublasSetWorkspace_v2));
            }
            catch
            {
                _ = Cublas.cublasDestroy_v2(handle);
                throw;
            }
            Volatile.Write(ref _cublas, handle);
            return handle;
        }
    }

    private static cublasOperation_t Op(GemmOp op) => op == GemmOp.Transpose ? cublasOperation_t.CUBLAS_OP_T : cublasOperation_t.CUBLAS_OP_N;

    private nint OwnEvent(DeviceEvent e, string parameter)
    {
        ArgumentNullException.ThrowIfNull(e, parameter);
        if (e is not CudaEvent cuda || !ReferenceEquals(cuda.Device, this))
            throw new ArgumentException($"the event was not recorded on {Name}", parameter);
        return cuda.Handle;
    }

    private int Attribute(CUdevice_attribute attribute)
    {
        CudaDriver.Check(CudaDriver.cuDeviceGetAttribute(out var value, attribute, _device), nameof(CudaDriver.cuDeviceGetAttribute));
        return value;
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    /// <summary>A CUDA event recorded on the device's stream; owns the driver event until disposed.</summary>
    private sealed class CudaEvent(CudaDevice device, nint handle) : DeviceEvent
    {
        private nint _handle = handle;

        public CudaDevice Device { get; } = device;

        public nint Handle => _handle != 0 ? _handle : throw new ObjectDisposedException(nameof(CudaEvent));

        public override void Dispose()
        {
            var handle = Interlocked.Exchange(ref _handle, 0);
            // Once the device has released its context the event went with it.
            if (handle != 0 && !Device.IsDisposed)
            {
                _ = CudaDriver.cuCtxSetCurrent(Device._context);
                _ = CudaDriver.cuEventDestroy_v2(handle);
            }
            base.Dispose();
        }
    }
}
