namespace VqVaeCuda.Device.Cuda.Native;

/// <summary>
/// A cuBLAS call returned something other than <see cref="cublasStatus_t.CUBLAS_STATUS_SUCCESS"/>.
/// The message reads like <c>cublasSgemm_v2 failed: CUBLAS_STATUS_INVALID_VALUE (7): an invalid value was used as an argument</c>.
/// </summary>
/// <remarks>Public for the same reason as <see cref="CudaException"/>: it escapes to callers.</remarks>
public sealed class CublasException : Exception
{
    /// <summary>Builds the exception; asks cuBLAS for the status name and text, falling back to the enum name if it cannot.</summary>
    /// <param name="call">The exported symbol that failed, e.g. <c>cublasSgemm_v2</c>.</param>
    /// <param name="status">The status it returned.</param>
    public CublasException(string call, cublasStatus_t status)
        : this(call, status, Cublas.StatusName(status), Cublas.StatusText(status))
    {
    }

    private CublasException(string call, cublasStatus_t status, string statusName, string statusText)
        : base($"{call} failed: {statusName} ({(int)status}): {statusText}")
    {
        Call = call;
        Status = status;
        StatusName = statusName;
        StatusText = statusText;
    }

    /// <summary>The exported symbol that failed.</summary>
    public string Call { get; }

    /// <summary>The status it returned.</summary>
    public cublasStatus_t Status { get; }

    /// <summary>From <c>cublasGetStatusName</c> (or the enum name before cuBLAS 11.4), e.g. <c>CUBLAS_STATUS_INVALID_VALUE</c>.</summary>
    public string StatusName { get; }

    /// <summary>From <c>cublasGetStatusString</c> (or derived from the name before cuBLAS 11.4).</summary>
    public string StatusText { get; }
}
