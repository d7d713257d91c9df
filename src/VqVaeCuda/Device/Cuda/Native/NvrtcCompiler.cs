using System.Text;

namespace VqVaeCuda.Device.Cuda.Native;

/// <summary>A named CUDA C++ source: the main translation unit or a header it <c>#include</c>s by <see cref="Name"/>.</summary>
/// <param name="Name">File name used by NVRTC in diagnostics and for resolving <c>#include "Name"</c>.</param>
/// <param name="Text">The source text.</param>
internal sealed record NvrtcSource(string Name, string Text);

/// <summary>The result of a successful NVRTC compile.</summary>
/// <param name="Cubin">SASS for the real architecture requested (<c>sm_XY</c>), or null when compiling for a virtual one (<c>compute_XY</c>) or none.</param>
/// <param name="Ptx">The generated PTX (always produced; the driver can JIT it for newer GPUs).</param>
/// <param name="Log">NVRTC's full program log: warnings, and ptxas resource usage when <c>--ptxas-options=-v</c> is given.</param>
internal sealed record NvrtcOutput(byte[]? Cubin, string Ptx, string Log);

/// <summary>
/// Managed front end to NVRTC: one call compiles a source (plus in-memory headers) and returns PTX,
/// CUBIN and log, turning compile errors into <see cref="KernelCompilationException"/>. Needs only
/// libnvrtc, not a GPU or driver.
/// </summary>
internal static unsafe class NvrtcCompiler
{
    private static readonly Lazy<(int Major, int Minor)> LazyVersion = new(() =>
    {
        Nvrtc.Check(Nvrtc.nvrtcVersion(out var major, out var minor), nameof(Nvrtc.nvrtcVersion));
        return (major, minor);
    });

    private static readonly Lazy<IReadOnlyList<int>?> LazySupportedArchitectures = new(QuerySupportedArchitectures);

    /// <summary>NVRTC's version (e.g. (11, 8)). Throws <see cref="DllNotFoundException"/> when NVRTC is not installed.</summary>
    public static (int Major, int Minor) Version => LazyVersion.Value;

    /// <summary>
    /// SM numbers this NVRTC can compile for (e.g. 35 … 90), ascending; null when the library predates
    /// <c>nvrtcGetSupportedArchs</c> (before 11.2) so callers fall back to their own defaults.
    /// </summary>
    public static IReadOnlyList<int>? SupportedArchitectures => LazySupportedArchitectures.Value;

    /// <summary>
    /// Compiles <paramref name="main"/> with <paramref name="headers"/> available to <c>#include</c> by
    /// name. The program log is always fetched and returned. CUBIN is fetched only when the options
    /// name a real architecture (<c>--gpu-architecture=sm_XY</c> / <c>-arch=sm_XY</c>); PTX always.
    /// </summary>
    /// <exception cref="KernelCompilationException">The source has errors; the exception carries the log and parsed diagnostics.</exception>
    /// <exception cref="NvrtcException">Any other NVRTC failure, e.g. an unknown option or architecture.</exception>
    /// <exception cref="DllNotFoundException">NVRTC is not installed.</exception>
    public static NvrtcOutput Compile(NvrtcSource main, IReadOnlyList<NvrtcSource> headers, IReadOnlyList<string> options)
    {
        ArgumentNullException.ThrowIfNull(main);
        ArgumentNullException.ThrowIfNull(headers);
        ArgumentNullException.ThrowIfNull(options);

        // NVRTC takes headers as two parallel arrays (contents, include names); null when there are none.
        string[]? headerTexts = headers.Count == 0 ? null : headers.Select(h => h.Text).ToArray();
        string[]? headerNames = headers.Count == 0 ? null : headers.Select(h => h.Name).ToArray();
        string[]? optionArray = options.Count == 0 ? null : options.ToArray();

        Nvrtc.Check(
            Nvrtc.nvrtcCreateProgram(out var program, main.Text, main.Name, headers.Count, headerTexts, headerNames),
            nameof(Nvrtc.nvrtcCreateProgram));
        try
        {
            var compiled = Nvrtc.nvrtcCompileProgram(program, optionArray?.Length ?? 0, optionArray);
            // Fetch the log before judging the result: it holds the errors on failure and the
            // warnings / ptxas statistics on success, and it explains an invalid option.
            var log = ReadString(program, &Nvrtc.nvrtcGetProgramLogSize, &Nvrtc.nvrtcGetProgramLog,
                nameof(Nvrtc.nvrtcGetProgramLog));
            if (compiled == NvrtcResult.NVRTC_ERROR_COMPILATION)
                throw new KernelCompilationException(main.Name, log, options);
            Nvrtc.Check(compiled, nameof(Nvrtc.nvrtcCompileProgram), log);

            var ptx = ReadString(program, &Nvrtc.nvrtcGetPTXSize, &Nvrtc.nvrtcGetPTX, nameof(Nvrtc.nvrtcGetPTX));
            var cubin = TargetsRealArchitecture(options)
                ? ReadBytes(program, &Nvrtc.nvrtcGetCUBINSize, &Nvrtc.nvrtcGetCUBIN, nameof(Nvrtc.nvrtcGetCUBIN))
                : null;
            return new NvrtcOutput(cubin, ptx, log);
        }
        finally
        {
            // The result is ignored on purpose: a failed destroy leaks one program at worst, and
            // throwing from here would replace the exception that is already propagating.
            _ = Nvrtc.nvrtcDestroyProgram(ref program);
        }
    }

    /// <summary>
    /// True when the last architecture option names a real GPU (<c>sm_XY</c>, including <c>sm_90a</c>),
    /// i.e. NVRTC will have produced SASS. <c>compute_XY</c> (virtual) or no option means PTX only
    /// (NVRTC's default target is a virtual architecture), and nvrtcGetCUBIN would fail.
    /// </summary>
    internal static bool TargetsRealArchitecture(IReadOnlyList<string> options)
    {
        string? arch = null;
        for (var i = 0; i < options.Count; i++)
        {
            var option = options[i].Trim();
            foreach (var flag in (ReadOnlySpan<string>)["--gpu-architecture", "-arch"])
            {
                if (option.StartsWith(flag + "=", StringComparison.Ordinal))
                    arch = option[(flag.Length + 1)..];
                else if (option == flag && i + 1 < options.Count) // value given as the next element
                    arch = options[i + 1].Trim();
            }
        }
        return arch is not null && arch.StartsWith("sm_", StringComparison.Ordinal);
    }

    private static IReadOnlyList<int>? QuerySupportedArchitectures()
    {
        try
        {
            Nvrtc.Check(Nvrtc.nvrtcGetNumSupportedArchs(out var count), nameof(Nvrtc.nvrtcGetNumSupportedArchs));
            var archs = new int[count];
            fixed (int* p = archs)
                Nvrtc.Check(Nvrtc.nvrtcGetSupportedArchs(p), nameof(Nvrtc.nvrtcGetSupportedArchs));
            return archs;
        }
        catch (EntryPointNotFoundException)
        {
            return null; // NVRTC older than 11.2: the query does not exist; not an error.
        }
    }

    private static byte[] ReadBytes(
        nint program,
        delegate*<nint, out nuint, NvrtcResult> getSize,
        delegate*<nint, byte*, NvrtcResult> get,
        string call)
    {
        Nvrtc.Check(getSize(program, out var size), call + "Size");
        var buffer = new byte[checked((int)size)];
        if (buffer.Length == 0) return buffer;
        fixed (byte* p = buffer)
            Nvrtc.Check(get(program, p), call);
        return buffer;
    }

    // Log and PTX come back NUL-terminated and their reported sizes include the NUL; cut at the first
    // NUL so an empty log (size 1) becomes "".
    private static string ReadString(
        nint program,
        delegate*<nint, out nuint, NvrtcResult> getSize,
        delegate*<nint, byte*, NvrtcResult> get,
        string call)
    {
        var bytes = ReadBytes(program, getSize, get, call);
        var length = Array.IndexOf(bytes, (byte)0);
        return Encoding.UTF8.GetString(bytes, 0, length < 0 ? bytes.Length : length);
    }
}
