using VqVaeCuda.Device;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Kernels;

/// <summary>kernels/elementwise.cu against plain C# loops: bit-equal, in two thread orders, odd sizes, under checked mode.</summary>
[TestFixture, Category("Cpu")]
public class ElementwiseKernelTests
{
    private static readonly ThreadOrder[] Orders = [ThreadOrder.Ascending, ThreadOrder.Descending];

    // A grid smaller than n exercises the grid-stride loop; a covering grid, one element per thread.
    private static IEnumerable<TestCaseData> Cases() =>
        from order in Orders from fullGrid in new[] { true, false } select new TestCaseData(order, fullGrid);

    private static Dim3 Grid(int n, bool fullGrid) => fullGrid ? Dim3.Cover(n, 256) : new Dim3(3);

    [TestCaseSource(nameof(Cases))]
    public void Fill_sets_every_element(ThreadOrder order, bool fullGrid)
    {
        using var device = TestDevices.Cpu(order);
        int n = TestData.OddSize(1000, 5000);
        float value = TestData.Floats(1)[0];
        using var output = device.Allocate(n * sizeof(float));
        device.Launch(device.GetKernel("fill_f32"), Grid(n, fullGrid), 256, 0, output, value, n);
        Assert.That(device.DownloadFloats(output), Is.All.EqualTo(value));
    }

    [TestCaseSource(nameof(Cases))]
    public void Scale_equals_the_reference(ThreadOrder order, bool fullGrid)
    {
        using var device = TestDevices.Cpu(order);
        int n = TestData.OddSize(1000, 5000);
        var x = TestData.Floats(n);
        float alpha = TestData.Floats(1, -3, 3)[0];
        using var xb = device.Upload(x);
        using var output = device.Allocate(n * sizeof(float));
        device.Launch(device.GetKernel("scale_f32"), Grid(n, fullGrid), 256, 0, xb, output, alpha, n);
        Assert.That(device.DownloadFloats(output), Is.EqualTo(x.Select(v => alpha * v).ToArray()));
    }

    [TestCaseSource(nameof(Cases))]
    public void Axpy_equals_the_reference(ThreadOrder order, bool fullGrid)
    {
        using var device = TestDevices.Cpu(order);
        int n = TestData.OddSize(1000, 5000);
        var x = TestData.Floats(n);
        var y = TestData.Floats(n);
        float alpha = TestData.Floats(1, -3, 3)[0];
        using var xb = device.Upload(x);
        using var yb = device.Upload(y);
        device.Launch(device.GetKernel("axpy_f32"), Grid(n, fullGrid), 256, 0, xb, yb, alpha, n);
        var expected = new float[n];
        for (int i = 0; i < n; i++) expected[i] = y[i] + alpha * x[i];
        Assert.That(device.DownloadFloats(yb), Is.EqualTo(expected));
    }

    [TestCaseSource(nameof(Cases))]
    public void Add_equals_the_reference(ThreadOrder order, bool fullGrid)
    {
        using var device = TestDevices.Cpu(order);
        int n = TestData.OddSize(1000, 5000);
        var a = TestData.Floats(n);
        var b = TestData.Floats(n);
        using var ab = device.Upload(a);
        using var bb = device.Upload(b);
        using var output = device.Allocate(n * sizeof(float));
        device.Launch(device.GetKernel("add_f32"), Grid(n, fullGrid), 256, 0, ab, bb, output, n);
        Assert.That(device.DownloadFloats(output), Is.EqualTo(a.Zip(b, (p, q) => p + q).ToArray()));
    }
}
