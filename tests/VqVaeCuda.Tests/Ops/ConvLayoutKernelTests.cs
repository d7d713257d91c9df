using VqVaeCuda.Device;
using VqVaeCuda.Ops;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Ops;

/// <summary>
/// The two kernels of each layout pair in kernels/conv.cu — per position (a GPU's) and per row or plane (the cpu
/// device's, which the op tests run there) — against a C# im2col and col2im, on each device (on the cpu in two thread
/// orders under checked memory):
/// im2col exactly; col2im and the bias gradient to float rounding (their two kernels add in different orders).
/// </summary>
public class ConvLayoutKernelTests(DeviceKind kind) : DeviceSpecification(kind)
{
    private static readonly KernelLaunch.KernelForm[] Forms = KernelForms.Both;

    private static int Out(int size, int k, int s, int p) => (size + 2 * p - k) / s + 1;

    // col[(c·kh + i)·kw + j][n·P + oh·Wo + ow] = x[n, c, oh·sh − ph + i, ow·sw − pw + j] (0 outside).
    private static float[] Im2ColReference(float[] x, int n, int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw, int ho, int wo)
    {
        int p = ho * wo, np = n * p;
        var col = new float[c * kh * kw * np];
        for (int ci = 0; ci < c; ci++)
            for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++)
                    for (int ni = 0; ni < n; ni++)
                        for (int oh = 0; oh < ho; oh++)
                            for (int ow = 0; ow < wo; ow++)
                            {
                                int hh = oh * sh - ph + i, ww = ow * sw - pw + j;
                                col[((ci * kh + i) * kw + j) * np + ni * p + oh * wo + ow] =
                                    hh >= 0 && hh < h && ww >= 0 && ww < w ? x[((ni * c + ci) * h + hh) * w + ww] : 0f;
                            }
        return col;
    }

    // The adjoint: every col entry added back to the pixel it came from (in double: the reference for both orders).
    private static double[] Col2ImReference(float[] col, float[] initial, bool accumulate, int n, int c, int h, int w, int kh, int kw, int sh, int sw,
                                            int ph, int pw, int ho, int wo)
    {
        int p = ho * wo, np = n * p;
        var x = initial.Select(v => accumulate ? (double)v : 0.0).ToArray();
        for (int ci = 0; ci < c; ci++)
            for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++)
                    for (int ni = 0; ni < n; ni++)
                        for (int oh = 0; oh < ho; oh++)
                            for (int ow = 0; ow < wo; ow++)
                            {
                                int hh = oh * sh - ph + i, ww = ow * sw - pw + j;
                                if (hh >= 0 && hh < h && ww >= 0 && ww < w)
                                    x[((ni * c + ci) * h + hh) * w + ww] += col[((ci * kh + i) * kw + j) * np + ni * p + oh * wo + ow];
                            }
        return x;
    }

    [TestCase(3, 5, 49)]
    [TestCase(1, 3, 3136)]      // one image: the conv's dyᵀ rows
    [TestCase(70, 2, 7)]
    public void Both_bias_gradient_kernels_equal_the_reference(int n, int c, int p)
    {
        var dy = TestData.Floats(n * c * p);
        var initial = TestData.Floats(c);
        var expected = new double[c];
        for (int ci = 0; ci < c; ci++)
        {
            double sum = 0;
            for (int ni = 0; ni < n; ni++)
                for (int pi = 0; pi < p; pi++) sum += dy[(ni * c + ci) * p + pi];
            expected[ci] = initial[ci] + sum;
        }
        foreach (var order in Orders(ThreadOrder.Ascending, ThreadOrder.Descending))
            foreach (var form in Forms)
            {
                using var device = Open(order);
                using var dyb = device.Upload(dy);
                using var db = device.Upload(initial);
                ConvKernels.ChannelBiasBackward(device, form, dyb.Pointer, db.Pointer, n, c, p);
                var actual = device.DownloadFloats(db);
                for (int i = 0; i < c; i++)
                    Assert.That(actual[i], Is.EqualTo(expected[i]).Within(1e-4 * (1 + Math.Abs(expected[i]))), $"{form}, {order}, channel {i}");
            }
    }

    //        N   C  H   W  kh kw sh sw ph pw
    [TestCase(2, 3, 7, 9, 3, 3, 1, 1, 1, 1)]
    [TestCase(3, 2, 8, 8, 4, 4, 2, 2, 1, 1)]       // the VQ-VAE's downsampling shape
    [TestCase(65, 2, 5, 5, 3, 3, 1, 1, 1, 1)]      // more images than the per-row kernel's 64-thread block
    [TestCase(1, 4, 9, 7, 1, 1, 1, 1, 0, 0)]       // 1×1
    [TestCase(3, 2, 11, 10, 3, 3, 2, 2, 0, 0)]     // odd sizes, stride 2, no padding
    [TestCase(2, 2, 6, 7, 2, 3, 1, 2, 1, 0)]       // non-square kernel, unequal strides and paddings
    [TestCase(1, 2, 5, 5, 1, 5, 1, 1, 0, 2)]       // 1×5 (the horizontal stack)
    [TestCase(2, 1, 2, 2, 3, 3, 1, 1, 1, 1)]       // kernel larger than the image
    [TestCase(2, 2, 3, 3, 3, 3, 1, 1, 2, 2)]       // padding beyond the kernel's half
    [TestCase(2, 3, 7, 6, 3, 3, 3, 2, 1, 2)]       // stride 3 (a divide, not a shift)
    [TestCase(2, 3, 6, 8, 3, 5, 1, 1, 1, 2)]       // "same" non-square kernels: the CPU form's flat copy, shifted both ways
    [TestCase(3, 2, 4, 5, 5, 3, 1, 1, 2, 1)]
    [TestCase(2, 2, 3, 4, 5, 5, 1, 1, 2, 2)]       // same size, kernel taller than the image: rows wholly outside
    [TestCase(2, 2, 6, 2, 3, 4, 1, 2, 1, 2)]       // stride 2 across a 2-wide image: tap pairs whose shared columns are empty
    [TestCase(2, 3, 9, 11, 4, 5, 2, 2, 2, 2)]      // stride 2, odd kernel width: the CPU col2im's last tap without a pair
    [TestCase(1, 2, 4, 1, 2, 4, 2, 2, 0, 2)]       // one column
    // Stride s through phase planes (the cpu form with scratch): s | H, s | W, Wo = W/s.
    [TestCase(2, 3, 14, 14, 4, 4, 2, 2, 1, 1)]     // the VQ-VAE's 4×4 stride-2 layers
    [TestCase(1, 1, 28, 28, 4, 4, 2, 2, 1, 1)]     // its first layer: one channel
    [TestCase(2, 2, 6, 8, 4, 4, 2, 2, 1, 1)]       // not square
    [TestCase(2, 2, 8, 8, 3, 3, 2, 2, 1, 1)]       // odd kernel: phase shifts −1, 0, 0
    [TestCase(1, 2, 8, 8, 6, 6, 2, 2, 2, 2)]       // shifts −1 to +1 in both phases
    [TestCase(2, 2, 8, 8, 6, 4, 2, 2, 1, 1)]       // fewer output rows than phase rows
    [TestCase(2, 3, 9, 9, 3, 3, 3, 3, 0, 0)]       // stride 3: nine phase planes
    public void Both_kernels_of_each_pair_equal_the_reference(int n, int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw)
    {
        int ho = Out(h, kh, sh, ph), wo = Out(w, kw, sw, pw);
        var x = TestData.Floats(n * c * h * w);
        var expectedCol = Im2ColReference(x, n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo);
        var col = TestData.Floats(expectedCol.Length);
        var initial = TestData.Floats(x.Length);
        var bias = TestData.Floats(c, 2f, 3f);  // far from 0: a bias added twice or not at all fails the tolerance
        long phaseFloats = ConvKernels.PhaseScratchFloats(KernelLaunch.KernelForm.Cpu, n, c, h, w, sh, sw, wo);
        // The GPU form, the CPU form, and where the shape allows it the CPU form through phase planes.
        var variants = Forms.Select(f => (Form: f, Phases: false)).Concat(phaseFloats > 0 ? [(KernelLaunch.KernelForm.Cpu, true)] : []).ToList();
        foreach (var order in Orders(ThreadOrder.Ascending, ThreadOrder.Descending))
            foreach (var (form, throughPhases) in variants)
            {
                using var device = Open(order);
                using var xb = device.Upload(x);
                using var colOut = device.Upload(new float[expectedCol.Length]);
                // Scratch starts as NaN: a phase plane read before it is written would show.
                using var scratch = device.Upload(Enumerable.Repeat(float.NaN, (int)Math.Max(1, phaseFloats)).ToArray());
                var phases = throughPhases ? scratch.Pointer : default;
                string variant = throughPhases ? $"{form} through phase planes" : $"{form}";
                ConvKernels.Im2Col(device, form, xb.Pointer, colOut.Pointer, n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo, phases);
                Assert.That(device.DownloadFloats(colOut), Is.EqualTo(expectedCol), $"im2col {variant}, {order}");

                // With relu (a fused ReLU, writing only): the sums of either sign, so the ReLU both keeps and zeroes.
                foreach (var (accumulate, withBias, relu) in new[] { (true, false, false), (false, false, false), (false, true, false), (false, false, true) })
                {
                    var expected = Col2ImReference(col, initial, accumulate, n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo);
                    if (withBias)
                        for (int i = 0; i < expected.Length; i++) expected[i] += bias[i / (h * w) % c];
                    if (relu)
                    {
                        Assert.That(expected.Count(v => v > 1e-3) > 0 && expected.Count(v => v < -1e-3) > 0, Is.True, "sums of both signs");
                        for (int i = 0; i < expected.Length; i++) expected[i] = Math.Max(0, expected[i]);
                    }
                    using var colIn = device.Upload(col);
                    using var biasIn = device.Upload(bias);
                    // Without accumulate the output may hold anything first: NaN proves every pixel is written.
                    using var image = device.Upload(accumulate ? initial : Enumerable.Repeat(float.NaN, initial.Length).ToArray());
                    ConvKernels.Col2Im(device, form, colIn.Pointer, image.Pointer, n, c, h, w, kh, kw, sh, sw, ph, pw, ho, wo, accumulate,
                                       withBias ? biasIn.Pointer : default, phases, relu);
                    var actual = device.DownloadFloats(image);
                    for (int i = 0; i < actual.Length; i++)
                        Assert.That(actual[i], Is.EqualTo(expected[i]).Within(1e-5 * (1 + Math.Abs(expected[i]))),
                                    $"col2im {variant}, accumulate {accumulate}, bias {withBias}, relu {relu}, {order}, element {i}");
                }
            }
    }
}
