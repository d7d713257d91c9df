using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Tests.Support;

/// <summary>Tensors from host arrays in an op context's arena, and runs of one computation in several thread orders.</summary>
public static class TensorFactory
{
    /// <summary>A float32 tensor of <paramref name="shape"/> holding <paramref name="data"/>.</summary>
    public static Tensor Floats(this OpContext ctx, float[] data, params int[] shape)
    {
        var t = ctx.NewTensor(new Shape(shape));
        t.CopyFrom(data);
        return t;
    }

    /// <summary>An int32 tensor of <paramref name="shape"/> holding <paramref name="data"/>.</summary>
    public static Tensor Ints(this OpContext ctx, int[] data, params int[] shape)
    {
        var t = ctx.NewTensor(new Shape(shape), DType.Int32);
        t.CopyFrom(data);
        return t;
    }

    /// <summary>Uniform ints in [lo, hi).</summary>
    public static int[] RandomInts(int n, int lo, int hi)
    {
        var r = TestData.Random;
        return Enumerable.Range(0, n).Select(_ => r.Next(lo, hi)).ToArray();
    }

    /// <summary>
    /// Runs <paramref name="compute"/> (given a fresh recording context on a fresh checked CPU device) in
    /// ascending, descending and shuffled thread order and returns the three results.
    /// </summary>
    public static float[][] InEveryOrder(Func<OpContext, Tape, float[]> compute)
    {
        var results = new List<float[]>();
        foreach (var order in new[] { ThreadOrder.Ascending, ThreadOrder.Descending, ThreadOrder.Shuffled })
        {
            using var device = TestDevices.Cpu(order);
            using var arena = new Arena(device, 4L << 20);
            var tape = new Tape(arena);
            results.Add(compute(new OpContext(arena, tape), tape));
        }
        return results.ToArray();
    }

    /// <summary>Asserts the runs of <see cref="InEveryOrder"/> are equal bit for bit.</summary>
    public static void AssertBitEqual(float[][] runs, string what)
    {
        for (int k = 1; k < runs.Length; k++)
        {
            Assert.That(runs[k].Length, Is.EqualTo(runs[0].Length), what);
            for (int i = 0; i < runs[0].Length; i++)
                if (BitConverter.SingleToInt32Bits(runs[k][i]) != BitConverter.SingleToInt32Bits(runs[0][i]))
                    Assert.Fail($"{what}: element {i} differs between thread orders: {runs[0][i]:R} vs {runs[k][i]:R} (run {k})");
        }
    }

    /// <summary>|actual − expected| ≤ tol · max(1, |expected|) elementwise, with the first failure named.</summary>
    public static void AssertClose(float[] actual, double[] expected, double tolerance, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), what);
        for (int i = 0; i < actual.Length; i++)
            if (!(Math.Abs(actual[i] - expected[i]) <= tolerance * Math.Max(1.0, Math.Abs(expected[i]))))
                Assert.Fail($"{what}[{i}]: {actual[i]:G9}, expected {expected[i]:G9} (tolerance {tolerance:G3} relative)");
    }
}
