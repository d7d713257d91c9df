using System.Runtime.InteropServices;
using VqVaeCuda.Device.Native;

namespace VqVaeCuda.Device.Cuda.Native;

/// <summary>
/// Raw bindings to the CUDA driver API (libcuda). Each method is named exactly after the symbol
/// libcuda exports, so <c>nameof(CudaDriver.cuMemAlloc_v2)</c> is both the entry point and the call
/// name that <see cref="Check"/> puts into a <see cref="CudaException"/>.
/// </summary>
/// <remarks>
/// <para>cuda.h maps most public names to versioned symbols with macros (<c>#define cuMemAlloc cuMemAlloc_v2</c>).
/// Binding the unversioned name would silently pick the legacy ABI (32-bit sizes / device pointers
/// on the oldest ones), so every function that has a <c>_v2</c> export is bound by that name.
/// Functions that never got a versioned symbol (e.g. <c>cuMemsetD8Async</c>, <c>cuStreamEndCapture</c>,
/// <c>cuLaunchKernel</c>) are bound by their plain name. The per-thread-default-stream variants
/// (<c>_ptds</c>/<c>_ptsz</c>) are deliberately not used: we always pass explicit streams.</para>
/// <para>Handle types (<c>CUcontext</c>, <c>CUmodule</c>, <c>CUfunction</c>, <c>CUstream</c>, <c>CUevent</c>,
/// <c>CUgraph</c>, <c>CUgraphExec</c>) are opaque pointers → <see cref="nint"/>; <c>CUdeviceptr</c> is
/// <c>unsigned long long</c> on 64-bit → <see cref="ulong"/>; <c>CUdevice</c> is <c>int</c>; <c>size_t</c> → <see cref="nuint"/>.</para>
/// </remarks>
internal static unsafe partial class CudaDriver
{
    private const string Lib = NativeLibraries.Cuda;

    // An explicit static constructor (not a field initialiser) makes the type non-beforefieldinit, so the
    // resolver is guaranteed to be installed before the first generated P/Invoke stub runs.
    static CudaDriver() => NativeLibraries.EnsureResolver();

    /// <summary>True when libcuda can be loaded; otherwise <paramref name="whyNot"/> says what was tried and what to install.</summary>
    /// <remarks>Only proves the library is present: a machine with the driver but no GPU still loads it
    /// and then fails <see cref="cuInit"/> with <see cref="CUresult.CUDA_ERROR_NO_DEVICE"/>.</remarks>
    public static bool IsAvailable(out string? whyNot) => NativeLibraries.TryLoad(Lib, out whyNot);

    /// <summary>Throws <see cref="CudaException"/> unless <paramref name="r"/> is <see cref="CUresult.CUDA_SUCCESS"/>.</summary>
    /// <param name="r">The status returned by the driver call.</param>
    /// <param name="call">The exported symbol that was called, e.g. <c>nameof(cuMemAlloc_v2)</c>.</param>
    internal static void Check(CUresult r, string call)
    {
        if (r != CUresult.CUDA_SUCCESS) throw new CudaException(call, r);
    }

    /// <summary>
    /// <c>cuGetErrorName</c> for <paramref name="r"/>, or the enum's own name if the driver cannot be
    /// loaded or does not know the code. Never throws: it runs while an exception is being built.
    /// </summary>
    internal static string ErrorName(CUresult r)
    {
        try
        {
            if (cuGetErrorName(r, out var p) == CUresult.CUDA_SUCCESS && p != 0)
                return Marshal.PtrToStringUTF8(p) ?? r.ToString();
        }
        catch (Exception) // DllNotFoundException / EntryPointNotFoundException: no driver, use our own name.
        {
        }
        return r.ToString();
    }

    /// <summary>
    /// <c>cuGetErrorString</c> for <paramref name="r"/>, or a text derived from the enum name
    /// (<c>CUDA_ERROR_OUT_OF_MEMORY</c> → "out of memory"). Never throws, for the same reason as <see cref="ErrorName"/>.
    /// </summary>
    internal static string ErrorText(CUresult r)
    {
        try
        {
            if (cuGetErrorString(r, out var p) == CUresult.CUDA_SUCCESS && p != 0)
                return Marshal.PtrToStringUTF8(p) ?? FallbackText(r);
        }
        catch (Exception) // See ErrorName.
        {
        }
        return FallbackText(r);
    }

    private static string FallbackText(CUresult r)
    {
        var name = r.ToString();
        if (!Enum.IsDefined(r)) return "unrecognized CUDA error code";
        const string prefix = "CUDA_ERROR_";
        if (name.StartsWith(prefix, StringComparison.Ordinal)) name = name[prefix.Length..];
        return name.Replace('_', ' ').ToLowerInvariant();
    }

    /// <summary>The device's marketing name via <see cref="cuDeviceGetName"/> (checked).</summary>
    internal static string GetDeviceName(int device)
    {
        const int capacity = 256; // cuDeviceGetName truncates to len-1 bytes and NUL-terminates.
        byte* buffer = stackalloc byte[capacity];
        Check(cuDeviceGetName(buffer, capacity, device), nameof(cuDeviceGetName));
        return Marshal.PtrToStringUTF8((nint)buffer) ?? string.Empty;
    }

    // ---------------------------------------------------------------- initialisation and devices

    /// <summary>Initialises the driver; flags must be 0. Must precede every other call except version/error queries.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuInit(uint flags);

    /// <summary>
    /// The driver's CUDA version (<see cref="cuDriverGetVersion"/>, e.g. 12080), or null when there is no driver. Never
    /// throws; needs no <c>cuInit</c>. NVRTC's and cuBLAS's soname choice and the kernel target depend on it.
    /// </summary>
    internal static int? TryGetDriverVersion()
    {
        try
        {
            if (!IsAvailable(out _)) return null;
            return cuDriverGetVersion(out var version) == CUresult.CUDA_SUCCESS && version > 0 ? version : null;
        }
        catch (Exception) // EntryPointNotFoundException from a stub libcuda: treat as no driver.
        {
            return null;
        }
    }

    /// <summary>Latest CUDA version the installed driver supports, as 1000*major + 10*minor (e.g. 12040).</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuDriverGetVersion(out int driverVersion);

    /// <summary>Number of CUDA-capable devices.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuDeviceGetCount(out int count);

    /// <summary>Device handle for an ordinal in [0, count).</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuDeviceGet(out int device, int ordinal);

    /// <summary>Writes the NUL-terminated device name into <paramref name="name"/> (at most <paramref name="len"/> bytes). See <see cref="GetDeviceName"/>.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuDeviceGetName(byte* name, int len, int dev);

    /// <summary>Reads one integer device property.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuDeviceGetAttribute(out int pi, CUdevice_attribute attrib, int dev);

    /// <summary>Total device memory in bytes (<c>cuDeviceTotalMem</c>; the v1 symbol returned a 32-bit size).</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuDeviceTotalMem_v2(out nuint bytes, int dev);

    // ---------------------------------------------------------------- contexts

    /// <summary>Retains (creating on first use) the device's primary context, the one the runtime API and cuBLAS also use.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuDevicePrimaryCtxRetain(out nint pctx, int dev);

    /// <summary>Releases one reference taken by <see cref="cuDevicePrimaryCtxRetain"/>.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuDevicePrimaryCtxRelease_v2(int dev);

    /// <summary>Destroys all allocations and state of the primary context (recovery after a sticky error).</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuDevicePrimaryCtxReset_v2(int dev);

    /// <summary>Binds <paramref name="ctx"/> to the calling thread (replaces the top of its context stack).</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuCtxSetCurrent(nint ctx);

    /// <summary>The context bound to the calling thread, or 0.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuCtxGetCurrent(out nint pctx);

    /// <summary>Pushes <paramref name="ctx"/> onto the calling thread's context stack.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuCtxPushCurrent_v2(nint ctx);

    /// <summary>Pops the calling thread's current context.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuCtxPopCurrent_v2(out nint pctx);

    /// <summary>Blocks until all work in the current context has finished; reports asynchronous kernel faults.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuCtxSynchronize();

    /// <summary>Free and total memory of the current context's device, in bytes.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuMemGetInfo_v2(out nuint free, out nuint total);

    // ---------------------------------------------------------------- modules and kernels

    /// <summary>Loads a CUBIN, fatbin or NUL-terminated PTX image into the current context.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuModuleLoadData(out nint module, void* image);

    /// <summary>As <see cref="cuModuleLoadData"/> with JIT options (e.g. an error-log buffer for PTX JIT failures).</summary>
    /// <param name="module">Receives the module.</param>
    /// <param name="image">CUBIN/fatbin/PTX bytes.</param>
    /// <param name="numOptions">Length of both option arrays.</param>
    /// <param name="options">Option keys.</param>
    /// <param name="optionValues">One value per key; scalar values are passed in the pointer slot itself, as cuda.h specifies.</param>
    [LibraryImport(Lib)] internal static partial CUresult cuModuleLoadDataEx(out nint module, void* image, uint numOptions, CUjit_option* options, void** optionValues);

    /// <summary>Unloads a module; its functions become invalid.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuModuleUnload(nint hmod);

    /// <summary>Looks up a <c>__global__</c> function by its (extern "C" or mangled) name.</summary>
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial CUresult cuModuleGetFunction(out nint hfunc, nint hmod, string name);

    /// <summary>Reads one kernel property (registers, static shared memory, ...).</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuFuncGetAttribute(out int pi, CUfunction_attribute attrib, nint hfunc);

    /// <summary>Sets a settable kernel property, chiefly <see cref="CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES"/>.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuFuncSetAttribute(nint hfunc, CUfunction_attribute attrib, int value);

    /// <summary>
    /// Enqueues a kernel. <paramref name="kernelParams"/> follows cuLaunchKernel's own convention: an
    /// array with one entry per kernel parameter, each entry a pointer to that argument's value (so a
    /// device-pointer argument is passed as a pointer to a <see cref="ulong"/>). The driver copies the
    /// values during the call, so they only need to live until it returns. <paramref name="extra"/> is
    /// the alternative packed-buffer form; pass null when using <paramref name="kernelParams"/>.
    /// </summary>
    [LibraryImport(Lib)]
    internal static partial CUresult cuLaunchKernel(
        nint f,
        uint gridDimX, uint gridDimY, uint gridDimZ,
        uint blockDimX, uint blockDimY, uint blockDimZ,
        uint sharedMemBytes, nint hStream,
        void** kernelParams, void** extra);

    // ---------------------------------------------------------------- memory

    /// <summary>Allocates device memory (256-byte aligned).</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuMemAlloc_v2(out ulong dptr, nuint bytesize);

    /// <summary>Frees memory from <see cref="cuMemAlloc_v2"/>; implicitly synchronises the device.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuMemFree_v2(ulong dptr);

    /// <summary>Synchronous host → device copy.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuMemcpyHtoD_v2(ulong dstDevice, void* srcHost, nuint byteCount);

    /// <summary>Synchronous device → host copy.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuMemcpyDtoH_v2(void* dstHost, ulong srcDevice, nuint byteCount);

    /// <summary>Device → device copy (asynchronous with respect to the host on the legacy stream).</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuMemcpyDtoD_v2(ulong dstDevice, ulong srcDevice, nuint byteCount);

    /// <summary>Host → device copy on a stream; only truly asynchronous from page-locked host memory.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuMemcpyHtoDAsync_v2(ulong dstDevice, void* srcHost, nuint byteCount, nint hStream);

    /// <summary>Device → host copy on a stream; the host buffer must stay valid (and pinned) until the stream reaches it.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuMemcpyDtoHAsync_v2(void* dstHost, ulong srcDevice, nuint byteCount, nint hStream);

    /// <summary>Device → device copy on a stream.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuMemcpyDtoDAsync_v2(ulong dstDevice, ulong srcDevice, nuint byteCount, nint hStream);

    /// <summary>Sets <paramref name="n"/> bytes to <paramref name="value"/>.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuMemsetD8_v2(ulong dstDevice, byte value, nuint n);

    /// <summary>Sets <paramref name="n"/> 32-bit words to <paramref name="value"/> (use the float's bits to fill floats).</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuMemsetD32_v2(ulong dstDevice, uint value, nuint n);

    /// <summary>Stream-ordered <see cref="cuMemsetD8_v2"/> (this one never had a _v2 symbol).</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuMemsetD8Async(ulong dstDevice, byte value, nuint n, nint hStream);

    /// <summary>Stream-ordered <see cref="cuMemsetD32_v2"/> (this one never had a _v2 symbol).</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuMemsetD32Async(ulong dstDevice, uint value, nuint n, nint hStream);

    // ---------------------------------------------------------------- streams and events

    /// <summary>Creates a stream; see <see cref="CudaFlags.CU_STREAM_NON_BLOCKING"/>.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuStreamCreate(out nint phStream, uint flags);

    /// <summary>Destroys a stream once its queued work completes.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuStreamDestroy_v2(nint hStream);

    /// <summary>Blocks until all work queued on the stream has finished.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuStreamSynchronize(nint hStream);

    /// <summary>Creates an event; see the <c>CU_EVENT_*</c> values in <see cref="CudaFlags"/>.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuEventCreate(out nint phEvent, uint flags);

    /// <summary>Records the event at the current tail of the stream.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuEventRecord(nint hEvent, nint hStream);

    /// <summary>Blocks until the recorded event has completed.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuEventSynchronize(nint hEvent);

    /// <summary>Milliseconds between two completed events (≈0.5 µs resolution).</summary>
    /// <remarks>CUDA 12.8 added <c>cuEventElapsedTime_v2</c>; the v1 symbol stays exported for ABI compatibility
    /// and is the only one present in 11.x–12.7 drivers, so we bind v1.</remarks>
    [LibraryImport(Lib)] internal static partial CUresult cuEventElapsedTime(out float milliseconds, nint hStart, nint hEnd);

    /// <summary>Destroys an event.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuEventDestroy_v2(nint hEvent);

    // ---------------------------------------------------------------- graphs

    // Symbols, checked against cuda.h of 11.x and 12.x: cuda.h maps cuStreamBeginCapture to cuStreamBeginCapture_v2 (the
    // v1 export, kept for old binaries, has no mode argument; 10.1 added v2); cuStreamEndCapture, cuStreamIsCapturing,
    // cuGraphLaunch, cuGraphExecDestroy and cuGraphDestroy were never versioned. Their _ptsz twins are the per-thread
    // default stream forms, which we do not use (explicit streams). The CUDA 13 driver keeps all of these exports; no
    // GPU has been available to check a 13.x libcuda's symbol table, so a missing one would show as
    // EntryPointNotFoundException from BeginCapture, which CudaDevice reports as such.

    /// <summary>Starts recording the stream's work into a graph instead of executing it (the v1 symbol had no mode argument).</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuStreamBeginCapture_v2(nint hStream, CUstreamCaptureMode mode);

    /// <summary>Ends capture and returns the recorded graph (0 with CUDA_ERROR_STREAM_CAPTURE_INVALIDATED when an error broke the capture).</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuStreamEndCapture(nint hStream, out nint phGraph);

    /// <summary>Whether <paramref name="hStream"/> is capturing.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuStreamIsCapturing(nint hStream, out CUstreamCaptureStatus captureStatus);

    /// <summary>
    /// Instantiates an executable graph. <c>cuGraphInstantiateWithFlags</c> exists from CUDA 11.4 and
    /// is what CUDA 12's cuda.h maps <c>cuGraphInstantiate</c> to. <c>cuGraphInstantiate_v2</c> (the 11.x
    /// error-node/log-buffer form) is no longer declared by the 12.x headers, so WithFlags is the one
    /// symbol that is current in both lines.
    /// </summary>
    [LibraryImport(Lib)] internal static partial CUresult cuGraphInstantiateWithFlags(out nint phGraphExec, nint hGraph, ulong flags);

    /// <summary>Launches an executable graph on a stream.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuGraphLaunch(nint hGraphExec, nint hStream);

    /// <summary>Destroys an executable graph.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuGraphExecDestroy(nint hGraphExec);

    /// <summary>Destroys a (non-executable) graph.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuGraphDestroy(nint hGraph);

    // ---------------------------------------------------------------- errors

    // The strings returned through these are static driver storage: they must not be freed, which is
    // why the out parameter is a raw pointer and not a marshalled string (the generated marshaller
    // would free it). Use ErrorName/ErrorText instead of calling these directly.

    /// <summary>Symbolic name of a status, e.g. "CUDA_ERROR_OUT_OF_MEMORY"; <paramref name="pStr"/> points at driver-owned storage.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuGetErrorName(CUresult error, out nint pStr);

    /// <summary>Description of a status, e.g. "out of memory"; <paramref name="pStr"/> points at driver-owned storage.</summary>
    [LibraryImport(Lib)] internal static partial CUresult cuGetErrorString(CUresult error, out nint pStr);
}
