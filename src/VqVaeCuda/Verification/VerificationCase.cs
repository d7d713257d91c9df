using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Verification;

/// <summary>What one run of a check produced on one device, read back to the host.</summary>
internal sealed class CaseOutput
{
    /// <summary>Forward results (outputs, updated state).</summary>
    public List<(string Name, float[] Values)> Forward { get; } = [];

    /// <summary>Gradients.</summary>
    public List<(string Name, float[] Values)> Backward { get; } = [];

    /// <summary>Integer results (codes, counters): compared exactly.</summary>
    public List<(string Name, int[] Values)> Integers { get; } = [];

    /// <summary>Anything the run wants said beside its errors (e.g. how a step was executed).</summary>
    public string? Notes { get; set; }
}

/// <summary>How two runs of a check compare: the errors and anything worth saying.</summary>
internal readonly record struct CaseComparison(double Forward, double? Backward, string? Note = null);

/// <summary>
/// One check: a computation run once on each device from the same seeded inputs (the run builds them itself, so both
/// devices get the same values), then compared. <paramref name="Compare"/> replaces the default comparison (every
/// float output by <see cref="DeviceVerifier.MaxRelativeError"/>, every integer exactly) where a check knows better:
/// the nearest-code searches accept near ties, the training run compares losses step by step.
/// </summary>
internal sealed record VerificationCase(
    string Group,
    string Op,
    string Shape,
    Tolerance Tolerance,
    Func<IDevice, CaseOutput> Run,
    Func<CaseOutput, CaseOutput, CaseComparison>? Compare = null)
{
    /// <summary>What the reference runs, where it differs from <see cref="Run"/> (the nearest-code searches: always the unfused one).</summary>
    public Func<IDevice, CaseOutput>? RunReference { get; init; }
}

/// <summary>Device tensors of one check, freed together.</summary>
internal sealed class DeviceScratch(IDevice device) : IDisposable
{
    private readonly List<Tensor> _tensors = [];

    public IDevice Device => device;

    public Tensor Floats(float[] values) => Keep(Tensor.FromArray(device, values, new Shape(values.Length)));

    public Tensor Ints(int[] values) => Keep(Tensor.FromArray(device, values, new Shape(values.Length)));

    public Tensor Zeros(int count, DType dtype = DType.Float32)
    {
        var t = Keep(Tensor.Allocate(device, new Shape(count), dtype));
        device.FillBytes(t.Pointer, 0, t.Bytes);
        return t;
    }

    private Tensor Keep(Tensor t)
    {
        _tensors.Add(t);
        return t;
    }

    public void Dispose()
    {
        foreach (var t in _tensors) t.Dispose();
    }
}

/// <summary>Seeded inputs and arenas for the checks.</summary>
internal static class CaseInputs
{
    /// <summary><paramref name="count"/> values uniform in [lo, hi).</summary>
    public static float[] Uniform(Random random, long count, float lo = -1f, float hi = 1f)
    {
        var values = new float[count];
        for (long i = 0; i < count; i++) values[i] = lo + (hi - lo) * (float)random.NextDouble();
        return values;
    }

    /// <summary><paramref name="count"/> integers in [0, bound).</summary>
    public static int[] Integers(Random random, long count, int bound)
    {
        var values = new int[count];
        for (long i = 0; i < count; i++) values[i] = random.Next(bound);
        return values;
    }

    /// <summary>
    /// Runs <paramref name="body"/> with an arena big enough for it: 32 MiB first, doubled while it runs out (the checks
    /// are small; measuring first would run each twice).
    /// </summary>
    public static T WithArena<T>(IDevice device, Func<Arena, T> body)
    {
        for (long bytes = 32L << 20; ; bytes *= 2)
        {
            using var arena = new Arena(device, bytes);
            try
            {
                return body(arena);
            }
            catch (ArenaExhaustedException) when (bytes < (8L << 30))
            {
            }
        }
    }

    /// <summary>
    /// An op forward and backward: float inputs from <paramref name="seed"/> (each needing a gradient), the output read
    /// back, a seeded random output gradient (not ones: a gradient that is the same everywhere hides a transposed
    /// index), the backward replayed, every input's gradient read back.
    /// </summary>
    public static CaseOutput RunOp(IDevice device, Shape[] inputs, Func<OpContext, Tensor[], Tensor> forward, int seed) =>
        WithArena(device, arena =>
        {
            var random = new Random(seed);
            var tape = new Tape(arena);
            var ctx = new OpContext(arena, tape);
            var x = inputs.Select(shape =>
            {
                var t = ctx.NewTensor(shape);
                t.CopyFrom(Uniform(random, shape.Count));
                t.RequiresGrad = true;
                return t;
            }).ToArray();
            var output = forward(ctx, x);
            var result = new CaseOutput();
            result.Forward.Add(("output", output.ToArray()));
            var seedGradient = ctx.NewTensor(output.Shape);
            seedGradient.CopyFrom(Uniform(random, output.Count));
            tape.Backward(output, seedGradient);
            for (int i = 0; i < x.Length; i++)
                if (tape.TryGradOf(x[i]) is { } g) result.Backward.Add(($"d input {i}", g.ToArray()));
            return result;
        });
}
