using VqVaeCuda.Device;

namespace VqVaeCuda.Benchmarks;

/// <summary>Median-of-repetitions timing with device events, after warm-up runs.</summary>
internal static class Timing
{
    public static double MedianMilliseconds(IDevice device, Action run, int warmup, int repetitions)
    {
        for (int i = 0; i < warmup; i++) run();
        device.Synchronize();
        var samples = new double[repetitions];
        for (int i = 0; i < repetitions; i++)
        {
            using var start = device.Record();
            run();
            using var end = device.Record();
            samples[i] = device.ElapsedMilliseconds(start, end);
        }
        Array.Sort(samples);
        return samples[repetitions / 2];
    }

    public static double MedianMilliseconds(Action run, int warmup, int repetitions)
    {
        for (int i = 0; i < warmup; i++) run();
        var samples = new double[repetitions];
        for (int i = 0; i < repetitions; i++)
        {
            long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
            run();
            samples[i] = System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        Array.Sort(samples);
        return samples[repetitions / 2];
    }
}
