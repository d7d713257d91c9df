using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using VqVaeCuda.Device;
using VqVaeCuda.Device.Cuda;
using VqVaeCuda.Kernels;

namespace VqVaeCuda.Diagnostics;

/// <summary>One kernel's resource usage and theoretical occupancy on one architecture.</summary>
/// <param name="Kernel">The kernel's name.</param>
/// <param name="Source">The file that defines it ("reduce.cu").</param>
/// <param name="Architecture">"sm_80" etc.</param>
/// <param name="Registers">Registers per thread.</param>
/// <param name="SharedBytes">Static shared memory per block (dynamic shared memory is a launch choice and not counted).</param>
/// <param name="SpillStoreBytes">Spill stores per thread; every kernel must have 0 (DESIGN.md).</param>
/// <param name="SpillLoadBytes">Spill loads per thread.</param>
/// <param name="StackFrameBytes">Per-thread stack frame.</param>
/// <param name="BlockThreads">Block size the occupancy assumes: the report's override, else the kernel's <c>__launch_bounds__</c>, else 256.</param>
/// <param name="Occupancy">Theoretical occupancy in [0, 1].</param>
/// <param name="ActiveWarpsPerSm">Resident warps per SM at that block size.</param>
/// <param name="LimitedBy">What limits the occupancy: "warps", "registers", "shared memory" or "blocks".</param>
public sealed record KernelReportRow(
    string Kernel,
    string Source,
    string Architecture,
    int Registers,
    int SharedBytes,
    int SpillStoreBytes,
    int SpillLoadBytes,
    int StackFrameBytes,
    int BlockThreads,
    double Occupancy,
    int ActiveWarpsPerSm,
    string LimitedBy)
{
    /// <summary>The full ptxas figures (constant memory included); not part of the JSON.</summary>
    [JsonIgnore]
    public KernelResourceUsage? Usage { get; init; }

    /// <summary>The full occupancy result (every limit); not part of the JSON.</summary>
    [JsonIgnore]
    public OccupancyResult? OccupancyDetail { get; init; }

    /// <summary>True when ptxas reported any spill or stack frame: the kernel touches local memory.</summary>
    [JsonIgnore]
    public bool UsesLocalMemory => SpillStoreBytes > 0 || SpillLoadBytes > 0 || StackFrameBytes > 0;
}

/// <summary>
/// The kernel report of DESIGN.md: every kernel compiled with NVRTC for an architecture, with ptxas's
/// registers, shared memory and spills, and the theoretical occupancy that follows. Needs NVRTC, not a GPU.
/// </summary>
/// <remarks>
/// A report about kernels, so it sits above Device (DESIGN.md): it compiles through Device's NVRTC module
/// builder and reads the ptxas log that builder keeps, and Device knows nothing of it.
/// </remarks>
public static class KernelReport
{
    /// <summary>Block size assumed for a kernel with no <c>__launch_bounds__</c> and no override.</summary>
    public const int DefaultBlockThreads = 256;

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
    };

    /// <summary>
    /// Compiles every source file of <paramref name="sources"/> for <paramref name="architecture"/> (through
    /// <paramref name="cache"/> when given) and returns one row per kernel, ordered by source file then by
    /// position in it.
    /// </summary>
    /// <param name="sources">The kernels, usually <see cref="KernelSourceSet.Embedded"/>.</param>
    /// <param name="architecture">"sm_70", "sm_75", "sm_80", "sm_86", "sm_89" or "sm_90".</param>
    /// <param name="blockThreadsOverride">Block size for every kernel's occupancy; null to use each kernel's own.</param>
    /// <param name="cache">Where compiled modules are cached; null compiles everything afresh.</param>
    /// <exception cref="Device.Cuda.Native.KernelCompilationException">A source does not compile (the log names file and line).</exception>
    /// <exception cref="DllNotFoundException">NVRTC is not installed.</exception>
    public static IReadOnlyList<KernelReportRow> Build(KernelSourceSet sources, string architecture, int? blockThreadsOverride,
                                                       KernelCache? cache)
    {
        ArgumentNullException.ThrowIfNull(sources);
        return Build(new KernelModuleBuilder(sources, cache), architecture, blockThreadsOverride);
    }

    /// <summary>As the public overload, with a caller-owned builder (so a test can read its <see cref="KernelModuleBuilder.CompileCount"/>).</summary>
    internal static IReadOnlyList<KernelReportRow> Build(KernelModuleBuilder builder, string architecture, int? blockThreadsOverride)
    {
        ArgumentNullException.ThrowIfNull(builder);
        KernelModuleBuilder.ValidateArchitecture(architecture);
        var limits = Occupancy.Limits(architecture);  // fail before spending seconds in NVRTC
        if (blockThreadsOverride is { } forced && (forced < 1 || forced > 1024))
            throw new ArgumentOutOfRangeException(nameof(blockThreadsOverride), forced, "block threads must be 1..1024");

        var rows = new List<KernelReportRow>();
        foreach (var sourceName in builder.Sources.Sources.Keys.Order(StringComparer.Ordinal))
        {
            var kernels = builder.Sources.Kernels.Where(k => k.SourceName == sourceName).ToList();
            if (kernels.Count == 0) continue;
            var module = builder.Build(sourceName, architecture);
            var usages = PtxasReport.Parse(module.Log);
            foreach (var kernel in kernels)
            {
                var usage = PtxasReport.Find(usages, kernel.Name)
                            ?? throw new InvalidOperationException(
                                $"ptxas reported no resource usage for kernel '{kernel.Name}' in {sourceName} ({architecture}); " +
                                $"is it compiled out by the preprocessor? NVRTC log:{Environment.NewLine}{module.Log}");
                int blockThreads = blockThreadsOverride ?? kernel.LaunchBoundsThreads ?? DefaultBlockThreads;
                var occupancy = Occupancy.Calculate(limits, usage.Registers, usage.StaticSharedBytes, 0, blockThreads);
                rows.Add(new KernelReportRow(kernel.Name, sourceName, architecture, usage.Registers, usage.StaticSharedBytes,
                                             usage.SpillStoreBytes, usage.SpillLoadBytes, usage.StackFrameBytes, blockThreads,
                                             Math.Round(occupancy.Occupancy, 4), occupancy.ActiveWarpsPerSM, occupancy.LimitedBy)
                {
                    Usage = usage,
                    OccupancyDetail = occupancy,
                });
            }
        }
        return rows;
    }

    /// <summary>
    /// Launch limits per kernel as GPUs of <paramref name="architectures"/> would enforce them, the strictest over all of
    /// them (smallest register-limited block, largest static shared memory), from NVRTC's ptxas report: give it to
    /// <see cref="Device.Host.HostDeviceOptions.KernelLimits"/> so that the CPU device refuses what a GPU would refuse.
    /// Needs NVRTC (no GPU); compiles through <paramref name="cache"/>.
    /// </summary>
    public static IReadOnlyDictionary<string, KernelLaunchLimits> LaunchLimits(KernelSourceSet sources, IReadOnlyList<string> architectures,
                                                                               KernelCache? cache)
    {
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(architectures);
        var builder = new KernelModuleBuilder(sources, cache);
        var rows = architectures.SelectMany(a => Build(builder, a, null)).ToList();
        var origin = $"ptxas {string.Join("/", architectures)}";
        return rows.GroupBy(r => r.Kernel, StringComparer.Ordinal).ToDictionary(
            g => g.Key,
            g =>
            {
                var definition = sources.Find(g.Key);
                int threads = g.Min(r => KernelLaunchLimits.RegisterLimitedThreads(r.Registers, definition.LaunchBoundsThreads));
                int worstRegisters = g.Max(r => r.Registers);
                return new KernelLaunchLimits(threads, g.Max(r => r.SharedBytes), $"{origin}: up to {worstRegisters} registers per thread");
            },
            StringComparer.Ordinal);
    }

    /// <summary>The rows as a JSON array with camelCase property names (kernel, source, architecture, registers, ...).</summary>
    public static string ToJson(IReadOnlyList<KernelReportRow> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        return JsonSerializer.Serialize(rows, JsonOptions);
    }

    /// <summary>The rows as an aligned plain-text table, for terminals and logs.</summary>
    public static string ToTable(IReadOnlyList<KernelReportRow> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        string[] header = ["kernel", "source", "arch", "regs", "smem", "spill st", "spill ld", "stack", "block", "occupancy", "warps/SM", "limited by"];
        var cells = rows.Select(r => new[]
        {
            r.Kernel, r.Source, r.Architecture,
            Num(r.Registers), Num(r.SharedBytes), Num(r.SpillStoreBytes), Num(r.SpillLoadBytes), Num(r.StackFrameBytes),
            Num(r.BlockThreads), r.Occupancy.ToString("P0", CultureInfo.InvariantCulture), Num(r.ActiveWarpsPerSm), r.LimitedBy,
        }).ToList();
        var widths = header.Select((h, i) => Math.Max(h.Length, cells.Count == 0 ? 0 : cells.Max(c => c[i].Length))).ToArray();
        // Names and the reason read left-aligned; numbers right-aligned so digits line up.
        bool LeftAligned(int column) => column <= 2 || column == header.Length - 1;
        string Line(IReadOnlyList<string> values) =>
            string.Join("  ", values.Select((v, i) => LeftAligned(i) ? v.PadRight(widths[i]) : v.PadLeft(widths[i]))).TrimEnd();

        var text = new StringBuilder();
        text.AppendLine(Line(header));
        text.AppendLine(Line(widths.Select(w => new string('-', w)).ToArray()));
        foreach (var row in cells) text.AppendLine(Line(row));
        return text.ToString();
    }

    private static string Num(int value) => value.ToString(CultureInfo.InvariantCulture);
}
