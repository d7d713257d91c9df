using VqVaeCuda.Device;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Kernels;

/// <summary>kernels/reduce.cu: both sum variants against a double-precision C# sum.</summary>
[TestFixture, Category("Cpu")]
public class ReduceKernelTests
{
    private static float TwoPassSum(IDevice device, float[] x, int grid, int block)
    {
        using var xb = device.Upload(x);
        using var partials = device.Allocate(grid * sizeof(float));
        using var total = device.Allocate(sizeof(float));
        device.Launch(device.GetKernel("sum_f32_partials"), grid, block, 0, xb, partials, x.Length);
        device.Launch(device.GetKernel("sum_f32_partials"), 1, block, 0, partials, total, grid);
        return device.DownloadFloats(total)[0];
    }

    private static double Reference(float[] x) => x.Sum(v => (double)v);

    [TestCase(256, 64)]
    [TestCase(1024, 7)]
    [TestCase(32, 300)]
    [TestCase(96, 33)]
    public void Two_pass_sum_matches_the_reference_and_is_bit_equal_across_thread_orders(int block, int grid)
    {
        int n = TestData.OddSize(10_000, 100_000);
        var x = TestData.Floats(n);
        using var ascending = TestDevices.Cpu(ThreadOrder.Ascending);
        using var descending = TestDevices.Cpu(ThreadOrder.Descending);
        float a = TwoPassSum(ascending, x, grid, block);
        float d = TwoPassSum(descending, x, grid, block);
        // float32 accumulation over n terms of magnitude <= 1: error bound ~ n * eps * sum|x|, far looser than what we see.
        double tolerance = 1e-6 * x.Sum(v => Math.Abs((double)v)) + 1e-4;
        Assert.That(a, Is.EqualTo(Reference(x)).Within(tolerance));
        Assert.That(BitConverter.SingleToInt32Bits(d), Is.EqualTo(BitConverter.SingleToInt32Bits(a)),
                    "the two-pass sum adds in a fixed tree: thread order must not change a bit");
    }

    [TestCase(256, 97)]
    [TestCase(128, 1000)]
    public void Atomic_sum_matches_the_reference_within_rounding_in_every_order(int block, int grid)
    {
        int n = TestData.OddSize(10_000, 200_000);
        var x = TestData.Floats(n);
        double tolerance = 1e-6 * x.Sum(v => Math.Abs((double)v)) + 1e-4;
        foreach (var order in new[] { ThreadOrder.Ascending, ThreadOrder.Descending, ThreadOrder.Shuffled })
        {
            using var device = TestDevices.Cpu(order);
            using var xb = device.Upload(x);
            using var total = device.Upload(new[] { 0f });
            device.Launch(device.GetKernel("sum_f32_atomic"), grid, block, 0, xb, total, n);
            Assert.That(device.DownloadFloats(total)[0], Is.EqualTo(Reference(x)).Within(tolerance), $"order {order}");
        }
    }
}
