using NUnit.Framework.Internal;
using VqVaeCuda.Device;

namespace VqVaeCuda.Tests.Support;

/// <summary>Fresh random inputs per run; NUnit prints its seed on failure so a run can be repeated.</summary>
public static class TestData
{
    public static Randomizer Random => TestContext.CurrentContext.Random;

    public static float[] Floats(int n, float lo = -1f, float hi = 1f)
    {
        var r = Random;
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = lo + (float)r.NextDouble() * (hi - lo);
        return a;
    }

    /// <summary>A size that is not a multiple of <paramref name="multipleToAvoid"/>, in [lo, hi).</summary>
    public static int OddSize(int lo, int hi, int multipleToAvoid = 256)
    {
        int n;
        do n = Random.Next(lo, hi); while (n % multipleToAvoid == 0);
        return n;
    }
}

/// <summary>Upload/download helpers over a device.</summary>
public static class DeviceExtensionsForTests
{
    public static DeviceBuffer Upload(this IDevice device, float[] data)
    {
        var buffer = device.Allocate(data.LongLength * sizeof(float));
        device.CopyToDevice<float>(data, buffer.Pointer);
        return buffer;
    }

    public static DeviceBuffer Upload(this IDevice device, int[] data)
    {
        var buffer = device.Allocate(data.LongLength * sizeof(int));
        device.CopyToDevice<int>(data, buffer.Pointer);
        return buffer;
    }

    public static float[] DownloadFloats(this IDevice device, DeviceBuffer buffer, long? count = null)
    {
        var result = new float[count ?? buffer.Bytes / sizeof(float)];
        device.CopyToHost<float>(buffer.Pointer, result);
        return result;
    }

    public static int[] DownloadInts(this IDevice device, DeviceBuffer buffer, long? count = null)
    {
        var result = new int[count ?? buffer.Bytes / sizeof(int)];
        device.CopyToHost<int>(buffer.Pointer, result);
        return result;
    }
}
