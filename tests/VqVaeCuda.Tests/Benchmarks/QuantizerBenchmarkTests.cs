using System.Text.Json;
using VqVaeCuda.Benchmarks;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Benchmarks;

/// <summary>The quantizer benchmark at toy sizes: its byte counts, the fused speedup, and the JSON name the CLI writes.</summary>
[TestFixture, Category("Cpu")]
public class QuantizerBenchmarkTests
{
    [Test]
    public void Each_codebook_size_gives_a_fused_and_an_unfused_result_with_the_speedup_on_the_fused_one()
    {
        using var device = TestDevices.Cpu();
        int m = 300, d = 8, k = 130;
        var results = QuantizerBenchmarks.Run(device, new QuantizerBenchmarkOptions
        {
            Vectors = m, Dimensions = d, CodebookSizes = [k], Repetitions = 1, Warmup = 0,
        });
        Assert.That(results, Has.Count.EqualTo(4));
        var fused = results[0];
        var unfused = results[1];
        double inputs = 4.0 * m * d + 4.0 * k * d + 4.0 * k + 4.0 * m;
        Assert.That(fused.Flops, Is.EqualTo(2.0 * m * k * d));
        Assert.That(unfused.Flops, Is.EqualTo(2.0 * m * k * d));
        Assert.That(unfused.Bytes - inputs, Is.EqualTo(2 * 4.0 * m * k), "unfused also writes and reads the M×K matrix");
        Assert.That(fused.Bytes, Is.GreaterThanOrEqualTo(inputs).And.LessThan(unfused.Bytes));
        Assert.That(fused.FusedSpeedup, Is.EqualTo(unfused.MedianMilliseconds / fused.MedianMilliseconds).Within(1e-12));
        Assert.That(unfused.FusedSpeedup, Is.Null);
        Assert.That(fused.Note, Does.Contain($"for {m} of {m} vectors"), "both paths find the same codes");

        var json = JsonSerializer.Serialize(results, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower });
        using var doc = JsonDocument.Parse(json);
        Assert.That(doc.RootElement[0].GetProperty("fused_speedup").GetDouble(), Is.EqualTo(fused.FusedSpeedup!.Value));
        Assert.That(doc.RootElement[1].TryGetProperty("fused_speedup", out _), Is.False, "null speedups are left out");
    }
}
