using VqVaeCuda.Device;
using VqVaeCuda.Ops;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Ops;

/// <summary>
/// The two forms of each pointwise kernel (elementwise.cu, activations.cu, embedding.cu's gather) — grid-stride (a GPU's) and one contiguous run
/// per thread (the cpu device's, which the op tests run there) — against C# references, bit for bit, at lengths around
/// the runs' edges (multiples of 16, one run, several, a ragged last), on each device (on the cpu in three thread orders).
/// </summary>
public class PointwiseKernelTests(DeviceKind kind) : DeviceSpecification(kind)
{
    private static readonly KernelLaunch.KernelForm[] Forms = KernelForms.Both;

    private static IEnumerable<int> Lengths => [0, 1, 15, 16, 17, 2047, 2048, 2049, 16 * 2048 + 5, 100_003];

    private void ForEveryFormAndLength(Action<IDevice, KernelLaunch.KernelForm, int> check)
    {
        foreach (var order in Orders(ThreadOrder.Ascending, ThreadOrder.Descending, ThreadOrder.Shuffled))
            foreach (var form in Forms)
                foreach (var n in Lengths)
                {
                    using var device = Open(order);
                    check(device, form, n);
                }
    }

    private static float[] Signed(int n, int salt) => TestData.Floats(n).Select((v, i) => i % 7 == salt % 7 ? 0f : v * (i % 3 == 0 ? -1 : 1)).ToArray();

    private static void AssertBits(float[] actual, float[] expected, string what) =>
        Assert.That(actual.Select(BitConverter.SingleToUInt32Bits), Is.EqualTo(expected.Select(BitConverter.SingleToUInt32Bits)), what);

    [Test]
    public void Fill_scale_axpy_and_add_equal_the_reference_in_both_forms()
    {
        ForEveryFormAndLength((device, form, n) =>
        {
            var a = Signed(n, 1);
            var b = Signed(n, 2);
            string at = $"{form}, n = {n}";
            using var output = device.Upload(new float[n]);
            using var ab = device.Upload(a);
            using var bb = device.Upload(b);

            ElementwiseKernels.Fill(device, form, output.Pointer, 1.25f, n);
            AssertBits(device.DownloadFloats(output), Enumerable.Repeat(1.25f, n).ToArray(), $"fill, {at}");
            ElementwiseKernels.Scale(device, form, ab.Pointer, output.Pointer, -0.3f, n);
            AssertBits(device.DownloadFloats(output), a.Select(v => -0.3f * v).ToArray(), $"scale, {at}");
            ElementwiseKernels.Add(device, form, ab.Pointer, bb.Pointer, output.Pointer, n);
            AssertBits(device.DownloadFloats(output), a.Zip(b, (x, y) => x + y).ToArray(), $"add, {at}");
            ElementwiseKernels.Axpy(device, form, ab.Pointer, bb.Pointer, 0.7f, n);
            AssertBits(device.DownloadFloats(bb), a.Zip(b, (x, y) => y + 0.7f * x).ToArray(), $"axpy, {at}");
        });
    }

    [Test]
    public void Relu_forward_and_backward_equal_the_reference_in_both_forms()
    {
        ForEveryFormAndLength((device, form, n) =>
        {
            var x = Signed(n, 3);
            x.AsSpan((n / 2)..).Clear();  // a run of zeros
            if (n > 4) x[3] = -0f;  // −0 and NaN go to +0, as the select did
            if (n > 5) x[4] = float.NaN;
            var dy = Signed(n, 4);
            var dx = Signed(n, 5);
            string at = $"{form}, n = {n}";
            using var xb = device.Upload(x);
            using var yb = device.Upload(new float[n]);
            using var dyb = device.Upload(dy);
            using var dxb = device.Upload(dx);
            ActivationKernels.ReluForward(device, form, xb.Pointer, yb.Pointer, n);
            var y = x.Select(v => v > 0f ? v : 0f).ToArray();
            AssertBits(device.DownloadFloats(yb), y, $"relu forward, {at}");
            ActivationKernels.ReluBackward(device, form, yb.Pointer, dyb.Pointer, dxb.Pointer, n);
            AssertBits(device.DownloadFloats(dxb), dx.Select((d, i) => d + (y[i] > 0f ? dy[i] : 0f)).ToArray(), $"relu backward, {at}");
        });
    }
    [TestCase(37, 13, 7)]   // NCHW-like: vectors of 13 components, 7 positions per block
    [TestCase(5, 3, 1)]     // rows [M, D]
    [TestCase(512, 64, 49)] // the quantizer's z_q at fashion-mnist shapes (one block of images)
    public void The_gather_equals_the_reference_in_both_forms_with_out_of_range_indices_as_NaN(int rows, int dim, int inner)
    {
        var table = Signed(rows * dim, 3);
        foreach (var order in Orders(ThreadOrder.Ascending, ThreadOrder.Descending, ThreadOrder.Shuffled))
            foreach (var form in Forms)
                foreach (int outer in new[] { 0, 1, 3, 97 })
                {
                    int vectors = outer * inner, count = vectors * dim;
                    // Every tenth index outside [0, rows): −1 and rows alternately.
                    var indices = Enumerable.Range(0, vectors).Select(i => i % 10 == 9 ? (i % 20 == 9 ? -1 : rows) : (i * 7919) % rows).ToArray();
                    var expected = new float[count];
                    for (int e = 0; e < count; e++)
                    {
                        int p = e % inner, od = e / inner, d = od % dim, v = indices[od / dim * inner + p];
                        expected[e] = v >= 0 && v < rows ? table[v * dim + d] : float.NaN;
                    }
                    using var device = Open(order);
                    using var tb = device.Upload(table);
                    using var ib = device.Upload(indices.Length == 0 ? new int[1] : indices);
                    using var ob = device.Upload(new float[Math.Max(count, 1)]);
                    EmbeddingKernels.Gather(device, form, tb.Pointer, ib.Pointer, ob.Pointer, rows, dim, inner, count);
                    var actual = device.DownloadFloats(ob).Take(count).ToArray();
                    Assert.That(actual.Select(BitConverter.SingleToUInt32Bits).Where((_, e) => !float.IsNaN(expected[e])),
                                Is.EqualTo(expected.Where(float.IsFinite).Select(BitConverter.SingleToUInt32Bits)), $"{form}, {order}, {outer} blocks");
                    Assert.That(actual.Where((_, e) => float.IsNaN(expected[e])), Is.All.NaN, $"out-of-range indices give NaN, {form}, {order}");
                }
    }
}
