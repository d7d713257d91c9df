using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Ops;

/// <summary>
/// The quantizer's kernels (kernels/nearest_code.cu, and the gather, losses, segment sums and codebook update it
/// shares with other ops) through the VectorQuantizer ops, against plain C# references in double precision.
/// Real-valued data may hold near-ties whose winner depends on float rounding: there a different index
/// is accepted only if its exact distance is within rounding of the best. Integer-valued data makes every
/// distance exact in float, so there the indices — ties included — must equal the reference exactly.
/// </summary>
public class VectorQuantizerTests(DeviceKind kind) : DeviceSpecification(kind)
{
    // ---- C# references ----------------------------------------------------------------------------

    /// <summary>Component d of vector m in the [N, D, HW] layout.</summary>
    private static float At(float[] z, int m, int d, int dims, int hw) => z[m / hw * dims * hw + d * hw + m % hw];

    private static double Distance(float[] z, int m, int dims, int hw, float[] e, int j)
    {
        double s = 0;
        for (int d = 0; d < dims; d++)
        {
            double diff = (double)At(z, m, d, dims, hw) - e[j * dims + d];
            s += diff * diff;
        }
        return s;
    }

    /// <summary>Brute-force argmin in double, ties to the lowest index.</summary>
    private static int[] ReferenceNearest(float[] z, int m, int dims, int hw, float[] e, int k)
    {
        var result = new int[m];
        for (int i = 0; i < m; i++)
        {
            double best = double.PositiveInfinity;
            for (int j = 0; j < k; j++)
            {
                double dist = Distance(z, i, dims, hw, e, j);
                if (dist < best)
                {
                    best = dist;
                    result[i] = j;
                }
            }
        }
        return result;
    }

    /// <summary>Equal to the reference, or (real data) a near-tie: the chosen code's exact distance within float rounding of the best.</summary>
    private static void AssertNearest(int[] actual, int[] expected, float[] z, int dims, int hw, float[] e, string what)
    {
        double maxNorm = 0;
        for (int j = 0; j < e.Length / dims; j++)
        {
            double s = 0;
            for (int d = 0; d < dims; d++) s += (double)e[j * dims + d] * e[j * dims + d];
            maxNorm = Math.Max(maxNorm, s);
        }
        int nearTies = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            if (actual[i] == expected[i]) continue;
            Assert.That(actual[i], Is.InRange(0, e.Length / dims - 1), $"{what}: vector {i} got an index outside the codebook");
            double zz = 0;
            for (int d = 0; d < dims; d++) zz += (double)At(z, i, d, dims, hw) * At(z, i, d, dims, hw);
            double gap = Distance(z, i, dims, hw, e, actual[i]) - Distance(z, i, dims, hw, e, expected[i]);
            Assert.That(gap, Is.LessThanOrEqualTo(1e-5 * (1 + zz + maxNorm)),
                        $"{what}: vector {i} chose code {actual[i]} but code {expected[i]} is nearer by {gap:G4}");
            nearTies++;
        }
        Assert.That(nearTies, Is.LessThanOrEqualTo(Math.Max(2, expected.Length / 100)), $"{what}: too many near-ties to be rounding");
    }

    private static float[] Integers(int count, int lo, int hi)
    {
        var r = TestData.Random;
        var a = new float[count];
        for (int i = 0; i < count; i++) a[i] = r.Next(lo, hi + 1);
        return a;
    }

    // ---- plumbing -------------------------------------------------------------------------------------

    private static Tensor Upload(OpContext ctx, float[] values, Shape shape)
    {
        var t = ctx.NewTensor(shape);
        t.CopyFrom(values);
        return t;
    }

    /// <summary>Quantizes random z [n, d, h, w] with a random codebook [k, d] (no tape); returns z, the codebook and the result.</summary>
    private static (Tensor Z, Tensor Codebook, QuantizeResult Result) QuantizeRandom(OpContext ctx, int n, int d, int h, int w, int k)
    {
        var z = Upload(ctx, TestData.Floats(n * d * h * w), new Shape(n, d, h, w));
        var e = Upload(ctx, TestData.Floats(k * d), new Shape(k, d));
        return (z, e, VectorQuantizer.Quantize(ctx, z, e, 0.25f, useEma: false));
    }

    private static int[] Nearest(IDevice device, float[] z, Shape zShape, float[] e, int k, NearestCodeAlgorithm algorithm, int? splits = null)
    {
        using var arena = new Arena(device, 64L << 20);
        var ctx = new OpContext(arena);
        var zt = Upload(ctx, z, zShape);
        var et = Upload(ctx, e, new Shape(k, zShape[1]));
        return VectorQuantizer.NearestCodesWith(ctx, zt, et, algorithm, splits).ToIntArray();
    }

    // ---- nearest code ---------------------------------------------------------------------------------

    // (N, D, H, W, K): M not a multiple of the 128-vector block, K not a multiple of the 128-code tile, D odd.
    [TestCase(2, 3, 5, 7, 37)]
    [TestCase(3, 64, 9, 11, 300)]
    [TestCase(1, 17, 13, 23, 129)]
    [TestCase(2, 64, 16, 16, 512)]
    public void Fused_indices_equal_a_brute_force_argmin(int n, int d, int h, int w, int k)
    {
        using var device = Open();
        var z = TestData.Floats(n * d * h * w);
        var e = TestData.Floats(k * d);
        int m = n * h * w;
        var expected = ReferenceNearest(z, m, d, h * w, e, k);
        var actual = Nearest(device, z, new Shape(n, d, h, w), e, k, NearestCodeAlgorithm.Fused);
        AssertNearest(actual, expected, z, d, h * w, e, "fused");
    }

    [Test]
    public void Rows_input_gives_one_index_per_row()
    {
        foreach (var order in Orders(ThreadOrder.Ascending, ThreadOrder.Descending))
        {
            using var device = Open(order);
            int m = TestData.OddSize(130, 400, 128), d = 5, k = 200;
            var z = TestData.Floats(m * d);
            var e = TestData.Floats(k * d);
            var expected = ReferenceNearest(z, m, d, 1, e, k);
            foreach (var algorithm in new[] { NearestCodeAlgorithm.Fused, NearestCodeAlgorithm.GemmThenArgmin })
                AssertNearest(Nearest(device, z, new Shape(m, d), e, k, algorithm), expected, z, d, 1, e, algorithm.ToString());
        }
    }

    [TestCase(2, 64, 8, 9, 300, ThreadOrder.Ascending)]
    [TestCase(2, 64, 8, 9, 300, ThreadOrder.Descending)]
    [TestCase(3, 3, 7, 5, 41, ThreadOrder.Ascending)]
    [TestCase(3, 3, 7, 5, 41, ThreadOrder.Shuffled)]
    public void Fused_equals_gemm_then_argmin(int n, int d, int h, int w, int k, ThreadOrder order)
    {
        using var device = Open(order);
        var z = TestData.Floats(n * d * h * w);
        var e = TestData.Floats(k * d);
        var shape = new Shape(n, d, h, w);
        var fused = Nearest(device, z, shape, e, k, NearestCodeAlgorithm.Fused);
        var unfused = Nearest(device, z, shape, e, k, NearestCodeAlgorithm.GemmThenArgmin);
        // The GEMM sums in another order: only near-ties may differ.
        AssertNearest(fused, unfused, z, d, h * w, e, "fused vs unfused");
        AssertNearest(unfused, ReferenceNearest(z, n * h * w, d, h * w, e, k), z, d, h * w, e, "unfused");
    }

    [Test]
    public void Exact_distances_give_exactly_the_reference_ties_to_the_lowest_index_in_every_path()
    {
        // Small integers: every distance is exact in float whatever the order of summation, and there
        // are many ties, spread over tiles, splits and the threads of a tile.
        using var device = Open();
        int n = 3, d = 5, h = 9, w = 11, k = 300;
        var z = Integers(n * d * h * w, -2, 2);
        var e = Integers(k * d, -2, 2);
        var expected = ReferenceNearest(z, n * h * w, d, h * w, e, k);
        var shape = new Shape(n, d, h, w);
        foreach (int splits in new[] { 1, 2, 3 })
            Assert.That(Nearest(device, z, shape, e, k, NearestCodeAlgorithm.Fused, splits), Is.EqualTo(expected), $"fused, {splits} code splits");
        Assert.That(Nearest(device, z, shape, e, k, NearestCodeAlgorithm.GemmThenArgmin), Is.EqualTo(expected), "GEMM then argmin");
    }

    [TestCase(5)]     // fewer codes than lanes
    [TestCase(8)]
    [TestCase(13)]    // a ragged tail after one group of eight
    [TestCase(300)]
    public void The_row_argmin_is_the_single_ascending_scan_ties_NaN_and_infinity_included(int k)
    {
        // vq_argmin_rows_f32 (the cpu device's search after its GEMM): the lowest index of the smallest enorm[k] − 2·S[m, k]
        // in float arithmetic, a NaN never winning, 0 when nothing is below +inf — whatever the lengths around a vector's.
        using var device = Open();
        var r = new Random(k);
        var rows = new List<float[]>();
        for (int i = 0; i < 40; i++) rows.Add(Enumerable.Range(0, k).Select(_ => (float)r.Next(-3, 4)).ToArray());  // many exact ties
        rows.Add(Enumerable.Repeat(float.NaN, k).ToArray());
        rows.Add(Enumerable.Repeat(float.NegativeInfinity, k).ToArray());  // distance +inf everywhere
        rows.Add(Enumerable.Range(0, k).Select(j => j % 3 == 0 ? float.NaN : 1f - j % 5).ToArray());
        rows.Add(Enumerable.Range(0, k).Select(j => j == k - 1 ? 9f : 0f).ToArray());  // the winner in the last lane or the tail
        var enorm = Enumerable.Range(0, k).Select(j => j % 4 == 1 ? -0f : (float)(j % 3)).ToArray();
        var expected = rows.Select(row =>
        {
            float best = float.PositiveInfinity;
            int bestK = 0;
            for (int j = 0; j < k; j++)
            {
                float dist = enorm[j] - 2.0f * row[j];
                if (dist < best) (best, bestK) = (dist, j);
            }
            return bestK;
        }).ToArray();
        using var sb = device.Upload(rows.SelectMany(x => x).ToArray());
        using var eb = device.Upload(enorm);
        using var ib = device.Upload(new int[rows.Count]);
        NearestCodeKernels.ArgminRows(device, sb.Pointer, eb.Pointer, ib.Pointer, rows.Count, k);
        Assert.That(device.DownloadInts(ib), Is.EqualTo(expected));
    }

    [Test]
    public void Duplicate_codebook_rows_resolve_to_the_lowest_index()
    {
        using var device = Open();
        int n = 2, d = 64, h = 10, w = 13, k = 300, hw = h * w, m = n * hw;
        var e = TestData.Floats(k * d);
        // Copies of row 7: in the same tile, another thread (8); in the same thread's later slot (23: codes
        // tx + 16j); in the same thread's slot of the next tile (135); in another tile and split (200).
        // Copies of row 3 in tiles 1 and 2.
        var copies = new (int From, int To)[] { (7, 8), (7, 23), (7, 135), (7, 200), (3, 130), (3, 299) };
        foreach (var (from, to) in copies) Array.Copy(e, from * d, e, to * d, d);
        // Half the vectors sit next to one of the duplicated rows, so the duplicates are what they choose between.
        var z = TestData.Floats(n * d * hw);
        var r = TestData.Random;
        for (int i = 0; i < m; i += 2)
        {
            int row = i % 4 == 0 ? 7 : 3;
            for (int c = 0; c < d; c++) z[i / hw * d * hw + c * hw + i % hw] = e[row * d + c] + 0.01f * (float)(r.NextDouble() - 0.5);
        }
        var expected = ReferenceNearest(z, m, d, hw, e, k);
        var shape = new Shape(n, d, h, w);
        foreach (int splits in new[] { 1, 3 })
        {
            var actual = Nearest(device, z, shape, e, k, NearestCodeAlgorithm.Fused, splits);
            for (int i = 0; i < m; i += 2) Assert.That(actual[i], Is.EqualTo(i % 4 == 0 ? 7 : 3), $"vector {i}, {splits} splits");
            Assert.That(actual, Has.None.AnyOf(8, 23, 135, 200, 130, 299), "a higher duplicate was chosen");
            AssertNearest(actual, expected, z, d, hw, e, $"fused, {splits} splits");
        }
        // The GEMM path is tie-exact only where the GEMM is: OpenBLAS computes identical columns with
        // different rounding (edge panels, other kernels), so it may pick any copy of the nearest row.
        var unfused = Nearest(device, z, shape, e, k, NearestCodeAlgorithm.GemmThenArgmin);
        for (int i = 0; i < m; i += 2)
            Assert.That(unfused[i], i % 4 == 0 ? Is.AnyOf(7, 8, 23, 135, 200) : Is.AnyOf(3, 130, 299), $"unfused, vector {i}: a copy of the nearest row");
    }

    [Test]
    public void The_code_split_count_does_not_change_the_result()
    {
        using var device = Open();
        int n = 2, d = 19, h = 7, w = 9, k = 520;
        var z = TestData.Floats(n * d * h * w);
        var e = TestData.Floats(k * d);
        var shape = new Shape(n, d, h, w);
        var one = Nearest(device, z, shape, e, k, NearestCodeAlgorithm.Fused, 1);
        foreach (int splits in new[] { 2, 3, 5 })
            Assert.That(Nearest(device, z, shape, e, k, NearestCodeAlgorithm.Fused, splits), Is.EqualTo(one), $"{splits} splits");
    }

    // ---- the op: forward, backward, EMA, usage ---------------------------------------------------------

    /// <summary>Everything one training step of the quantizer produces, on the host.</summary>
    private sealed record StepOutputs(int[] Indices, float[] Zq, float CodebookLoss, float CommitmentLoss, int[] Counts, float[] DzE, float[] DE,
                                      float[] EmaCodebook, float[] EmaSizes, float[] EmaSums);

    private static StepOutputs RunStep(IDevice device, float[] z, Shape shape, float[] e, int k, float[] seed, float beta)
    {
        using var arena = new Arena(device, 64L << 20);
        var tape = new Tape(arena);
        var ctx = new OpContext(arena, tape);
        var zt = Upload(ctx, z, shape);
        zt.RequiresGrad = true;
        var et = Upload(ctx, e, new Shape(k, shape[1]));
        et.RequiresGrad = true;
        var result = VectorQuantizer.Quantize(ctx, zt, et, beta, useEma: false);
        tape.Backward(result.Quantized, Upload(ctx, seed, shape));

        using var emaCodebook = Tensor.FromArray(device, e, new Shape(k, shape[1]));
        using var ema = new EmaCodebook(emaCodebook, decay: 0.9f, epsilon: 1e-3f);
        ema.Update(new OpContext(arena), zt, result.Indices);
        return new StepOutputs(result.Indices.ToIntArray(), result.Quantized.ToArray(), result.CodebookLoss.ToArray()[0],
                               result.CommitmentLoss.ToArray()[0], result.Counts.ToIntArray(), tape.GradOf(zt).ToArray(),
                               tape.GradOf(et).ToArray(), emaCodebook.ToArray(), ema.ClusterSizes.ToArray(), ema.EmbeddingSums.ToArray());
    }

    [Test]
    public void Forward_gives_codebook_rows_in_nchw_and_the_mean_squared_error_as_both_losses()
    {
        using var device = Open();
        int n = 2, d = 6, h = 5, w = 7, k = 11, hw = h * w, m = n * hw;
        var z = TestData.Floats(n * d * hw);
        var e = TestData.Floats(k * d);
        var outputs = RunStep(device, z, new Shape(n, d, h, w), e, k, new float[z.Length], 0.25f);
        AssertNearest(outputs.Indices, ReferenceNearest(z, m, d, hw, e, k), z, d, hw, e, "indices");
        double sq = 0;
        for (int i = 0; i < m; i++)
            for (int c = 0; c < d; c++)
            {
                float q = outputs.Zq[i / hw * d * hw + c * hw + i % hw];
                Assert.That(q, Is.EqualTo(e[outputs.Indices[i] * d + c]), $"z_q of vector {i}, component {c}");
                double diff = (double)At(z, i, c, d, hw) - q;
                sq += diff * diff;
            }
        double mean = sq / z.Length;
        Assert.That(outputs.CodebookLoss, Is.EqualTo(mean).Within(1e-5 * mean));
        Assert.That(outputs.CommitmentLoss, Is.EqualTo(mean).Within(1e-5 * mean));
    }

    [Test]
    public void Lookup_decodes_a_code_map_to_the_quantized_tensor()
    {
        using var device = Open();
        using var arena = new Arena(device, 16L << 20);
        var ctx = new OpContext(arena);
        var (_, e, result) = QuantizeRandom(ctx, n: 2, d: 4, h: 3, w: 5, k: 9);
        Assert.That(VectorQuantizer.Lookup(ctx, result.Indices, e).ToArray(), Is.EqualTo(result.Quantized.ToArray()));
    }

    [Test]
    public void Both_losses_are_the_two_pass_sum_tree_over_at_most_256_partials()
    {
        foreach (var order in Orders(ThreadOrder.Ascending, ThreadOrder.Descending))
        {
            // 4·64·46·46 = 541 696 elements: 34 blocks at the cpu device's 256 · 64 elements a block, each one thread's run
            // summed in eight lanes (a GPU's 256 · 8 would give 265, capped at 256 partials: these losses have always been
            // reduced with that cap). Pass 2 divides by n.
        // The model follows the device's own block count.
            using var device = Open(order);
            using var arena = new Arena(device, 48L << 20);
            var ctx = new OpContext(arena);
            var (z, _, result) = QuantizeRandom(ctx, n: 4, d: 64, h: 46, w: 46, k: 16);
            var ze = z.ToArray();
            var zq = result.Quantized.ToArray();
            int count = ze.Length, blocks = LossKernels.QuantizerLossBlocks(count, device);
            if (OnCpu) Assert.That(blocks, Is.EqualTo(34));
            float Term(int i) => (ze[i] - zq[i]) * (ze[i] - zq[i]);
            float expected = (OnCpu
                ? KernelOrderModels.ChunkTwoPassSum(count, blocks, LossKernels.ChunkLength(count, blocks), Term)
                : KernelOrderModels.TwoPassSum(count, blocks, Term)) * (1f / count);
            // Every term is positive: the sum of magnitudes is the loss itself.
            double tolerance = DeviceTolerance.OrderedSum(Kind, expected);
            Assert.That(result.CodebookLoss.ToArray()[0], Is.EqualTo(expected).Within(tolerance), $"codebook loss, {order}");
            Assert.That(result.CommitmentLoss.ToArray()[0], Is.EqualTo(expected).Within(tolerance), $"commitment loss, {order}");
        }
    }

    [Test]
    public void Backward_gives_z_e_the_upstream_gradient_plus_beta_times_the_commitment_gradient_and_e_the_codebook_gradient()
    {
        foreach (var order in Orders(ThreadOrder.Ascending, ThreadOrder.Descending))
        {
            // K small against M: every code's vectors span several 256-vector sort tiles and 64-position chunks.
            using var device = Open(order);
            int n = 2, d = 9, h = 15, w = 15, k = 6, hw = h * w, m = n * hw;
            const float beta = 0.25f;
            var z = TestData.Floats(n * d * hw);
            var e = TestData.Floats(k * d);
            var seed = TestData.Floats(z.Length);
            var outputs = RunStep(device, z, new Shape(n, d, h, w), e, k, seed, beta);
            var idx = outputs.Indices;
            double numel = z.Length;

            var dz = new double[z.Length];
            for (int i = 0; i < z.Length; i++) dz[i] = seed[i] + beta * 2 * ((double)z[i] - outputs.Zq[i]) / numel;
            Assert.That(outputs.DzE, Is.EqualTo(dz).Within(1e-6), "dL/dz_e = upstream + β·2(z_e − z_q)/n");

            var de = new double[k * d];
            for (int i = 0; i < m; i++)
                for (int c = 0; c < d; c++)
                    de[idx[i] * d + c] += 2 * ((double)e[idx[i] * d + c] - At(z, i, c, d, hw)) / numel;
            Assert.That(outputs.DE, Is.EqualTo(de).Within(1e-6), "dL/dE = Σ over assigned vectors of 2(e_k − z_e)/n");
        }
    }

    [Test]
    public void A_collapsed_codebook_gets_the_whole_gradient_on_its_one_code()
    {
        // Every vector picks code 0: one segment of M positions across many chunks of the segment sums.
        using var device = Open();
        int n = 3, d = 5, h = 12, w = 13, k = 4, hw = h * w, m = n * hw;
        var z = TestData.Floats(n * d * hw, -0.1f, 0.1f);
        var e = new float[k * d];
        for (int j = 1; j < k; j++)
            for (int c = 0; c < d; c++) e[j * d + c] = 5f + j;
        var outputs = RunStep(device, z, new Shape(n, d, h, w), e, k, new float[z.Length], 0.25f);
        Assert.That(outputs.Indices, Is.All.EqualTo(0));
        Assert.That(outputs.Counts, Is.EqualTo(new[] { m, 0, 0, 0 }));
        for (int c = 0; c < d; c++)
        {
            double s = 0;
            for (int i = 0; i < m; i++) s += At(z, i, c, d, hw);
            Assert.That(outputs.DE[c], Is.EqualTo(-2 * s / z.Length).Within(1e-6), $"dE[0, {c}]");
        }
        Assert.That(outputs.DE[d..], Is.All.EqualTo(0f), "unused codes get no gradient");
        var usage = CodebookUsage.FromCounts(outputs.Counts);
        Assert.That((usage.CodesUsed, usage.Perplexity), Is.EqualTo((1, 1.0)));
    }

    [Test]
    public void The_ema_update_equals_the_reference_over_two_steps()
    {
        foreach (var order in Orders(ThreadOrder.Ascending, ThreadOrder.Descending))
        {
            using var device = Open(order);
            int n = 2, d = 7, h = 11, w = 13, k = 10, hw = h * w, m = n * hw;
            const float decay = 0.9f, eps = 1e-3f;
            var e = TestData.Floats(k * d);
            using var arena = new Arena(device, 32L << 20);
            using var codebook = Tensor.FromArray(device, e, new Shape(k, d));
            using var ema = new EmaCodebook(codebook, decay, eps);

            // Reference state: N_k = 1, m_k = e_k.
            var size = Enumerable.Repeat(1.0, k).ToArray();
            var sums = e.Select(v => (double)v).ToArray();
            var current = (float[])e.Clone();
            for (int step = 0; step < 2; step++)
            {
                arena.Reset();
                var ctx = new OpContext(arena);
                var z = TestData.Floats(n * d * hw);
                var zt = Upload(ctx, z, new Shape(n, d, h, w));
                var idx = VectorQuantizer.NearestCodes(ctx, zt, codebook);
                ema.Update(ctx, zt, idx);

                var codes = idx.ToIntArray();
                AssertNearest(codes, ReferenceNearest(z, m, d, hw, current, k), z, d, hw, current, $"step {step} indices");
                var count = new double[k];
                var s = new double[k * d];
                for (int i = 0; i < m; i++)
                {
                    count[codes[i]]++;
                    for (int c = 0; c < d; c++) s[codes[i] * d + c] += At(z, i, c, d, hw);
                }
                for (int j = 0; j < k; j++) size[j] = decay * size[j] + (1 - decay) * count[j];
                for (int i = 0; i < k * d; i++) sums[i] = decay * sums[i] + (1 - decay) * s[i];
                double total = size.Sum();
                var expected = new double[k * d];
                for (int i = 0; i < k * d; i++) expected[i] = sums[i] / ((size[i / d] + eps) / (total + k * eps) * total);

                Assert.That(ema.ClusterSizes.ToArray(), Is.EqualTo(size).Within(1e-5), $"step {step}: N_k");
                Assert.That(ema.EmbeddingSums.ToArray(), Is.EqualTo(sums).Within(1e-5), $"step {step}: m_k");
                current = codebook.ToArray();
                Assert.That(current, Is.EqualTo(expected).Within(1e-4), $"step {step}: e_k = m_k / Ñ_k");
            }
        }
    }

    [Test]
    public void With_ema_the_codebook_gets_no_gradient()
    {
        using var device = Open();
        using var arena = new Arena(device, 16L << 20);
        var tape = new Tape(arena);
        var ctx = new OpContext(arena, tape);
        int n = 1, d = 4, h = 6, w = 6, k = 5;
        var z = Upload(ctx, TestData.Floats(n * d * h * w), new Shape(n, d, h, w));
        z.RequiresGrad = true;
        var e = Upload(ctx, TestData.Floats(k * d), new Shape(k, d));
        e.RequiresGrad = true;
        var result = VectorQuantizer.Quantize(ctx, z, e, 0.25f, useEma: true);
        tape.Backward(result.Quantized, Upload(ctx, TestData.Floats((int)z.Count), z.Shape));
        Assert.That(tape.TryGradOf(e), Is.Null, "the codebook loss's gradient must not be applied");
        Assert.That(tape.TryGradOf(z), Is.Not.Null, "the encoder still gets the straight-through and commitment gradients");
    }

    [Test]
    public void Histogram_perplexity_and_codes_used_equal_the_reference()
    {
        using var device = Open();
        using var arena = new Arena(device, 16L << 20);
        var ctx = new OpContext(arena);
        const int k = 40;
        var (_, _, result) = QuantizeRandom(ctx, n: 3, d: 4, h: 9, w: 10, k);
        var codes = result.Indices.ToIntArray();

        var counts = new int[k];
        foreach (var c in codes) counts[c]++;
        double entropy = 0;
        foreach (var c in counts)
            if (c > 0) entropy -= (double)c / codes.Length * Math.Log((double)c / codes.Length);

        var usage = CodebookUsage.FromCounts(result.Counts);
        Assert.That(usage.Counts, Is.EqualTo(counts));
        Assert.That(usage.CodesUsed, Is.EqualTo(counts.Count(c => c > 0)));
        Assert.That(usage.Perplexity, Is.EqualTo(Math.Exp(entropy)).Within(1e-12));
        Assert.That(CodebookUsage.Measure(ctx, result.Indices, k).Counts, Is.EqualTo(counts), "histogram of a code map");
        Assert.That(CodebookUsage.FromCounts(Enumerable.Repeat(3, 8).ToArray()).Perplexity, Is.EqualTo(8).Within(1e-12), "uniform use: perplexity K");
    }

    // ---- checks -----------------------------------------------------------------------------------------

    private static IEnumerable<TestCaseData> BadInputs()
    {
        yield return new TestCaseData(new[] { 2, 8, 4, 4 }, new[] { 16, 7 }, DType.Float32, 0.25f, "D = 7").SetName("D mismatch");
        yield return new TestCaseData(new[] { 2, 8, 4, 4 }, new[] { 16, 8, 1 }, DType.Float32, 0.25f, "codebook must have rank 2").SetName("codebook rank 3");
        yield return new TestCaseData(new[] { 2, 8, 4, 4 }, new[] { 1, 8 }, DType.Float32, 0.25f, "at least K = 2").SetName("one code");
        yield return new TestCaseData(new[] { 8, 4, 4 }, new[] { 16, 8 }, DType.Float32, 0.25f, "z_e must have rank 4").SetName("z_e rank 3");
        yield return new TestCaseData(new[] { 2, 8, 4, 4 }, new[] { 16, 8 }, DType.Int32, 0.25f, "z must be float32").SetName("integer z_e");
        yield return new TestCaseData(new[] { 2, 8, 4, 4 }, new[] { 16, 8 }, DType.Float32, -1f, "beta").SetName("negative beta");
    }

    [TestCaseSource(nameof(BadInputs))]
    public void Bad_inputs_throw_naming_the_op_before_any_launch(int[] zShape, int[] codebookShape, DType zType, float beta, string detail)
    {
        using var device = Open();
        using var arena = new Arena(device, 1 << 20);
        var ctx = new OpContext(arena);
        var z = ctx.Zeros(new Shape(zShape), zType);
        var e = ctx.Zeros(new Shape(codebookShape));
        long used = arena.Used;
        var error = Assert.Throws<OpArgumentException>(() => VectorQuantizer.Quantize(ctx, z, e, beta, useEma: false));
        Assert.That(error!.Message, Does.StartWith("vector quantizer:").And.Contain(detail));
        Assert.That(arena.Used, Is.EqualTo(used), "nothing was allocated or launched");
    }

    [Test]
    public void Other_entry_points_check_their_inputs_too()
    {
        using var device = Open();
        using var arena = new Arena(device, 1 << 20);
        var ctx = new OpContext(arena);
        var e = ctx.Zeros(new Shape(16, 8));
        Assert.That(() => VectorQuantizer.Lookup(ctx, ctx.Zeros(new Shape(2, 4, 4)), e),
                    Throws.TypeOf<OpArgumentException>().With.Message.StartsWith("codebook lookup:").And.Message.Contains("int32"));
        Assert.That(() => VectorQuantizer.NearestCodes(ctx, ctx.Zeros(new Shape(3, 8, 2)), e),
                    Throws.TypeOf<OpArgumentException>().With.Message.StartsWith("nearest codes:"));
        Assert.That(() => new EmaCodebook(e, decay: 1f), Throws.TypeOf<OpArgumentException>().With.Message.StartsWith("ema codebook:").And.Message.Contains("decay"));
        using var codebook = Tensor.FromArray(device, new float[16 * 8], new Shape(16, 8));
        using var ema = new EmaCodebook(codebook);
        Assert.That(() => ema.Update(ctx, ctx.Zeros(new Shape(2, 8, 4, 4)), ctx.Zeros(new Shape(2, 4, 5), DType.Int32)),
                    Throws.TypeOf<OpArgumentException>().With.Message.StartsWith("ema codebook:").And.Message.Contains("code map"));
    }

    /// <summary>The cpu device's thread orders: a GPU has one order, its own.</summary>
    [TestFixture, Category("Cpu")]
    public class ThreadOrders
    {
        [Test]
        public void Every_thread_order_gives_bit_identical_results()
        {
            // The whole step — fused argmin, gather, losses, both gradients, EMA — is deterministic: no float
            // atomics, fixed reduction trees. Ascending, descending and shuffled thread orders must agree bit for bit.
            int n = 2, d = 7, h = 12, w = 13, k = 5;
            var z = TestData.Floats(n * d * h * w);
            var e = TestData.Floats(k * d);
            var seed = TestData.Floats(z.Length);
            var shape = new Shape(n, d, h, w);
            StepOutputs? first = null;
            foreach (var order in new[] { ThreadOrder.Ascending, ThreadOrder.Descending, ThreadOrder.Shuffled })
            {
                using var device = TestDevices.Cpu(order);
                var outputs = RunStep(device, z, shape, e, k, seed, 0.25f);
                if (first is null)
                {
                    first = outputs;
                    continue;
                }
                Assert.Multiple(() =>
                {
                    Assert.That(outputs.Indices, Is.EqualTo(first.Indices), $"{order}: indices");
                    Assert.That(outputs.Zq, Is.EqualTo(first.Zq), $"{order}: z_q");
                    Assert.That((outputs.CodebookLoss, outputs.CommitmentLoss), Is.EqualTo((first.CodebookLoss, first.CommitmentLoss)), $"{order}: losses");
                    Assert.That(outputs.Counts, Is.EqualTo(first.Counts), $"{order}: counts");
                    Assert.That(outputs.DzE, Is.EqualTo(first.DzE), $"{order}: dz_e");
                    Assert.That(outputs.DE, Is.EqualTo(first.DE), $"{order}: dE");
                    Assert.That(outputs.EmaCodebook, Is.EqualTo(first.EmaCodebook), $"{order}: EMA codebook");
                    Assert.That(outputs.EmaSizes, Is.EqualTo(first.EmaSizes), $"{order}: EMA sizes");
                    Assert.That(outputs.EmaSums, Is.EqualTo(first.EmaSums), $"{order}: EMA sums");
                });
            }
        }

        [Test]
        public void Fused_nearest_codes_agree_across_thread_orders_with_several_splits()
        {
            int n = 2, d = 33, h = 9, w = 8, k = 300;
            var z = TestData.Floats(n * d * h * w);
            var e = TestData.Floats(k * d);
            var shape = new Shape(n, d, h, w);
            using var ascending = TestDevices.Cpu(ThreadOrder.Ascending);
            using var descending = TestDevices.Cpu(ThreadOrder.Descending);
            Assert.That(Nearest(descending, z, shape, e, k, NearestCodeAlgorithm.Fused, 3),
                        Is.EqualTo(Nearest(ascending, z, shape, e, k, NearestCodeAlgorithm.Fused, 3)));
            Assert.That(Nearest(descending, z, shape, e, k, NearestCodeAlgorithm.GemmThenArgmin),
                        Is.EqualTo(Nearest(ascending, z, shape, e, k, NearestCodeAlgorithm.GemmThenArgmin)));
        }
    }
}
