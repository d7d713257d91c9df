namespace VqVaeCuda.Data;

/// <summary>
/// The built-in data set that needs nothing installed: one shape per image (disc, rectangle, triangle,
/// ring, cross, diamond, ellipse, star — the label is the kind) at a random position, size and rotation,
/// white on black (<see cref="ShapeStyle.Plain"/>) or in a random grey level or colour on a flat or gently
/// graded background of contrasting tone (<see cref="ShapeStyle.Varied"/>); both styles draw the same shapes.
/// Every image has its own random stream derived from (seed, image index), so image i is the same
/// whichever count is asked for and images are drawn in parallel without changing the result.
/// </summary>
public static class SyntheticShapes
{
    /// <summary>Default image side: the size of MNIST, so the same models run on both.</summary>
    public const int DefaultSize = 28;

    /// <summary>Default channel count.</summary>
    public const int DefaultChannels = 1;

    /// <summary>Class names in label order (the names of <see cref="ShapeKind"/>, lower case).</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
        Enum.GetValues<ShapeKind>().Select(k => k.ToString().ToLowerInvariant()).ToArray();

    private static readonly int KindCount = Enum.GetValues<ShapeKind>().Length;

    /// <summary>
    /// Draws images <paramref name="firstIndex"/> … <paramref name="firstIndex"/> + <paramref name="count"/> − 1
    /// of the set defined by <paramref name="seed"/> (disjoint index ranges give disjoint train and test sets).
    /// </summary>
    public static ImageDataset Generate(int count, int seed, int size = DefaultSize, int channels = DefaultChannels,
                                        int firstIndex = 0, string name = "shapes", ShapeStyle style = ShapeStyle.Plain)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "must not be negative");
        if (size < 4) throw new ArgumentOutOfRangeException(nameof(size), size, "must be at least 4");
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "must be 1 or 3");
        int imageSize = channels * size * size;
        if ((long)count * imageSize > Array.MaxLength)
            throw new ArgumentException($"{count} images of {channels}×{size}×{size} are more than one array can hold");
        var pixels = new float[count * imageSize];
        var labels = new int[count];
        Parallel.For(0, count,
            () => new float[size * size],
            (i, _, coverage) =>
            {
                var rng = DeterministicRandom.ForStream(seed, (long)firstIndex + i);
                labels[i] = (int)Draw(ref rng, size, channels, style, coverage, pixels.AsSpan(i * imageSize, imageSize));
                return coverage;
            },
            _ => { });
        return new ImageDataset(name, pixels, count, channels, size, size, labels, [.. ClassNames]);
    }

    private static ShapeKind Draw(ref DeterministicRandom rng, int size, int channels, ShapeStyle style, float[] coverage, Span<float> image)
    {
        var kind = (ShapeKind)rng.NextInt(KindCount);

        // Every shape fits in a circle of radius r about its centre, and the centre keeps r from the edges,
        // so shapes vary in place and size but are never cut off.
        double r = size * rng.Uniform(0.2, 0.45);
        double cx = rng.Uniform(r, size - r), cy = rng.Uniform(r, size - r);
        var region = MakeRegion(kind, ref rng, cx, cy, r);
        ShapeRasterizer.Coverage(region, size, size, coverage);

        Span<double> foreground = stackalloc double[3], background = stackalloc double[3], slope = stackalloc double[3];
        PickColours(ref rng, channels, foreground, background);

        // A linear gradient of at most ±0.12 across the image; half the images get a flat background.
        bool graded = rng.NextDouble() < 0.5;
        var (gx, gy) = Direction(ref rng);
        for (int c = 0; c < channels; c++) slope[c] = graded ? rng.Uniform(-0.12, 0.12) : 0.0;
        // Plain draws the tones too, and ignores them: the stream, and so every shape, stays that of the varied style.
        if (style == ShapeStyle.Plain)
        {
            foreground.Fill(1.0);
            background.Clear();
            slope.Clear();
        }

        int plane = size * size;
        // Position along the gradient, in [-1, 1]: the projection on a unit direction is at most √2·size/2.
        double half = size / 2.0, norm = half * Math.Sqrt(2.0);
        for (int y = 0; y < size; y++)
        {
            for (int x = 0; x < size; x++)
            {
                double t = ((x + 0.5 - half) * gx + (y + 0.5 - half) * gy) / norm;
                double a = coverage[y * size + x];
                for (int c = 0; c < channels; c++)
                {
                    double bg = background[c] + slope[c] * t;
                    image[c * plane + y * size + x] = (float)Math.Clamp(bg + (foreground[c] - bg) * a, 0.0, 1.0);
                }
            }
        }
        return kind;
    }

    private static ShapeRasterizer.Region MakeRegion(ShapeKind kind, ref DeterministicRandom rng, double cx, double cy, double r)
    {
        switch (kind)
        {
            case ShapeKind.Circle:
                return new ShapeRasterizer.Annulus(cx, cy, r, 0);
            case ShapeKind.Ring:
                return new ShapeRasterizer.Annulus(cx, cy, r, r * rng.Uniform(0.45, 0.7));
            case ShapeKind.Ellipse:
            {
                var (cos, sin) = Rotation(ref rng, full: true);
                return new ShapeRasterizer.RotatedEllipse(cx, cy, r, r * rng.Uniform(0.4, 0.65), cos, sin);
            }
            case ShapeKind.Rectangle:
            {
                // Half-sides a, b with a² + b² = r² keep the corners on the bounding circle.
                double aspect = rng.Uniform(0.5, 1.0);
                double a = r / Math.Sqrt(1 + aspect * aspect), b = a * aspect;
                if (rng.NextDouble() < 0.5) (a, b) = (b, a);
                return Polygon(cx, cy, [a, -a, -a, a], [b, b, -b, -b], Rotation(ref rng, full: false));
            }
            case ShapeKind.Diamond:
            {
                double a = r * rng.Uniform(0.55, 0.8);
                return Polygon(cx, cy, [0, a, 0, -a], [-r, 0, r, 0], Rotation(ref rng, full: false));
            }
            case ShapeKind.Cross:
            {
                double w = r * rng.Uniform(0.22, 0.35), l = Math.Sqrt(r * r - w * w);
                return Polygon(cx, cy,
                    [-w, w, w, l, l, w, w, -w, -w, -l, -l, -w],
                    [-l, -l, -w, -w, w, w, l, l, w, w, -w, -w],
                    Rotation(ref rng, full: false));
            }
            case ShapeKind.Triangle:
            {
                // Vertices at 0°, 120°, 240° with their distances jittered: irregular but never degenerate.
                double h = Math.Sqrt(3.0) / 2;
                double[] ux = [1, -0.5, -0.5], uy = [0, h, -h];
                var xs = new double[3];
                var ys = new double[3];
                for (int k = 0; k < 3; k++)
                {
                    double d = r * rng.Uniform(0.7, 1.0);
                    xs[k] = ux[k] * d;
                    ys[k] = uy[k] * d;
                }
                return Polygon(cx, cy, xs, ys, Rotation(ref rng, full: true));
            }
            case ShapeKind.Star:
            {
                // Unit vectors at multiples of 36° from exact closed forms (cos 36° = (1+√5)/4, …).
                double s5 = Math.Sqrt(5.0);
                double c36 = (1 + s5) / 4, s36 = Math.Sqrt(10 - 2 * s5) / 4;
                double c72 = (s5 - 1) / 4, s72 = Math.Sqrt(10 + 2 * s5) / 4;
                double[] ux = [1, c36, c72, -c72, -c36, -1, -c36, -c72, c72, c36];
                double[] uy = [0, s36, s72, s72, s36, 0, -s36, -s72, -s72, -s36];
                double inner = rng.Uniform(0.38, 0.55);
                var xs = new double[10];
                var ys = new double[10];
                for (int k = 0; k < 10; k++)
                {
                    double d = k % 2 == 0 ? r : r * inner;
                    xs[k] = ux[k] * d;
                    ys[k] = uy[k] * d;
                }
                return Polygon(cx, cy, xs, ys, Rotation(ref rng, full: true));
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }
    }

    private static ShapeRasterizer.Polygon Polygon(double cx, double cy, double[] xs, double[] ys, (double Cos, double Sin) rotation)
    {
        var px = new double[xs.Length];
        var py = new double[ys.Length];
        for (int k = 0; k < xs.Length; k++)
        {
            px[k] = cx + rotation.Cos * xs[k] - rotation.Sin * ys[k];
            py[k] = cy + rotation.Sin * xs[k] + rotation.Cos * ys[k];
        }
        return new ShapeRasterizer.Polygon(px, py);
    }

    /// <summary>
    /// A rotation as (cos θ, sin θ) from the rational parametrisation t = tan(θ/2):
    /// cos θ = (1 − t²)/(1 + t²), sin θ = 2t/(1 + t²). Exact arithmetic, so no platform trigonometry.
    /// Full rotations draw t in [−1, 1] (θ within ±90°) and flip by 180° half the time; the others
    /// stay within about ±15° so that rectangles, crosses and diamonds keep their identity.
    /// </summary>
    private static (double Cos, double Sin) Rotation(ref DeterministicRandom rng, bool full)
    {
        double t = full ? rng.Uniform(-1, 1) : rng.Uniform(-0.13, 0.13);
        double d = 1 + t * t;
        double cos = (1 - t * t) / d, sin = 2 * t / d;
        if (full && rng.NextDouble() < 0.5) (cos, sin) = (-cos, -sin);
        return (cos, sin);
    }

    private static (double X, double Y) Direction(ref DeterministicRandom rng) => Rotation(ref rng, full: true);

    /// <summary>Foreground and background colours (or grey levels) at least a clear step apart.</summary>
    private static void PickColours(ref DeterministicRandom rng, int channels, Span<double> foreground, Span<double> background)
    {
        // Grey: levels at least 0.35 apart. Colour: RGB points at least 0.5 apart. Rejection sampling
        // with a deterministic stream stays deterministic; the acceptance rate is high, so it ends fast.
        double minDistance = channels == 1 ? 0.35 : 0.5;
        while (true)
        {
            double d2 = 0;
            for (int c = 0; c < channels; c++)
            {
                foreground[c] = rng.NextDouble();
                background[c] = rng.Uniform(0.1, 0.9);
                double d = foreground[c] - background[c];
                d2 += d * d;
            }
            if (d2 >= minDistance * minDistance) return;
        }
    }
}
