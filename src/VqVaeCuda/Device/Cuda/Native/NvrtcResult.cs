namespace VqVaeCuda.Device.Cuda.Native;

/// <summary>
/// NVRTC status codes (<c>nvrtcResult</c> in nvrtc.h). C spelling kept so <see cref="Enum.ToString()"/>
/// matches what <c>nvrtcGetErrorString</c> returns (used as the fallback). 0–11 exist in every
/// NVRTC since 11.x; 12 was added in 12.1 and 13–16 in 12.x for precompiled headers and cancellation.
/// </summary>
/// <remarks>Public because it surfaces on the public <see cref="NvrtcException.Result"/>.</remarks>
public enum NvrtcResult
{
#pragma warning disable CS1591 // Members mirror nvrtc.h; nvrtcGetErrorString describes them at run time.
    NVRTC_SUCCESS = 0,
    NVRTC_ERROR_OUT_OF_MEMORY = 1,
    NVRTC_ERROR_PROGRAM_CREATION_FAILURE = 2,
    NVRTC_ERROR_INVALID_INPUT = 3,
    NVRTC_ERROR_INVALID_PROGRAM = 4,
    NVRTC_ERROR_INVALID_OPTION = 5,
    /// <summary>The source did not compile; the program log has the diagnostics.</summary>
    NVRTC_ERROR_COMPILATION = 6,
    NVRTC_ERROR_BUILTIN_OPERATION_FAILURE = 7,
    NVRTC_ERROR_NO_NAME_EXPRESSIONS_AFTER_COMPILATION = 8,
    NVRTC_ERROR_NO_LOWERED_NAMES_BEFORE_COMPILATION = 9,
    NVRTC_ERROR_NAME_EXPRESSION_NOT_VALID = 10,
    NVRTC_ERROR_INTERNAL_ERROR = 11,
    NVRTC_ERROR_TIME_FILE_WRITE_FAILED = 12,
    NVRTC_ERROR_NO_PCH_CREATE_ATTEMPTED = 13,
    NVRTC_ERROR_PCH_CREATE_HEAP_EXHAUSTED = 14,
    NVRTC_ERROR_PCH_CREATE = 15,
    NVRTC_ERROR_CANCELLED = 16,
#pragma warning restore CS1591
}
