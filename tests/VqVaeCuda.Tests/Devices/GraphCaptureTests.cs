using VqVaeCuda.Device;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Devices;

/// <summary>
/// <see cref="IGraphCapture"/> on the CPU device: a capture records launches, GEMMs, copies and fills without running them,
/// and a replay runs them in order, equal to running them eagerly. The same test runs on a GPU as a CUDA graph.
/// </summary>
[TestFixture]
public class GraphCaptureTests
{
    private const int N = 24;  // x: N×N, w: N×N

    // One "step": y = x·w (GEMM), zero y's first column (fill), x += 0.1·y (axpy), copy x into z: each replay starts from
    // the x the previous one left, so order and repetition both matter.
    private static void Step(IDevice d, DeviceBuffer x, DeviceBuffer w, DeviceBuffer y, DeviceBuffer z, Kernel axpy)
    {
        d.Gemm(GemmOp.None, GemmOp.None, N, N, N, 1f, x.Pointer, N, w.Pointer, N, 0f, y.Pointer, N);
        d.FillBytes(y.Pointer, 0, N * sizeof(float));
        d.Launch(axpy, Dim3.Cover(N * N, 128), 128, 0, y, x, 0.1f, N * N);
        d.Copy(x.Pointer, z.Pointer, N * N * sizeof(float));
    }

    private static float[] RunSteps(IDevice d, float[] x0, float[] w0, int steps, bool captured)
    {
        using var x = d.Upload(x0);
        using var w = d.Upload(w0);
        using var y = d.Upload(new float[N * N]);
        using var z = d.Upload(new float[N * N]);
        var axpy = d.GetKernel("axpy_f32");
        if (!captured)
        {
            for (int s = 0; s < steps; s++) Step(d, x, w, y, z, axpy);
        }
        else
        {
            var capture = (IGraphCapture)d;
            capture.BeginCapture();
            Step(d, x, w, y, z, axpy);
            using var graph = capture.EndCapture();
            Assert.That(graph.OperationCount, Is.EqualTo(4));
            Assert.That(d.DownloadFloats(z), Is.All.EqualTo(0f), "a capture records; it runs nothing");
            for (int s = 0; s < steps; s++) graph.Launch();
        }
        return [.. d.DownloadFloats(z), .. d.DownloadFloats(y)];
    }

    private static void AssertReplayEqualsEager(IDevice device)
    {
        var x0 = TestData.Floats(N * N);
        var w0 = TestData.Floats(N * N);
        var eager = RunSteps(device, x0, w0, 3, captured: false);
        var replayed = RunSteps(device, x0, w0, 3, captured: true);
        Assert.That(replayed, Is.EqualTo(eager), "three replays = three eager steps, bit for bit");
        Assert.That(eager, Is.Not.EqualTo(RunSteps(device, x0, w0, 2, captured: false)), "the steps depend on each other");
    }

    [Test, Category("Cpu")]
    public void On_the_cpu_replaying_a_capture_equals_running_eagerly()
    {
        using var device = TestDevices.Cpu();
        AssertReplayEqualsEager(device);
    }

    [Test, Category("Cuda")]
    public void On_the_gpu_replaying_a_cuda_graph_equals_running_eagerly()
    {
        using var device = TestDevices.Cuda();
        AssertReplayEqualsEager(device);
    }

    [Test, Category("Cpu")]
    public void Host_synchronisation_copies_and_allocation_are_refused_during_a_capture()
    {
        using var device = TestDevices.Cpu();
        using var buffer = device.Upload(new float[8]);
        device.BeginCapture();
        var host = new float[8];
        Assert.Multiple(() =>
        {
            Assert.Throws<InvalidOperationException>(() => device.CopyToHost<float>(buffer.Pointer, host));
            Assert.Throws<InvalidOperationException>(() => device.CopyToDevice<float>(host, buffer.Pointer));
            Assert.Throws<InvalidOperationException>(() => device.Allocate(16));
            Assert.Throws<InvalidOperationException>(() => device.Synchronize());
            Assert.Throws<InvalidOperationException>(() => device.Record());
            Assert.Throws<InvalidOperationException>(() => device.GetKernel("scale_f32"), "a kernel not loaded before the capture");
            Assert.Throws<InvalidOperationException>(() => device.BeginCapture(), "captures do not nest");
        });
        using var graph = device.EndCapture();
        Assert.That(graph.OperationCount, Is.Zero);
        Assert.That(device.IsCapturing, Is.False);
        Assert.Throws<InvalidOperationException>(() => device.EndCapture(), "no capture in progress");
    }

    [Test, Category("Cpu")]
    public void A_disposed_graph_cannot_be_launched()
    {
        using var device = TestDevices.Cpu();
        device.BeginCapture();
        var graph = device.EndCapture();
        graph.Dispose();
        Assert.Throws<ObjectDisposedException>(() => graph.Launch());
    }
}
