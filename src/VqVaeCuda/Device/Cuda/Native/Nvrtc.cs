using System.Runtime.InteropServices;
using VqVaeCuda.Device.Native;

namespace VqVaeCuda.Device.Cuda.Native;

/// <summary>
/// Raw bindings to NVRTC, the CUDA C++ runtime compiler. NVRTC needs no GPU and no driver, so these
/// work (and are tested) on machines without CUDA hardware. Methods are named after the exported
/// symbols. Use <see cref="NvrtcCompiler"/> rather than calling these directly.
/// </summary>
/// <remarks>
/// <c>nvrtcProgram</c> is an opaque pointer → <see cref="nint"/>; <c>size_t</c> → <see cref="nuint"/>.
/// All strings crossing this boundary are UTF-8 (NVRTC reads and writes plain <c>char*</c>).
/// </remarks>
internal static unsafe partial class Nvrtc
{
    private const string Lib = NativeLibraries.Nvrtc;

    // Explicit static constructor so the resolver is installed before the first stub runs (see CudaDriver); the soname list
    // keeps only the majors the driver supports, newest first (CudaCompatibility.NvrtcSonames).
    static Nvrtc()
    {
        NativeLibraries.EnsureResolver();
        NativeLibraries.SetCandidateProvider(NativeLibraries.Nvrtc, () =>
        {
            var driver = CudaDriver.TryGetDriverVersion();
            return (CudaCompatibility.NvrtcSonames(driver),
                    driver is int v ? $"the driver supports CUDA {CudaCompatibility.FormatVersion(v)}, so only majors up to {v / 1000} were tried" : null);
        });
    }

    /// <summary>True when libnvrtc can be loaded; otherwise <paramref name="whyNot"/> says what was tried and what to install.</summary>
    public static bool IsAvailable(out string? whyNot) => NativeLibraries.TryLoad(Lib, out whyNot);

    /// <summary>Throws <see cref="NvrtcException"/> unless <paramref name="r"/> is <see cref="NvrtcResult.NVRTC_SUCCESS"/>.</summary>
    /// <param name="r">The status returned by the NVRTC call.</param>
    /// <param name="call">The exported symbol that was called, e.g. <c>nameof(nvrtcCreateProgram)</c>.</param>
    /// <param name="log">The program log, when one is available (it explains invalid options, for example).</param>
    internal static void Check(NvrtcResult r, string call, string? log = null)
    {
        if (r != NvrtcResult.NVRTC_SUCCESS) throw new NvrtcException(call, r, log);
    }

    /// <summary><c>nvrtcGetErrorString</c> for <paramref name="r"/>, or the enum name if NVRTC cannot be loaded. Never throws.</summary>
    internal static string ErrorText(NvrtcResult r)
    {
        try
        {
            var p = nvrtcGetErrorString(r);
            if (p != 0) return Marshal.PtrToStringUTF8(p) ?? r.ToString();
        }
        catch (Exception) // DllNotFoundException / EntryPointNotFoundException: fall back to our own name.
        {
        }
        return r.ToString();
    }

    /// <summary>NVRTC's own version (not the driver's).</summary>
    [LibraryImport(Lib)] internal static partial NvrtcResult nvrtcVersion(out int major, out int minor);

    /// <summary>
    /// Creates a program from <paramref name="src"/>. <paramref name="headers"/>[i] is the text that an
    /// <c>#include "includeNames[i]"</c> resolves to; both arrays have <paramref name="numHeaders"/>
    /// entries, or are null when it is 0. <paramref name="name"/> is the file name used in diagnostics.
    /// </summary>
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial NvrtcResult nvrtcCreateProgram(
        out nint prog, string src, string name, int numHeaders, string[]? headers, string[]? includeNames);

    /// <summary>Destroys a program and zeroes the handle.</summary>
    [LibraryImport(Lib)] internal static partial NvrtcResult nvrtcDestroyProgram(ref nint prog);

    /// <summary>Compiles with nvcc-style options (one option per array element, e.g. "--gpu-architecture=sm_90").</summary>
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial NvrtcResult nvrtcCompileProgram(nint prog, int numOptions, string[]? options);

    /// <summary>Size of the program log in bytes, including the terminating NUL.</summary>
    [LibraryImport(Lib)] internal static partial NvrtcResult nvrtcGetProgramLogSize(nint prog, out nuint logSizeRet);

    /// <summary>Copies the NUL-terminated log into a caller buffer of <see cref="nvrtcGetProgramLogSize"/> bytes.</summary>
    [LibraryImport(Lib)] internal static partial NvrtcResult nvrtcGetProgramLog(nint prog, byte* log);

    /// <summary>Size of the generated PTX in bytes, including the terminating NUL.</summary>
    [LibraryImport(Lib)] internal static partial NvrtcResult nvrtcGetPTXSize(nint prog, out nuint ptxSizeRet);

    /// <summary>Copies the NUL-terminated PTX into a caller buffer of <see cref="nvrtcGetPTXSize"/> bytes.</summary>
    [LibraryImport(Lib)] internal static partial NvrtcResult nvrtcGetPTX(nint prog, byte* ptx);

    /// <summary>Size of the CUBIN in bytes; only meaningful when compiled for a real <c>sm_XY</c> architecture.</summary>
    [LibraryImport(Lib)] internal static partial NvrtcResult nvrtcGetCUBINSize(nint prog, out nuint cubinSizeRet);

    /// <summary>Copies the CUBIN into a caller buffer of <see cref="nvrtcGetCUBINSize"/> bytes.</summary>
    [LibraryImport(Lib)] internal static partial NvrtcResult nvrtcGetCUBIN(nint prog, byte* cubin);

    /// <summary>
    /// Static description of a status. Returns a raw pointer because the string is NVRTC-owned and must
    /// not be freed (a marshalled <see cref="string"/> return would free it). Use <see cref="ErrorText"/>.
    /// </summary>
    [LibraryImport(Lib)] internal static partial nint nvrtcGetErrorString(NvrtcResult result);

    /// <summary>Number of entries <see cref="nvrtcGetSupportedArchs"/> writes. Exported since NVRTC 11.2.</summary>
    [LibraryImport(Lib)] internal static partial NvrtcResult nvrtcGetNumSupportedArchs(out int numArchs);

    /// <summary>Fills <paramref name="supportedArchs"/> with the SM numbers NVRTC can target (e.g. 52 … 90), ascending. Exported since NVRTC 11.2.</summary>
    [LibraryImport(Lib)] internal static partial NvrtcResult nvrtcGetSupportedArchs(int* supportedArchs);
}
