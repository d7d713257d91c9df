using VqVaeCuda.Device;

namespace VqVaeCuda.Tensors;

/// <summary>The arena could not satisfy an allocation.</summary>
public sealed class ArenaExhaustedException(string message) : InvalidOperationException(message);

/// <summary>A position in an <see cref="Arena"/> (<see cref="Arena.Mark"/>), to free back to with <see cref="Arena.Release"/>.</summary>
public readonly record struct ArenaMark(long Offset, int Generation);

/// <summary>
/// Per-step memory for activations and temporaries: one device buffer and a bump pointer, reset at the
/// start of each step. Because a step allocates the same sizes in the same order, every tensor gets
/// the same address every step — which is what lets a whole training step be captured as one CUDA
/// graph. Tensors from the arena are views: they die with the next <see cref="Reset"/>.
/// </summary>
public sealed class Arena : IDisposable
{
    /// <summary>Allocations start on 256-byte boundaries, as cudaMalloc's do (coalescing, vector loads).</summary>
    public const int Alignment = 256;

    private readonly DeviceBuffer _buffer;
    private long _offset;

    /// <summary>An arena of <paramref name="capacityBytes"/> on <paramref name="device"/>.</summary>
    public Arena(IDevice device, long capacityBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacityBytes, Alignment);
        Device = device;
        _buffer = device.Allocate(capacityBytes);
        Capacity = capacityBytes;
    }

    /// <summary>The device.</summary>
    public IDevice Device { get; }

    /// <summary>Total bytes.</summary>
    public long Capacity { get; }

    /// <summary>Bytes handed out since the last reset.</summary>
    public long Used => _offset;

    /// <summary>The most bytes ever in use at once: size the arena from this.</summary>
    public long HighWater { get; private set; }

    /// <summary>Generation counter: incremented by every reset (lets views detect staleness in debugging).</summary>
    public int Generation { get; private set; }

    /// <summary>A tensor of <paramref name="shape"/> from the arena (contents unspecified).</summary>
    /// <exception cref="ArenaExhaustedException">Not enough room left; the message gives the sizes.</exception>
    public Tensor Allocate(Shape shape, DType dtype = DType.Float32, string? purpose = null)
    {
        long bytes = shape.Count * 4;
        long start = (_offset + Alignment - 1) / Alignment * Alignment;
        if (start + bytes > Capacity)
            throw new ArenaExhaustedException(
                $"arena of {Capacity / 1048576.0:F1} MiB exhausted: {Used / 1048576.0:F1} MiB in use, {bytes / 1048576.0:F2} MiB requested" +
                (purpose is null ? "" : $" for {purpose}") + $" {shape}; create the arena with more capacity");
        _offset = start + bytes;
        HighWater = Math.Max(HighWater, _offset);
        return new Tensor(Device, _buffer.Pointer.Offset(start), shape, dtype);
    }

    /// <summary>
    /// Where the next allocation would start: hand it to <see cref="Release"/> to give back everything allocated
    /// after it. An op that records no backward frees its temporaries (column matrices, layout copies) this way, so an
    /// inference forward needs one op's temporaries at a time instead of every op's (a third of the memory for the
    /// fashion-mnist VQ-VAE).
    /// </summary>
    public ArenaMark Mark() => new(_offset, Generation);

    /// <summary>
    /// Frees every allocation made since <paramref name="mark"/>: tensors allocated after it must no longer be used.
    /// Safe on a GPU too: the stream runs the kernels that read those tensors before any later kernel that reuses them.
    /// </summary>
    /// <exception cref="InvalidOperationException">The mark is from before the last <see cref="Reset"/>, or beyond the bytes in use.</exception>
    public void Release(ArenaMark mark)
    {
        if (mark.Generation != Generation || mark.Offset > _offset)
            throw new InvalidOperationException($"arena mark at {mark.Offset} (generation {mark.Generation}) does not lie within the allocations in use ({_offset} bytes, generation {Generation})");
        _offset = mark.Offset;
    }

    /// <summary>A zero-filled tensor from the arena.</summary>
    public Tensor Zeros(Shape shape, DType dtype = DType.Float32, string? purpose = null)
    {
        var t = Allocate(shape, dtype, purpose);
        Device.FillBytes(t.Pointer, 0, t.Bytes);
        return t;
    }

    /// <summary>
    /// The bytes an arena needs for <paramref name="step"/>, measured instead of predicted: the step runs
    /// in an arena that doubles (from 64 MiB, up to 64 GiB) until it fits, and the high-water mark plus
    /// an eighth and 1 MiB of margin is returned. The step should change nothing but arena memory.
    /// </summary>
    public static long Measure(IDevice device, Action<Arena> step)
    {
        for (long bytes = 64L << 20; ; bytes *= 2)
        {
            using var probe = new Arena(device, bytes);
            try
            {
                step(probe);
                return probe.HighWater + probe.HighWater / 8 + (1L << 20);
            }
            catch (ArenaExhaustedException) when (bytes < (64L << 30))
            {
            }
        }
    }

    /// <summary>Forgets every allocation: the next step starts again at offset 0.</summary>
    public void Reset()
    {
        _offset = 0;
        Generation++;
    }

    /// <inheritdoc />
    public void Dispose() => _buffer.Dispose();
}
