using VqVaeCuda.Autodiff;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Training;

/// <summary>
/// Optional codebook initialisation: encode the first few batches with the untrained encoder and run
/// k-means (k-means++ seeding, then Lloyd iterations) over those vectors, so every code starts where
/// encoder outputs actually are instead of in a tiny ball around the origin. Runs on the host: it is
/// a one-off of a few seconds. Seeded, so reproducible.
/// </summary>
internal static class KMeansInitialisation
{
    private const int Iterations = 10;

    public static void Run(VqVaeTrainer trainer)
    {
        var model = trainer.Model;
        var c = model.Config;
        var data = trainer.TrainingData;
        var random = new Random(unchecked(trainer.Options.Seed * 1_000_003 + 0x6B6D65));
        int images = Math.Min(data.Count, trainer.Options.KMeansBatches * trainer.Options.BatchSize);
        var order = Enumerable.Range(0, data.Count).OrderBy(_ => random.Next()).Take(images).ToArray();

        var vectors = new List<float[]>();
        int batch = trainer.Options.BatchSize;
        for (int start = 0; start < images; start += batch)
        {
            int n = Math.Min(batch, images - start);
            trainer.Arena.Reset();
            var ctx = new OpContext(trainer.Arena);
            var x = ctx.NewTensor(new Shape(n, c.InputChannels, c.ImageSize, c.ImageSize));
            var pixels = new float[n * data.ImageSize];
            for (int i = 0; i < n; i++) data.Image(order[start + i]).CopyTo(pixels.AsSpan(i * data.ImageSize));
            x.CopyFrom(pixels);
            var z = model.Encode(ctx, x).ToArray();
            int hw = c.LatentSize * c.LatentSize, d = c.EmbeddingDim;
            for (int m = 0; m < n * hw; m++)
            {
                var v = new float[d];
                EncoderVectors.Copy(z, m, d, hw, v);
                vectors.Add(v);
            }
        }
        var centres = Cluster(vectors, c.CodebookSize, c.EmbeddingDim, random);
        var flat = centres.SelectMany(v => v).ToArray();
        model.Codebook.Value.CopyFrom(flat);
        if (model.Ema is { } ema)
        {
            ema.EmbeddingSums.CopyFrom(flat);
            ema.ClusterSizes.CopyFrom(Enumerable.Repeat(1f, c.CodebookSize).ToArray());
        }
    }

    internal static float[][] Cluster(List<float[]> points, int k, int d, Random random)
    {
        // k-means++: each next centre drawn with probability proportional to its squared distance.
        var centres = new float[k][];
        centres[0] = (float[])points[random.Next(points.Count)].Clone();
        var nearest = points.Select(p => Distance(p, centres[0])).ToArray();
        for (int c = 1; c < k; c++)
        {
            double total = nearest.Sum();
            double pick = random.NextDouble() * total;
            int chosen = 0;
            for (double acc = 0; chosen < points.Count - 1; chosen++)
            {
                acc += nearest[chosen];
                if (acc >= pick) break;
            }
            centres[c] = (float[])points[chosen].Clone();
            for (int i = 0; i < points.Count; i++) nearest[i] = Math.Min(nearest[i], Distance(points[i], centres[c]));
        }
        var assignment = new int[points.Count];
        for (int iteration = 0; iteration < Iterations; iteration++)
        {
            Parallel.For(0, points.Count, i =>
            {
                int best = 0;
                double bestDistance = double.MaxValue;
                for (int c = 0; c < k; c++)
                {
                    double dist = Distance(points[i], centres[c]);
                    if (dist < bestDistance) (best, bestDistance) = (c, dist);
                }
                assignment[i] = best;
            });
            var sums = new double[k, d];
            var counts = new int[k];
            for (int i = 0; i < points.Count; i++)
            {
                counts[assignment[i]]++;
                for (int j = 0; j < d; j++) sums[assignment[i], j] += points[i][j];
            }
            for (int c = 0; c < k; c++)
                if (counts[c] > 0)
                    for (int j = 0; j < d; j++) centres[c][j] = (float)(sums[c, j] / counts[c]);
        }
        return centres;
    }

    private static double Distance(float[] a, float[] b)
    {
        double s = 0;
        for (int j = 0; j < a.Length; j++)
        {
            double t = a[j] - b[j];
            s += t * t;
        }
        return s;
    }
}
