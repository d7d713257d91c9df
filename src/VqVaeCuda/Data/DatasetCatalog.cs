namespace VqVaeCuda.Data;

/// <summary>
/// Opens a data set by name, the way the CLI's <c>--dataset</c> and <c>--data</c> options name them:
/// <c>shapes</c> and <c>shapes-varied</c> (built in: <see cref="ShapeStyle"/>), <c>fashion-mnist</c>, <c>mnist</c>, <c>cifar10</c> and <c>folder:PATH</c>.
/// Splits the format defines (IDX t10k files, CIFAR's test batch) are kept; a folder gets a seeded 10%
/// test split and the synthetic set draws disjoint train and test images from the seed.
/// </summary>
public static class DatasetCatalog
{
    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> package installs the four IDX files.</summary>
    public const string DefaultFashionMnistPath = "/usr/share/datasets/fashion-mnist";

    /// <summary>Images in the synthetic training set.</summary>
    public const int ShapesTrainCount = 10_000;

    /// <summary>Images in the synthetic test set.</summary>
    public const int ShapesTestCount = 1_000;

    /// <summary>Share of an image folder held out for testing.</summary>
    public const double FolderTestFraction = 0.1;

    /// <summary>The accepted specs, for help texts and error messages.</summary>
    public static IReadOnlyList<string> Specs { get; } = ["shapes", "shapes-varied", "fashion-mnist", "mnist", "cifar10", "folder:PATH"];

    /// <summary>Fashion-MNIST's classes in label order (its files carry only numbers).</summary>
    public static IReadOnlyList<string> FashionMnistClassNames { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>
    /// Opens the data set <paramref name="spec"/> and returns its training and test sets at
    /// <paramref name="imageSize"/>×<paramref name="imageSize"/> with <paramref name="channels"/> channels.
    /// </summary>
    /// <param name="spec"><c>shapes</c>, <c>shapes-varied</c>, <c>fashion-mnist</c>, <c>mnist</c>, <c>cifar10</c> or <c>folder:PATH</c> (case-insensitive).</param>
    /// <param name="dataPath">The folder holding the files (required for mnist and cifar10; overrides
    /// fashion-mnist's default; the folder for a bare <c>folder</c>; ignored by shapes).</param>
    /// <param name="imageSize">Side of the square images; 0 keeps the source's own size (28 for shapes;
    /// an image folder needs an explicit size). Fixed-size sources are resized when it differs.</param>
    /// <param name="channels">1 or 3; 0 keeps the source's own (1 for shapes and the MNISTs, 3 for CIFAR and folders).</param>
    /// <param name="seed">Seed of the synthetic images and of the folder split.</param>
    /// <exception cref="ArgumentException">Unknown spec (the message lists the accepted ones), or a required path or size is missing.</exception>
    /// <exception cref="DataFormatException">The files are missing or malformed; for a missing default path, names the Debian package.</exception>
    public static (ImageDataset Train, ImageDataset Test) Open(string spec, string? dataPath, int imageSize, int channels, int seed)
        => Open(spec, dataPath, imageSize, channels, seed, DefaultFashionMnistPath);

    /// <summary><see cref="Open(string, string?, int, int, int)"/> with another default Fashion-MNIST folder (for tests of the missing-package message).</summary>
    internal static (ImageDataset Train, ImageDataset Test) Open(string spec, string? dataPath, int imageSize, int channels, int seed,
                                                                 string fashionMnistDefault)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (imageSize < 0) throw new ArgumentOutOfRangeException(nameof(imageSize), imageSize, "must be positive (or 0 for the source's size)");
        if (channels is not (0 or 1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "must be 1 or 3 (or 0 for the source's own)");

        var trimmed = spec.Trim();
        int colon = trimmed.IndexOf(':');
        var kind = (colon < 0 ? trimmed : trimmed[..colon]).ToLowerInvariant();
        var argument = colon < 0 ? null : trimmed[(colon + 1)..];

        switch (kind)
        {
            case "shapes" or "synthetic" or "shapes-varied" when argument is null:
            {
                int size = imageSize == 0 ? SyntheticShapes.DefaultSize : imageSize;
                int c = channels == 0 ? SyntheticShapes.DefaultChannels : channels;
                var (style, name) = kind == "shapes-varied" ? (ShapeStyle.Varied, "shapes-varied") : (ShapeStyle.Plain, "shapes");
                return (SyntheticShapes.Generate(ShapesTrainCount, seed, size, c, firstIndex: 0, name: name + "/train", style),
                        SyntheticShapes.Generate(ShapesTestCount, seed, size, c, firstIndex: ShapesTrainCount, name: name + "/test", style));
            }
            case "fashion-mnist" or "fashion_mnist" or "fashionmnist" when argument is null:
            {
                var dir = dataPath ?? fashionMnistDefault;
                if (dataPath is null && !Directory.Exists(dir))
                    throw new DataFormatException(dir, "Fashion-MNIST is not installed here; install it with " +
                                                       "`apt-get install dataset-fashion-mnist` (Debian package dataset-fashion-mnist), " +
                                                       "or pass --data DIR with the four IDX files");
                var (train, test) = IdxReader.LoadDirectory(dir, "fashion-mnist");
                return Fit(train.WithClassNames([.. FashionMnistClassNames]), test.WithClassNames([.. FashionMnistClassNames]), imageSize, channels);
            }
            case "mnist" when argument is null:
            {
                var dir = dataPath ?? throw new ArgumentException("mnist needs --data DIR: a folder with train-images-idx3-ubyte(.gz), " +
                                                                  "train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz)");
                var digits = Enumerable.Range(0, 10).Select(d => d.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
                var (train, test) = IdxReader.LoadDirectory(dir, "mnist");
                return Fit(train.WithClassNames(digits), test.WithClassNames(digits), imageSize, channels);
            }
            case "cifar10" or "cifar-10" when argument is null:
            {
                var dir = dataPath ?? throw new ArgumentException("cifar10 needs --data DIR: a folder with the binary version's " +
                                                                  "data_batch_1.bin … data_batch_5.bin and test_batch.bin");
                var (train, test) = Cifar10Reader.LoadDirectory(dir);
                return Fit(train, test, imageSize, channels);
            }
            case "folder":
            {
                var dir = string.IsNullOrWhiteSpace(argument) ? dataPath : argument;
                if (string.IsNullOrWhiteSpace(dir))
                    throw new ArgumentException("folder needs a path: folder:PATH (or --data PATH)");
                if (imageSize == 0)
                    throw new ArgumentException("folder:PATH needs an image size: its images come in any size");
                var all = ImageFolderReader.Read(dir, imageSize, channels == 0 ? 3 : channels);
                int testCount = (int)Math.Round(all.Count * FolderTestFraction);
                if (all.Count >= 2) testCount = Math.Clamp(testCount, 1, all.Count - 1);
                return all.SplitByCount(testCount, seed);
            }
            default:
                throw new ArgumentException($"unknown data set '{spec}'; accepted: {string.Join(", ", Specs)}", nameof(spec));
        }
    }

    /// <summary>Resizes and converts a fixed-size source to what was asked for (0 = keep).</summary>
    private static (ImageDataset Train, ImageDataset Test) Fit(ImageDataset train, ImageDataset test, int imageSize, int channels)
    {
        ImageDataset One(ImageDataset d)
        {
            if (imageSize != 0) d = ImageTransforms.Resize(d, imageSize);
            if (channels != 0) d = ImageTransforms.ConvertChannels(d, channels);
            return d;
        }
        return (One(train), One(test));
    }
}
