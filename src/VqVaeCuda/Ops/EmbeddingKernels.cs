using VqVaeCuda.Device;
using static VqVaeCuda.Ops.KernelLaunch;

namespace VqVaeCuda.Ops;

/// <summary>
/// Launches of kernels/embedding.cu: the one gather (table rows by index into the [outer, D, inner]
/// layout) used by <see cref="Embedding"/> and by the quantizer's z_q and lookup, and the atomic backward
/// kept beside the deterministic one (<see cref="SegmentSumKernels"/>). Grid-stride over S·D, block 256.
/// </summary>
internal static class EmbeddingKernels
{
    /// <summary>out[(o·D + d)·inner + p] = table[indices[o·inner + p], d]; NaN for an index outside [0, rows).</summary>
    public static void Gather(IDevice device, DevicePointer table, DevicePointer indices, DevicePointer output, int rows, int dim, int inner, int count) =>
        Gather(device, FormFor(device), table, indices, output, rows, dim, inner, count);

    /// <summary><see cref="Gather(IDevice, DevicePointer, DevicePointer, DevicePointer, int, int, int, int)"/> in a chosen form (tests, verify): the same bits.</summary>
    internal static void Gather(IDevice device, KernelForm form, DevicePointer table, DevicePointer indices, DevicePointer output, int rows, int dim,
                                int inner, int count) =>
        LaunchPointwise(device, form, "embedding_forward_f32", "embedding_forward_chunks_f32", count, table, indices, output, rows, dim, inner, count);

    /// <summary>dtable[indices[s], d] += dout at (s, d) with float atomics (order-dependent rounding).</summary>
    public static void BackwardAtomic(IDevice device, DevicePointer dout, DevicePointer indices, DevicePointer dtable, int rows, int dim, int inner,
                                      int count) =>
        LaunchGridStride(device, "embedding_backward_atomic_f32", count, dout, indices, dtable, rows, dim, inner, count);
}
