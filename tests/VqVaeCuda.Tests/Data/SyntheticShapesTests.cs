using VqVaeCuda.Data;

namespace VqVaeCuda.Tests.Data;

[TestFixture, Category("Cpu")]
public class SyntheticShapesTests
{
    private static ulong Fingerprint(float[] values)
    {
        // FNV-1a over the IEEE bits: any change of any pixel in any bit changes it.
        ulong h = 0xCBF29CE484222325UL;
        foreach (var v in values)
        {
            h ^= BitConverter.SingleToUInt32Bits(v);
            h *= 0x100000001B3UL;
        }
        return h;
    }

    [Test]
    public void The_same_seed_gives_bit_identical_pixels()
    {
        var a = SyntheticShapes.Generate(300, seed: 11);
        var b = SyntheticShapes.Generate(300, seed: 11);
        Assert.That(a.Pixels.Select(BitConverter.SingleToUInt32Bits), Is.EqualTo(b.Pixels.Select(BitConverter.SingleToUInt32Bits)));
        Assert.That(a.Labels, Is.EqualTo(b.Labels));
    }

    [Test]
    public void The_pixels_are_the_same_on_every_machine()
    {
        // Pinned output: drawing uses only exactly rounded arithmetic, so this holds on any CPU and OS.
        // A deliberate change of the generator changes this number (and should say so in its commit).
        var grey = SyntheticShapes.Generate(16, seed: 42, style: ShapeStyle.Varied);
        var colour = SyntheticShapes.Generate(4, seed: 42, size: 32, channels: 3, style: ShapeStyle.Varied);
        var plain = SyntheticShapes.Generate(16, seed: 42);
        TestContext.Out.WriteLine($"grey 0x{Fingerprint(grey.Pixels):X16}, colour 0x{Fingerprint(colour.Pixels):X16}, " +
                                  $"plain 0x{Fingerprint(plain.Pixels):X16}, labels {string.Join(",", grey.Labels!)}");
        Assert.That(Fingerprint(grey.Pixels), Is.EqualTo(GreyFingerprint));
        Assert.That(Fingerprint(colour.Pixels), Is.EqualTo(ColourFingerprint));
        Assert.That(Fingerprint(plain.Pixels), Is.EqualTo(PlainFingerprint));
    }

    // The varied style's pixels are those of the generator before the plain style existed (and the default changed).
    private const ulong GreyFingerprint = 0x2C36ADB32E715305UL;
    private const ulong ColourFingerprint = 0x93BE326CAC83BADDUL;
    private const ulong PlainFingerprint = 0x452CB5BFC7C77725UL;

    [Test]
    public void The_plain_style_draws_the_varied_styles_shapes_white_on_black()
    {
        var plain = SyntheticShapes.Generate(200, seed: 7);
        var varied = SyntheticShapes.Generate(200, seed: 7, style: ShapeStyle.Varied);
        Assert.That(plain.Labels, Is.EqualTo(varied.Labels));
        for (int i = 0; i < plain.Count; i++)
        {
            var p = plain.Image(i).ToArray();
            var v = varied.Image(i).ToArray();
            // Plain pixels are the shape's coverage a in [0, 1] (0 background, 1 inside). The varied pixel is
            // bg(x, y) + (fg − bg(x, y))·a, clamped: fg wherever a = 1, so the same shape in one tone.
            Assert.That(p.Min(), Is.EqualTo(0f), $"image {i}: black background");
            Assert.That(p.Max(), Is.EqualTo(1f), $"image {i}: white shape");
            var inside = Enumerable.Range(0, p.Length).Where(k => p[k] == 1f).Select(k => v[k]).Distinct().Count();
            Assert.That(inside, Is.EqualTo(1), $"image {i}: one foreground tone where the plain shape is fully inside");
            Assert.That(p.Count(x => x == 0f), Is.GreaterThan(p.Length / 4), $"image {i}: mostly background");
        }
    }

    [Test]
    public void Different_seeds_give_different_images()
    {
        var a = SyntheticShapes.Generate(50, seed: 1);
        var b = SyntheticShapes.Generate(50, seed: 2);
        int same = Enumerable.Range(0, 50).Count(i => a.Image(i).SequenceEqual(b.Image(i)));
        Assert.That(same, Is.Zero);
    }

    [Test]
    public void Image_i_does_not_depend_on_how_many_are_drawn()
    {
        var all = SyntheticShapes.Generate(20, seed: 5);
        var tail = SyntheticShapes.Generate(10, seed: 5, firstIndex: 10);
        for (int i = 0; i < 10; i++) Assert.That(tail.Image(i).SequenceEqual(all.Image(10 + i)), $"image {10 + i}");
        Assert.That(tail.Labels, Is.EqualTo(all.Labels![10..]));
    }

    [Test]
    public void The_set_varies_in_kind_position_and_tone()
    {
        var data = SyntheticShapes.Generate(1000, seed: 3, style: ShapeStyle.Varied);
        Assert.That((data.Channels, data.Height, data.Width), Is.EqualTo((1, 28, 28)));
        Assert.That(data.ClassNames, Has.Length.EqualTo(Enum.GetValues<ShapeKind>().Length));
        var counts = data.Labels!.GroupBy(l => l).ToDictionary(g => g.Key, g => g.Count());
        Assert.That(counts.Keys.Order(), Is.EqualTo(Enumerable.Range(0, 8)), "every kind appears");
        Assert.That(counts.Values.Min(), Is.GreaterThan(80), "kinds are roughly balanced");
        Assert.That((data.Pixels.Min(), data.Pixels.Max()), Is.EqualTo((0f, 1f)).Using<(float, float)>((p, q) => p.Item1 >= 0 && p.Item2 <= 1));

        // Mean per-pixel variance across the set: identical images would give 0.
        int n = data.Count, size = data.ImageSize;
        double totalVariance = 0;
        for (int p = 0; p < size; p++)
        {
            double sum = 0, sumSq = 0;
            for (int i = 0; i < n; i++) { double v = data.Pixels[i * size + p]; sum += v; sumSq += v * v; }
            double mean = sum / n;
            totalVariance += sumSq / n - mean * mean;
        }
        Assert.That(totalVariance / size, Is.GreaterThan(0.04));

        // Each image shows a shape: a clear step between darkest and brightest pixel.
        for (int i = 0; i < n; i++)
        {
            var img = data.Image(i).ToArray();
            Assert.That(img.Max() - img.Min(), Is.GreaterThan(0.2f), $"image {i} has contrast");
        }
        Assert.That(Enumerable.Range(0, n).Select(i => Fingerprint(data.Image(i).ToArray())).Distinct().Count(), Is.EqualTo(n), "no two images alike");
    }

    [Test]
    public void Colour_and_other_sizes_work()
    {
        var data = SyntheticShapes.Generate(40, seed: 9, size: 64, channels: 3, style: ShapeStyle.Varied);
        Assert.That((data.Count, data.Channels, data.Height, data.Width), Is.EqualTo((40, 3, 64, 64)));
        Assert.That(data.Pixels.Min(), Is.GreaterThanOrEqualTo(0f));
        Assert.That(data.Pixels.Max(), Is.LessThanOrEqualTo(1f));
        // Colour means the channels differ somewhere.
        int coloured = Enumerable.Range(0, 40).Count(i =>
        {
            var img = data.Image(i);
            for (int p = 0; p < 64 * 64; p++) if (Math.Abs(img[p] - img[64 * 64 + p]) > 0.1f) return true;
            return false;
        });
        Assert.That(coloured, Is.GreaterThan(30));
    }
}
