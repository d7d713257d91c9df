namespace VqVaeCuda.Device;

/// <summary>
/// How much memory this machine can still give: what the CPU device allocates from and what readers check a file's
/// claimed sizes against before allocating. On Linux an allocation larger than that does not fail: it succeeds and the
/// kernel's OOM killer ends the process when the pages are touched, so the check must come first.
/// </summary>
public static class HostMemory
{
    /// <summary>
    /// Bytes available for new allocations: Linux's <c>MemAvailable</c> (free memory plus what the kernel can reclaim),
    /// capped by the .NET runtime's own limit (a container's memory limit); where <c>/proc/meminfo</c> is absent, the
    /// runtime's limit alone.
    /// </summary>
    public static long AvailableBytes()
    {
        long runtimeLimit = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        long? meminfo = MemAvailable();
        return meminfo is { } m ? Math.Min(m, runtimeLimit) : runtimeLimit;
    }

    private static long? MemAvailable()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                if (!line.StartsWith("MemAvailable:", StringComparison.Ordinal)) continue;
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return parts.Length >= 2 && long.TryParse(parts[1], out long kib) ? kib * 1024 : null;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return null;
    }

    /// <summary>"123456789 bytes (117.7 MiB)": exact for the record, rounded for the reader.</summary>
    public static string Describe(long bytes)
    {
        string[] units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        double value = bytes;
        int unit = -1;
        while (Math.Abs(value) >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        return unit < 0 ? $"{bytes} bytes" : $"{bytes} bytes ({value:0.0} {units[unit]})";
    }
}
