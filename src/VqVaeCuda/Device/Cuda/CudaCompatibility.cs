using System.Globalization;

namespace VqVaeCuda.Device.Cuda;

/// <summary>What NVRTC produces for a GPU: SASS the driver loads as it is, or PTX the driver JIT-compiles.</summary>
public enum KernelTargetKind
{
    /// <summary>A CUBIN for a real architecture (<c>--gpu-architecture=sm_XY</c>).</summary>
    Cubin,
    /// <summary>PTX for a virtual architecture (<c>--gpu-architecture=compute_XY</c>), compiled to SASS by the driver at load.</summary>
    Ptx,
}

/// <summary>The architecture NVRTC compiles for and the form of its output.</summary>
/// <param name="Kind">CUBIN or PTX.</param>
/// <param name="Architecture">major·10 + minor, e.g. 90.</param>
/// <param name="Variant">"a" for an architecture-specific cubin such as sm_90a; empty otherwise.</param>
public sealed record KernelTarget(KernelTargetKind Kind, int Architecture, string Variant = "")
{
    /// <summary>The NVRTC architecture name: "sm_90" or "compute_90".</summary>
    public string Name => string.Create(CultureInfo.InvariantCulture, $"{(Kind == KernelTargetKind.Cubin ? "sm" : "compute")}_{Architecture}{Variant}");

    /// <summary>For <c>vqvae info</c>: "cubin sm_90" or "PTX compute_90, JIT-compiled by the driver".</summary>
    public string Description => Kind == KernelTargetKind.Cubin ? $"cubin {Name}" : $"PTX {Name}, JIT-compiled by the driver";

    /// <summary>Parses "sm_90", "sm_90a" / "compute_90" (the forms <see cref="Name"/> writes).</summary>
    /// <exception cref="ArgumentException">Neither form.</exception>
    public static KernelTarget Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (var (prefix, kind) in new[] { ("sm_", KernelTargetKind.Cubin), ("compute_", KernelTargetKind.Ptx) })
        {
            if (!name.StartsWith(prefix, StringComparison.Ordinal)) continue;
            var digits = name.AsSpan(prefix.Length);
            string variant = kind == KernelTargetKind.Cubin && digits.Length > 0 && char.IsAsciiLetterLower(digits[^1]) ? digits[^1..].ToString() : "";
            if (int.TryParse(digits[..(digits.Length - variant.Length)], NumberStyles.None, CultureInfo.InvariantCulture, out int arch) && arch >= 10)
                return new KernelTarget(kind, arch, variant);
        }
        throw new ArgumentException($"'{name}' is not a GPU architecture; expected 'sm_XY' (cubin) or 'compute_XY' (PTX)", nameof(name));
    }
}

/// <summary>
/// Which NVRTC target and which CUDA libraries fit a GPU, an NVRTC and a driver: the pure rules, kept apart from the
/// driver calls so they are tested on machines without a GPU.
/// </summary>
/// <remarks>
/// <para>The rules, from NVIDIA's compatibility documentation:</para>
/// <list type="bullet">
/// <item>SASS for sm_XY runs on sm_XZ for Z ≥ Y (same major), never across majors.</item>
/// <item>PTX for compute_XY runs on every GPU of architecture ≥ XY: the driver compiles it at load. That is the only way
/// a GPU newer than the NVRTC (e.g. Blackwell under NVRTC 11.8) can run our kernels.</item>
/// <item>A driver JIT-compiles only PTX of an ISA it knows: PTX from NVRTC X.Y needs a driver of CUDA version ≥ X.Y
/// (CUDA_ERROR_UNSUPPORTED_PTX_VERSION otherwise). A CUBIN from NVRTC X.Y loads on any driver of the same major
/// (minor-version compatibility), never on an older major.</item>
/// <item>A driver of CUDA version V supports runtime libraries (NVRTC, cuBLAS) of majors ≤ V / 1000.</item>
/// </list>
/// </remarks>
public static class CudaCompatibility
{
    /// <summary>
    /// The target for a GPU of compute capability <paramref name="major"/>.<paramref name="minor"/>.
    /// </summary>
    /// <param name="major">GPU compute capability, major.</param>
    /// <param name="minor">GPU compute capability, minor.</param>
    /// <param name="supported">The architectures NVRTC can target (<c>nvrtcGetSupportedArchs</c>), or null for
    /// <see cref="KnownArchitectures"/> of <paramref name="nvrtcVersion"/>.</param>
    /// <param name="nvrtcVersion">NVRTC's version.</param>
    /// <param name="driverVersion">cuDriverGetVersion's value (e.g. 12080), or null when unknown (no check).</param>
    /// <param name="whyNot">When null is returned: why, and what to install.</param>
    /// <returns>The GPU's own cubin; else the newest same-major cubin at or below it; else, for a GPU newer than
    /// every architecture NVRTC knows, PTX for the newest of those; null when none can run.</returns>
    public static KernelTarget? ChooseTarget(int major, int minor, IReadOnlyList<int>? supported, (int Major, int Minor) nvrtcVersion,
                                             int? driverVersion, out string? whyNot)
    {
        whyNot = null;
        int own = major * 10 + minor;
        var archs = supported ?? KnownArchitectures(nvrtcVersion.Major, nvrtcVersion.Minor);
        string nvrtc = string.Create(CultureInfo.InvariantCulture, $"NVRTC {nvrtcVersion.Major}.{nvrtcVersion.Minor}");
        string range = archs.Count == 0 ? "no architecture" : $"sm_{archs.Min()}..sm_{archs.Max()}";

        if (driverVersion is int driver && nvrtcVersion.Major > driver / 1000)
        {
            whyNot = $"{nvrtc} is newer than the driver (CUDA {FormatVersion(driver)}), which cannot load its output; " +
                     $"install NVRTC {driver / 1000}.x (libnvrtc.so.{SonameVersion(driver / 1000)}) or a newer driver";
            return null;
        }
        if (archs.Contains(own)) return new KernelTarget(KernelTargetKind.Cubin, own);
        int sameMajor = archs.Where(a => a / 10 == major && a % 10 <= minor).DefaultIfEmpty(-1).Max();
        if (sameMajor >= 0) return new KernelTarget(KernelTargetKind.Cubin, sameMajor);
        if (archs.Count == 0 || own < archs.Min())
        {
            whyNot = $"{nvrtc} cannot compile for sm_{own} (it targets {range}): this GPU is older than this NVRTC supports; " +
                     "install an older NVRTC / CUDA toolkit that still targets it (CUDA 12.x targets sm_50 and newer, CUDA 13 sm_75 and newer)";
            return null;
        }
        // Newer than every architecture NVRTC knows: PTX for the newest one below the GPU, JIT-compiled by the driver.
        int newest = archs.Where(a => a < own).Max();
        if (driverVersion is int d && d < nvrtcVersion.Major * 1000 + nvrtcVersion.Minor * 10)
        {
            whyNot = $"{nvrtc} cannot compile SASS for sm_{own} (it targets {range}), and the driver (CUDA {FormatVersion(d)}) cannot " +
                     $"JIT-compile PTX from a newer NVRTC; install an NVRTC that targets sm_{own}, or one no newer than CUDA {FormatVersion(d)}";
            return null;
        }
        return new KernelTarget(KernelTargetKind.Ptx, newest);
    }

    /// <summary>
    /// The architectures an NVRTC of this version targets, for libraries older than <c>nvrtcGetSupportedArchs</c>
    /// (before 11.2) and for messages: from the CUDA release notes (11.0 added sm_80, 11.1 sm_86, 11.4 sm_87, 11.8
    /// sm_89/sm_90, 12.0 dropped sm_35/37, 12.8 added sm_100/101/120, 12.9 sm_103/121, 13.0 dropped sm_50–72).
    /// </summary>
    public static IReadOnlyList<int> KnownArchitectures(int nvrtcMajor, int nvrtcMinor)
    {
        var archs = new List<int> { 35, 37, 50, 52, 53, 60, 61, 62, 70, 72, 75, 80 };
        int v = nvrtcMajor * 100 + nvrtcMinor;
        if (v >= 1101) archs.Add(86);
        if (v >= 1104) archs.Add(87);
        if (v >= 1108) archs.AddRange([89, 90]);
        if (v >= 1200) archs.RemoveAll(a => a < 50);
        if (v >= 1208) archs.AddRange([100, 101, 120]);
        if (v >= 1209) archs.AddRange([103, 121]);
        if (v >= 1300) archs.RemoveAll(a => a < 75);
        return archs;
    }

    /// <summary>
    /// NVRTC sonames to try, newest first, keeping only majors the driver supports (all of them when the driver version
    /// is unknown, e.g. no driver: NVRTC still compiles for reports and tests). The unversioned name comes last.
    /// </summary>
    public static string[] NvrtcSonames(int? driverVersion) =>
        [.. Majors(driverVersion).SelectMany(m => m == 11 ? new[] { "libnvrtc.so.11.2", "libnvrtc.so.11.1", "libnvrtc.so.11.0" } : [$"libnvrtc.so.{m}"]),
         "libnvrtc.so"];

    /// <summary>cuBLAS sonames to try, by the same rule as <see cref="NvrtcSonames"/>.</summary>
    public static string[] CublasSonames(int? driverVersion) =>
        [.. Majors(driverVersion).Select(m => $"libcublas.so.{m}"), "libcublas.so"];

    /// <summary>"12.8" for 12080.</summary>
    public static string FormatVersion(int cudaVersion) =>
        string.Create(CultureInfo.InvariantCulture, $"{cudaVersion / 1000}.{cudaVersion % 1000 / 10}");

    // The majors whose runtime libraries this project knows, newest first.
    private static readonly int[] LibraryMajors = [13, 12, 11];

    private static IEnumerable<int> Majors(int? driverVersion) =>
        driverVersion is int v ? LibraryMajors.Where(m => m <= v / 1000) : LibraryMajors;

    private static string SonameVersion(int major) => major == 11 ? "11.2" : major.ToString(CultureInfo.InvariantCulture);
}
