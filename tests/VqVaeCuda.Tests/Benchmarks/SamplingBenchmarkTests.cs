using System.Text.Json;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Benchmarks;

/// <summary>`vqvae bench --sampling` at a toy size: one result per map size, with the JSON fields the notes quote.</summary>
[TestFixture, Category("Cpu"), NonParallelizable]
public class SamplingBenchmarkTests
{
    [Test]
    public void Bench_sampling_writes_both_rates_and_the_speedup_per_map_size()
    {
        TestDevices.Cpu().Dispose();  // skip (or fail under CI) without the CPU library
        var file = Path.Combine(Path.GetTempPath(), "vqvae-bench-sampling-" + Guid.NewGuid().ToString("N") + ".json");
        try
        {
            int exit = VqVaeCuda.Cli.Program.Main(["bench", "--sampling", "--device", "cpu", "--prior-preset", "tiny", "--n", "2", "--json", file]);
            Assert.That(exit, Is.Zero);
            using var doc = JsonDocument.Parse(File.ReadAllText(file));
            Assert.That(doc.RootElement.EnumerateArray().Select(r => r.GetProperty("map").GetString()), Is.EqualTo(new[] { "7x7", "8x8" }));
            foreach (var r in doc.RootElement.EnumerateArray())
            {
                foreach (var field in new[] { "naive_samples_per_second", "cached_samples_per_second", "cached_speedup" })
                    Assert.That(r.GetProperty(field).GetDouble(), Is.GreaterThan(0).And.LessThan(double.PositiveInfinity), field);
                Assert.That(r.GetProperty("count").GetInt32(), Is.EqualTo(2));
            }
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Test]
    public void Bench_sampling_refuses_to_run_with_other_benchmarks()
    {
        Assert.That(VqVaeCuda.Cli.Program.Main(["bench", "--sampling", "--kernels", "--device", "cpu"]), Is.Not.Zero);
    }
}
