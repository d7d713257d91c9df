namespace VqVaeCuda.Device.Cuda.Native;

/// <summary>
/// A CUDA driver API call returned something other than <see cref="CUresult.CUDA_SUCCESS"/>.
/// The message reads like <c>cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (2): out of memory</c>.
/// </summary>
/// <remarks>
/// Public because it escapes to callers of the device layer, who may want to tell an out-of-memory
/// (retry with a smaller batch) from a sticky launch fault (the context is lost).
/// </remarks>
public sealed class CudaException : Exception
{
    /// <summary>Builds the exception; asks the driver for the error name and text, falling back to the enum name if it cannot.</summary>
    /// <param name="call">The exported symbol that failed, e.g. <c>cuMemAlloc_v2</c>.</param>
    /// <param name="result">The status it returned.</param>
    public CudaException(string call, CUresult result)
        : this(call, result, CudaDriver.ErrorName(result), CudaDriver.ErrorText(result))
    {
    }

    private CudaException(string call, CUresult result, string errorName, string errorText)
        : base($"{call} failed: {errorName} ({(int)result}): {errorText}")
    {
        Call = call;
        Result = result;
        ErrorName = errorName;
        ErrorText = errorText;
    }

    /// <summary>The exported symbol that failed, e.g. <c>cuMemAlloc_v2</c>.</summary>
    public string Call { get; }

    /// <summary>The status the call returned.</summary>
    public CUresult Result { get; }

    /// <summary>From <c>cuGetErrorName</c>, e.g. <c>CUDA_ERROR_OUT_OF_MEMORY</c>.</summary>
    public string ErrorName { get; }

    /// <summary>From <c>cuGetErrorString</c>, e.g. <c>out of memory</c>.</summary>
    public string ErrorText { get; }
}
