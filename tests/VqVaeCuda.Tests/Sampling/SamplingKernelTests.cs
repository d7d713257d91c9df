using VqVaeCuda.Device;
using VqVaeCuda.Device.Host;
using VqVaeCuda.Sampling;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Sampling;

/// <summary>kernels/sampling.cu against plain C# references, in two thread orders.</summary>
public class SamplingKernelTests(DeviceKind kind) : DeviceSpecification(kind)
{
    /// <summary>The draw as sampling.cu states it, in the same float operations.</summary>
    private static int ReferenceDraw(float[] logits, int classes, int inner, int n, int p, float u, float temperature)
    {
        float m = float.NegativeInfinity;
        for (int k = 0; k < classes; k++) m = MathF.Max(m, logits[(n * classes + k) * inner + p]);
        float sum = 0f;
        for (int k = 0; k < classes; k++) sum += MathF.Exp((logits[(n * classes + k) * inner + p] - m) / temperature);
        if (!(sum >= 1f && sum <= float.MaxValue)) return -1;
        float target = u * sum, running = 0f;
        int lastPositive = -1;
        for (int k = 0; k < classes; k++)
        {
            float e = MathF.Exp((logits[(n * classes + k) * inner + p] - m) / temperature);
            if (e > 0f) lastPositive = k;
            running += e;
            if (running > target) return k;
        }
        return lastPositive;
    }

    private (int[] Codes, int[] Chosen) Draw(ThreadOrder order, float[] logits, int samples, int classes, int inner, int position, float[] uniforms,
                                                    int uniformStride, int uniformIndex, float temperature, int codeInner, int codeIndex)
    {
        using var device = Open(order);
        using var l = device.Upload(logits);
        using var u = device.Upload(uniforms);
        using var codes = device.Upload(Enumerable.Repeat(77, samples * codeInner).ToArray());
        using var chosen = device.Upload(new int[samples]);
        SamplingKernels.SamplePosition(device, l.Pointer, classes, inner, position, u.Pointer, uniformStride, uniformIndex, temperature,
                                       codes.Pointer, codeInner, codeIndex, chosen.Pointer, samples);
        return (device.DownloadInts(codes), device.DownloadInts(chosen));
    }

    [TestCase(1f)]
    [TestCase(0.5f)]
    [TestCase(3f)]
    public void Sample_position_draws_the_inverse_cdf_code_of_each_sample(float temperature)
    {
        const int samples = 300, classes = 13, inner = 6, position = 4, codeInner = 5, codeIndex = 2, stride = 3, index = 1;
        var logits = TestData.Floats(samples * classes * inner, -3f, 3f);
        var uniforms = TestData.Floats(samples * stride, 0f, 0.999f);
        var ascending = Draw(ThreadOrder.Ascending, logits, samples, classes, inner, position, uniforms, stride, index, temperature, codeInner, codeIndex);
        var descending = Draw(ThreadOrder.Descending, logits, samples, classes, inner, position, uniforms, stride, index, temperature, codeInner, codeIndex);

        for (int n = 0; n < samples; n++)
        {
            int expected = ReferenceDraw(logits, classes, inner, n, position, uniforms[n * stride + index], temperature);
            Assert.That(ascending.Codes[n * codeInner + codeIndex], Is.EqualTo(expected), $"sample {n}");
            Assert.That(ascending.Chosen[n], Is.EqualTo(expected), $"chosen of sample {n}");
            for (int i = 0; i < codeInner; i++)
                if (i != codeIndex) Assert.That(ascending.Codes[n * codeInner + i], Is.EqualTo(77), "only the one position is written");
        }
        Assert.That(descending.Codes, Is.EqualTo(ascending.Codes));
        Assert.That(ascending.Chosen.Distinct().Count(), Is.GreaterThan(classes / 2), "the draws spread over the codes");
    }

    [Test]
    public void The_draws_follow_the_softmax_frequencies()
    {
        // One logit vector for every sample, fresh uniforms: the code frequencies approach softmax(l / T).
        const int samples = 20000, classes = 4;
        float[] l = [0.5f, -1f, 1.5f, 0f];
        var logits = Enumerable.Range(0, samples).SelectMany(_ => l).ToArray();
        var uniforms = TestData.Floats(samples, 0f, 0.9999f);
        var codes = Draw(ThreadOrder.Ascending, logits, samples, classes, 1, 0, uniforms, 1, 0, 2f, 1, 0).Codes;
        var z = l.Select(v => Math.Exp(v / 2.0)).ToArray();
        for (int k = 0; k < classes; k++)
            Assert.That(codes.Count(c => c == k) / (double)samples, Is.EqualTo(z[k] / z.Sum()).Within(0.015), $"frequency of code {k}");
    }

    [Test]
    public void A_tiny_temperature_draws_the_argmax()
    {
        const int samples = 64, classes = 29;
        var logits = TestData.Floats(samples * classes, -2f, 2f);
        var uniforms = TestData.Floats(samples, 0f, 0.9999f);
        var codes = Draw(ThreadOrder.Ascending, logits, samples, classes, 1, 0, uniforms, 1, 0, 1e-20f, 1, 0).Codes;
        for (int n = 0; n < samples; n++)
        {
            var row = logits.Skip(n * classes).Take(classes).ToArray();
            Assert.That(codes[n], Is.EqualTo(Array.IndexOf(row, row.Max())), $"sample {n}");
        }
    }

    [Test]
    public void Logits_that_are_not_finite_give_code_minus_one()
    {
        float[] logits = [0f, float.NaN, 1f, /* sample 1 */ 0f, float.PositiveInfinity, 1f, /* sample 2 */ 0f, 2f, 1f];
        var codes = Draw(ThreadOrder.Ascending, logits, 3, 3, 1, 0, [0.5f, 0.5f, 0.999f], 1, 0, 1f, 1, 0).Codes;
        Assert.That(codes[0], Is.EqualTo(-1));
        Assert.That(codes[1], Is.EqualTo(-1));
        Assert.That(codes[2], Is.EqualTo(ReferenceDraw(logits, 3, 1, 2, 0, 0.999f, 1f)).And.InRange(0, 2));
    }

    [TestCase(-2, -1, 3, 5)]
    [TestCase(4, 6, 3, 4)]
    [TestCase(0, 0, 1, 1)]
    public void Copy_window_copies_with_zeros_outside_the_source(int srcRow, int srcCol, int h, int w)
    {
        const int planes = 6, srcH = 5, srcW = 7, dstH = 6, dstW = 8, dstRow = 1, dstCol = 2;
        var src = TestData.Floats(planes * srcH * srcW);
        var initial = Enumerable.Repeat(9f, planes * dstH * dstW).ToArray();
        var expected = (float[])initial.Clone();
        for (int c = 0; c < planes; c++)
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++)
                {
                    int sr = srcRow + i, sc = srcCol + j;
                    bool inside = sr >= 0 && sr < srcH && sc >= 0 && sc < srcW;
                    expected[(c * dstH + dstRow + i) * dstW + dstCol + j] = inside ? src[(c * srcH + sr) * srcW + sc] : 0f;
                }
        foreach (var order in Orders(ThreadOrder.Ascending, ThreadOrder.Descending))
        {
            using var device = Open(order);
            using var s = device.Upload(src);
            using var d = device.Upload(initial);
            SamplingKernels.CopyWindow(device, s.Pointer, srcH, srcW, srcRow, srcCol, d.Pointer, dstH, dstW, dstRow, dstCol, planes, h, w);
            Assert.That(device.DownloadFloats(d), Is.EqualTo(expected), $"{order}");
        }
    }
}
