namespace VqVaeCuda.Device.Cuda.Native;

// Enumerations and flag values taken by the driver API calls in CudaDriver. Members keep the cuda.h
// spelling so that code can be cross-checked against NVIDIA's documentation by plain text search.
// Only values we use or are likely to need are listed; all were checked against the CUDA 12.6 cuda.h
// and are unchanged since CUDA 11.x (the enums are append-only for ABI stability).
#pragma warning disable CS1591 // Members mirror cuda.h; the per-type summaries say what they are for.

/// <summary>Device properties queried with <see cref="CudaDriver.cuDeviceGetAttribute"/> (<c>CUdevice_attribute</c>).</summary>
internal enum CUdevice_attribute
{
    CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1,
    CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X = 2,
    CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y = 3,
    CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z = 4,
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X = 5,
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y = 6,
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z = 7,
    /// <summary>Static + dynamic shared memory a block may use without opting in (usually 48 KiB).</summary>
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK = 8,
    CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY = 9,
    CU_DEVICE_ATTRIBUTE_WARP_SIZE = 10,
    CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK = 12,
    /// <summary>Typical SM clock in kHz.</summary>
    CU_DEVICE_ATTRIBUTE_CLOCK_RATE = 13,
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT = 17,
    CU_DEVICE_ATTRIBUTE_INTEGRATED = 18,
    CU_DEVICE_ATTRIBUTE_COMPUTE_MODE = 20,
    CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS = 31,
    CU_DEVICE_ATTRIBUTE_ECC_ENABLED = 32,
    CU_DEVICE_ATTRIBUTE_PCI_BUS_ID = 33,
    CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID = 34,
    /// <summary>Peak memory clock in kHz.</summary>
    CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE = 36,
    /// <summary>Global memory bus width in bits.</summary>
    CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH = 37,
    CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38,
    CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR = 39,
    CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT = 40,
    CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING = 41,
    CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID = 50,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
    CU_DEVICE_ATTRIBUTE_STREAM_PRIORITIES_SUPPORTED = 78,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR = 81,
    CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR = 82,
    CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY = 83,
    CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH = 95,
    /// <summary>Largest per-block shared memory after <see cref="CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES"/> opt-in.</summary>
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97,
    CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR = 106,
    CU_DEVICE_ATTRIBUTE_MAX_PERSISTING_L2_CACHE_SIZE = 108,
    CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK = 111,
    CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED = 115,
}

/// <summary>Per-kernel properties for <see cref="CudaDriver.cuFuncGetAttribute"/> / <see cref="CudaDriver.cuFuncSetAttribute"/> (<c>CUfunction_attribute</c>).</summary>
internal enum CUfunction_attribute
{
    CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0,
    CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES = 1,
    CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES = 2,
    CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES = 3,
    CU_FUNC_ATTRIBUTE_NUM_REGS = 4,
    /// <summary>PTX ISA version the kernel was compiled for, major*10+minor.</summary>
    CU_FUNC_ATTRIBUTE_PTX_VERSION = 5,
    /// <summary>SASS architecture of the loaded binary, major*10+minor.</summary>
    CU_FUNC_ATTRIBUTE_BINARY_VERSION = 6,
    CU_FUNC_ATTRIBUTE_CACHE_MODE_CA = 7,
    /// <summary>Settable: raise above 48 KiB to let a launch request more dynamic shared memory.</summary>
    CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8,
    CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT = 9,
}

/// <summary>How strictly a stream capture guards against unsafe calls from other threads (<c>CUstreamCaptureMode</c>).</summary>
internal enum CUstreamCaptureMode
{
    CU_STREAM_CAPTURE_MODE_GLOBAL = 0,
    CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1,
    CU_STREAM_CAPTURE_MODE_RELAXED = 2,
}

/// <summary>Whether a stream is recording (<c>CUstreamCaptureStatus</c>, from <see cref="CudaDriver.cuStreamIsCapturing"/>).</summary>
internal enum CUstreamCaptureStatus
{
    CU_STREAM_CAPTURE_STATUS_NONE = 0,
    CU_STREAM_CAPTURE_STATUS_ACTIVE = 1,
    /// <summary>Capturing, but an error has invalidated the capture; <c>cuStreamEndCapture</c> must still be called.</summary>
    CU_STREAM_CAPTURE_STATUS_INVALIDATED = 2,
}

/// <summary>JIT options for <see cref="CudaDriver.cuModuleLoadDataEx"/> (<c>CUjit_option</c>); each takes its value through the parallel <c>void*</c> array.</summary>
internal enum CUjit_option
{
    CU_JIT_MAX_REGISTERS = 0,
    CU_JIT_THREADS_PER_BLOCK = 1,
    /// <summary>Out: float milliseconds spent in the JIT (value is written into the pointer slot).</summary>
    CU_JIT_WALL_TIME = 2,
    CU_JIT_INFO_LOG_BUFFER = 3,
    CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES = 4,
    CU_JIT_ERROR_LOG_BUFFER = 5,
    CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6,
    CU_JIT_OPTIMIZATION_LEVEL = 7,
    CU_JIT_TARGET_FROM_CUCONTEXT = 8,
    CU_JIT_TARGET = 9,
    CU_JIT_FALLBACK_STRATEGY = 10,
    CU_JIT_GENERATE_DEBUG_INFO = 11,
    CU_JIT_LOG_VERBOSE = 12,
    CU_JIT_GENERATE_LINE_INFO = 13,
    CU_JIT_CACHE_MODE = 14,
}

/// <summary>Flag values for stream, event and graph creation calls (plain <c>#define</c>/enum flags in cuda.h).</summary>
internal static class CudaFlags
{
    /// <summary><c>cuStreamCreate</c>: default stream behaviour (synchronises with the legacy NULL stream).</summary>
    public const uint CU_STREAM_DEFAULT = 0x0;
    /// <summary><c>cuStreamCreate</c>: no implicit synchronisation with the legacy NULL stream.</summary>
    public const uint CU_STREAM_NON_BLOCKING = 0x1;
    /// <summary><c>cuEventCreate</c>: default (timing enabled, spin wait).</summary>
    public const uint CU_EVENT_DEFAULT = 0x0;
    /// <summary><c>cuEventCreate</c>: <c>cuEventSynchronize</c> blocks the thread instead of spinning.</summary>
    public const uint CU_EVENT_BLOCKING_SYNC = 0x1;
    /// <summary><c>cuEventCreate</c>: no timing data; cheaper for pure ordering.</summary>
    public const uint CU_EVENT_DISABLE_TIMING = 0x2;
    /// <summary><c>cuGraphInstantiateWithFlags</c>: free graph-owned allocations on each launch.</summary>
    public const ulong CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH = 0x1;
}
#pragma warning restore CS1591
