using VqVaeCuda.Device;
using static VqVaeCuda.Ops.KernelLaunch;

namespace VqVaeCuda.Ops;

/// <summary>
/// Launches of kernels/segment_sum.cu: the key histogram and the one deterministic sum by key (stable
/// counting sort, ordered segment sums, fix-up; kernels/segment_sum.cuh). The quantizer's code counts and
/// code sums and the embedding's backward go through here.
/// </summary>
internal static class SegmentSumKernels
{
    /// <summary>Vectors per tile of the counting sort (VQ_SEGMENT_TILE) = the placement kernel's block.</summary>
    public const int SortTile = 256;

    /// <summary>Sorted positions per chunk of the segment sums (VQ_SEGMENT_CHUNK).</summary>
    public const int SumChunk = 64;

    /// <summary>Threads of the one-block scan.</summary>
    public const int ScanBlock = 1024;

    /// <summary>counts[k] += number of keys equal to k (counts must start at zero; keys outside [0, K) are not counted).</summary>
    public static void Histogram(IDevice device, DevicePointer keys, DevicePointer counts, int m, int k) =>
        LaunchGridStride(device, "key_histogram_i32", m, keys, counts, m, k);

    /// <summary>Scratch sizes (in 4-byte elements) of <see cref="Sums"/>: tiles T, the (K+1)·T tile counts, their scan, chunks.</summary>
    public static (int Tiles, int TileCounts, int Base, int Chunks) Scratch(int m, int k)
    {
        int tiles = (m + SortTile - 1) / SortTile;
        int chunks = (m + SumChunk - 1) / SumChunk;
        int tileCounts = (k + 1) * tiles;
        return (tiles, tileCounts, tileCounts + 1, chunks);
    }

    /// <summary>
    /// exclusive scan of n ints: output[i] = Σ_{j&lt;i} input[j], output[n] = the total (one block of <see cref="ScanBlock"/>).
    /// </summary>
    public static void ExclusiveScan(IDevice device, DevicePointer input, DevicePointer output, int n) =>
        Launch(device, "exclusive_scan_i32", 1, ScanBlock, input, output, n);

    /// <summary>
    /// sums[k, :] = Σ of the vectors whose key is k, for the M vectors of D components of <paramref name="values"/>
    /// in the [outer, D, inner] layout; keys outside [0, K) are summed nowhere. Deterministic: the order of the
    /// additions is fixed by the keys alone. <paramref name="tileCounts"/> must be zero on entry; the other
    /// scratch (sizes from <see cref="Scratch"/>: base, order [M], sortedKeys [M], head and tail [Chunks, D]) is overwritten.
    /// </summary>
    public static void Sums(IDevice device, DevicePointer values, int m, int d, int inner, DevicePointer keys, int k, DevicePointer sums,
                            DevicePointer tileCounts, DevicePointer @base, DevicePointer order, DevicePointer sortedKeys, DevicePointer head,
                            DevicePointer tail)
    {
        var (tiles, tileCountLength, _, chunks) = Scratch(m, k);
        LaunchGridStride(device, "segment_tile_counts_i32", m, keys, tileCounts, m, k, tiles);
        ExclusiveScan(device, tileCounts, @base, tileCountLength);
        if (tiles > 0) Launch(device, "segment_sort_i32", tiles, SortTile, keys, @base, order, sortedKeys, m, k, tiles);
        LaunchGridStride(device, "segment_chunk_sums_f32", (long)chunks * d, values, order, sortedKeys, sums, head, tail, m, k, d, inner);
        LaunchGridStride(device, "segment_sums_fixup_f32", (long)k * d, @base, head, tail, sums, k, d, tiles);
    }
}
