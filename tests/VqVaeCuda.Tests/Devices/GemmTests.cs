using VqVaeCuda.Device;
using VqVaeCuda.Device.Host;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Devices;

/// <summary>The device GEMM follows cuBLAS's column-major convention exactly (checked on the CPU device).</summary>
[TestFixture, Category("Cpu")]
public class GemmTests
{
    // Column-major reference: C[i + j*ldc] = alpha * sum_p op(A)[i,p] op(B)[p,j] + beta * C.
    private static float[] Reference(GemmOp ta, GemmOp tb, int m, int n, int k, float alpha, float[] a, int lda, float[] b, int ldb,
                                     float beta, float[] c, int ldc)
    {
        var result = (float[])c.Clone();
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++)
            {
                double sum = 0;
                for (int p = 0; p < k; p++)
                {
                    double av = ta == GemmOp.None ? a[i + p * lda] : a[p + i * lda];
                    double bv = tb == GemmOp.None ? b[p + j * ldb] : b[j + p * ldb];
                    sum += av * bv;
                }
                result[i + j * ldc] = (float)(alpha * sum + beta * c[i + j * ldc]);
            }
        return result;
    }

    [TestCase(GemmOp.None, GemmOp.None)]
    [TestCase(GemmOp.Transpose, GemmOp.None)]
    [TestCase(GemmOp.None, GemmOp.Transpose)]
    [TestCase(GemmOp.Transpose, GemmOp.Transpose)]
    public void Gemm_matches_the_column_major_reference(GemmOp ta, GemmOp tb)
    {
        var r = TestData.Random;
        int m = r.Next(1, 40), n = r.Next(1, 40), k = r.Next(1, 40);
        int lda = (ta == GemmOp.None ? m : k) + r.Next(0, 3);
        int ldb = (tb == GemmOp.None ? k : n) + r.Next(0, 3);
        int ldc = m + r.Next(0, 3);
        var a = TestData.Floats(lda * (ta == GemmOp.None ? k : m));
        var b = TestData.Floats(ldb * (tb == GemmOp.None ? n : k));
        var c = TestData.Floats(ldc * n);
        float alpha = 1.5f, beta = -0.5f;

        using var device = TestDevices.Cpu();
        using var ab = device.Upload(a);
        using var bb = device.Upload(b);
        using var cb = device.Upload(c);
        device.Gemm(ta, tb, m, n, k, alpha, ab.Pointer, lda, bb.Pointer, ldb, beta, cb.Pointer, ldc);

        var expected = Reference(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        Assert.That(device.DownloadFloats(cb), Is.EqualTo(expected).Within(1e-4f));
    }

    [Test]
    public void A_row_major_product_is_the_column_major_call_with_operands_swapped()
    {
        // Row-major X (m×k) times Y (k×n) = Z (m×n). Read as column-major, the same memory holds X^T,
        // Y^T, Z^T, and Z^T = Y^T X^T: so call GEMM with (Y, X) and sizes (n, m, k). The trick every
        // row-major caller of cuBLAS uses.
        int m = 7, k = 5, n = 3;
        var x = TestData.Floats(m * k);
        var y = TestData.Floats(k * n);
        using var device = TestDevices.Cpu();
        using var xb = device.Upload(x);
        using var yb = device.Upload(y);
        using var zb = device.Allocate(m * n * sizeof(float));
        device.Gemm(GemmOp.None, GemmOp.None, n, m, k, 1f, yb.Pointer, n, xb.Pointer, k, 0f, zb.Pointer, n);
        var z = device.DownloadFloats(zb);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++) s += x[i * k + p] * y[p * n + j];
                Assert.That(z[i * n + j], Is.EqualTo(s).Within(1e-5));
            }
    }

    [Test]
    public void Strided_batched_gemm_equals_one_gemm_per_matrix()
    {
        int m = 6, n = 4, k = 9, batch = 5;
        var a = TestData.Floats(m * k * batch);
        var b = TestData.Floats(k * n * batch);
        var c = new float[m * n * batch];
        using var device = TestDevices.Cpu();
        using var ab = device.Upload(a);
        using var bb = device.Upload(b);
        using var cb = device.Upload(c);
        device.GemmStridedBatched(GemmOp.None, GemmOp.None, m, n, k, 1f, ab.Pointer, m, m * k, bb.Pointer, k, k * n, 0f, cb.Pointer, m,
                                  m * n, batch);
        var result = device.DownloadFloats(cb);
        for (int i = 0; i < batch; i++)
        {
            var expected = Reference(GemmOp.None, GemmOp.None, m, n, k, 1f, a[(i * m * k)..], m, b[(i * k * n)..], k, 0f, new float[m * n], m);
            Assert.That(result[(i * m * n)..((i + 1) * m * n)], Is.EqualTo(expected).Within(1e-4f), $"matrix {i}");
        }
    }

    // The cpu device splits a large product over its worker threads (kernels/host/gemm.cpp): column panels of C
    // when C is wide, row panels when it is tall, whole products when a batch has one per worker. Three workers
    // so that panels are uneven and the last one is short; sizes not multiples of the 16-wide panels; every
    // transpose. Each call is over the 4 MFLOP below which the caller runs it alone.
    [TestCase(GemmOp.None, GemmOp.None, 100, 190, 130, 1, TestName = "Split GEMM, wide C by column panels (N,N)")]
    [TestCase(GemmOp.Transpose, GemmOp.Transpose, 100, 190, 130, 1, TestName = "Split GEMM, wide C by column panels (T,T)")]
    [TestCase(GemmOp.None, GemmOp.Transpose, 210, 70, 150, 1, TestName = "Split GEMM, tall C by row panels (N,T)")]
    [TestCase(GemmOp.Transpose, GemmOp.None, 210, 70, 150, 1, TestName = "Split GEMM, tall C by row panels (T,N)")]
    [TestCase(GemmOp.None, GemmOp.None, 90, 60, 200, 2, TestName = "Split GEMM, batch below the workers: panels of each product")]
    [TestCase(GemmOp.Transpose, GemmOp.None, 64, 49, 300, 7, TestName = "Split GEMM, batch of whole products over the workers")]
    public void A_gemm_split_over_worker_threads_equals_the_reference(GemmOp ta, GemmOp tb, int m, int n, int k, int batch)
    {
        int lda = (ta == GemmOp.None ? m : k) + 3, ldb = (tb == GemmOp.None ? k : n) + 1, ldc = m + 2;
        long strideA = (long)lda * (ta == GemmOp.None ? k : m), strideB = (long)ldb * (tb == GemmOp.None ? n : k), strideC = (long)ldc * n;
        Assert.That(2.0 * m * n * k * batch, Is.GreaterThan(4e6), "the work must be large enough to be split");
        var a = TestData.Floats((int)strideA * batch);
        var b = TestData.Floats((int)strideB * batch);
        var c = TestData.Floats((int)strideC * batch);
        float alpha = 0.75f, beta = 0.5f;
        try
        {
            using var device = new HostDevice(new HostDeviceOptions { Workers = 3 });
            Assert.That(device.Capabilities.Multiprocessors, Is.EqualTo(3));
            using var ab = device.Upload(a);
            using var bb = device.Upload(b);
            using var cb = device.Upload(c);
            if (batch == 1) device.Gemm(ta, tb, m, n, k, alpha, ab.Pointer, lda, bb.Pointer, ldb, beta, cb.Pointer, ldc);
            else
                device.GemmStridedBatched(ta, tb, m, n, k, alpha, ab.Pointer, lda, strideA, bb.Pointer, ldb, strideB, beta, cb.Pointer, ldc, strideC,
                                          batch);
            var result = device.DownloadFloats(cb);
            for (int i = 0; i < batch; i++)
            {
                var expected = Reference(ta, tb, m, n, k, alpha, a[(int)(i * strideA)..], lda, b[(int)(i * strideB)..], ldb, beta,
                                         c[(int)(i * strideC)..(int)((i + 1) * strideC)], ldc);
                Assert.That(result[(int)(i * strideC)..(int)((i + 1) * strideC)], Is.EqualTo(expected).Within(2e-3f), $"product {i}");
            }
        }
        finally
        {
            // The worker pool is one per process: give the other tests their usual one thread per core back.
            using var restore = new HostDevice(new HostDeviceOptions { Workers = Environment.ProcessorCount });
        }
    }

    [Test]
    public void A_leading_dimension_smaller_than_the_rows_is_refused()
    {
        using var device = TestDevices.Cpu();
        using var buffer = device.Allocate(1024);
        var error = Assert.Throws<ArgumentException>(() =>
            device.Gemm(GemmOp.None, GemmOp.None, 8, 2, 2, 1f, buffer.Pointer, 4, buffer.Pointer, 2, 0f, buffer.Pointer, 8));
        Assert.That(error!.Message, Does.Contain("lda=4"));
    }
}
