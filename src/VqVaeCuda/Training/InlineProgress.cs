namespace VqVaeCuda.Training;

/// <summary>
/// An <see cref="IProgress{T}"/> that reports on the reporting thread, in order. <see cref="Progress{T}"/> posts each
/// report to the thread pool, so reports can arrive late or out of order — wrong for a progress bar driven by a loop.
/// </summary>
public sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
{
    /// <inheritdoc />
    public void Report(T value) => report(value);
}
