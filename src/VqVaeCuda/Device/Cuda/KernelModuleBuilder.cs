using System.Globalization;
using System.Text.RegularExpressions;
using VqVaeCuda.Device.Cuda.Native;
using VqVaeCuda.Kernels;

namespace VqVaeCuda.Device.Cuda;

/// <summary>One kernel source file compiled for one GPU target.</summary>
/// <param name="SourceName">The source file, e.g. "reduce.cu".</param>
/// <param name="Target">What the image is: a cubin for "sm_80" or PTX for "compute_90".</param>
/// <param name="Image">The SASS image, or the NUL-terminated PTX text; either is ready for <c>cuModuleLoadData(Ex)</c>.</param>
/// <param name="Log">NVRTC's log; for a cubin it includes ptxas's per-kernel resource usage (registers, shared memory, spills) for reports above Device to read.</param>
/// <param name="FromCache">True when the module came from the <see cref="KernelCache"/> instead of NVRTC.</param>
internal sealed record CompiledModule(string SourceName, KernelTarget Target, byte[] Image, string Log, bool FromCache)
{
    /// <summary>The target's NVRTC name, "sm_80" or "compute_90".</summary>
    public string Architecture => Target.Name;
}

/// <summary>
/// Compiles the kernel source files of a <see cref="KernelSourceSet"/> to CUBIN (or PTX) with NVRTC, through a
/// <see cref="KernelCache"/>. One module per source file: that is the unit NVRTC compiles and the driver loads.
/// </summary>
/// <remarks>
/// <para><c>--ptxas-options=-v</c> is passed for cubin targets, so every such log (cached or fresh) carries registers, shared
/// memory and spills per kernel; it is part of the cache key like every other option. No GPU is needed. A PTX target runs
/// no ptxas here (the driver does that at load), so its log has no resource usage.</para>
/// <para><c>--fmad</c> is always passed explicitly (see <see cref="FusedMultiplyAdd"/>): NVRTC's default contracts a·b + c
/// into one rounding, while the CPU build of the same sources uses <c>-ffp-contract=off</c>.</para>
/// </remarks>
internal sealed partial class KernelModuleBuilder
{
    private readonly IReadOnlyList<string> _extraOptions;
    private int _compileCount;

    /// <summary>A builder for <paramref name="sources"/>; <paramref name="cache"/> null means always compile.</summary>
    public KernelModuleBuilder(KernelSourceSet sources, KernelCache? cache, IReadOnlyList<string>? extraOptions = null,
                               bool fusedMultiplyAdd = false)
    {
        ArgumentNullException.ThrowIfNull(sources);
        Sources = sources;
        Cache = cache;
        FusedMultiplyAdd = fusedMultiplyAdd;
        _extraOptions = extraOptions?.ToArray() ?? [];
    }

    /// <summary>
    /// Whether NVRTC may contract a·b + c into fused multiply-adds (<c>--fmad=true</c>). False by default, as on the CPU
    /// device (see <see cref="CudaDeviceOptions.FusedMultiplyAdd"/>).
    /// </summary>
    public bool FusedMultiplyAdd { get; }

    /// <summary>The sources this builder compiles.</summary>
    public KernelSourceSet Sources { get; }

    /// <summary>The cache consulted before NVRTC, if any.</summary>
    public KernelCache? Cache { get; }

    /// <summary>How many times this builder has invoked NVRTC (cache hits do not count).</summary>
    public int CompileCount => Volatile.Read(ref _compileCount);

    /// <summary>The last failure to write the cache, if any. Such failures never fail a build: the module is still returned.</summary>
    public string? LastCacheWriteError { get; private set; }

    /// <summary>The NVRTC options used for <paramref name="architecture"/> ("sm_80" or "compute_90"), in the order they are passed (and hashed).</summary>
    public IReadOnlyList<string> OptionsFor(string architecture)
    {
        ValidateArchitecture(architecture);
        var fmad = FusedMultiplyAdd ? "--fmad=true" : "--fmad=false";
        return KernelTarget.Parse(architecture).Kind == KernelTargetKind.Cubin
            ? [$"--gpu-architecture={architecture}", "--std=c++17", fmad, "--ptxas-options=-v", .. _extraOptions]
            : [$"--gpu-architecture={architecture}", "--std=c++17", fmad, .. _extraOptions];
    }

    /// <summary>
    /// The image (CUBIN or PTX) and log of <paramref name="sourceName"/> for <paramref name="architecture"/> ("sm_80" or
    /// "compute_90"): from the cache when present, otherwise compiled and stored.
    /// </summary>
    /// <param name="sourceName">A key of <see cref="KernelSourceSet.Sources"/>.</param>
    /// <param name="architecture">A real architecture "sm_XY" (cubin) or a virtual one "compute_XY" (PTX).</param>
    /// <param name="bypassCache">Compile even if the cache has the entry (used when the driver rejects a cached image); the result still overwrites the entry.</param>
    /// <exception cref="KernelCompilationException">The source has errors; the exception carries NVRTC's log with file and line.</exception>
    /// <exception cref="NvrtcException">NVRTC rejected the options, e.g. an architecture it does not know.</exception>
    /// <exception cref="DllNotFoundException">NVRTC is not installed (the message says what to install).</exception>
    public CompiledModule Build(string sourceName, string architecture, bool bypassCache = false)
    {
        ArgumentNullException.ThrowIfNull(sourceName);
        if (!Sources.Sources.TryGetValue(sourceName, out var sourceText))
            throw new ArgumentException(
                $"no kernel source named '{sourceName}'; known: {string.Join(", ", Sources.Sources.Keys)}", nameof(sourceName));
        var options = OptionsFor(architecture);
        var target = KernelTarget.Parse(architecture);

        string? key = null;
        if (Cache is not null)
        {
            var (major, minor) = NvrtcCompiler.Version;
            var version = string.Create(CultureInfo.InvariantCulture, $"{major}.{minor}");
            key = KernelCache.ComputeKey(version, target.Kind, architecture, options, sourceName, sourceText, Sources.Headers);
            if (!bypassCache && Cache.TryLoad(key, target.Kind, out var cachedImage, out var cachedLog))
                return new CompiledModule(sourceName, target, cachedImage, cachedLog, FromCache: true);
        }

        var headers = Sources.Headers
            .OrderBy(h => h.Key, StringComparer.Ordinal)
            .Select(h => new NvrtcSource(h.Key, h.Value))
            .ToList();
        Interlocked.Increment(ref _compileCount);
        var output = NvrtcCompiler.Compile(new NvrtcSource(sourceName, sourceText), headers, options);
        // PTX goes to the driver as a NUL-terminated string.
        var image = target.Kind == KernelTargetKind.Cubin
            ? output.Cubin ?? throw new InvalidOperationException($"NVRTC produced no CUBIN for '{sourceName}' ({architecture})")
            : [.. System.Text.Encoding.UTF8.GetBytes(output.Ptx), 0];

        if (Cache is not null && key is not null)
        {
            try
            {
                Cache.Store(key, target.Kind, image, output.Log);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.SecurityException)
            {
                // A read-only or full cache directory must not stop a device from working; it only costs a recompile next time.
                LastCacheWriteError = $"{Cache.Directory}: {e.Message}";
            }
        }
        return new CompiledModule(sourceName, target, image, output.Log, FromCache: false);
    }

    /// <summary>Throws unless <paramref name="architecture"/> is an architecture name such as "sm_80", "sm_90a" or "compute_90".</summary>
    public static void ValidateArchitecture(string architecture)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        if (!RealArchitecture().IsMatch(architecture))
            throw new ArgumentException(
                $"'{architecture}' is not a GPU architecture; expected 'sm_XY' such as sm_70, sm_80 or sm_90, or 'compute_XY' for PTX", nameof(architecture));
    }

    [GeneratedRegex(@"^(sm_\d{2,3}[a-z]?|compute_\d{2,3})$", RegexOptions.CultureInvariant)]
    private static partial Regex RealArchitecture();
}
