using System.Runtime.InteropServices;
using VqVaeCuda.Device.Native;

namespace VqVaeCuda.Device.Host;

/// <summary>
/// Bindings to libvqvae_host (kernels/host/host_api.h): the kernels of <c>kernels/*.cu</c> compiled as
/// C++, the block scheduler that runs them, and checked memory. Built by <c>dotnet build</c> through CMake.
/// </summary>
internal static unsafe partial class HostRuntime
{
    /// <summary>The ABI this binding was written for; must equal vqh_abi_version().</summary>
    public const int AbiVersion = 3;
    public const string LibraryFileName = "libvqvae_host.so";
    public const string UnavailableFileName = "libvqvae_host.unavailable.txt";
    public const string LibraryEnvironmentVariable = "VQVAE_HOST_LIBRARY";

    static HostRuntime()
    {
        var candidates = new List<string>();
        var fromEnvironment = Environment.GetEnvironmentVariable(LibraryEnvironmentVariable);
        if (!string.IsNullOrEmpty(fromEnvironment)) candidates.Add(fromEnvironment);
        candidates.Add(Path.Combine(AppContext.BaseDirectory, LibraryFileName));
        var assemblyDirectory = Path.GetDirectoryName(typeof(HostRuntime).Assembly.Location);
        if (!string.IsNullOrEmpty(assemblyDirectory)) candidates.Add(Path.Combine(assemblyDirectory, LibraryFileName));
        NativeLibraries.AddCandidates(NativeLibraries.Host, candidates.Distinct().ToArray());
        NativeLibraries.EnsureResolver();
    }

    /// <summary>True when the library loads and speaks this ABI; otherwise <paramref name="whyNot"/> says exactly what is missing.</summary>
    public static bool IsAvailable(out string? whyNot)
    {
        // Before loading: a library built with -march=native on another machine would die of SIGILL here.
        if (MissingInstructionSets() is { } missing)
        {
            whyNot = missing;
            return false;
        }
        if (!NativeLibraries.TryLoad(NativeLibraries.Host, out whyNot))
        {
            // The build leaves a note when it could not build the library (no cmake, no compiler, a failed build).
            foreach (var dir in new[] { AppContext.BaseDirectory, Path.GetDirectoryName(typeof(HostRuntime).Assembly.Location) ?? "" })
            {
                var note = Path.Combine(dir, UnavailableFileName);
                if (File.Exists(note))
                {
                    whyNot = $"the CPU kernel library was not built: {File.ReadAllText(note).Trim()}";
                    return false;
                }
            }
            return false;
        }
        int abi = vqh_abi_version();
        if (abi != AbiVersion)
        {
            whyNot = $"{NativeLibraries.LoadedFrom(NativeLibraries.Host)} has ABI version {abi}, this assembly needs {AbiVersion}: rebuild with `dotnet build`";
            return false;
        }
        return true;
    }

    /// <summary>The file beside the library listing the instruction-set extensions it was compiled for (tools/build-native.sh).</summary>
    public const string IsaFileName = "libvqvae_host.isa.txt";

    /// <summary>
    /// Null when this CPU has every extension the library was compiled for (or the build recorded none: a portable
    /// build, or not x86-64); otherwise a message naming the missing ones and how to rebuild. Reads /proc/cpuinfo.
    /// </summary>
    internal static string? MissingInstructionSets(string? isaFile = null, string cpuInfo = "/proc/cpuinfo")
    {
        isaFile ??= new[] { AppContext.BaseDirectory, Path.GetDirectoryName(typeof(HostRuntime).Assembly.Location) ?? "" }
            .Select(d => Path.Combine(d, IsaFileName)).FirstOrDefault(File.Exists);
        if (isaFile is null || !File.Exists(isaFile) || !File.Exists(cpuInfo)) return null;
        var required = File.ReadAllLines(isaFile).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        if (required.Length == 0) return null;
        var flagsLine = File.ReadLines(cpuInfo).FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal));
        if (flagsLine is null) return null;
        var present = flagsLine[(flagsLine.IndexOf(':') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        var missing = required.Where(f => !present.Contains(f)).ToArray();
        return missing.Length == 0
            ? null
            : $"{Path.Combine(Path.GetDirectoryName(isaFile) ?? "", LibraryFileName)} was built for another CPU (VQVAE_NATIVE_ARCH=1: -march=native there): this one lacks " +
              $"{string.Join(", ", missing)}. Rebuild it here with `dotnet build`, or build the portable default (without VQVAE_NATIVE_ARCH=1)";
    }

    /// <summary>Where the library was loaded from, once loaded.</summary>
    public static string? LoadedFrom => NativeLibraries.LoadedFrom(NativeLibraries.Host);

    [LibraryImport(NativeLibraries.Host)]
    public static partial int vqh_abi_version();

    [LibraryImport(NativeLibraries.Host)]
    public static partial int vqh_kernel_count();

    [LibraryImport(NativeLibraries.Host)]
    public static partial int vqh_kernel_describe(int index, out byte* name, out int syncKind, out int argc, out ushort* argSizes,
                                                  out byte* argKinds);

    [LibraryImport(NativeLibraries.Host)]
    public static partial int vqh_launch(int kernelIndex, uint* grid3, uint* block3, uint dynamicSharedBytes, void** args,
                                         int threadOrder, ulong seed, byte* err, int errCap);

    [LibraryImport(NativeLibraries.Host)]
    public static partial ulong vqh_fiber_resume_count();

    [LibraryImport(NativeLibraries.Host)]
    public static partial void vqh_set_worker_count(int count);

    [LibraryImport(NativeLibraries.Host)]
    public static partial int vqh_worker_count();

    [LibraryImport(NativeLibraries.Host)]
    public static partial void* vqh_alloc(nuint bytes, int isChecked, byte* err, int errCap);

    [LibraryImport(NativeLibraries.Host)]
    public static partial int vqh_free(void* ptr, byte* err, int errCap);

    [LibraryImport(NativeLibraries.Host)]
    public static partial int vqh_check_allocations(byte* err, int errCap);

    [LibraryImport(NativeLibraries.Host)]
    public static partial long vqh_live_allocation_count();

    [LibraryImport(NativeLibraries.Host)]
    public static partial void vqh_set_sgemm(IntPtr cblasSgemm);

    [LibraryImport(NativeLibraries.Host)]
    public static partial int vqh_sgemm_strided_batched(int transA, int transB, int m, int n, int k, float alpha, float* a, int lda, long strideA,
                                                        float* b, int ldb, long strideB, float beta, float* c, int ldc, long strideC, int batch,
                                                        byte* err, int errCap);

    /// <summary>One registry entry, as the library reports it.</summary>
    public sealed record RegisteredKernel(int Index, string Name, int SyncKind, string ArgKinds, ushort[] ArgSizes);

    /// <summary>Every kernel compiled into the library.</summary>
    public static IReadOnlyList<RegisteredKernel> Registry()
    {
        var list = new List<RegisteredKernel>();
        int count = vqh_kernel_count();
        for (int i = 0; i < count; i++)
        {
            if (vqh_kernel_describe(i, out var name, out var sync, out var argc, out var sizes, out var kinds) != 0) continue;
            var sizeArray = new ushort[argc];
            for (int j = 0; j < argc; j++) sizeArray[j] = sizes[j];
            list.Add(new RegisteredKernel(i, Marshal.PtrToStringUTF8((nint)name)!, sync, Marshal.PtrToStringUTF8((nint)kinds) ?? "", sizeArray));
        }
        return list;
    }

    /// <summary>Runs a native call that reports failure through an error buffer; throws with that text.</summary>
    public static void Check(int result, ReadOnlySpan<byte> errorBuffer, string what)
    {
        if (result == 0) return;
        throw new HostDeviceException($"{what}: {ErrorText(errorBuffer)}");
    }

    public static string ErrorText(ReadOnlySpan<byte> buffer)
    {
        int end = buffer.IndexOf((byte)0);
        return System.Text.Encoding.UTF8.GetString(end >= 0 ? buffer[..end] : buffer);
    }
}

/// <summary>A failure reported by the CPU device: a kernel fault the CPU target detected, or damaged memory.</summary>
public sealed class HostDeviceException(string message) : Exception(message);
