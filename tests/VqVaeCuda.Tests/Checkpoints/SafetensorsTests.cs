using SkiaSharp;
using VqVaeCuda.Checkpoints;
using VqVaeCuda.Imaging;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Checkpoints;

[TestFixture, Category("Cpu")]
public class SafetensorsTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => Directory.CreateDirectory(_dir = Path.Combine(Path.GetTempPath(), "vqvae-st-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    [Test]
    public void A_round_trip_is_bit_exact_and_keeps_the_metadata()
    {
        var weights = TestData.Floats(2 * 3 * 4 * 4);
        weights[0] = float.NaN;
        weights[1] = -0f;
        var codes = Enumerable.Range(0, 12).Select(i => i * 37 - 100).ToArray();
        var path = Path.Combine(_dir, "model.safetensors");
        Safetensors.Write(path,
            [SafetensorsTensor.FromFloats("encoder.conv1.weight", [2, 3, 4, 4], weights), SafetensorsTensor.FromInts("codes", [3, 4], codes)],
            new Dictionary<string, string> { ["config"] = "{\"k\":512}", ["step"] = "2000" });

        var (tensors, metadata) = Safetensors.Read(path);
        var w = tensors["encoder.conv1.weight"];
        Assert.That(w.Shape, Is.EqualTo(new long[] { 2, 3, 4, 4 }));
        Assert.That(w.ToFloats().Select(BitConverter.SingleToInt32Bits), Is.EqualTo(weights.Select(BitConverter.SingleToInt32Bits)));
        Assert.That(tensors["codes"].ToInts(), Is.EqualTo(codes));
        Assert.That(metadata["step"], Is.EqualTo("2000"));
        Assert.That(Directory.GetFiles(_dir), Has.Length.EqualTo(1), "no temporary file is left behind");
        Assert.That(BitConverter.ToUInt64(File.ReadAllBytes(path), 0) % 8, Is.Zero, "data starts 8-byte aligned");
    }

    [Test]
    public void A_truncated_file_is_refused_naming_the_file_and_the_tensor()
    {
        var path = Path.Combine(_dir, "cut.safetensors");
        Safetensors.Write(path, [SafetensorsTensor.FromFloats("w", [100], new float[100])]);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^10]);
        var error = Assert.Throws<CheckpointFormatException>(() => Safetensors.Read(path));
        Assert.That(error!.Message, Does.Contain(path).And.Contain("'w'"));
    }

    [Test]
    public void A_file_that_is_not_safetensors_is_refused()
    {
        var path = Path.Combine(_dir, "text.safetensors");
        File.WriteAllText(path, "this is not a checkpoint at all");
        Assert.That(() => Safetensors.Read(path), Throws.TypeOf<CheckpointFormatException>().With.Message.Contains(path));
    }

    [Test]
    public void An_image_grid_has_one_cell_per_image_and_the_right_pixels()
    {
        var originals = new float[2 * 1 * 4 * 5];
        originals[0] = 1f;  // top-left pixel of the first image is white
        var reconstructions = Enumerable.Repeat(0.5f, 2 * 20).ToArray();
        var path = Path.Combine(_dir, "grid.png");
        ImageGrid.SavePng(path, [originals, reconstructions], 1, 4, 5, scale: 2);
        using var bitmap = SKBitmap.Decode(path);
        Assert.That(bitmap.Width, Is.EqualTo(2 + 2 * (10 + 2)));
        Assert.That(bitmap.Height, Is.EqualTo(2 + 2 * (8 + 2)));
        Assert.That(bitmap.GetPixel(2, 2).Red, Is.EqualTo(255));
        Assert.That(bitmap.GetPixel(4, 2).Red, Is.EqualTo(0));
        Assert.That(bitmap.GetPixel(2, 12).Red, Is.EqualTo(128));
    }

    [Test]
    public void A_loss_plot_is_written()
    {
        var path = Path.Combine(_dir, "loss.png");
        double[] steps = [0, 10, 20, 30];
        LossCurvePlot.SavePng(path, "test", new Dictionary<string, (double[], double[])> { ["mse"] = (steps, [1, 0.5, 0.2, 0.1]) });
        using var bitmap = SKBitmap.Decode(path);
        Assert.That(bitmap.Width, Is.EqualTo(900));
    }
}
