namespace VqVaeCuda.Device.Cuda.Native;

/// <summary>
/// An NVRTC call failed for a reason other than a compile error in the source (those raise
/// <see cref="KernelCompilationException"/>): an invalid option, out of memory, an internal error.
/// </summary>
/// <remarks>Public for the same reason as <see cref="CudaException"/>: it escapes to callers.</remarks>
public sealed class NvrtcException : Exception
{
    /// <summary>Builds the exception; asks NVRTC for the error text, falling back to the enum name if it cannot.</summary>
    /// <param name="call">The exported symbol that failed, e.g. <c>nvrtcCompileProgram</c>.</param>
    /// <param name="result">The status it returned.</param>
    /// <param name="log">The program log if one was fetched (it names the offending option for NVRTC_ERROR_INVALID_OPTION).</param>
    public NvrtcException(string call, NvrtcResult result, string? log = null)
        : this(call, result, Nvrtc.ErrorText(result), log)
    {
    }

    private NvrtcException(string call, NvrtcResult result, string errorText, string? log)
        : base(BuildMessage(call, result, errorText, log))
    {
        Call = call;
        Result = result;
        ErrorText = errorText;
        Log = log;
    }

    /// <summary>The exported symbol that failed.</summary>
    public string Call { get; }

    /// <summary>The status it returned.</summary>
    public NvrtcResult Result { get; }

    /// <summary>From <c>nvrtcGetErrorString</c>, e.g. <c>NVRTC_ERROR_INVALID_OPTION</c>.</summary>
    public string ErrorText { get; }

    /// <summary>The program log, when the failure happened after a program existed; otherwise null.</summary>
    public string? Log { get; }

    private static string BuildMessage(string call, NvrtcResult result, string errorText, string? log)
    {
        var message = $"{call} failed: {errorText} ({(int)result})";
        return string.IsNullOrWhiteSpace(log) ? message : $"{message}{Environment.NewLine}{log.TrimEnd()}";
    }
}
