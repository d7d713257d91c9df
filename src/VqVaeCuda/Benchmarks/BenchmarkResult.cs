using System.Text.Json.Serialization;

namespace VqVaeCuda.Benchmarks;

/// <summary>A GPU whose limits give each measurement a floor: the fastest the work could possibly run there.</summary>
/// <param name="Name">e.g. "H100 SXM".</param>
/// <param name="PeakFlops">FP32 FLOP/s (non-tensor).</param>
/// <param name="PeakBytesPerSecond">Memory bandwidth.</param>
/// <param name="Source">Where the figures come from.</param>
/// <param name="Tf32DenseFlops">TF32 tensor-core FLOP/s, dense (the datasheets print the 2:4-sparse figure, twice this); 0: not known.</param>
public sealed record ReferenceGpu(string Name, double PeakFlops, double PeakBytesPerSecond, string Source = "", double Tf32DenseFlops = 0)
{
    // NVIDIA's datasheets, SXM columns. H100 Tensor Core GPU datasheet (H100 SXM): FP32 67 teraFLOPS; TF32 Tensor Core
    // 989 teraFLOPS "with sparsity" (dense: half, 494.5); GPU memory bandwidth 3.35 TB/s (80 GB HBM3). H200 Tensor Core GPU
    // datasheet (H200 SXM): FP32 67 teraFLOPS; TF32 Tensor Core 989 teraFLOPS with sparsity (494.5 dense); 4.8 TB/s
    // (141 GB HBM3e). The same GH100 compute; the H200 differs only in memory.

    /// <summary>DESIGN.md's reference: H100 SXM, 67 TFLOP/s FP32, 494.5 TFLOP/s dense TF32, 3.35 TB/s HBM3.</summary>
    public static ReferenceGpu H100Sxm { get; } = new("H100 SXM", 67e12, 3.35e12,
        "NVIDIA H100 datasheet (SXM): 67 TFLOP/s FP32 (non-tensor), 989 TFLOP/s TF32 tensor with sparsity = 494.5 dense, 3.35 TB/s HBM3", 494.5e12);

    /// <summary>H200 (SXM): the same GH100 compute as the H100 SXM, 4.8 TB/s HBM3e.</summary>
    public static ReferenceGpu H200 { get; } = new("H200", 67e12, 4.8e12,
        "NVIDIA H200 datasheet (SXM): 67 TFLOP/s FP32 (non-tensor), 989 TFLOP/s TF32 tensor with sparsity = 494.5 dense, 4.8 TB/s HBM3e", 494.5e12);

    /// <summary>The larger of FLOPs/peak and bytes/bandwidth, in milliseconds.</summary>
    public double FloorMilliseconds(double flops, double bytes) => 1e3 * Math.Max(flops / PeakFlops, bytes / PeakBytesPerSecond);

    /// <summary>
    /// As <see cref="FloorMilliseconds"/> with every FLOP at the dense TF32 tensor-core rate: a lower floor still, since only
    /// the GEMM-shaped part of the work could run there (and only with TF32 allowed). 0 when the TF32 rate is not known.
    /// </summary>
    public double Tf32FloorMilliseconds(double flops, double bytes) =>
        Tf32DenseFlops > 0 ? 1e3 * Math.Max(flops / Tf32DenseFlops, bytes / PeakBytesPerSecond) : 0;
}

/// <summary>One measured variant.</summary>
/// <param name="Group">What is being compared, e.g. "add 16M floats"; variants of one group are shown side by side.</param>
/// <param name="Variant">The kernel or baseline, e.g. "add_f32" or "C# Vector&lt;float&gt; loop".</param>
/// <param name="Device">"cpu" or "cuda:0".</param>
/// <param name="MedianMilliseconds">Median over the timed repetitions, after warm-up.</param>
/// <param name="Flops">Floating-point operations of one run.</param>
/// <param name="Bytes">Fewest bytes one run must move.</param>
/// <param name="FloorMilliseconds">The reference GPU's floor for the same work.</param>
/// <param name="Note">Extra figure, e.g. the cost of one barrier.</param>
public sealed record BenchmarkResult(
    string Group,
    string Variant,
    string Device,
    double MedianMilliseconds,
    double Flops,
    double Bytes,
    double FloorMilliseconds,
    string? Note = null)
{
    /// <summary>Bytes moved per second, in GB/s.</summary>
    public double GigabytesPerSecond => Bytes / (MedianMilliseconds * 1e-3) / 1e9;

    /// <summary>FLOP/s in GFLOP/s.</summary>
    public double GigaflopsPerSecond => Flops / (MedianMilliseconds * 1e-3) / 1e9;

    /// <summary>
    /// On a fused variant: the unfused variant's time over this one's (above 1: fusion wins). Null elsewhere,
    /// and then left out of JSON (<c>fused_speedup</c> with the CLI's snake-case naming).
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? FusedSpeedup { get; init; }

    /// <summary>
    /// The measurement against each floor (<see cref="Roofline.Floors"/>): H100 SXM and H200, and on the cpu device the
    /// measured sgemm rate too. Null where not computed (<c>floors</c> in JSON, left out then).
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<StepFloor>? Floors { get; init; }
}

/// <summary>
/// Measured time against floors: the datasheet GPUs' (<see cref="ReferenceGpu.H100Sxm"/>, <see cref="ReferenceGpu.H200"/>),
/// FP32 and TF32, and on the cpu device the rate of a large sgemm measured on the machine itself — so that the distance to
/// the limit is visible on a machine without a GPU.
/// </summary>
public static class Roofline
{
    /// <summary>The GPUs every measurement is compared with.</summary>
    public static IReadOnlyList<ReferenceGpu> Datasheet { get; } = [ReferenceGpu.H100Sxm, ReferenceGpu.H200];

    /// <summary>
    /// The floors of work of <paramref name="flops"/> and <paramref name="bytes"/> measured at <paramref name="measuredMs"/>:
    /// first the CPU's (FLOPs at <paramref name="cpuGemmGflops"/>, when given), then each datasheet GPU's.
    /// </summary>
    public static IReadOnlyList<StepFloor> Floors(double flops, double bytes, double measuredMs, double? cpuGemmGflops = null, string? cpuSource = null)
    {
        var floors = new List<StepFloor>();
        if (cpuGemmGflops is double gflops)
            floors.Add(new StepFloor("cpu (measured sgemm 1024³)", gflops, 0, flops / (gflops * 1e9) * 1e3, cpuSource ?? "sgemm 1024x1024x1024 timed now")
                { MeasuredMs = measuredMs });
        foreach (var r in Datasheet)
            floors.Add(new StepFloor(r.Name, r.PeakFlops / 1e9, r.PeakBytesPerSecond / 1e9, r.FloorMilliseconds(flops, bytes), r.Source)
            {
                Tf32Gflops = r.Tf32DenseFlops / 1e9,
                Tf32FloorMs = r.Tf32FloorMilliseconds(flops, bytes),
                MeasuredMs = measuredMs,
            });
        return floors;
    }

    /// <summary><paramref name="results"/> with <see cref="BenchmarkResult.Floors"/> filled in.</summary>
    public static IReadOnlyList<BenchmarkResult> Annotate(IEnumerable<BenchmarkResult> results, double? cpuGemmGflops, string? cpuSource = null) =>
        results.Select(r => r with { Floors = Floors(r.Flops, r.Bytes, r.MedianMilliseconds, cpuGemmGflops, cpuSource) }).ToList();
}
