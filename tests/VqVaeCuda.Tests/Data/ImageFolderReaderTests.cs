using SkiaSharp;
using VqVaeCuda.Data;

namespace VqVaeCuda.Tests.Data;

[TestFixture, Category("Cpu")]
public class ImageFolderReaderTests
{
    private static readonly SKColor Red = new(255, 0, 0), Green = new(0, 255, 0), Blue = new(0, 0, 255);

    [Test]
    public void A_wide_image_is_resized_by_its_shorter_side_and_centre_cropped()
    {
        using var dir = new TempFolder();
        // 96×48: red | green | blue in columns [0,24) [24,72) [72,96). Shorter side 48 → 16 makes it 32×16,
        // whose centre 16 columns are exactly the green band.
        DataTestFiles.WritePng(dir.File("wide.png"), 96, 48, (x, _) => x < 24 ? Red : x < 72 ? Green : Blue);

        var data = ImageFolderReader.Read(dir.Path, 16, 3);

        Assert.That((data.Count, data.Channels, data.Height, data.Width), Is.EqualTo((1, 3, 16, 16)));
        Assert.That(data.Labels, Is.Null, "no subfolders, no classes");
        var image = data.Image(0);
        for (int y = 0; y < 16; y++)
        {
            for (int x = 0; x < 16; x++)
            {
                float r = image[y * 16 + x], g = image[256 + y * 16 + x], b = image[512 + y * 16 + x];
                Assert.That(g, Is.GreaterThan(0.6f), $"green at ({x},{y})");
                if (x is >= 2 and < 14)
                    Assert.That((r, g, b), Is.EqualTo((0f, 1f, 0f)).Using<(float, float, float)>((p, q) =>
                        Math.Abs(p.Item1 - q.Item1) < 0.05f && Math.Abs(p.Item2 - q.Item2) < 0.05f && Math.Abs(p.Item3 - q.Item3) < 0.05f),
                        $"pure green inside the crop at ({x},{y})");
            }
        }
        // Red only ever reaches the left edge of the crop, blue the right: the crop is centred.
        Assert.That(image[8 * 16 + 0], Is.LessThan(0.35f));
        Assert.That(image[512 + 8 * 16 + 15], Is.LessThan(0.35f));
    }

    [Test]
    public void A_tall_image_is_cropped_vertically_and_grey_is_luma()
    {
        using var dir = new TempFolder();
        // 20×60: black top third, grey (100) middle, white bottom third; at size 20 nothing is resized.
        DataTestFiles.WritePng(dir.File("tall.png"), 20, 60, (_, y) => y < 20 ? SKColors.Black : y < 40 ? new SKColor(100, 100, 100) : SKColors.White);
        var data = ImageFolderReader.Read(dir.Path, 20, 1);
        Assert.That(data.Channels, Is.EqualTo(1));
        Assert.That(data.Image(0).ToArray(), Is.All.EqualTo(100 / 255f));
    }

    [Test]
    public void Subfolders_are_classes_in_name_order()
    {
        using var dir = new TempFolder();
        var cats = dir.Folder("cats");
        var dogs = dir.Folder("dogs");
        Directory.CreateDirectory(Path.Combine(dogs, "puppies"));
        DataTestFiles.WritePng(Path.Combine(dogs, "d1.png"), 8, 8, (_, _) => SKColors.White);
        DataTestFiles.WritePng(Path.Combine(dogs, "puppies", "d2.png"), 8, 8, (_, _) => SKColors.White);
        DataTestFiles.WritePng(Path.Combine(cats, "c1.png"), 8, 8, (_, _) => SKColors.Black);
        File.WriteAllBytes(Path.Combine(cats, "c2.jpg"), DataTestFiles.Encode(8, 8, (_, _) => SKColors.Black, SKEncodedImageFormat.Jpeg));
        File.WriteAllText(Path.Combine(cats, "notes.txt"), "not an image, ignored");

        var data = ImageFolderReader.Read(dir.Path, 8, 3, "pets");

        Assert.That(data.ClassNames, Is.EqualTo(new[] { "cats", "dogs" }));
        Assert.That(data.Labels, Is.EqualTo(new[] { 0, 0, 1, 1 }));
        Assert.That(data.Name, Is.EqualTo("pets"));
        Assert.That(data.Image(3).ToArray(), Is.All.EqualTo(1f));
        Assert.That(data.Image(1).ToArray(), Is.All.LessThan(0.05f));
    }

    [Test]
    public void An_image_that_cannot_be_decoded_is_named()
    {
        using var dir = new TempFolder();
        DataTestFiles.WritePng(dir.File("good.png"), 8, 8, (_, _) => SKColors.Gray);
        var junk = new byte[300];
        new Random(1).NextBytes(junk);
        File.WriteAllBytes(dir.File("broken.png"), junk);
        var e = Assert.Throws<DataFormatException>(() => ImageFolderReader.Read(dir.Path, 8, 3));
        Assert.That(e!.Message, Does.Contain("broken.png"));
    }

    [Test]
    public void A_truncated_png_is_an_error_not_a_half_grey_image()
    {
        using var dir = new TempFolder();
        var png = DataTestFiles.Encode(64, 64, (x, y) => new SKColor((byte)(x * 4), (byte)(y * 4), (byte)(x ^ y)));
        File.WriteAllBytes(dir.File("cut.png"), png[..(png.Length * 2 / 3)]);
        var e = Assert.Throws<DataFormatException>(() => ImageFolderReader.Read(dir.Path, 8, 3));
        Assert.That(e!.Message, Does.Contain("cut.png"));
    }

    [Test]
    public void An_empty_or_missing_folder_is_an_error()
    {
        using var dir = new TempFolder();
        File.WriteAllText(dir.File("readme.txt"), "no images here");
        var empty = Assert.Throws<DataFormatException>(() => ImageFolderReader.Read(dir.Path, 8, 3));
        Assert.That(empty!.Message, Does.Contain(dir.Path).And.Contain("no PNG or JPEG"));
        var missing = Assert.Throws<DataFormatException>(() => ImageFolderReader.Read(dir.File("nowhere"), 8, 3));
        Assert.That(missing!.Message, Does.Contain("nowhere").And.Contain("not found"));
    }

    [Test]
    public void Loose_images_beside_class_folders_are_an_error()
    {
        using var dir = new TempFolder();
        DataTestFiles.WritePng(Path.Combine(dir.Folder("a"), "1.png"), 4, 4, (_, _) => SKColors.Gray);
        DataTestFiles.WritePng(dir.File("stray.png"), 4, 4, (_, _) => SKColors.Gray);
        var e = Assert.Throws<DataFormatException>(() => ImageFolderReader.Read(dir.Path, 4, 1));
        Assert.That(e!.Message, Does.Contain("stray.png"));
    }

    [Test]
    public void The_exif_orientation_of_a_jpeg_is_applied()
    {
        using var dir = new TempFolder();
        // Stored 40×20, left half black, right half white; orientation 6 shows it rotated 90° clockwise:
        // 20 wide, 40 tall, black on top. The centred 20×20 square is then black above white.
        var jpeg = DataTestFiles.Encode(40, 20, (x, _) => x < 20 ? SKColors.Black : SKColors.White, SKEncodedImageFormat.Jpeg);
        File.WriteAllBytes(dir.File("phone.jpg"), DataTestFiles.WithExifOrientation(jpeg, 6));

        var image = ImageFolderReader.Read(dir.Path, 20, 1).Image(0);

        Assert.That(image[1 * 20 + 10], Is.LessThan(0.15f), "top is black");
        Assert.That(image[18 * 20 + 10], Is.GreaterThan(0.85f), "bottom is white");
        Assert.That(Math.Abs(image[1 * 20 + 1] - image[1 * 20 + 18]), Is.LessThan(0.15f), "rows are uniform");
    }
}
