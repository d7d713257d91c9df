using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Tests.Support;

/// <summary>A finite-difference comparison that did not hold: the message names the tensor, the element and both values.</summary>
public sealed class GradientMismatchException(string message) : Exception(message);

/// <summary>
/// Checks an op's backward against central finite differences of its forward. The scalar checked is
/// L = Σ output·R for a fixed random R, so every output element contributes; analytic gradients
/// come from seeding the tape with R. Finite differences are taken in float32 (the forward's
/// precision) with step h.
/// </summary>
/// <remarks>
/// <para>The check is built so that it cannot pass vacuously. A tolerance of the form tol·max(1, |a|, |n|)
/// lets any gradient smaller than the tolerance pass whatever it is (zero included); here instead</para>
/// <list type="bullet">
/// <item>each input's gradient must be non-zero somewhere, and samples are drawn only among its elements whose
/// analytic gradient is clearly non-zero: |a| ≥ <see cref="ClearlyNonZero"/> × the tensor's largest |a|.
/// Fewer such elements than the smaller of the samples asked for and a quarter of the tensor fail loudly: a
/// backward that drops most of a gradient must not hide behind the few elements it still gets right;</item>
/// <item>each sample must satisfy |a − n| ≤ tol·max(|a|, |n|) + floor, relative to the element's own size. The
/// absolute floor is <see cref="NoiseFloor"/> × the tensor's largest |a|: float32 finite differences carry an
/// absolute error (rounding of L, about ε·Σ|output·R|, divided by 2h) that does not shrink with the element's
/// gradient, and it is set by the tensor's scale, not the element's. At 1e-3 it is at most 1/50 of any sampled
/// gradient, so it cannot make a sample pass on its own: a backward scaled by 0.9 or zeroed fails (see
/// GradientCheckTests).</item>
/// </list>
/// </remarks>
public static class GradientCheck
{
    /// <summary>Elements whose |analytic gradient| is at least this fraction of the tensor's largest are sampled.</summary>
    public const double ClearlyNonZero = 0.05;

    /// <summary>Absolute tolerance per tensor, as a fraction of its largest |analytic gradient| (see the remarks).</summary>
    public const double NoiseFloor = 1e-3;

    /// <summary>
    /// (L(θ + h·e_j) − L(θ − h·e_j)) / 2h for element <paramref name="j"/> of a model parameter, whose current values
    /// are <paramref name="values"/> (restored afterwards, in the array and on the device).
    /// </summary>
    public static double CentralDifference(Parameter parameter, float[] values, int j, float h, Func<double> loss)
    {
        float original = values[j];
        values[j] = original + h;
        parameter.Value.CopyFrom(values);
        double plus = loss();
        values[j] = original - h;
        parameter.Value.CopyFrom(values);
        double minus = loss();
        values[j] = original;
        parameter.Value.CopyFrom(values);
        return (plus - minus) / (2 * h);
    }

    /// <summary>
    /// The elements of <paramref name="analytic"/> a check may sample: those with |a| ≥ <see cref="ClearlyNonZero"/>
    /// × max |a|. Throws <see cref="GradientMismatchException"/> when the gradient is zero (or not finite) or when fewer
    /// than <paramref name="required"/> elements qualify.
    /// </summary>
    public static int[] ClearlyNonZeroElements(float[] analytic, string name, int required)
    {
        if (analytic.Any(v => !float.IsFinite(v))) throw new GradientMismatchException($"d/d{name}: the analytic gradient holds NaN or infinity");
        double largest = analytic.Length == 0 ? 0 : analytic.Max(v => Math.Abs((double)v));
        if (largest == 0) throw new GradientMismatchException($"d/d{name}: the analytic gradient is zero everywhere ({analytic.Length} elements)");
        var candidates = Enumerable.Range(0, analytic.Length).Where(j => Math.Abs(analytic[j]) >= ClearlyNonZero * largest).ToArray();
        if (candidates.Length < required)
            throw new GradientMismatchException(
                $"d/d{name}: only {candidates.Length} of {analytic.Length} elements have a gradient of at least {ClearlyNonZero} × the largest ({largest:G3}); {required} wanted");
        return candidates;
    }

    /// <summary>|a − n| ≤ tol·max(|a|, |n|) + <see cref="NoiseFloor"/>·<paramref name="largest"/>, else a mismatch naming the element.</summary>
    public static void Compare(double analytic, double numeric, double relativeTolerance, double largest, string what)
    {
        double allowed = relativeTolerance * Math.Max(Math.Abs(analytic), Math.Abs(numeric)) + NoiseFloor * largest;
        if (!(Math.Abs(analytic - numeric) <= allowed))
            throw new GradientMismatchException($"{what}: analytic {analytic:G6}, finite difference {numeric:G6} (|difference| {Math.Abs(analytic - numeric):G3} > allowed {allowed:G3})");
    }

    /// <summary>What <see cref="CheckParameter"/> did: elements compared, and elements skipped at a kink.</summary>
    public sealed record ParameterCheck(string Name, int Candidates, int Compared, int SkippedAtKinks, double LargestRelativeError);

    /// <summary>
    /// Records which side of zero every ReLU input lies on during a forward (an <see cref="IOpObserver"/> of the ops'
    /// contexts). Two evaluations with the same pattern lie on one linear piece of every ReLU, where a finite difference
    /// measures the derivative; a different pattern means a ReLU switched in between: a kink, where it measures nothing.
    /// </summary>
    public sealed class ReluPattern : IOpObserver
    {
        private readonly List<bool> _signs = [];

        /// <summary>Forgets the pattern of the previous forward.</summary>
        public void Clear() => _signs.Clear();

        /// <summary>The pattern of the forward since the last <see cref="Clear"/>.</summary>
        public bool[] Snapshot() => [.. _signs];

        public void ForwardDone(string op, IReadOnlyList<Tensor> inputs, IReadOnlyList<Tensor> outputs)
        {
            if (op == "relu") _signs.AddRange(inputs[0].ToArray().Select(v => v > 0));
            // A ReLU fused into a convolution: its output is positive exactly where the pre-activation was.
            else if (op.EndsWith("+relu", StringComparison.Ordinal)) _signs.AddRange(outputs[0].ToArray().Select(v => v > 0));
        }

        public void BackwardDone(string op) { }
    }

    /// <summary>
    /// Compares <paramref name="analytic"/> (a model parameter's gradient) with central differences of the loss at up to
    /// <paramref name="samples"/> of its clearly non-zero elements (see the class remarks), with step <paramref name="h"/>.
    /// <paramref name="evaluate"/> returns the loss and the <see cref="ReluPattern"/> of its forward: where θ − h, θ and
    /// θ + h lie on different pieces of some ReLU, steps h/4 and h/16 are tried, and an element where all three cross
    /// a kink is skipped and another drawn; at least
    /// <paramref name="required"/> elements must be compared. Elements whose |gradient| is below <paramref name="smallest"/>
    /// are not sampled either: the caller states there what its loss's float32 rounding over 2h cannot resolve.
    /// </summary>
    /// <exception cref="GradientMismatchException">A compared element disagrees, the gradient is zero, or too few elements could be compared.</exception>
    public static ParameterCheck CheckParameter(Parameter p, float[] analytic, Func<(double Loss, bool[] Pattern)> evaluate, float h,
                                                double relativeTolerance, int samples, int required, Random random, double smallest = 0)
    {
        var values = p.Value.ToArray();
        required = Math.Min(required, analytic.Length);
        var candidates = ClearlyNonZeroElements(analytic, p.Name, required).Where(j => Math.Abs(analytic[j]) >= smallest).ToArray();
        if (candidates.Length < required)
            throw new GradientMismatchException($"d/d{p.Name}: only {candidates.Length} elements have a gradient of at least {smallest:G3}, which the check can resolve; {required} wanted");
        double largest = analytic.Max(v => Math.Abs((double)v));
        var centre = evaluate().Pattern;
        int compared = 0, skipped = 0;
        double worst = 0;
        foreach (int j in candidates.OrderBy(_ => random.Next()))
        {
            float original = values[j];
            (double Loss, bool[] Pattern) At(float value)
            {
                values[j] = value;
                p.Value.CopyFrom(values);
                var result = evaluate();
                values[j] = original;
                p.Value.CopyFrom(values);
                return result;
            }
            // Where a ReLU switches within ±h, shorter steps (h/4, h/16) may stay on one piece; each is used only where the
            // element's gradient stands as far above the rounding noise (which grows as 1/step) as `smallest` demands at h.
            double? numeric = null;
            for (float step = h; step >= h / 16 && Math.Abs(analytic[j]) >= smallest * h / step; step /= 4)
            {
                var plus = At(original + step);
                var minus = At(original - step);
                if (plus.Pattern.AsSpan().SequenceEqual(centre) && minus.Pattern.AsSpan().SequenceEqual(centre))
                {
                    numeric = (plus.Loss - minus.Loss) / (2 * step);
                    break;
                }
            }
            if (numeric is null)
            {
                skipped++;
                continue;
            }
            Compare(analytic[j], numeric.Value, relativeTolerance, largest, $"d/d{p.Name}[{j}]");
            worst = Math.Max(worst, Math.Abs(analytic[j] - numeric.Value) / Math.Abs(analytic[j]));
            if (++compared == samples) break;
        }
        if (compared < required)
            throw new GradientMismatchException($"d/d{p.Name}: only {compared} elements compared ({skipped} at ReLU kinks, {candidates.Length} candidates); {required} wanted");
        return new ParameterCheck(p.Name, candidates.Length, compared, skipped, worst);
    }

    /// <summary>One differentiable input: its values and shape.</summary>
    public sealed record Input(float[] Values, Shape Shape, string Name);

    /// <summary>As <see cref="Run"/>, failing the test with the mismatch's message.</summary>
    public static void Check(IDevice device, IReadOnlyList<Input> inputs, Func<OpContext, Tensor[], Tensor> forward,
                             int samplesPerInput = 12, float h = 1e-2f, double relativeTolerance = 2e-2, long arenaBytes = 32L << 20)
    {
        try
        {
            Run(device, inputs, forward, samplesPerInput, h, relativeTolerance, arenaBytes);
        }
        catch (GradientMismatchException e)
        {
            Assert.Fail(e.Message);
        }
    }

    /// <param name="device">Where to run.</param>
    /// <param name="inputs">The inputs gradients are checked for.</param>
    /// <param name="forward">Builds the output from the input tensors.</param>
    /// <param name="samplesPerInput">How many elements of each input to difference (fewer if the input is smaller).</param>
    /// <param name="h">Finite-difference step.</param>
    /// <param name="relativeTolerance">|analytic − numeric| ≤ tol · max(|numeric|, |analytic|) + the noise floor.</param>
    /// <param name="arenaBytes">
    /// Arena size of each evaluation. Every finite difference builds a fresh arena, and on the checked CPU
    /// device a fresh arena is filled with NaN: small ops with many samples run much faster with a small one.
    /// </param>
    /// <exception cref="GradientMismatchException">A sample disagrees, or an input's gradient is zero or too sparse to sample.</exception>
    public static void Run(IDevice device, IReadOnlyList<Input> inputs, Func<OpContext, Tensor[], Tensor> forward,
                           int samplesPerInput = 12, float h = 1e-2f, double relativeTolerance = 2e-2, long arenaBytes = 32L << 20)
    {
        using var arena = new Arena(device, arenaBytes);

        // Analytic gradients.
        var tape = new Tape(arena);
        var ctx = new OpContext(arena, tape);
        var leaves = inputs.Select(i => Leaf(ctx, i)).ToArray();
        var output = forward(ctx, leaves);
        var r = TestData.Floats((int)output.Count);
        var seed = arena.Allocate(output.Shape);
        seed.CopyFrom(r);
        tape.Backward(output, seed);
        var analytic = leaves.Select(l => tape.TryGradOf(l)?.ToArray() ?? new float[l.Count]).ToArray();

        // Numeric gradients, at clearly non-zero elements only.
        var random = TestData.Random;
        for (int k = 0; k < inputs.Count; k++)
        {
            var values = (float[])inputs[k].Values.Clone();
            int samples = Math.Min(samplesPerInput, values.Length);
            int required = Math.Min(samples, (values.Length + 3) / 4);
            var candidates = ClearlyNonZeroElements(analytic[k], inputs[k].Name, required);
            double largest = analytic[k].Max(v => Math.Abs((double)v));
            foreach (int j in candidates.OrderBy(_ => random.Next()).Take(samples))
            {
                float original = values[j];
                values[j] = original + h;
                double plus = Evaluate(device, arenaBytes, inputs, k, values, forward, r);
                values[j] = original - h;
                double minus = Evaluate(device, arenaBytes, inputs, k, values, forward, r);
                values[j] = original;
                Compare(analytic[k][j], (plus - minus) / (2 * h), relativeTolerance, largest, $"d/d{inputs[k].Name}[{j}]");
            }
        }
    }

    private static Tensor Leaf(OpContext ctx, Input input)
    {
        var t = ctx.NewTensor(input.Shape);
        t.CopyFrom(input.Values);
        t.RequiresGrad = true;
        return t;
    }

    private static double Evaluate(IDevice device, long arenaBytes, IReadOnlyList<Input> inputs, int replaced, float[] values,
                                   Func<OpContext, Tensor[], Tensor> forward, float[] r)
    {
        using var arena = new Arena(device, arenaBytes);
        var ctx = new OpContext(arena);
        var leaves = inputs.Select((input, k) =>
        {
            var t = ctx.NewTensor(input.Shape);
            t.CopyFrom(k == replaced ? values : input.Values);
            return t;
        }).ToArray();
        var output = forward(ctx, leaves).ToArray();
        double sum = 0;
        for (int i = 0; i < output.Length; i++) sum += (double)output[i] * r[i];
        return sum;
    }
}
