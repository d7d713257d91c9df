using System.Collections.Concurrent;

namespace VqVaeCuda.Data;

/// <summary>
/// Cuts a data set into shuffled, normalised mini-batches, epoch after epoch, assembling the next
/// batches on a background thread while the caller works on the current one.
/// </summary>
/// <remarks>
/// <para>Reproducibility: epoch e is ordered by the permutation drawn from seed + e, and a batch's content
/// depends only on that order, so the sequence of batches is a pure function of the data set and the
/// options, however the threads are scheduled.</para>
/// <para>The worker is a dedicated thread handing batches over a bounded <see cref="BlockingCollection{T}"/>,
/// not a thread-pool task: the CPU device runs kernel blocks on worker threads, and a prefetcher that needed
/// a free pool thread to make progress could stall behind them.</para>
/// <para>One consumer at a time: <see cref="TryNext"/> is not meant to be called from several threads.</para>
/// </remarks>
public sealed class BatchLoader : IDisposable
{
    private readonly BlockingCollection<Item> _queue;
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _worker;
    private readonly ConcurrentBag<Batch> _recycled = new();
    private Exception? _failure;
    private bool _disposed;

    /// <summary>Starts preparing batches of <paramref name="data"/> at once, beginning with epoch <see cref="BatchLoaderOptions.StartEpoch"/>.</summary>
    /// <exception cref="ArgumentException">The options are out of range, or the data set is too small for one batch.</exception>
    public BatchLoader(ImageDataset data, BatchLoaderOptions options)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        if (options.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(options), options.BatchSize, "BatchSize must be at least 1");
        if (options.Prefetch < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Prefetch, "Prefetch must be at least 1");
        if (options.StartEpoch < 0) throw new ArgumentOutOfRangeException(nameof(options), options.StartEpoch, "StartEpoch must not be negative");
        Data = data;
        Options = options;
        BatchesPerEpoch = BatchesPerEpochFor(data.Count, options.BatchSize, options.DropLast);
        if (BatchesPerEpoch == 0)
            throw new ArgumentException($"{data.Name} has {data.Count} images, fewer than one batch of {options.BatchSize}" +
                                        (options.DropLast ? " (and DropLast is on)" : ""), nameof(options));
        if (options.StartBatch < 0 || options.StartBatch >= BatchesPerEpoch)
            throw new ArgumentOutOfRangeException(nameof(options), options.StartBatch, $"StartBatch must lie in 0..{BatchesPerEpoch - 1}");
        Epoch = options.StartEpoch;
        _queue = new BlockingCollection<Item>(options.Prefetch);
        _worker = new Thread(Produce) { IsBackground = true, Name = $"BatchLoader({data.Name})" };
        _worker.Start();
    }

    /// <summary>The data set being batched.</summary>
    public ImageDataset Data { get; }

    /// <summary>The options in force.</summary>
    public BatchLoaderOptions Options { get; }

    /// <summary>The value range of the batches' pixels.</summary>
    public PixelNormalization Normalization => Options.Normalization;

    /// <summary>Batches in each epoch.</summary>
    public int BatchesPerEpoch { get; }

    /// <summary>Batches in one epoch of <paramref name="count"/> images (the last partial one dropped or kept).</summary>
    public static int BatchesPerEpochFor(int count, int batchSize, bool dropLast) =>
        dropLast ? count / batchSize : (count + batchSize - 1) / batchSize;

    /// <summary>The epoch the next batch comes from.</summary>
    public int Epoch { get; private set; }

    /// <summary>
    /// The order in which epoch <paramref name="epoch"/> visits the data set: a permutation of 0..count−1
    /// drawn from seed + epoch, or the identity when not shuffling.
    /// </summary>
    public static int[] EpochOrder(int count, int seed, int epoch, bool shuffle)
    {
        if (!shuffle) return Enumerable.Range(0, count).ToArray();
        return new DeterministicRandom(unchecked((ulong)((long)seed + epoch))).Permutation(count);
    }

    /// <summary>
    /// The next batch of the current epoch, waiting for the worker if it is not ready yet. Returns false once
    /// at the end of each epoch (no batch), after which the next call starts the following epoch.
    /// </summary>
    /// <exception cref="InvalidOperationException">Preparing a batch failed (the cause is the inner exception).</exception>
    public bool TryNext(out Batch batch)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_queue.TryTake(out var item, Timeout.Infinite))
            throw new InvalidOperationException($"batch preparation for {Data.Name} failed: {_failure?.Message}", _failure);
        if (item.Batch is null)
        {
            Epoch = item.Epoch + 1;
            batch = null!;
            return false;
        }
        batch = item.Batch;
        return true;
    }

    /// <summary>The remaining batches of the current epoch (all of them when called at an epoch's start).</summary>
    public IEnumerable<Batch> NextEpoch()
    {
        while (TryNext(out var batch)) yield return batch;
    }

    /// <summary>
    /// Hands a batch the caller has finished with back for reuse of its arrays, which spares the
    /// garbage collector a large allocation per step. Optional; the batch must not be used afterwards.
    /// </summary>
    public void Recycle(Batch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Size == Options.BatchSize && _recycled.Count < Options.Prefetch + 2) _recycled.Add(batch);
    }

    /// <summary>Stops the worker and waits for it to end.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _stop.Cancel();
        _worker.Join();
        _queue.Dispose();
        _stop.Dispose();
    }

    private void Produce()
    {
        var token = _stop.Token;
        try
        {
            for (int epoch = Options.StartEpoch; ; epoch++)
            {
                var order = EpochOrder(Data.Count, Options.Seed, epoch, Options.Shuffle);
                for (int b = epoch == Options.StartEpoch ? Options.StartBatch : 0; b < BatchesPerEpoch; b++)
                {
                    token.ThrowIfCancellationRequested();
                    _queue.Add(new Item(Assemble(order, epoch, b), epoch), token);
                }
                _queue.Add(new Item(null, epoch), token);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // Disposed: nobody is waiting for more batches.
        }
        catch (Exception e)
        {
            // Handed to the consumer, whose TryNext finds the queue completed and throws with this as the cause.
            _failure = e;
            _queue.CompleteAdding();
        }
    }

    private Batch Assemble(int[] order, int epoch, int number)
    {
        int start = number * Options.BatchSize;
        int size = Math.Min(Options.BatchSize, order.Length - start);
        int imageSize = Data.ImageSize;

        float[] pixels;
        int[] indices;
        int[]? labels;
        if (size == Options.BatchSize && _recycled.TryTake(out var old))
            (pixels, indices, labels) = (old.Pixels, old.Indices, old.Labels);
        else
            (pixels, indices, labels) = (new float[size * imageSize], new int[size], Data.Labels is null ? null : new int[size]);

        var source = Data.Pixels;
        bool centre = Options.Normalization == PixelNormalization.MinusOneToOne;
        for (int k = 0; k < size; k++)
        {
            int i = order[start + k];
            indices[k] = i;
            if (labels is not null) labels[k] = Data.Labels![i];
            var from = source.AsSpan(i * imageSize, imageSize);
            var to = pixels.AsSpan(k * imageSize, imageSize);
            if (centre)
                for (int p = 0; p < imageSize; p++) to[p] = 2f * from[p] - 1f;
            else
                from.CopyTo(to);
        }
        return new Batch(pixels, labels, indices, size, Data.Channels, Data.Height, Data.Width, epoch, number, Options.Normalization);
    }

    /// <summary>A prepared batch, or (Batch null) the end of epoch <see cref="Epoch"/>.</summary>
    private readonly record struct Item(Batch? Batch, int Epoch);
}
