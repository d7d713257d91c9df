namespace VqVaeCuda.Data;

/// <summary>
/// Plain C# rasterisation for the synthetic set. Only +, −, ×, ÷ and square roots on doubles are used
/// (IEEE-754 makes those exact-rounded everywhere; sin/cos come from the platform's maths library and
/// may differ in the last bit between machines), so a seed gives bit-identical pixels on every machine.
/// Edges are anti-aliased by 4×4 supersampling.
/// </summary>
internal static class ShapeRasterizer
{
    private const int Samples = 4;

    /// <summary>A region of the plane in pixel coordinates (pixel (x, y) covers [x, x+1) × [y, y+1)).</summary>
    public abstract class Region
    {
        /// <summary>Whether the point lies inside.</summary>
        public abstract bool Contains(double x, double y);

        /// <summary>A bounding box: every inside point has x in [MinX, MaxX] and y in [MinY, MaxY].</summary>
        public abstract (double MinX, double MinY, double MaxX, double MaxY) Bounds { get; }

        /// <summary>True when the boundary is certainly farther than √<paramref name="radiusSquared"/> from the point,
        /// so that a disc of that radius lies wholly inside or wholly outside. May answer false when unsure.</summary>
        public abstract bool BoundaryFartherThan(double x, double y, double radiusSquared);
    }

    /// <summary>A disc, optionally with a concentric hole (a ring).</summary>
    public sealed class Annulus(double cx, double cy, double outer, double inner) : Region
    {
        /// <inheritdoc />
        public override bool Contains(double x, double y)
        {
            double dx = x - cx, dy = y - cy, d2 = dx * dx + dy * dy;
            return d2 <= outer * outer && d2 >= inner * inner;
        }

        /// <inheritdoc />
        public override (double, double, double, double) Bounds => (cx - outer, cy - outer, cx + outer, cy + outer);

        /// <inheritdoc />
        public override bool BoundaryFartherThan(double x, double y, double radiusSquared)
        {
            double dx = x - cx, dy = y - cy, d = Math.Sqrt(dx * dx + dy * dy);
            double gap = Math.Min(Math.Abs(d - outer), inner > 0 ? Math.Abs(d - inner) : double.PositiveInfinity);
            return gap * gap > radiusSquared;
        }
    }

    /// <summary>An ellipse with semi-axes a (along the rotated x axis) and b, rotation given by its cosine and sine.</summary>
    public sealed class RotatedEllipse(double cx, double cy, double a, double b, double cos, double sin) : Region
    {
        /// <inheritdoc />
        public override bool Contains(double x, double y)
        {
            double dx = x - cx, dy = y - cy;
            double u = (cos * dx + sin * dy) / a, v = (-sin * dx + cos * dy) / b;
            return u * u + v * v <= 1.0;
        }

        /// <inheritdoc />
        public override (double, double, double, double) Bounds
        {
            get
            {
                double r = Math.Max(a, b);
                return (cx - r, cy - r, cx + r, cy + r);
            }
        }

        /// <inheritdoc />
        public override bool BoundaryFartherThan(double x, double y, double radiusSquared)
        {
            // In axis-normalised coordinates the boundary is the unit circle; the map back to pixels
            // shrinks no distance by more than the smaller semi-axis, which gives a safe lower bound.
            double dx = x - cx, dy = y - cy;
            double u = (cos * dx + sin * dy) / a, v = (-sin * dx + cos * dy) / b;
            double gap = Math.Abs(Math.Sqrt(u * u + v * v) - 1.0) * Math.Min(a, b);
            return gap * gap > radiusSquared;
        }
    }

    /// <summary>A simple polygon, convex or not, filled by the even–odd rule.</summary>
    public sealed class Polygon : Region
    {
        private readonly double[] _xs, _ys;

        /// <summary>A polygon with the given vertices, in order.</summary>
        public Polygon(double[] xs, double[] ys)
        {
            _xs = xs;
            _ys = ys;
            Bounds = (xs.Min(), ys.Min(), xs.Max(), ys.Max());
        }

        /// <inheritdoc />
        public override (double, double, double, double) Bounds { get; }

        /// <inheritdoc />
        public override bool Contains(double x, double y)
        {
            bool inside = false;
            for (int i = 0, j = _xs.Length - 1; i < _xs.Length; j = i++)
            {
                if ((_ys[i] > y) != (_ys[j] > y) &&
                    x < (_xs[j] - _xs[i]) * (y - _ys[i]) / (_ys[j] - _ys[i]) + _xs[i])
                    inside = !inside;
            }
            return inside;
        }

        /// <inheritdoc />
        public override bool BoundaryFartherThan(double x, double y, double radiusSquared)
        {
            for (int i = 0, j = _xs.Length - 1; i < _xs.Length; j = i++)
            {
                // Squared distance from (x, y) to the edge from vertex j to vertex i.
                double ex = _xs[i] - _xs[j], ey = _ys[i] - _ys[j];
                double t = Math.Clamp(((x - _xs[j]) * ex + (y - _ys[j]) * ey) / (ex * ex + ey * ey), 0.0, 1.0);
                double px = _xs[j] + t * ex - x, py = _ys[j] + t * ey - y;
                if (px * px + py * py <= radiusSquared) return false;
            }
            return true;
        }
    }

    /// <summary>
    /// Fraction of each pixel of a <paramref name="width"/>×<paramref name="height"/> grid that lies in
    /// <paramref name="region"/>, 0..1 in steps of 1/16, written into <paramref name="coverage"/> (row-major).
    /// </summary>
    /// <remarks>
    /// A block of pixels whose centre is farther from the boundary than half the block's diagonal lies
    /// wholly inside or outside, so one test at its centre decides all of it; only blocks and pixels the
    /// boundary passes near are refined, down to the 4×4 samples of edge pixels. The result is exactly
    /// what sampling every pixel would give, at a fraction of the cost.
    /// </remarks>
    public static void Coverage(Region region, int width, int height, Span<float> coverage)
    {
        coverage.Clear();
        var (minX, minY, maxX, maxY) = region.Bounds;
        int x0 = Math.Max(0, (int)Math.Floor(minX)), x1 = Math.Min(width - 1, (int)Math.Floor(maxX));
        int y0 = Math.Max(0, (int)Math.Floor(minY)), y1 = Math.Min(height - 1, (int)Math.Floor(maxY));
        const int block = 4;
        for (int by = y0; by <= y1; by += block)
        {
            for (int bx = x0; bx <= x1; bx += block)
            {
                int bw = Math.Min(block, x1 + 1 - bx), bh = Math.Min(block, y1 + 1 - by);
                double centreX = bx + bw / 2.0, centreY = by + bh / 2.0;
                // Squared half-diagonal of the block, plus a hair for rounding.
                double reach = (bw * bw + bh * bh) / 4.0 + 1e-9;
                if (region.BoundaryFartherThan(centreX, centreY, reach))
                {
                    float value = region.Contains(centreX, centreY) ? 1f : 0f;
                    for (int py = by; py < by + bh; py++) coverage.Slice(py * width + bx, bw).Fill(value);
                    continue;
                }
                for (int py = by; py < by + bh; py++)
                    for (int px = bx; px < bx + bw; px++)
                        coverage[py * width + px] = PixelCoverage(region, px, py);
            }
        }
    }

    private static float PixelCoverage(Region region, int px, int py)
    {
        const double halfDiagonalSquared = 0.5 + 1e-9;
        if (region.BoundaryFartherThan(px + 0.5, py + 0.5, halfDiagonalSquared))
            return region.Contains(px + 0.5, py + 0.5) ? 1f : 0f;
        const double step = 1.0 / Samples;
        int hits = 0;
        for (int sy = 0; sy < Samples; sy++)
            for (int sx = 0; sx < Samples; sx++)
                if (region.Contains(px + (sx + 0.5) * step, py + (sy + 0.5) * step)) hits++;
        return hits / (float)(Samples * Samples);
    }
}
