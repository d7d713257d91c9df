namespace VqVaeCuda.Data;

/// <summary>
/// Reads the binary version of CIFAR-10: <c>data_batch_1.bin</c> … <c>data_batch_5.bin</c> (training) and
/// <c>test_batch.bin</c> (test), each a sequence of 3073-byte records: one label byte, then 1024 red,
/// 1024 green and 1024 blue bytes of a 32×32 image in row-major order. That planar layout is already
/// [C, H, W], so a record maps onto one image of the data set without reordering.
/// </summary>
public static class Cifar10Reader
{
    /// <summary>Image side in pixels.</summary>
    public const int Side = 32;

    /// <summary>Bytes per record: a label byte and 3·32·32 pixel bytes.</summary>
    public const int RecordBytes = 1 + 3 * Side * Side;

    /// <summary>The ten classes in label order, used when the folder has no <c>batches.meta.txt</c>
    /// (the labels of the format always mean these).</summary>
    public static IReadOnlyList<string> DefaultClassNames { get; } =
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    /// <summary>
    /// Reads the five training batches and the test batch from <paramref name="dir"/> (or from its
    /// <c>cifar-10-batches-bin</c> subfolder, as the archive unpacks), with class names from
    /// <c>batches.meta.txt</c> when present.
    /// </summary>
    /// <exception cref="DataFormatException">The folder or a batch file is missing or malformed.</exception>
    public static (ImageDataset Train, ImageDataset Test) LoadDirectory(string dir)
    {
        if (!Directory.Exists(dir)) throw new DataFormatException(dir, "folder not found");
        var nested = Path.Combine(dir, "cifar-10-batches-bin");
        if (!File.Exists(Path.Combine(dir, "test_batch.bin")) && Directory.Exists(nested)) dir = nested;

        var trainFiles = Enumerable.Range(1, 5).Select(i => Path.Combine(dir, $"data_batch_{i}.bin")).ToList();
        var testFile = Path.Combine(dir, "test_batch.bin");
        var missing = trainFiles.Append(testFile).Where(f => !File.Exists(f)).Select(Path.GetFileName).ToList();
        if (missing.Count > 0)
            throw new DataFormatException(dir, $"not a CIFAR-10 binary folder: missing {string.Join(", ", missing)}");

        var classNames = ReadClassNames(Path.Combine(dir, "batches.meta.txt")) ?? [.. DefaultClassNames];
        return (ReadBatches(trainFiles, "cifar10/train", classNames), ReadBatches([testFile], "cifar10/test", classNames));
    }

    /// <summary>Reads one or more batch files, in order, into one data set.</summary>
    /// <exception cref="DataFormatException">A file is missing, empty, not a whole number of records, or has a label above 9.</exception>
    public static ImageDataset ReadBatches(IReadOnlyList<string> paths, string name, string[]? classNames = null)
    {
        ArgumentNullException.ThrowIfNull(paths);
        classNames ??= [.. DefaultClassNames];
        var counts = new int[paths.Count];
        long total = 0;
        for (int f = 0; f < paths.Count; f++)
        {
            // CIFAR batches are never gzipped individually (the archive is), so the length is checked as stored.
            var info = new FileInfo(paths[f]);
            if (!info.Exists) throw new DataFormatException(paths[f], "file not found");
            if (info.Length == 0 || info.Length % RecordBytes != 0)
                throw new DataFormatException(paths[f], $"length {info.Length} is not a positive multiple of the {RecordBytes}-byte CIFAR-10 record (truncated, or not the binary version)");
            counts[f] = checked((int)(info.Length / RecordBytes));
            total += counts[f];
        }
        if (total * (RecordBytes - 1) > Array.MaxLength)
            throw new DataFormatException(paths[0], $"{total} images are more than one array can hold");

        int imageSize = RecordBytes - 1;
        DataFiles.RequireMemory(paths[0], 4 * total * imageSize, $"{total} images of 3×32×32 as floats");
        var pixels = new float[total * imageSize];
        var labels = new int[total];
        var record = new byte[RecordBytes];
        int n = 0;
        foreach (var (path, count) in paths.Zip(counts))
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            for (int r = 0; r < count; r++, n++)
            {
                if (DataFiles.ReadFully(stream, record, path) != RecordBytes)
                    throw new DataFormatException(path, $"shrank while being read (record {r})");
                if (record[0] >= classNames.Length)
                    throw new DataFormatException(path, $"record {r} has label {record[0]}, but CIFAR-10 labels are 0..{classNames.Length - 1} (CIFAR-100 or another format?)");
                labels[n] = record[0];
                DataFiles.BytesToUnit(record.AsSpan(1), pixels.AsSpan(n * imageSize, imageSize));
            }
        }
        return new ImageDataset(name, pixels, (int)total, 3, Side, Side, labels, classNames);
    }

    private static string[]? ReadClassNames(string path)
    {
        if (!File.Exists(path)) return null;
        var names = File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        if (names.Length != 10)
            throw new DataFormatException(path, $"lists {names.Length} class names, CIFAR-10 has 10");
        return names;
    }
}
