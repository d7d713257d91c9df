namespace VqVaeCuda.Data;

/// <summary>
/// Reads the IDX files of MNIST and Fashion-MNIST (gzip-compressed or raw): an image file
/// (magic 0x00000803: unsigned bytes, three big-endian dimensions N, rows, columns) and a label file
/// (magic 0x00000801: unsigned bytes, one dimension N). The files' own train/t10k split is kept.
/// </summary>
public static class IdxReader
{
    /// <summary>Magic number of an IDX file of unsigned bytes with three dimensions (images).</summary>
    public const int ImagesMagic = 0x00000803;

    /// <summary>Magic number of an IDX file of unsigned bytes with one dimension (labels).</summary>
    public const int LabelsMagic = 0x00000801;

    /// <summary>
    /// Reads an image file and, when <paramref name="labelsPath"/> is given, its label file.
    /// </summary>
    /// <exception cref="DataFormatException">A file is missing, truncated, has the wrong magic or trailing bytes,
    /// or the two files disagree on the number of items.</exception>
    public static ImageDataset ReadPair(string imagesPath, string? labelsPath, string name)
    {
        var (pixels, count, rows, cols) = ReadImages(imagesPath);
        int[]? labels = null;
        if (labelsPath is not null)
        {
            labels = ReadLabels(labelsPath);
            if (labels.Length != count)
                throw new DataFormatException(labelsPath, $"holds {labels.Length} labels but {imagesPath} holds {count} images");
        }
        return new ImageDataset(name, pixels, count, 1, rows, cols, labels);
    }

    /// <summary>
    /// Finds the four standard files in <paramref name="dir"/> (<c>train-images-idx3-ubyte</c>,
    /// <c>train-labels-idx1-ubyte</c>, <c>t10k-images-idx3-ubyte</c>, <c>t10k-labels-idx1-ubyte</c>,
    /// each with or without <c>.gz</c>, also with a dot before <c>idx</c> as some unpackers write them)
    /// and returns the training and test sets they define.
    /// </summary>
    /// <param name="dir">The folder holding the files.</param>
    /// <param name="name">Name prefix for the two sets; defaults to the folder's name.</param>
    /// <exception cref="DataFormatException">The folder or one of the files is missing or malformed.</exception>
    public static (ImageDataset Train, ImageDataset Test) LoadDirectory(string dir, string? name = null)
    {
        if (!Directory.Exists(dir)) throw new DataFormatException(dir, "folder not found");
        name ??= new DirectoryInfo(dir).Name;
        string trainImages = Find(dir, "train", "images", 3), trainLabels = Find(dir, "train", "labels", 1);
        string testImages = Find(dir, "t10k", "images", 3), testLabels = Find(dir, "t10k", "labels", 1);
        // The two splits are independent files: decompressing them side by side halves the wait on two cores.
        var testTask = Task.Run(() => ReadPair(testImages, testLabels, name + "/test"));
        ImageDataset train;
        try
        {
            train = ReadPair(trainImages, trainLabels, name + "/train");
        }
        finally
        {
            // Never leave the test read running (or its exception unobserved) when the training read fails.
            Task.WaitAny(testTask);  // waits without throwing: the training error is the one reported
        }
        var test = testTask.GetAwaiter().GetResult();
        if (train.Height != test.Height || train.Width != test.Width)
            throw new DataFormatException(dir, $"training images are {train.Height}×{train.Width} but test images are {test.Height}×{test.Width}");
        return (train, test);
    }

    /// <summary>Reads an image file: pixels in [0, 1] as [N, 1, rows, cols], and the three dimensions.</summary>
    public static (float[] Pixels, int Count, int Rows, int Columns) ReadImages(string path)
    {
        using var stream = DataFiles.OpenMaybeGzip(path);
        Span<byte> header = stackalloc byte[16];
        ReadHeader(stream, header, path, ImagesMagic, "an IDX image file");
        int count = DataFiles.BigEndianInt32(header[4..]);
        int rows = DataFiles.BigEndianInt32(header[8..]);
        int cols = DataFiles.BigEndianInt32(header[12..]);
        if (count < 0 || rows < 1 || cols < 1)
            throw new DataFormatException(path, $"impossible dimensions {count}×{rows}×{cols} in the header");
        long total = (long)count * rows * cols;
        if (total > Array.MaxLength)
            throw new DataFormatException(path, $"{count} images of {rows}×{cols} are more than one array can hold");

        var bytes = DataFiles.ReadPromised(stream, total, path, found =>
            $"truncated: the header promises {count} images of {rows}×{cols} ({16 + total} bytes) but the data ends after {16 + found} bytes");
        DataFiles.RequireMemory(path, 4 * total, $"{count} images of {rows}×{cols} as floats");
        var pixels = new float[total];
        DataFiles.BytesToUnit(bytes, pixels);
        if (DataFiles.HasMore(stream, path))
            throw new DataFormatException(path, $"has bytes after the {count} images of {rows}×{cols} its header promises (wrong header?)");
        return (pixels, count, rows, cols);
    }

    /// <summary>Reads a label file: one class index (0..255) per item.</summary>
    public static int[] ReadLabels(string path)
    {
        using var stream = DataFiles.OpenMaybeGzip(path);
        Span<byte> header = stackalloc byte[8];
        ReadHeader(stream, header, path, LabelsMagic, "an IDX label file");
        int count = DataFiles.BigEndianInt32(header[4..]);
        if (count < 0 || count > Array.MaxLength) throw new DataFormatException(path, $"impossible count {count} in the header");
        var bytes = DataFiles.ReadPromised(stream, count, path, found =>
            $"truncated: the header promises {count} labels ({8L + count} bytes) but the data ends after {8L + found} bytes");
        if (DataFiles.HasMore(stream, path))
            throw new DataFormatException(path, $"has bytes after the {count} labels its header promises (wrong header?)");
        var labels = new int[count];
        for (int i = 0; i < count; i++) labels[i] = bytes[i];
        return labels;
    }

    private static void ReadHeader(Stream stream, Span<byte> header, string path, int magic, string what)
    {
        int got = DataFiles.ReadFully(stream, header, path);
        if (got >= 4)
        {
            int found = DataFiles.BigEndianInt32(header);
            if (found != magic)
            {
                string hint = found == LabelsMagic ? " (that is a label file)"
                            : found == ImagesMagic ? " (that is an image file)" : "";
                throw new DataFormatException(path, $"not {what}: magic number 0x{found:X8}{hint}, expected 0x{magic:X8}");
            }
        }
        if (got < header.Length)
            throw new DataFormatException(path, $"truncated: {got} bytes, shorter than the {header.Length}-byte header of {what}");
    }

    private static string Find(string dir, string split, string kind, int rank)
    {
        string[] stems = [$"{split}-{kind}-idx{rank}-ubyte", $"{split}-{kind}.idx{rank}-ubyte"];
        foreach (var stem in stems)
        {
            foreach (var candidate in new[] { stem + ".gz", stem })
            {
                var path = Path.Combine(dir, candidate);
                if (File.Exists(path)) return path;
            }
        }
        throw new DataFormatException(Path.Combine(dir, stems[0] + ".gz"), $"file not found (nor {stems[0]} without .gz)");
    }
}
