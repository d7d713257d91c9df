using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Tests.Support;

/// <summary>
/// Checks an op's backward against central finite differences of its forward. The scalar checked is
/// L = Σ output·R for a fixed random R, so every output element contributes; analytic gradients
/// come from seeding the tape with R. Finite differences are taken in float32 (the forward's
/// precision) with step h, on a random sample of input elements, and compared with a tolerance that
/// scales with the gradient's magnitude.
/// </summary>
public static class GradientCheck
{
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

    /// <summary>One differentiable input: its values and shape.</summary>
    public sealed record Input(float[] Values, Shape Shape, string Name);

    /// <param name="device">Where to run.</param>
    /// <param name="inputs">The inputs gradients are checked for.</param>
    /// <param name="forward">Builds the output from the input tensors.</param>
    /// <param name="samplesPerInput">How many elements of each input to difference.</param>
    /// <param name="h">Finite-difference step.</param>
    /// <param name="relativeTolerance">|analytic − numeric| ≤ tol · max(1, |numeric|, |analytic|).</param>
    /// <param name="arenaBytes">
    /// Arena size of each evaluation. Every finite difference builds a fresh arena, and on the checked CPU
    /// device a fresh arena is filled with NaN: small ops with many samples run much faster with a small one.
    /// </param>
    public static void Check(IDevice device, IReadOnlyList<Input> inputs, Func<OpContext, Tensor[], Tensor> forward,
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

        // Numeric gradients.
        var random = TestData.Random;
        for (int k = 0; k < inputs.Count; k++)
        {
            var values = (float[])inputs[k].Values.Clone();
            var indices = Enumerable.Range(0, samplesPerInput).Select(_ => random.Next(values.Length)).Distinct();
            foreach (int j in indices)
            {
                float original = values[j];
                values[j] = original + h;
                double plus = Evaluate(device, arenaBytes, inputs, k, values, forward, r);
                values[j] = original - h;
                double minus = Evaluate(device, arenaBytes, inputs, k, values, forward, r);
                values[j] = original;
                double numeric = (plus - minus) / (2 * h);
                double a = analytic[k][j];
                double scale = Math.Max(1.0, Math.Max(Math.Abs(numeric), Math.Abs(a)));
                Assert.That(Math.Abs(a - numeric), Is.LessThanOrEqualTo(relativeTolerance * scale),
                            $"d/d{inputs[k].Name}[{j}]: analytic {a:G6}, finite difference {numeric:G6}");
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
