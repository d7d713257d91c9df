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
    /// capped by what the process's control group may still use (a container's memory limit, v1 or v2). Where neither is
    /// readable (not Linux), the .NET runtime's view of the memory it may use.
    /// </summary>
    public static long AvailableBytes()
    {
        long? meminfo = MemAvailable(), cgroup = ControlGroupHeadroom();
        if (meminfo is null && cgroup is null) return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        return Math.Min(meminfo ?? long.MaxValue, cgroup ?? long.MaxValue);
    }

    /// <summary>Limit minus usage of this process's memory control group, or null without a limit.</summary>
    private static long? ControlGroupHeadroom()
    {
        (string Limit, string Usage)[] files =
        [
            ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),                              // v2
            ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"), // v1
        ];
        foreach (var (limitFile, usageFile) in files)
        {
            // v2 writes "max" and v1 a number near 2^63 when there is no limit.
            if (ReadNumber(limitFile) is { } limit && limit < (1L << 60) && ReadNumber(usageFile) is { } usage)
                return Math.Max(0, limit - usage);
        }
        return null;
    }

    private static long? ReadNumber(string path)
    {
        try
        {
            return File.Exists(path) && long.TryParse(File.ReadAllText(path).Trim(), out long value) ? value : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
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
