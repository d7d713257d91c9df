using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.InteropServices;

namespace VqVaeCuda.Device.Native;

/// <summary>
/// The one place that maps the logical library names used by <c>[LibraryImport]</c> to the
/// versioned sonames found on real machines. A CUDA install rarely has the unversioned
/// <c>libcuda.so</c> (that comes with the -dev package), so each name probes a list of
/// sonames, newest first, and remembers why each failed so that callers can say what to install.
/// </summary>
internal static class NativeLibraries
{
    /// <summary>Logical names used in <c>LibraryImport</c> attributes.</summary>
    public const string Cuda = "vqvae:cuda";
    public const string Nvrtc = "vqvae:nvrtc";
    public const string Cublas = "vqvae:cublas";
    public const string Blas = "vqvae:blas";
    public const string Host = "vqvae:host";

    private sealed record Probe(string[] Candidates, string InstallHint);

    private static readonly Dictionary<string, Probe> Probes = new()
    {
        [Cuda] = new(["libcuda.so.1", "libcuda.so", "nvcuda.dll"],
            "the NVIDIA driver (libcuda.so.1) is not installed or no NVIDIA GPU driver is loaded"),
        // NVRTC's and cuBLAS's lists are replaced by CandidateProviders (newest major the driver supports first).
        [Nvrtc] = new(["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"],
            "install NVRTC: on Debian enable the 'non-free' component and `apt-get install libnvrtc11.2`, or install the CUDA toolkit"),
        [Cublas] = new(["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"],
            "install cuBLAS: on Debian enable 'non-free' and `apt-get install libcublas11`, or install the CUDA toolkit"),
        [Blas] = new(["libopenblas.so.0", "libopenblas.so", "libcblas.so.3", "libblas.so.3"],
            "install OpenBLAS: `apt-get install libopenblas-dev` (Debian/Ubuntu)"),
        [Host] = new([], "build the CPU kernel library: `dotnet build` runs CMake (needs cmake and a C++17 compiler)"),
    };

    private static readonly ConcurrentDictionary<string, Lazy<(IntPtr Handle, string? Failure)>> Loaded = new();
    private static int _registered;

    /// <summary>Extra candidate paths for a logical name, tried before the soname list (e.g. the host library next to the assembly).</summary>
    private static readonly ConcurrentDictionary<string, string[]> ExtraCandidates = new();

    /// <summary>Installs the resolver for this assembly; idempotent. Called by every binding's static constructor.</summary>
    public static void EnsureResolver()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 0)
            NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);
    }

    /// <summary>
    /// Functions that compute a logical name's soname list when it is first loaded, in place of the static list: NVRTC
    /// and cuBLAS pick their majors from the driver's version (registered by their bindings, which know the driver).
    /// </summary>
    private static readonly ConcurrentDictionary<string, Func<(string[] Candidates, string? Note)>> CandidateProviders = new();

    /// <summary>Sets the provider of <paramref name="logicalName"/>'s soname list (see <see cref="CandidateProviders"/>); first one wins.</summary>
    public static void SetCandidateProvider(string logicalName, Func<(string[] Candidates, string? Note)> provider) =>
        CandidateProviders.TryAdd(logicalName, provider);

    /// <summary>Adds explicit file paths to probe for <paramref name="logicalName"/> before its sonames.</summary>
    public static void AddCandidates(string logicalName, params string[] paths) =>
        ExtraCandidates.AddOrUpdate(logicalName, paths, (_, old) => [.. paths, .. old]);

    /// <summary>True when the library can be loaded; otherwise <paramref name="whyNot"/> says what was tried and what to install.</summary>
    public static bool TryLoad(string logicalName, out string? whyNot)
    {
        EnsureResolver();
        var (handle, failure) = Load(logicalName);
        whyNot = failure;
        return handle != IntPtr.Zero;
    }

    /// <summary>The loaded handle, or a <see cref="DllNotFoundException"/> that says what to install.</summary>
    public static IntPtr Require(string logicalName)
    {
        var (handle, failure) = Load(logicalName);
        if (handle == IntPtr.Zero) throw new DllNotFoundException(failure);
        return handle;
    }

    /// <summary>The file name that was loaded for a logical name, if any.</summary>
    public static string? LoadedFrom(string logicalName) =>
        Loaded.TryGetValue(logicalName, out var lazy) && lazy.IsValueCreated ? LoadedPaths.GetValueOrDefault(logicalName) : null;

    private static readonly ConcurrentDictionary<string, string> LoadedPaths = new();

    private static (IntPtr, string?) Load(string logicalName) =>
        Loaded.GetOrAdd(logicalName, name => new Lazy<(IntPtr, string?)>(() => Probe_(name))).Value;

    private static (IntPtr, string?) Probe_(string name)
    {
        if (!Probes.TryGetValue(name, out var probe))
            return (IntPtr.Zero, $"unknown native library '{name}'");
        var sonames = probe.Candidates;
        string? note = null;
        if (CandidateProviders.TryGetValue(name, out var provider)) (sonames, note) = provider();
        var candidates = ExtraCandidates.GetValueOrDefault(name, []).Concat(sonames).ToArray();
        var errors = new List<string>();
        var problems = new List<string>();
        foreach (var candidate in candidates)
        {
            if (TryLoad(candidate, out var handle, out var problem))
            {
                LoadedPaths[name] = candidate;
                return (handle, null);
            }
            errors.Add(candidate);
            if (problem is not null) problems.Add(problem);
        }
        // A library that is there but does not load (a too-old libstdc++, a missing dependency, another architecture) says
        // why before the install hint, which would only send the user to install what they have.
        return (IntPtr.Zero, $"could not load any of [{string.Join(", ", errors)}]{(note is null ? "" : $" ({note})")}: " +
                             (problems.Count > 0 ? $"{string.Join("; ", problems)}; " : "") + probe.InstallHint);
    }

    /// <summary>
    /// What the dynamic loader said about <paramref name="candidate"/> when that is more than "not found" (the dlerror lines
    /// of .NET's message, without the ones that only say no such file exists), or null.
    /// </summary>
    internal static string? LoaderProblem(string candidate)
    {
        if (TryLoad(candidate, out var handle, out var problem)) NativeLibrary.Free(handle);
        return problem;
    }

    // One load attempt: the handle, or what the loader said beyond "not found" (NativeLibrary.TryLoad would drop it).
    private static bool TryLoad(string candidate, out IntPtr handle, out string? problem)
    {
        try
        {
            handle = NativeLibrary.Load(candidate);
            problem = null;
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            handle = IntPtr.Zero;
            problem = LoaderProblemIn(e.Message);
            return false;
        }
    }

    /// <summary>The lines of a failed load's message worth showing (see <see cref="LoaderProblem"/>); null when none is.</summary>
    internal static string? LoaderProblemIn(string message)
    {
        // .NET's first line is advice (strace, LD_DEBUG); the dlerror lines after it say "<file>: <reason>".
        var reasons = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Skip(1)
            .Where(line => !line.EndsWith("No such file or directory", StringComparison.Ordinal))
            .Distinct()
            .ToArray();
        return reasons.Length == 0 ? null : string.Join("; ", reasons);
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (!Probes.ContainsKey(libraryName)) return IntPtr.Zero;
        return Require(libraryName);
    }
}
