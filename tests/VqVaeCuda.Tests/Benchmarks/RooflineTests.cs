using VqVaeCuda.Benchmarks;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Benchmarks;

/// <summary>The floors beside every measured step and op: H100 SXM and H200 (FP32 and TF32), and the CPU's own sgemm rate.</summary>
[TestFixture, Category("Cpu")]
public class RooflineTests
{
    [Test]
    public void The_datasheet_figures_are_the_sxm_columns_with_tf32_dense()
    {
        Assert.Multiple(() =>
        {
            Assert.That(ReferenceGpu.H100Sxm.PeakFlops, Is.EqualTo(67e12));
            Assert.That(ReferenceGpu.H100Sxm.Tf32DenseFlops, Is.EqualTo(989e12 / 2));
            Assert.That(ReferenceGpu.H100Sxm.PeakBytesPerSecond, Is.EqualTo(3.35e12));
            Assert.That(ReferenceGpu.H200.PeakFlops, Is.EqualTo(67e12));
            Assert.That(ReferenceGpu.H200.Tf32DenseFlops, Is.EqualTo(989e12 / 2));
            Assert.That(ReferenceGpu.H200.PeakBytesPerSecond, Is.EqualTo(4.8e12));
            Assert.That(Roofline.Datasheet.Select(r => r.Name), Is.EqualTo(new[] { "H100 SXM", "H200" }));
        });
    }

    [Test]
    public void A_floor_is_the_slower_of_compute_and_memory_and_the_ratio_is_measured_over_it()
    {
        // 6.7 TFLOP and 335 GB: compute-bound at FP32 on both (100 ms); at TF32 memory-bound (100 ms on H100, 69.8 on H200).
        var floors = Roofline.Floors(6.7e12, 3.35e11, measuredMs: 400);
        Assert.That(floors.Select(f => f.Reference), Is.EqualTo(new[] { "H100 SXM", "H200" }));
        var (h100, h200) = (floors[0], floors[1]);
        Assert.Multiple(() =>
        {
            Assert.That(h100.FloorMs, Is.EqualTo(100).Within(1e-9));
            Assert.That(h100.Tf32FloorMs, Is.EqualTo(100).Within(1e-9));
            Assert.That(h100.MeasuredOverFloor, Is.EqualTo(4).Within(1e-12));
            Assert.That(h200.FloorMs, Is.EqualTo(100).Within(1e-9));
            Assert.That(h200.Tf32FloorMs, Is.EqualTo(1e3 * 3.35e11 / 4.8e12).Within(1e-9));
            Assert.That(h200.MeasuredOverTf32Floor, Is.EqualTo(400 / (1e3 * 3.35e11 / 4.8e12)).Within(1e-9));
        });
        var computeBound = Roofline.Floors(4.945e12, 0, measuredMs: 100)[0];
        Assert.That(computeBound.Tf32FloorMs, Is.EqualTo(10).Within(1e-9), "with no bytes, the TF32 floor is the FLOPs at 494.5 TFLOP/s");
    }

    [Test]
    public void On_the_cpu_device_the_measured_sgemm_floor_comes_first_and_the_gpu_floors_follow()
    {
        using var device = TestDevices.Cpu();
        var floors = StepBenchmark.Floors(device, flops: 1e9, bytes: 1e6, measuredMs: 50);
        Assert.That(floors.Select(f => f.Reference), Is.EqualTo(new[] { "cpu (measured sgemm 1024³)", "H100 SXM", "H200" }));
        var cpu = floors[0];
        Assert.Multiple(() =>
        {
            Assert.That(cpu.PeakGflops, Is.GreaterThan(0));
            Assert.That(cpu.FloorMs, Is.EqualTo(1e9 / (cpu.PeakGflops * 1e9) * 1e3).Within(1e-9));
            Assert.That(cpu.Tf32FloorMs, Is.Null);
            Assert.That(cpu.MeasuredOverFloor, Is.EqualTo(50 / cpu.FloorMs).Within(1e-9));
            Assert.That(floors.Skip(1).Select(f => f.MeasuredMs), Is.All.EqualTo(50));
        });
    }

    [Test]
    public void Annotating_op_results_gives_each_its_floors_against_its_own_time()
    {
        var results = new[]
        {
            new BenchmarkResult("conv", "forward", "cpu", 2.0, 1e9, 1e7, 0),
            new BenchmarkResult("relu", "forward", "cpu", 0.5, 1e6, 8e6, 0),
        };
        var annotated = Roofline.Annotate(results, cpuGemmGflops: 100);
        Assert.That(annotated.Select(r => r.Floors!.Count), Is.EqualTo(new[] { 3, 3 }));
        Assert.That(annotated[0].Floors![0].FloorMs, Is.EqualTo(10).Within(1e-9), "1 GFLOP at 100 GFLOP/s");
        Assert.That(annotated[1].Floors![1].MeasuredOverFloor, Is.EqualTo(0.5 / (1e3 * 8e6 / 3.35e12)).Within(1e-6));
    }
}
