using VqVaeCuda.Autodiff;
using VqVaeCuda.Checkpoints;
using VqVaeCuda.Data;
using VqVaeCuda.Imaging;
using VqVaeCuda.Models;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Training;

/// <summary>Everything one reconstruction pass computes, on the host, for inspection.</summary>
/// <param name="Inputs">x [N, C, H, W].</param>
/// <param name="EncoderOutput">z_e [N, D, h, w].</param>
/// <param name="Codes">The code map k [N, h, w].</param>
/// <param name="Quantized">z_q [N, D, h, w].</param>
/// <param name="Reconstructions">x̂ [N, C, H, W].</param>
/// <param name="Config">The model's configuration (gives the shapes).</param>
public sealed record ReconstructionResult(float[] Inputs, float[] EncoderOutput, int[] Codes, float[] Quantized, float[] Reconstructions, VqVaeConfig Config)
{
    /// <summary>Number of images.</summary>
    public int Count => Codes.Length / (Config.LatentSize * Config.LatentSize);

    /// <summary>Writes the PNG grid of the inputs over their reconstructions (clamped to [0,1]).</summary>
    public void SaveGrid(string path)
    {
        var shown = Reconstructions.Select(v => Math.Clamp(v, 0f, 1f)).ToArray();
        ImageGrid.SavePng(path, [Inputs, shown], Config.InputChannels, Config.ImageSize, Config.ImageSize);
    }

    /// <summary>Writes all five arrays as one safetensors file (inputs, z_e, codes, z_q, reconstruction).</summary>
    public void SaveSafetensors(string path)
    {
        long n = Count, c = Config.InputChannels, s = Config.ImageSize, d = Config.EmbeddingDim, l = Config.LatentSize;
        Safetensors.Write(path,
        [
            SafetensorsTensor.FromFloats("inputs", [n, c, s, s], Inputs),
            SafetensorsTensor.FromFloats("z_e", [n, d, l, l], EncoderOutput),
            SafetensorsTensor.FromInts("codes", [n, l, l], Codes),
            SafetensorsTensor.FromFloats("z_q", [n, d, l, l], Quantized),
            SafetensorsTensor.FromFloats("reconstruction", [n, c, s, s], Reconstructions),
        ], new Dictionary<string, string> { ["config"] = Config.ToJson() });
    }
}

/// <summary>
/// Using a trained VQ-VAE on host arrays: reconstruct images (every intermediate), encode a data set to
/// code maps (<see cref="EncodeCodes"/>), decode code maps to images (<see cref="DecodeCodes"/>).
/// </summary>
public static class VqVaeInference
{
    /// <summary>Runs encoder, quantizer and decoder on <paramref name="count"/> images of <paramref name="data"/> from <paramref name="first"/>.</summary>
    public static ReconstructionResult Reconstruct(VqVae model, ImageDataset data, int first, int count)
    {
        CheckData(model, data);
        if (first < 0 || count < 1 || first + count > data.Count)
            throw new ArgumentException($"images {first}..{first + count - 1} are outside '{data.Name}' (0..{data.Count - 1})");
        var c = model.Config;
        using var arena = new Arena(model.Device, ArenaBytes(model, count));
        var ctx = new OpContext(arena);
        var x = ctx.NewTensor(new Shape(count, c.InputChannels, c.ImageSize, c.ImageSize));
        var inputs = data.Pixels.AsSpan(first * data.ImageSize, count * data.ImageSize).ToArray();
        x.CopyFrom(inputs);
        var output = model.Forward(ctx, x);
        return new ReconstructionResult(inputs, output.EncoderOutput.ToArray(), output.Quantized.Indices.ToIntArray(),
                                        output.Quantized.Quantized.ToArray(), output.Reconstruction.ToArray(), c);
    }

    /// <summary>The code map of every image of <paramref name="data"/>: [N, h, w] flattened, in data order.</summary>
    public static int[] EncodeCodes(VqVae model, ImageDataset data, int batchSize = 256, IProgress<int>? progress = null)
    {
        CheckData(model, data);
        var c = model.Config;
        int per = c.LatentSize * c.LatentSize;
        var codes = new int[(long)data.Count * per];
        using var arena = new Arena(model.Device, ArenaBytes(model, Math.Min(batchSize, data.Count)));
        for (int start = 0; start < data.Count; start += batchSize)
        {
            int n = Math.Min(batchSize, data.Count - start);
            arena.Reset();
            var ctx = new OpContext(arena);
            var x = ctx.NewTensor(new Shape(n, c.InputChannels, c.ImageSize, c.ImageSize));
            x.CopyFrom(data.Pixels.AsSpan(start * data.ImageSize, n * data.ImageSize));
            var indices = model.EncodeToCodes(ctx, x);
            indices.ToIntArray().CopyTo(codes, (long)start * per);
            progress?.Report(start + n);
        }
        return codes;
    }

    /// <summary>Images [N, C, H, W] decoded from code maps [N, h, w] (values clamped to [0,1]).</summary>
    public static float[] DecodeCodes(VqVae model, int[] codes, int batchSize = 256)
    {
        var c = model.Config;
        int per = c.LatentSize * c.LatentSize;
        if (codes.Length == 0 || codes.Length % per != 0)
            throw new ArgumentException($"{codes.Length} codes are not a whole number of {c.LatentSize}x{c.LatentSize} code maps");
        if (codes.Any(k => k < 0 || k >= c.CodebookSize))
            throw new ArgumentException($"a code is outside 0..{c.CodebookSize - 1} (this model's codebook)");
        int count = codes.Length / per, imageSize = c.InputChannels * c.ImageSize * c.ImageSize;
        var images = new float[(long)count * imageSize];
        using var arena = new Arena(model.Device, ArenaBytes(model, Math.Min(batchSize, count)));
        for (int start = 0; start < count; start += batchSize)
        {
            int n = Math.Min(batchSize, count - start);
            arena.Reset();
            var ctx = new OpContext(arena);
            var k = ctx.NewTensor(new Shape(n, c.LatentSize, c.LatentSize), DType.Int32);
            k.CopyFrom(codes.AsSpan(start * per, n * per));
            var x = model.DecodeFromCodes(ctx, k).ToArray();
            for (int i = 0; i < x.Length; i++) x[i] = Math.Clamp(x[i], 0f, 1f);
            x.CopyTo(images, (long)start * imageSize);
        }
        return images;
    }

    private static void CheckData(VqVae model, ImageDataset data)
    {
        var c = model.Config;
        if (data.Channels != c.InputChannels || data.Height != c.ImageSize || data.Width != c.ImageSize)
            throw new ArgumentException($"'{data.Name}' has {data.Channels}x{data.Height}x{data.Width} images, the model takes {c.InputChannels}x{c.ImageSize}x{c.ImageSize}");
    }

    // One forward pass of a batch, measured (a guess from the architecture either wastes device memory
    // or runs out).
    private static long ArenaBytes(VqVae model, int batch)
    {
        var c = model.Config;
        return Arena.Measure(model.Device, probe =>
        {
            var ctx = new OpContext(probe);
            model.Forward(ctx, ctx.Zeros(new Shape(batch, c.InputChannels, c.ImageSize, c.ImageSize)));
        });
    }
}
