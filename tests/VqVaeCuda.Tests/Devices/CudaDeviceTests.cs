using VqVaeCuda.Device;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Devices;

/// <summary>
/// The same kernels on a real GPU, against the same C# references. Skipped, with the reason, on
/// machines where no CUDA device answers (every development machine and CI of this project).
/// </summary>
[TestFixture, Category("Cuda")]
public class CudaDeviceTests
{
    [Test]
    public void Add_on_the_gpu_equals_the_reference()
    {
        using var device = TestDevices.Cuda();
        int n = TestData.OddSize(10_000, 100_000);
        var a = TestData.Floats(n);
        var b = TestData.Floats(n);
        using var ab = device.Upload(a);
        using var bb = device.Upload(b);
        using var output = device.Allocate(n * sizeof(float));
        device.Launch(device.GetKernel("add_f32"), Dim3.Cover(n, 256), 256, 0, ab, bb, output, n);
        Assert.That(device.DownloadFloats(output), Is.EqualTo(a.Zip(b, (p, q) => p + q).ToArray()));
    }

    [Test]
    public void Two_pass_sum_on_the_gpu_matches_the_reference()
    {
        using var device = TestDevices.Cuda();
        int n = TestData.OddSize(10_000, 1_000_000);
        var x = TestData.Floats(n);
        using var xb = device.Upload(x);
        using var partials = device.Allocate(64 * sizeof(float));
        using var total = device.Allocate(sizeof(float));
        var kernel = device.GetKernel("sum_f32_partials");
        device.Launch(kernel, 64, 256, 0, xb, partials, n);
        device.Launch(kernel, 1, 256, 0, partials, total, 64);
        Assert.That(device.DownloadFloats(total)[0], Is.EqualTo(x.Sum(v => (double)v)).Within(1e-6 * x.Sum(v => Math.Abs((double)v)) + 1e-4));
    }

    [Test]
    public void Warp_shuffles_on_the_gpu_match_the_warp_model()
    {
        using var device = TestDevices.Cuda();
        var input = Enumerable.Range(0, 64).Select(i => (i * 37) % 101 - 50).ToArray();
        using var inBuf = device.Upload(input);
        using var outBuf = device.Allocate(8L * 64 * sizeof(int));
        device.Launch(device.GetKernel("test_warp_ops"), 1, 64, 0, inBuf, outBuf, 5, 3, 32, 0, 0);
        var output = device.DownloadInts(outBuf);
        for (int lane = 0; lane < 32; lane++)
            Assert.That(output[8 * lane + 2], Is.EqualTo(HostExecution.WarpModel.ShflDown(input[..32], lane, 3, 32)));
    }

    [Test]
    public void Gemm_on_the_gpu_matches_the_cpu_device()
    {
        using var gpu = TestDevices.Cuda();
        using var cpu = TestDevices.Cpu();
        int m = 33, n = 17, k = 29;
        var a = TestData.Floats(m * k);
        var b = TestData.Floats(k * n);
        float[] Run(IDevice d)
        {
            using var ab = d.Upload(a);
            using var bb = d.Upload(b);
            using var cb = d.Upload(new float[m * n]);
            d.Gemm(GemmOp.None, GemmOp.None, m, n, k, 1f, ab.Pointer, m, bb.Pointer, k, 0f, cb.Pointer, m);
            return d.DownloadFloats(cb);
        }
        Assert.That(Run(gpu), Is.EqualTo(Run(cpu)).Within(1e-4f));
    }

    [Test]
    public void Without_fma_contraction_axpy_on_the_gpu_equals_the_cpu_device_bit_for_bit()
    {
        using var gpu = TestDevices.Cuda();
        using var cpu = TestDevices.Cpu();
        // The default, and what makes the GPU's rounding the CPU device's: y + a·x rounded twice, never fused.
        Assert.That(gpu.Capabilities.FusedMultiplyAdd, Is.False);
        Assert.That(cpu.Capabilities.FusedMultiplyAdd, Is.False);
        TestContext.Out.WriteLine($"{gpu.Name}: kernels as {gpu.Capabilities.KernelTarget}, driver CUDA {gpu.DriverVersion}");
        int n = TestData.OddSize(10_000, 100_000);
        var x = TestData.Floats(n);
        var y = TestData.Floats(n);
        float[] Run(IDevice d)
        {
            using var xb = d.Upload(x);
            using var yb = d.Upload(y);
            d.Launch(d.GetKernel("axpy_f32"), Dim3.Cover(n, 256), 256, 0, xb, yb, 0.7f, n);
            return d.DownloadFloats(yb);
        }
        Assert.That(Run(gpu), Is.EqualTo(Run(cpu)));
    }

    [Test]
    public void Dispose_frees_the_buffers_still_live_and_a_later_buffer_dispose_does_nothing()
    {
        // A second device on the same GPU keeps the primary context alive, as cuBLAS or another library would.
        using var keeper = TestDevices.Cuda();
        var device = TestDevices.Cuda();
        var buffer = device.Allocate(64L << 20);
        Assert.That(device.LiveAllocations, Is.EqualTo(1));
        device.Dispose();
        Assert.That(device.LiveAllocations, Is.Zero);
        Assert.DoesNotThrow(buffer.Dispose);
    }
}
