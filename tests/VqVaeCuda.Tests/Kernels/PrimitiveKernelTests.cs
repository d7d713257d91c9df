using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Kernels;

/// <summary>
/// The shared kernel primitives (kernels/scan.cuh, histogram.cuh, segment_sum.cuh, reduce_two_pass.cuh, gather.cuh)
/// through the kernels that use them, against plain C# references, in every thread order. Integer results and the
/// deterministic float sums must equal the reference bit for bit (the float references replay the documented order
/// of additions, <see cref="KernelOrderModels"/>). The ops' own reductions are pinned to the same tree in MseTests,
/// GradientClippingTests and VectorQuantizerTests.
/// </summary>
[TestFixture, Category("Cpu")]
public class PrimitiveKernelTests
{
    private static readonly ThreadOrder[] Orders = [ThreadOrder.Ascending, ThreadOrder.Descending, ThreadOrder.Shuffled];

    // ---- scan.cuh ------------------------------------------------------------------------------------

    [Test]
    public void Exclusive_scan_equals_the_prefix_sums_and_ends_with_the_total(
        [Values(1, 31, 1024, 1025, 5000, 70_001)] int n, [ValueSource(nameof(Orders))] ThreadOrder order)
    {
        var input = TensorFactory.RandomInts(n, 0, 9);
        var expected = new int[n + 1];
        for (int i = 0; i < n; i++) expected[i + 1] = expected[i] + input[i];
        using var device = TestDevices.Cpu(order);
        using var inBuf = device.Upload(input);
        using var outBuf = device.Allocate((n + 1) * sizeof(int));
        SegmentSumKernels.ExclusiveScan(device, inBuf.Pointer, outBuf.Pointer, n);
        Assert.That(device.DownloadInts(outBuf), Is.EqualTo(expected));
    }

    // ---- histogram.cuh -------------------------------------------------------------------------------

    [Test]
    public void Key_histogram_counts_each_key_and_drops_keys_outside_the_range([ValueSource(nameof(Orders))] ThreadOrder order)
    {
        const int k = 37, m = 20_000;
        var keys = TensorFactory.RandomInts(m, -3, k + 3);
        var expected = new int[k];
        foreach (var key in keys)
            if (key is >= 0 and < k) expected[key]++;
        using var device = TestDevices.Cpu(order);
        using var keyBuf = device.Upload(keys);
        using var counts = device.Upload(new int[k]);
        SegmentSumKernels.Histogram(device, keyBuf.Pointer, counts.Pointer, m, k);
        Assert.That(device.DownloadInts(counts), Is.EqualTo(expected));
    }

    // ---- segment_sum.cuh -----------------------------------------------------------------------------

    public enum Keys { Uniform, Collapsed, FewUsed, WithOutOfRange }

    private static int[] MakeKeys(Keys kind, int m, int k) => kind switch
    {
        Keys.Uniform => TensorFactory.RandomInts(m, 0, k),
        Keys.Collapsed => Enumerable.Repeat(k / 2, m).ToArray(),
        Keys.FewUsed => TensorFactory.RandomInts(m, 0, 3).Select(v => v * (k / 3)).ToArray(),
        _ => TensorFactory.RandomInts(m, -2, k + 2),
    };

    // (m, d, inner, k): sizes that are not multiples of the 64-position chunk or the 256-vector tile; rows and NCHW layouts.
    [TestCase(1, 3, 1, 5, Keys.Uniform)]
    [TestCase(777, 5, 1, 40, Keys.Uniform)]
    [TestCase(777, 5, 1, 40, Keys.WithOutOfRange)]
    [TestCase(3 * 7 * 9, 4, 7 * 9, 300, Keys.FewUsed)]
    [TestCase(2 * 16 * 16, 6, 16 * 16, 17, Keys.Collapsed)]
    [TestCase(5000, 3, 1, 700, Keys.Uniform)]
    public void Segment_sums_equal_the_reference_bit_for_bit_in_every_order(int m, int d, int inner, int k, Keys kind)
    {
        var keys = MakeKeys(kind, m, k);
        var values = TestData.Floats(m * d);
        float Value(int vector, int c) => values[(vector / inner * d + c) * inner + vector % inner];
        var exact = KernelOrderModels.SegmentSums(keys, k, d, Value);
        var reference = new double[k * d];
        var magnitude = new double[k * d];
        for (int v = 0; v < m; v++)
            if (keys[v] >= 0 && keys[v] < k)
                for (int c = 0; c < d; c++)
                {
                    reference[keys[v] * d + c] += Value(v, c);
                    magnitude[keys[v] * d + c] += Math.Abs(Value(v, c));
                }
        foreach (var order in Orders)
        {
            using var device = TestDevices.Cpu(order);
            using var arena = new Arena(device, 4L << 20);
            var ctx = new OpContext(arena);
            var sums = SegmentSums.ByKey(ctx, "test", ctx.Floats(values, m * d), m, d, inner, ctx.Ints(keys, m), k).ToArray();
            for (int e = 0; e < sums.Length; e++)
                Assert.That(sums[e], Is.EqualTo(reference[e]).Within(1e-6 * magnitude[e] + 1e-30), $"sum[{e}] ({order})");
            Assert.That(sums, Is.EqualTo(exact), $"the documented order of additions ({order})");
        }
    }

    // ---- reduce_two_pass.cuh -------------------------------------------------------------------------

    [Test]
    public void Two_pass_sum_equals_its_fixed_tree_bit_for_bit([Values(1, 300, 100_000)] int n, [Values(1, 7, 512)] int blocks,
                                                                [ValueSource(nameof(Orders))] ThreadOrder order)
    {
        var x = TestData.Floats(n);
        using var device = TestDevices.Cpu(order);
        using var xBuf = device.Upload(x);
        using var partials = device.Allocate(blocks * sizeof(float));
        using var total = device.Allocate(sizeof(float));
        ReduceKernels.SumPartials(device, xBuf.Pointer, partials.Pointer, n, blocks);
        ReduceKernels.SumPartials(device, partials.Pointer, total.Pointer, blocks, blocks: 1);
        Assert.That(device.DownloadFloats(total)[0], Is.EqualTo(KernelOrderModels.TwoPassSum(n, blocks, i => x[i])));
    }

    // ---- gather.cuh ----------------------------------------------------------------------------------

    [Test]
    public void Gather_reads_table_rows_into_the_strided_layout_and_gives_nan_for_bad_indices(
        [Values(1, 12)] int inner, [ValueSource(nameof(Orders))] ThreadOrder order)
    {
        const int rows = 9, dim = 5, outer = 4;
        var table = TestData.Floats(rows * dim);
        var idx = TensorFactory.RandomInts(outer * inner, -1, rows + 1);
        using var device = TestDevices.Cpu(order);
        using var tableBuf = device.Upload(table);
        using var idxBuf = device.Upload(idx);
        int count = outer * dim * inner;
        using var outBuf = device.Allocate(count * sizeof(float));
        EmbeddingKernels.Gather(device, tableBuf.Pointer, idxBuf.Pointer, outBuf.Pointer, rows, dim, inner, count);
        var output = device.DownloadFloats(outBuf);
        for (int o = 0; o < outer; o++)
            for (int c = 0; c < dim; c++)
                for (int p = 0; p < inner; p++)
                {
                    int v = idx[o * inner + p];
                    float got = output[(o * dim + c) * inner + p];
                    if (v is >= 0 and < rows) Assert.That(got, Is.EqualTo(table[v * dim + c]), $"({o}, {c}, {p})");
                    else Assert.That(float.IsNaN(got), $"({o}, {c}, {p}) has index {v}: NaN expected, got {got}");
                }
    }

    // ---- transpose.cu, batched (the quantizer's NCHW → rows) --------------------------------------------

    [Test]
    public void Batched_transposes_equal_the_reference([Values(false, true)] bool tiled, [ValueSource(nameof(Orders))] ThreadOrder order)
    {
        const int batch = 3, rows = 37, cols = 70;
        var input = TestData.Floats(batch * rows * cols);
        using var device = TestDevices.Cpu(order);
        using var inBuf = device.Upload(input);
        using var outBuf = device.Allocate(input.Length * sizeof(float));
        if (tiled) TransposeKernels.Tiled(device, inBuf.Pointer, outBuf.Pointer, rows, cols, batch);
        else TransposeKernels.Naive(device, inBuf.Pointer, outBuf.Pointer, rows, cols, batch);
        var expected = new float[input.Length];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                    expected[b * rows * cols + j * rows + i] = input[b * rows * cols + i * cols + j];
        Assert.That(device.DownloadFloats(outBuf), Is.EqualTo(expected));
    }
}
