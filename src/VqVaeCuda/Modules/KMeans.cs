namespace VqVaeCuda.Modules;

/// <summary>
/// k-means on the host for codebook initialisation: k-means++ seeding (each next centre drawn with
/// probability proportional to its squared distance to the nearest centre so far), then Lloyd iterations.
/// Deterministic for a given <see cref="Random"/>. A one-off of a few seconds, so no kernel.
/// </summary>
public static class KMeans
{
    /// <summary>The <paramref name="k"/> centres (each of <paramref name="d"/> components) of <paramref name="points"/>.</summary>
    public static float[][] Cluster(IReadOnlyList<float[]> points, int k, int d, Random random, int iterations = 10)
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
        for (int iteration = 0; iteration < iterations; iteration++)
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
