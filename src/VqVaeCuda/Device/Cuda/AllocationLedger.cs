namespace VqVaeCuda.Device.Cuda;

/// <summary>
/// The device allocations of one <see cref="CudaDevice"/> still live, so that disposing the device frees them.
/// </summary>
/// <remarks>
/// Releasing our reference to the primary context frees its memory only when no one else holds the context: cuBLAS, a
/// CUDA-runtime library or a second device object on the same ordinal keep it alive, and a buffer disposed after its
/// device would then leak for the life of the process. So the device frees every live allocation at dispose (after
/// synchronising its stream), and a buffer disposed later finds nothing left to free. The bookkeeping is kept apart from
/// the driver calls so that it is tested without a GPU.
/// </remarks>
internal sealed class AllocationLedger
{
    private readonly HashSet<ulong> _live = [];
    private bool _closed;

    /// <summary>Allocations not yet freed.</summary>
    public int Count
    {
        get
        {
            lock (_live) return _live.Count;
        }
    }

    /// <summary>True once <see cref="Close"/> has run.</summary>
    public bool IsClosed
    {
        get
        {
            lock (_live) return _closed;
        }
    }

    /// <summary>Records a fresh allocation.</summary>
    /// <exception cref="InvalidOperationException">The ledger is closed (the device is disposed) or the address is already live.</exception>
    public void Add(ulong address)
    {
        lock (_live)
        {
            if (_closed) throw new InvalidOperationException("the device is disposed");
            if (!_live.Add(address)) throw new InvalidOperationException($"address 0x{address:x} is already live");
        }
    }

    /// <summary>
    /// What freeing <paramref name="address"/> should do: true when the caller must free it now (it was live); false
    /// when there is nothing to free because <see cref="Close"/> already freed it.
    /// </summary>
    /// <exception cref="ArgumentException">The ledger is open and the address is not one of its allocations (a double free or a foreign pointer).</exception>
    public bool Remove(ulong address)
    {
        lock (_live)
        {
            if (_live.Remove(address)) return true;
            if (_closed) return false;
            throw new ArgumentException($"0x{address:x} is not a live allocation of this device (freed twice, or allocated elsewhere)", nameof(address));
        }
    }

    /// <summary>Closes the ledger and returns every live allocation, which the caller frees; later <see cref="Remove"/>s return false.</summary>
    public ulong[] Close()
    {
        lock (_live)
        {
            _closed = true;
            var all = _live.Order().ToArray();
            _live.Clear();
            return all;
        }
    }
}
