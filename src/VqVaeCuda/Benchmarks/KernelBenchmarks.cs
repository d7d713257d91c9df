using System.Numerics;
using System.Runtime.InteropServices;
using VqVaeCuda.Device;
using VqVaeCuda.Device.Cuda;
using VqVaeCuda.Ops;

namespace VqVaeCuda.Benchmarks;

/// <summary>Sizes and repetitions of <see cref="KernelBenchmarks.Run"/>.</summary>
public sealed record KernelBenchmarkOptions
{
    /// <summary>Elements of the elementwise and reduction inputs (default 16M).</summary>
    public int Elements { get; init; } = 16 * 1024 * 1024;

    /// <summary>Side of the square matrix for the transposes (default 4096).</summary>
    public int TransposeSide { get; init; } = 4096;

    /// <summary>m = n = k of the GEMM (default 1024).</summary>
    public int GemmSide { get; init; } = 1024;

    /// <summary>Timed repetitions per variant (median reported).</summary>
    public int Repetitions { get; init; } = 7;

    /// <summary>Untimed runs first.</summary>
    public int Warmup { get; init; } = 2;

    /// <summary>The GPU whose floor is reported beside each time.</summary>
    public ReferenceGpu Reference { get; init; } = ReferenceGpu.H100Sxm;
}

/// <summary>
/// Times the kernels of kernels/elementwise.cu, reduce.cu and transpose.cu, the device GEMM, and the
/// cost of one barrier, on whatever device it is given; variants of the same work side by side.
/// </summary>
/// <remarks>
/// On a CUDA device two settings fixed per device are timed both ways, each on a second device object of the same GPU
/// with the setting flipped: the elementwise and reduction kernels compiled with <c>--fmad=true</c> and <c>--fmad=false</c>
/// (<see cref="CudaDeviceOptions.FusedMultiplyAdd"/>), and the sgemm with TF32 off and on
/// (<see cref="CudaDeviceOptions.AllowTf32"/>). Variants are labelled "[fmad on|off]" and "[TF32 on|off]". The CPU
/// device has neither setting and times each once.
/// </remarks>
public static class KernelBenchmarks
{
    private const int Block = 256;

    /// <summary>Runs every benchmark; <paramref name="progress"/> receives each result as it is measured.</summary>
    public static IReadOnlyList<BenchmarkResult> Run(IDevice device, KernelBenchmarkOptions? options = null,
                                                     Action<BenchmarkResult>? progress = null)
    {
        options ??= new KernelBenchmarkOptions();
        var results = new List<BenchmarkResult>();
        void Add(BenchmarkResult r)
        {
            results.Add(r);
            progress?.Invoke(r);
        }
        if (device is CudaDevice cuda)
        {
            // The flipped device shares the GPU's primary context; its buffers and modules are its own and go with it.
            using var flipped = new CudaDevice(cuda.Ordinal, cuda.Options with { FusedMultiplyAdd = !cuda.Options.FusedMultiplyAdd });
            foreach (var d in new IDevice[] { cuda, flipped })
            {
                string tag = $" [fmad {(d.Capabilities.FusedMultiplyAdd ? "on" : "off")}]";
                void Tagged(BenchmarkResult r) => Add(r.Device == "managed" ? r : r with { Variant = r.Variant + tag });
                Elementwise(d, options, Tagged);
                Reduction(d, options, Tagged);
            }
        }
        else
        {
            Elementwise(device, options, Add);
            Reduction(device, options, Add);
        }
        Transpose(device, options, Add);
        Barrier(device, options, Add);
        Gemm(device, options, Add);
        if (device is CudaDevice gpu)
        {
            using var other = new CudaDevice(gpu.Ordinal, gpu.Options with { AllowTf32 = !gpu.Options.AllowTf32 });
            Gemm(other, options, Add);
        }
        return results;
    }

    private static BenchmarkResult Measure(IDevice device, KernelBenchmarkOptions o, string group, string variant, double flops, double bytes,
                                           Action run, string? note = null) =>
        new(group, variant, device.Name, Timing.MedianMilliseconds(device, run, o.Warmup, o.Repetitions), flops, bytes,
            o.Reference.FloorMilliseconds(flops, bytes), note);

    private static void Elementwise(IDevice device, KernelBenchmarkOptions o, Action<BenchmarkResult> add)
    {
        int n = o.Elements;
        long bytes = (long)n * sizeof(float);
        using var x = device.Allocate(bytes);
        using var y = device.Allocate(bytes);
        using var z = device.Allocate(bytes);
        ElementwiseKernels.Fill(device, x.Pointer, 1.25f, n);
        ElementwiseKernels.Fill(device, y.Pointer, -0.5f, n);
        ElementwiseKernels.Fill(device, z.Pointer, 0f, n);
        string label = $"{n / (1024 * 1024)}M floats";

        // The form the device runs first; on the cpu device the GPU's grid-stride form after it, for the comparison
        // (KernelLaunch.LaunchPointwise: one scalar element per plain call against a vectorised contiguous run).
        var forms = KernelLaunch.FormFor(device) == KernelLaunch.KernelForm.Cpu
            ? new[] { KernelLaunch.KernelForm.Cpu, KernelLaunch.KernelForm.Gpu }
            : [KernelLaunch.KernelForm.Gpu];
        foreach (var form in forms)
        {
            string Name(string kernel) => form == KernelLaunch.KernelForm.Cpu ? $"{kernel} [CPU form: a run per thread]" : kernel;
            add(Measure(device, o, $"fill {label}", Name("fill_f32"), 0, 4.0 * n, () => ElementwiseKernels.Fill(device, form, z.Pointer, 3f, n)));
            add(Measure(device, o, $"scale {label}", Name("scale_f32"), n, 8.0 * n, () => ElementwiseKernels.Scale(device, form, x.Pointer, z.Pointer, 2f, n)));
            add(Measure(device, o, $"axpy {label}", Name("axpy_f32"), 2.0 * n, 12.0 * n, () => ElementwiseKernels.Axpy(device, form, x.Pointer, z.Pointer, 0.5f, n)));
            add(Measure(device, o, $"add {label}", Name("add_f32"), n, 12.0 * n, () => ElementwiseKernels.Add(device, form, x.Pointer, y.Pointer, z.Pointer, n)));
        }

        // The baseline the CPU target is held to: the same add as a plain vectorised C# loop on one
        // thread, over ordinary managed arrays.
        var a = new float[n];
        var b = new float[n];
        var c = new float[n];
        Array.Fill(a, 1.25f);
        Array.Fill(b, -0.5f);
        double ms = Timing.MedianMilliseconds(() => VectorAdd(a, b, c), o.Warmup, o.Repetitions);
        add(new BenchmarkResult($"add {label}", "C# Vector<float> loop (1 thread)", "managed", ms, n, 12.0 * n,
                                o.Reference.FloorMilliseconds(n, 12.0 * n)));
    }

    private static void VectorAdd(float[] a, float[] b, float[] c)
    {
        ReadOnlySpan<Vector<float>> va = MemoryMarshal.Cast<float, Vector<float>>(a.AsSpan());
        ReadOnlySpan<Vector<float>> vb = MemoryMarshal.Cast<float, Vector<float>>(b.AsSpan());
        Span<Vector<float>> vc = MemoryMarshal.Cast<float, Vector<float>>(c.AsSpan());
        for (int i = 0; i < vc.Length; i++) vc[i] = va[i] + vb[i];
        for (int i = vc.Length * Vector<float>.Count; i < c.Length; i++) c[i] = a[i] + b[i];
    }

    private static void Reduction(IDevice device, KernelBenchmarkOptions o, Action<BenchmarkResult> add)
    {
        int n = o.Elements;
        using var x = device.Allocate((long)n * sizeof(float));
        ElementwiseKernels.Fill(device, x.Pointer, 1f, n);
        int grid = Math.Min(1024, (int)Dim3.Cover(n, Block).X);
        using var partials = device.Allocate(grid * sizeof(float));
        using var total = device.Allocate(sizeof(float));
        string group = $"sum {n / (1024 * 1024)}M floats";
        add(Measure(device, o, group, "sum_f32_partials (2 launches)", n, 4.0 * n + 8.0 * grid, () =>
        {
            ReduceKernels.SumPartials(device, x.Pointer, partials.Pointer, n, grid);
            ReduceKernels.SumPartials(device, partials.Pointer, total.Pointer, grid, blocks: 1);
        }));
        add(Measure(device, o, group, "sum_f32_atomic (1 launch)", n, 4.0 * n + 4, () =>
        {
            device.FillBytes(total.Pointer, 0, sizeof(float));
            ReduceKernels.SumAtomic(device, x.Pointer, total.Pointer, n, grid);
        }));
    }

    private static void Transpose(IDevice device, KernelBenchmarkOptions o, Action<BenchmarkResult> add)
    {
        int side = o.TransposeSide;
        long count = (long)side * side;
        using var input = device.Allocate(count * sizeof(float));
        using var output = device.Allocate(count * sizeof(float));
        device.FillBytes(input.Pointer, 0, count * sizeof(float));
        string group = $"transpose {side}x{side}";
        add(Measure(device, o, group, "transpose_f32_naive", 0, 8.0 * count, () => TransposeKernels.Naive(device, input.Pointer, output.Pointer, side, side)));
        add(Measure(device, o, group, "transpose_f32_tiled", 0, 8.0 * count, () => TransposeKernels.Tiled(device, input.Pointer, output.Pointer, side, side)));
    }

    private static void Barrier(IDevice device, KernelBenchmarkOptions o, Action<BenchmarkResult> add)
    {
        // The same kernel with 1 and with 1 + B barriers per thread: the difference over B·blocks is
        // what one block-wide barrier costs, launch overhead and thread start-up cancelled out.
        const int blocks = 64, extra = 200;
        using var output = device.Allocate(blocks * sizeof(float));
        double one = Timing.MedianMilliseconds(device, () => BarrierKernels.BarrierLoop(device, output.Pointer, blocks, Block, 1), o.Warmup, o.Repetitions);
        double many = Timing.MedianMilliseconds(device, () => BarrierKernels.BarrierLoop(device, output.Pointer, blocks, Block, 1 + extra), o.Warmup,
                                                o.Repetitions);
        double perBarrierNs = Math.Max(0, many - one) * 1e6 / ((double)extra * blocks) * device.Capabilities.Multiprocessors;
        add(new BenchmarkResult($"barrier ({Block}-thread block)", $"{1 + extra} barriers x {blocks} blocks", device.Name, many, 0, 0, 0,
            $"{perBarrierNs:F0} ns per block barrier per worker ({perBarrierNs / Block:F1} ns per thread)"));
    }

    private static void Gemm(IDevice device, KernelBenchmarkOptions o, Action<BenchmarkResult> add)
    {
        int s = o.GemmSide;
        double flops = 2.0 * s * s * s, bytes = 4.0 * s * s * sizeof(float);
        // TF32's floor is the tensor-core peak; FP32's the CUDA-core peak. The CPU device has no TF32.
        bool tf32 = device.Capabilities.Tf32Gemm;
        string variant = device.Kind == DeviceKind.Cuda ? $"device GEMM [TF32 {(tf32 ? "on" : "off")}]" : "device GEMM";
        add(new BenchmarkResult($"sgemm {s}^3", variant, device.Name, GemmMilliseconds(device, s, o.Warmup, o.Repetitions), flops, bytes,
                                tf32 ? o.Reference.Tf32FloorMilliseconds(flops, bytes) : o.Reference.FloorMilliseconds(flops, bytes)));
    }

    /// <summary>
    /// Median milliseconds of one <paramref name="side"/>³ sgemm through the device on zero-filled operands: the
    /// kernel benchmark's GEMM row, and the step benchmark's measured CPU floor.
    /// </summary>
    internal static double GemmMilliseconds(IDevice device, int side, int warmup, int repetitions)
    {
        long bytes = (long)side * side * sizeof(float);
        using var a = device.Allocate(bytes);
        using var b = device.Allocate(bytes);
        using var c = device.Allocate(bytes);
        foreach (var buffer in new[] { a, b, c }) device.FillBytes(buffer.Pointer, 0, bytes);
        return Timing.MedianMilliseconds(device, () => device.Gemm(GemmOp.None, GemmOp.None, side, side, side, 1f, a.Pointer, side, b.Pointer, side, 0f,
                                                                   c.Pointer, side), warmup, repetitions);
    }
}
