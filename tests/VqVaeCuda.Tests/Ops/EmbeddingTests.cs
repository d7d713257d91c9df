using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Ops;

/// <summary>Embedding lookups and their scatter-add backward (kernels/embedding.cu, kernels/segment_sum.cu).</summary>
public class EmbeddingTests(DeviceKind kind) : DeviceSpecification(kind)
{
    /// <summary>dTable[v, d] = Σ over positions s with idx[s] = v of dOut at (s, d); dOut laid out as out[(o·D + d)·inner + p].</summary>
    private static double[] ReferenceTableGradient(int[] idx, float[] dout, int rows, int dim, int inner)
    {
        var g = new double[rows * dim];
        for (int s = 0; s < idx.Length; s++)
        {
            if (idx[s] < 0 || idx[s] >= rows) continue;
            int o = s / inner, p = s % inner;
            for (int d = 0; d < dim; d++) g[idx[s] * dim + d] += dout[(o * dim + d) * inner + p];
        }
        return g;
    }

    /// <summary>
    /// The deterministic backward's exact arithmetic: kernels/segment_sum.cuh's order (positions stably sorted by
    /// index, summed in chunks of 64 sorted positions, the chunks' parts added in order), added to a zero table.
    /// </summary>
    private static float[] OrderedFloatTableGradient(int[] idx, float[] dout, int rows, int dim, int inner) =>
        KernelOrderModels.SegmentSums(idx, rows, dim, (s, d) => dout[(s / inner * dim + d) * inner + s % inner]).Select(v => 0f + v).ToArray();

    [Test]
    public void Lookup_returns_the_indexed_rows_with_the_index_shape_in_front()
    {
        const int rows = 11, dim = 6;
        var table = TestData.Floats(rows * dim);
        var idx = TensorFactory.RandomInts(2 * 3 * 5, 0, rows);
        using var device = Open();
        using var arena = new Arena(device, 1 << 20);
        var ctx = new OpContext(arena);
        var y = Embedding.Lookup(ctx, ctx.Floats(table, rows, dim), ctx.Ints(idx, 2, 3, 5));
        Assert.That(y.Shape, Is.EqualTo(new Shape(2, 3, 5, dim)));
        var expected = idx.SelectMany(v => table.Skip(v * dim).Take(dim)).ToArray();
        Assert.That(y.ToArray(), Is.EqualTo(expected));
    }

    [Test]
    public void LookupNchw_puts_the_embedding_on_the_channel_axis()
    {
        const int rows = 9, dim = 5, n = 3, h = 4, w = 7;
        var table = TestData.Floats(rows * dim);
        var codes = TensorFactory.RandomInts(n * h * w, 0, rows);
        using var device = Open();
        using var arena = new Arena(device, 1 << 20);
        var ctx = new OpContext(arena);
        var y = Embedding.LookupNchw(ctx, ctx.Floats(table, rows, dim), ctx.Ints(codes, n, h, w));
        Assert.That(y.Shape, Is.EqualTo(new Shape(n, dim, h, w)));
        var expected = new float[n * dim * h * w];
        for (int s = 0; s < n; s++)
            for (int d = 0; d < dim; d++)
                for (int p = 0; p < h * w; p++)
                    expected[(s * dim + d) * h * w + p] = table[codes[s * h * w + p] * dim + d];
        Assert.That(y.ToArray(), Is.EqualTo(expected));
    }

    [Test]
    public void LookupLabels_gives_one_row_per_sample()
    {
        const int classes = 10, dim = 8;
        var table = TestData.Floats(classes * dim);
        var labels = TensorFactory.RandomInts(13, 0, classes);
        using var device = Open();
        using var arena = new Arena(device, 1 << 20);
        var ctx = new OpContext(arena);
        var y = Embedding.LookupLabels(ctx, ctx.Floats(table, classes, dim), ctx.Ints(labels, 13));
        Assert.That(y.Shape, Is.EqualTo(new Shape(13, dim)));
        Assert.That(y.ToArray(), Is.EqualTo(labels.SelectMany(v => table.Skip(v * dim).Take(dim)).ToArray()));
    }

    [Test]
    public void Table_gradient_matches_finite_differences()
    {
        const int rows = 7, dim = 4;
        var idx = TensorFactory.RandomInts(3 * 5, 0, rows);  // 15 positions into 7 rows: rows repeat
        using var device = Open();
        GradientCheck.Check(device, [new(TestData.Floats(rows * dim), new Shape(rows, dim), "table")],
                            (ctx, t) => Embedding.Lookup(ctx, t[0], ctx.Ints(idx, 3, 5)), samplesPerInput: 16, relativeTolerance: 5e-3, arenaBytes: 1L << 20);
    }

    [Test]
    public void Nchw_table_gradient_matches_finite_differences()
    {
        const int rows = 5, dim = 3;
        var codes = TensorFactory.RandomInts(2 * 3 * 4, 0, rows);
        using var device = Open();
        GradientCheck.Check(device, [new(TestData.Floats(rows * dim), new Shape(rows, dim), "table")],
                            (ctx, t) => Embedding.LookupNchw(ctx, t[0], ctx.Ints(codes, 2, 3, 4)), samplesPerInput: 15, relativeTolerance: 5e-3, arenaBytes: 1L << 20);
    }

    // (rows, dim, positions, layout): as ThreadOrders' test below, on this fixture's device.
    [TestCase(7, 5, 60, false, false)]
    [TestCase(700, 3, 1500, false, false)]
    [TestCase(600, 4, 8 * 8 * 8, true, false)]
    [TestCase(512, 6, 4 * 16 * 16, true, true)]
    public void Table_gradient_equals_the_reference_and_the_segment_sum_order(int rows, int dim, int positions, bool nchw, bool collapsed)
    {
        int n = nchw ? positions / 64 : positions, inner = nchw ? 64 : 1;
        var table = TestData.Floats(rows * dim);
        var idx = collapsed ? Enumerable.Repeat(3, positions).ToArray() : TensorFactory.RandomInts(positions, 0, rows);
        var dout = TestData.Floats(positions * dim);
        using var device = Open();
        using var arena = new Arena(device, 4L << 20);
        var tape = new Tape(arena);
        var ctx = new OpContext(arena, tape);
        var tt = ctx.Floats(table, rows, dim);
        tt.RequiresGrad = true;
        var y = nchw ? Embedding.LookupNchw(ctx, tt, ctx.Ints(idx, n, 8, 8)) : Embedding.Lookup(ctx, tt, ctx.Ints(idx, positions));
        tape.Backward(y, ctx.Floats(dout, y.Shape.Dims.ToArray()));
        var actual = tape.GradOf(tt).ToArray();
        var reference = ReferenceTableGradient(idx, dout, rows, dim, inner);
        var magnitude = ReferenceTableGradient(idx, dout.Select(Math.Abs).ToArray(), rows, dim, inner);
        var ordered = OrderedFloatTableGradient(idx, dout, rows, dim, inner);
        for (int e = 0; e < reference.Length; e++)
        {
            Assert.That(actual[e], Is.EqualTo(reference[e]).Within(1e-6 * magnitude[e]), $"d table[{e}]");
            Assert.That(actual[e], Is.EqualTo(ordered[e]).Within(DeviceTolerance.OrderedSum(Kind, magnitude[e])), $"d table[{e}] in the segment sum's order");
        }
    }

    [Test]
    public void Backward_adds_into_an_existing_table_gradient()
    {
        // The table used twice: both lookups' gradients accumulate.
        const int rows = 6, dim = 3;
        var idx = TensorFactory.RandomInts(10, 0, rows);
        using var device = Open();
        GradientCheck.Check(device, [new(TestData.Floats(rows * dim), new Shape(rows, dim), "table")],
                            (ctx, t) => Elementwise.Add(ctx, Embedding.Lookup(ctx, t[0], ctx.Ints(idx, 10)),
                                                        Embedding.Lookup(ctx, t[0], ctx.Ints(idx.Reverse().ToArray(), 10))), samplesPerInput: 18, relativeTolerance: 5e-3, arenaBytes: 1L << 20);
    }

    [Test]
    public void Atomic_variant_agrees_with_the_deterministic_backward_within_rounding()
    {
        const int rows = 50, dim = 8, s = 3000;
        var idx = TensorFactory.RandomInts(s, 0, rows);
        var dout = TestData.Floats(s * dim);
        var expected = ReferenceTableGradient(idx, dout, rows, dim, 1);
        foreach (var order in Orders(ThreadOrder.Ascending, ThreadOrder.Descending, ThreadOrder.Shuffled))
        {
            using var device = Open(order);
            using var idxBuffer = device.Upload(idx);
            using var doutBuffer = device.Upload(dout);
            using var dtable = device.Upload(new float[rows * dim]);
            EmbeddingKernels.BackwardAtomic(device, doutBuffer.Pointer, idxBuffer.Pointer, dtable.Pointer, rows, dim, 1, s * dim);
            TensorFactory.AssertClose(device.DownloadFloats(dtable), expected, 1e-5, $"atomic d table ({order})");
        }
    }

    [Test]
    public void An_index_out_of_range_gives_a_nan_row_and_no_gradient()
    {
        const int rows = 4, dim = 3;
        var table = TestData.Floats(rows * dim);
        int[] idx = [1, -1, 3, rows, 1];
        using var device = Open();  // checked memory: an out-of-bounds write would fail the launch
        using var arena = new Arena(device, 1 << 20);
        var tape = new Tape(arena);
        var ctx = new OpContext(arena, tape);
        var tt = ctx.Floats(table, rows, dim);
        tt.RequiresGrad = true;
        var y = Embedding.Lookup(ctx, tt, ctx.Ints(idx, 5));
        var values = y.ToArray();
        for (int s = 0; s < idx.Length; s++)
            for (int d = 0; d < dim; d++)
                if (idx[s] is >= 0 and < rows) Assert.That(values[s * dim + d], Is.EqualTo(table[idx[s] * dim + d]));
                else Assert.That(float.IsNaN(values[s * dim + d]), $"row {s} (index {idx[s]}) must be NaN");
        var ones = Enumerable.Repeat(1f, 5 * dim).ToArray();
        tape.Backward(y, ctx.Floats(ones, 5, dim));
        Assert.That(tape.GradOf(tt).ToArray(), Is.EqualTo(new float[] { 0, 0, 0, 2, 2, 2, 0, 0, 0, 1, 1, 1 }));
    }

    [Test]
    public void Bad_inputs_are_refused_naming_the_op()
    {
        using var device = Open();
        using var arena = new Arena(device, 1 << 20);
        var ctx = new OpContext(arena);
        var table = ctx.NewTensor(new Shape(8, 4));
        Assert.That(() => Embedding.Lookup(ctx, table, ctx.NewTensor(new Shape(3))),
                    Throws.TypeOf<OpArgumentException>().With.Message.StartsWith("embedding:").And.Message.Contains("int32"));
        Assert.That(() => Embedding.Lookup(ctx, ctx.NewTensor(new Shape(8, 4, 2)), ctx.NewTensor(new Shape(3), DType.Int32)),
                    Throws.TypeOf<OpArgumentException>().With.Message.StartsWith("embedding:").And.Message.Contains("table"));
        Assert.That(() => Embedding.LookupNchw(ctx, table, ctx.NewTensor(new Shape(2, 3), DType.Int32)),
                    Throws.TypeOf<OpArgumentException>().With.Message.StartsWith("embedding_nchw:").And.Message.Contains("[N, H, W]"));
        Assert.That(() => Embedding.LookupLabels(ctx, table, ctx.NewTensor(new Shape(2, 3), DType.Int32)),
                    Throws.TypeOf<OpArgumentException>().With.Message.StartsWith("embedding_labels:").And.Message.Contains("rank 1"));
    }

    /// <summary>The cpu device's thread orders: a GPU has one order, its own.</summary>
    [TestFixture, Category("Cpu")]
    public class ThreadOrders
    {
        // (rows, dim, positions, layout): runs that cross 64-position chunks and 256-vector sort tiles; all positions on one row
        // (a collapsed codebook).
        [TestCase(7, 5, 60, false, false)]
        [TestCase(700, 3, 1500, false, false)]
        [TestCase(600, 4, 8 * 8 * 8, true, false)]
        [TestCase(512, 6, 4 * 16 * 16, true, true)]
        public void Table_gradient_equals_the_reference_and_is_bit_equal_in_every_thread_order(int rows, int dim, int positions, bool nchw, bool collapsed)
        {
            int n = nchw ? positions / 64 : positions, inner = nchw ? 64 : 1;
            var table = TestData.Floats(rows * dim);
            var idx = collapsed ? Enumerable.Repeat(3, positions).ToArray() : TensorFactory.RandomInts(positions, 0, rows);
            var dout = TestData.Floats(positions * dim);
            var runs = TensorFactory.InEveryOrder((ctx, tape) =>
            {
                var tt = ctx.Floats(table, rows, dim);
                tt.RequiresGrad = true;
                var y = nchw ? Embedding.LookupNchw(ctx, tt, ctx.Ints(idx, n, 8, 8)) : Embedding.Lookup(ctx, tt, ctx.Ints(idx, positions));
                tape.Backward(y, ctx.Floats(dout, y.Shape.Dims.ToArray()));
                return tape.GradOf(tt).ToArray();
            });
            // Within float rounding of the double sums, and bit-equal to float sums in the segment sum's order.
            var reference = ReferenceTableGradient(idx, dout, rows, dim, inner);
            var magnitude = ReferenceTableGradient(idx, dout.Select(Math.Abs).ToArray(), rows, dim, inner);
            for (int e = 0; e < reference.Length; e++)
                Assert.That(runs[0][e], Is.EqualTo(reference[e]).Within(1e-6 * magnitude[e]), $"d table[{e}]");
            Assert.That(runs[0], Is.EqualTo(OrderedFloatTableGradient(idx, dout, rows, dim, inner)), "the sums run in the segment sum's order");
            TensorFactory.AssertBitEqual(runs, "d table");
        }
    }
}
