namespace VqVaeCuda.Tests.Support;

/// <summary>
/// Plain C# models of the exact float arithmetic of the shared kernel primitives — which additions happen in
/// which order — so tests can demand the kernels' results bit for bit, not just within rounding.
/// </summary>
public static class KernelOrderModels
{
    /// <summary>
    /// kernels/segment_sum.cuh: sums[k, d] over the vectors whose key is k, in the order the algorithm fixes:
    /// vectors stably sorted by key (keys outside [0, K) last, summed nowhere), the sorted order cut into chunks of
    /// 64 positions, each chunk's part of a key's run summed in order from 0, the parts then added in chunk order.
    /// <paramref name="value"/>(m, d) is component d of vector m.
    /// </summary>
    public static float[] SegmentSums(int[] keys, int k, int d, Func<int, int, float> value)
    {
        const int chunk = 64;
        int Bucket(int key) => key >= 0 && key < k ? key : k;
        var order = Enumerable.Range(0, keys.Length).OrderBy(m => Bucket(keys[m])).ToArray();  // OrderBy is stable
        var sums = new float[k * d];
        int begin = 0;
        for (int key = 0; key < k; key++)
        {
            int end = begin;
            while (end < order.Length && Bucket(keys[order[end]]) == key) end++;
            for (int c = 0; c < d; c++)
            {
                float total = 0f;
                bool first = true;
                for (int start = begin; start < end;)
                {
                    int stop = Math.Min(end, (start / chunk + 1) * chunk);
                    float part = 0f;
                    for (int j = start; j < stop; j++) part += value(order[j], c);
                    total = first ? part : total + part;
                    first = false;
                    start = stop;
                }
                sums[key * d + c] = total;
            }
            begin = end;
        }
        return sums;
    }

    /// <summary>
    /// kernels/block_reduce.cuh's block_sum_f32 over one value per thread: each warp folds with shuffle-down
    /// (offsets 16, 8, 4, 2, 1; lane 0's result), then warp 0 folds the warp sums (missing warps as 0).
    /// </summary>
    public static float BlockSum(float[] perThread)
    {
        int warps = (perThread.Length + 31) / 32;
        var warpSums = new float[32];
        for (int w = 0; w < warps; w++) warpSums[w] = WarpSum(perThread.Skip(32 * w).Take(32).ToArray());
        return WarpSum(warpSums);
    }

    private static float WarpSum(float[] lanes)
    {
        var v = new float[32];
        Array.Copy(lanes, v, lanes.Length);
        for (int offset = 16; offset > 0; offset >>= 1)
        {
            var next = (float[])v.Clone();
            for (int lane = 0; lane + offset < 32; lane++) next[lane] = v[lane] + v[lane + offset];
            v = next;
        }
        return v[0];
    }

    /// <summary>
    /// kernels/reduce_two_pass.cuh's grid_stride_block_sum for block <paramref name="block"/> of a grid of
    /// <paramref name="blocks"/> blocks of <paramref name="threads"/>: each thread adds term(i) over its
    /// grid-stride slice in order from 0, then the block folds its threads' values.
    /// </summary>
    public static float GridStrideBlockSum(int n, int blocks, int threads, int block, Func<int, float> term)
    {
        var perThread = new float[threads];
        for (int t = 0; t < threads; t++)
        {
            float acc = 0f;
            for (int i = block * threads + t; i < n; i += threads * blocks) acc += term(i);
            perThread[t] = acc;
        }
        return BlockSum(perThread);
    }

    /// <summary>
    /// The whole two-pass reduction: pass 1 gives partial[b] = scale · grid_stride_block_sum(b), pass 2 sums the
    /// partials with one block (block_strided_sum = the grid-stride sum with a grid of 1).
    /// </summary>
    public static float TwoPassSum(int n, int blocks, Func<int, float> term, float scale = 1f, int threads = 256)
    {
        var partials = new float[blocks];
        for (int b = 0; b < blocks; b++) partials[b] = scale * GridStrideBlockSum(n, blocks, threads, b, term);
        return GridStrideBlockSum(blocks, 1, threads, 0, i => partials[i]);
    }

    /// <summary>
    /// kernels/losses.cu's mse_partials_chunks_f32 for block <paramref name="block"/>: term(i) over the run
    /// [block·per, (block + 1)·per) ∩ [0, n) into eight running sums (element j of the run into sum j mod 8), added pairwise.
    /// </summary>
    public static float ChunkSum(int n, int per, int block, Func<int, float> term)
    {
        var lanes = new float[8];
        long first = (long)block * per;
        int begin = (int)Math.Min(first, n), end = (int)Math.Min((long)begin + per, n);
        for (int i = begin; i < end; i++) lanes[(i - begin) & 7] += term(i);
        return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    }

    /// <summary>
    /// The cpu device's two-pass MSE reduction: pass 1 gives partial[b] = scale · <see cref="ChunkSum"/>(b) with runs of
    /// <paramref name="per"/>, pass 2 sums the partials with one block of <paramref name="threads"/> as on a GPU.
    /// </summary>
    public static float ChunkTwoPassSum(int n, int blocks, int per, Func<int, float> term, float scale = 1f, int threads = 256)
    {
        var partials = new float[blocks];
        for (int b = 0; b < blocks; b++) partials[b] = scale * ChunkSum(n, per, b, term);
        return GridStrideBlockSum(blocks, 1, threads, 0, i => partials[i]);
    }
}
