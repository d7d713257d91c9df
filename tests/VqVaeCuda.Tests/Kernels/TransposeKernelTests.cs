using VqVaeCuda.Device;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Kernels;

/// <summary>kernels/transpose.cu: both variants equal the C# transpose exactly, for sizes that are not multiples of the tile.</summary>
[TestFixture, Category("Cpu")]
public class TransposeKernelTests
{
    private static IEnumerable<TestCaseData> Cases() =>
        from variant in new[] { "transpose_f32_naive", "transpose_f32_tiled" }
        from order in new[] { ThreadOrder.Ascending, ThreadOrder.Descending, ThreadOrder.Shuffled }
        select new TestCaseData(variant, order);

    [TestCaseSource(nameof(Cases))]
    public void Transpose_equals_the_reference(string variant, ThreadOrder order)
    {
        var r = TestData.Random;
        int rows = r.Next(1, 150), cols = r.Next(1, 150);
        var input = TestData.Floats(rows * cols);
        using var device = TestDevices.Cpu(order);
        using var inBuf = device.Upload(input);
        using var outBuf = device.Allocate(input.Length * sizeof(float));
        var grid = variant.EndsWith("naive")
            ? new Dim3((uint)((cols + 31) / 32), (uint)((rows + 7) / 8))
            : new Dim3((uint)((cols + 31) / 32), (uint)((rows + 31) / 32));
        device.Launch(device.GetKernel(variant), grid, new Dim3(32, 8), 0, inBuf, outBuf, rows, cols);

        var expected = new float[input.Length];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                expected[j * rows + i] = input[i * cols + j];
        Assert.That(device.DownloadFloats(outBuf), Is.EqualTo(expected), $"{rows}x{cols}");
    }
}
