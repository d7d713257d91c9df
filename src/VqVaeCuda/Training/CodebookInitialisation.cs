using VqVaeCuda.Autodiff;
using VqVaeCuda.Data;
using VqVaeCuda.Models;
using VqVaeCuda.Modules;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Training;

/// <summary>
/// Optional codebook initialisation: encode a seeded random sample of the training images with the
/// untrained encoder and place every code by k-means over those vectors
/// (<see cref="Modules.VectorQuantizer.InitialiseByKMeans"/>), so codes start where encoder outputs actually
/// are instead of in a tiny ball around the origin. Reproducible for a seed.
/// </summary>
public static class CodebookInitialisation
{
    /// <summary>
    /// k-means over the encoder outputs of <paramref name="batches"/> batches of <paramref name="batchSize"/> images of
    /// <paramref name="data"/> drawn with <paramref name="seed"/>; <paramref name="arena"/> holds one batch's forward
    /// (it is reset per batch).
    /// </summary>
    public static void KMeans(VqVae model, ImageDataset data, int batchSize, int batches, int seed, Arena arena)
    {
        var c = model.Config;
        var random = new Random(unchecked(seed * 1_000_003 + 0x6B6D65));
        int images = Math.Min(data.Count, batches * batchSize);
        var order = Enumerable.Range(0, data.Count).OrderBy(_ => random.Next()).Take(images).ToArray();

        var vectors = new List<float[]>();
        for (int start = 0; start < images; start += batchSize)
        {
            int n = Math.Min(batchSize, images - start);
            arena.Reset();
            var ctx = new OpContext(arena);
            var x = ctx.NewTensor(new Shape(n, c.InputChannels, c.ImageSize, c.ImageSize));
            var pixels = new float[n * data.ImageSize];
            for (int i = 0; i < n; i++) data.Image(order[start + i]).CopyTo(pixels.AsSpan(i * data.ImageSize));
            x.CopyFrom(pixels);
            vectors.AddRange(Modules.VectorQuantizer.VectorsOf(model.EncodeToZe(ctx, x)));
        }
        model.Quantizer.InitialiseByKMeans(vectors, random);
    }
}
