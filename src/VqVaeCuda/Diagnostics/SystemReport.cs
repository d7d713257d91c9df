using VqVaeCuda.Device.Cuda;
using VqVaeCuda.Device.Cuda.Native;
using VqVaeCuda.Device.Host;
using VqVaeCuda.Kernels;

namespace VqVaeCuda.Diagnostics;

/// <summary>One component of the machine as the engine sees it.</summary>
/// <param name="Component">e.g. "NVRTC".</param>
/// <param name="Available">Whether it can be used.</param>
/// <param name="Detail">Version, location, or why it is missing.</param>
public sealed record SystemReportLine(string Component, bool Available, string Detail);

/// <summary>What <c>vqvae info</c> prints: devices, compilers, libraries, caches — each with the reason when absent.</summary>
public sealed record SystemReport(IReadOnlyList<SystemReportLine> Lines)
{
    /// <summary>Probes everything; never throws.</summary>
    public static SystemReport Collect(string? kernelCacheDirectory = null)
    {
        var lines = new List<SystemReportLine>();
        int cudaCount = CudaDevice.DeviceCount(out var whyNoCuda);
        if (cudaCount == 0)
            lines.Add(new("CUDA devices", false, whyNoCuda ?? "none"));
        var driverVersion = CudaDriver.TryGetDriverVersion();
        if (driverVersion is int dv)
            lines.Add(new("CUDA driver", true, $"supports CUDA {CudaCompatibility.FormatVersion(dv)} (NVRTC and cuBLAS of major ≤ {dv / 1000} are used, " +
                                                 "and PTX only from an NVRTC no newer than that)"));
        for (int i = 0; i < cudaCount; i++)
            lines.Add(Try($"cuda:{i}", () =>
            {
                using var d = new CudaDevice(i);
                var c = d.Capabilities;
                return $"{c.Name}, {c.Architecture}, {c.Multiprocessors} SMs, {c.TotalMemoryBytes / (1024.0 * 1024 * 1024):F1} GiB; " +
                       $"kernels: {c.KernelTarget}; FMA contraction {(c.FusedMultiplyAdd ? "on" : "off")} (CudaDeviceOptions.FusedMultiplyAdd, default off, " +
                       "as the cpu device); TF32 GEMM off unless --tf32";
            }));

        lines.Add(Try("NVRTC", () =>
        {
            if (!Nvrtc.IsAvailable(out var why)) throw new DllNotFoundException(why);
            var (major, minor) = NvrtcCompiler.Version;
            var archs = NvrtcCompiler.SupportedArchitectures;
            return $"{major}.{minor} ({NativeLibrariesLoadedFrom("nvrtc")})" + (archs is null ? "" : $"; targets sm_{string.Join(", sm_", archs)}");
        }));
        lines.Add(Try("cuBLAS", () =>
        {
            if (!Cublas.IsAvailable(out var why)) throw new DllNotFoundException(why);
            Cublas.cublasGetProperty(0, out int major);
            Cublas.cublasGetProperty(1, out int minor);
            Cublas.cublasGetProperty(2, out int patch);
            return $"{major}.{minor}.{patch} ({NativeLibrariesLoadedFrom("cublas")})";
        }));
        lines.Add(Try("CPU kernel library", () =>
        {
            if (!HostRuntime.IsAvailable(out var why)) throw new DllNotFoundException(why);
            return $"{HostRuntime.LoadedFrom}: {HostRuntime.Registry().Count} kernels, {HostRuntime.vqh_worker_count()} worker threads; " +
                   "built with -ffp-contract=off (no FMA contraction); GEMM in FP32 (--tf32 is ignored on the cpu device)";
        }));
        lines.Add(Try("CPU GEMM (CBLAS)", () =>
        {
            if (!OpenBlas.IsAvailable(out var why)) throw new DllNotFoundException(why);
            return OpenBlas.Describe();
        }));
        lines.Add(Try("kernel sources", () =>
        {
            var set = KernelSourceSet.Embedded;
            return $"{set.Kernels.Count} kernels in {set.Sources.Count} files ({string.Join(", ", set.Sources.Keys)})";
        }));
        lines.Add(Try("kernel cache", () => KernelCache.ResolveDirectory(kernelCacheDirectory)));
        return new SystemReport(lines);
    }

    private static string NativeLibrariesLoadedFrom(string shortName) =>
        Device.Native.NativeLibraries.LoadedFrom("vqvae:" + shortName) ?? "loaded";

    private static SystemReportLine Try(string component, Func<string> probe)
    {
        try
        {
            return new(component, true, probe());
        }
        catch (Exception e)
        {
            return new(component, false, e.Message);
        }
    }
}
