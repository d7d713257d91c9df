using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Benchmarks;

/// <summary>One op to time: how to build it and the work its forward and backward do.</summary>
/// <param name="Name">e.g. "conv2d 4x4/2 [64,1,28,28]->[64,128,14,14]".</param>
/// <param name="Inputs">Shapes of the differentiable inputs (filled with small random values).</param>
/// <param name="Forward">Builds the output from the inputs.</param>
/// <param name="ForwardFlops">FLOPs of one forward.</param>
/// <param name="ForwardBytes">Fewest bytes one forward must move.</param>
/// <param name="BackwardFlops">FLOPs of one backward (all input gradients).</param>
/// <param name="BackwardBytes">Fewest bytes one backward must move.</param>
public sealed record OpBenchmarkCase(
    string Name,
    Shape[] Inputs,
    Func<OpContext, Tensor[], Tensor> Forward,
    double ForwardFlops,
    double ForwardBytes,
    double BackwardFlops,
    double BackwardBytes);

/// <summary>
/// Times ops forward and backward on a device: forward alone without a tape; backward as the replay of a
/// recorded tape seeded with a gradient for the output (the forward that records it is not timed).
/// Median of repetitions after warm-up, like <see cref="KernelBenchmarks"/>.
/// </summary>
public static class OpBenchmarks
{
    /// <summary>Runs every case; results arrive in pairs (forward, backward).</summary>
    public static IReadOnlyList<BenchmarkResult> Run(IDevice device, IEnumerable<OpBenchmarkCase> cases, int warmup = 2, int repetitions = 5,
                                                     ReferenceGpu? reference = null, Action<BenchmarkResult>? progress = null)
    {
        reference ??= ReferenceGpu.H100Sxm;
        var results = new List<BenchmarkResult>();
        var random = new Random(1234);
        foreach (var c in cases)
        {
            var inputs = c.Inputs.Select(shape =>
            {
                var host = new float[shape.Count];
                for (int i = 0; i < host.Length; i++) host[i] = (float)(random.NextDouble() - 0.5);
                var t = Tensor.FromArray(device, host, shape);
                t.RequiresGrad = true;
                return t;
            }).ToArray();
            try
            {
                using var arena = new Arena(device, ArenaBytes(c, inputs, device));
                double forward = Timing.MedianMilliseconds(device, () =>
                {
                    arena.Reset();
                    c.Forward(new OpContext(arena), inputs);
                }, warmup, repetitions);
                Add(new BenchmarkResult(c.Name, "forward", device.Name, forward, c.ForwardFlops, c.ForwardBytes,
                                        reference.FloorMilliseconds(c.ForwardFlops, c.ForwardBytes)));

                var samples = new double[repetitions];
                for (int i = -warmup; i < repetitions; i++)
                {
                    arena.Reset();
                    var tape = new Tape(arena);
                    var output = c.Forward(new OpContext(arena, tape), inputs);
                    var seed = arena.Allocate(output.Shape);
                    device.FillBytes(seed.Pointer, 0, seed.Bytes);
                    device.Synchronize();
                    using var start = device.Record();
                    tape.Backward(output, seed);
                    using var end = device.Record();
                    double ms = device.ElapsedMilliseconds(start, end);
                    if (i >= 0) samples[i] = ms;
                }
                Array.Sort(samples);
                Add(new BenchmarkResult(c.Name, "backward", device.Name, samples[repetitions / 2], c.BackwardFlops, c.BackwardBytes,
                                        reference.FloorMilliseconds(c.BackwardFlops, c.BackwardBytes)));
            }
            finally
            {
                foreach (var t in inputs) t.Dispose();
            }
        }
        return results;

        void Add(BenchmarkResult r)
        {
            results.Add(r);
            progress?.Invoke(r);
        }
    }

    // Enough for the forward's outputs and temporaries plus the backward's gradients, measured.
    private static long ArenaBytes(OpBenchmarkCase c, Tensor[] inputs, IDevice device) =>
        Arena.Measure(device, probe =>
        {
            var tape = new Tape(probe);
            var output = c.Forward(new OpContext(probe, tape), inputs);
            tape.Backward(output, probe.Zeros(output.Shape));
        });
}
