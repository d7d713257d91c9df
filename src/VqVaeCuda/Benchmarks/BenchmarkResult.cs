using System.Text.Json.Serialization;

namespace VqVaeCuda.Benchmarks;

/// <summary>A GPU whose limits give each measurement a floor: the fastest the work could possibly run there.</summary>
/// <param name="Name">e.g. "H100 SXM".</param>
/// <param name="PeakFlops">FP32 FLOP/s (non-tensor).</param>
/// <param name="PeakBytesPerSecond">Memory bandwidth.</param>
/// <param name="Source">Where the figures come from.</param>
/// <param name="PeakTf32Flops">Dense TF32 tensor-core FLOP/s: the floor of a GEMM allowed TF32 (0 when the GPU has none).</param>
public sealed record ReferenceGpu(string Name, double PeakFlops, double PeakBytesPerSecond, string Source = "", double PeakTf32Flops = 0)
{
    /// <summary>DESIGN.md's reference: H100 SXM, ~67 TFLOP/s FP32, ~495 TFLOP/s dense TF32, ~3.35 TB/s HBM3.</summary>
    public static ReferenceGpu H100Sxm { get; } = new("H100 SXM", 67e12, 3.35e12,
        "NVIDIA H100 datasheet: 67 TFLOP/s FP32 (non-tensor), 495 TFLOP/s dense TF32, 3.35 TB/s HBM3", 495e12);

    /// <summary>H200 (SXM): the same GH100 compute as the H100 SXM, 4.8 TB/s HBM3e.</summary>
    public static ReferenceGpu H200 { get; } = new("H200", 67e12, 4.8e12,
        "NVIDIA H200 datasheet: 67 TFLOP/s FP32 (non-tensor), 495 TFLOP/s dense TF32, 4.8 TB/s HBM3e", 495e12);

    /// <summary>The larger of FLOPs/peak and bytes/bandwidth, in milliseconds.</summary>
    public double FloorMilliseconds(double flops, double bytes) => 1e3 * Math.Max(flops / PeakFlops, bytes / PeakBytesPerSecond);

    /// <summary>As <see cref="FloorMilliseconds"/> with the TF32 tensor-core peak (the FP32 one when none is known).</summary>
    public double Tf32FloorMilliseconds(double flops, double bytes) =>
        1e3 * Math.Max(flops / (PeakTf32Flops > 0 ? PeakTf32Flops : PeakFlops), bytes / PeakBytesPerSecond);
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
}
