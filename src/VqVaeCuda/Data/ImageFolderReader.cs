namespace VqVaeCuda.Data;

/// <summary>
/// Reads every PNG and JPEG in a folder tree as one data set of square images. When the images sit in
/// subfolders, each top-level subfolder is a class (its name the class name, classes in ordinal name
/// order), as in the usual "one folder per class" layout; images directly in the folder are then an
/// error, since they would belong to no class. Each image is resized so its shorter side equals the
/// target size and centre-cropped to a square, the convention that keeps aspect ratio and loses the
/// least of the subject.
/// </summary>
public static class ImageFolderReader
{
    private static readonly HashSet<string> ImageExtensions =
        new(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg", ".jpe", ".jfif" };

    /// <summary>
    /// Reads the images under <paramref name="folder"/> (recursively) at
    /// <paramref name="size"/>×<paramref name="size"/> with 1 (luma) or 3 (RGB) channels. Images are
    /// ordered by relative path (ordinal), so the result does not depend on the file system's order.
    /// </summary>
    /// <exception cref="DataFormatException">The folder is missing or holds no images, an image cannot be decoded
    /// (the message names it), or images sit both in the folder and in class subfolders.</exception>
    public static ImageDataset Read(string folder, int size, int channels, string? name = null)
    {
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size), size, "must be at least 1");
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "must be 1 or 3");
        if (!Directory.Exists(folder)) throw new DataFormatException(folder, "folder not found");
        folder = Path.GetFullPath(folder);
        name ??= new DirectoryInfo(folder).Name;

        var files = FindImages(folder);
        if (files.Count == 0)
            throw new DataFormatException(folder, "holds no PNG or JPEG images (searched recursively)");

        var (labels, classNames) = Classify(folder, files);

        int imageSize = channels * size * size;
        if ((long)files.Count * imageSize > Array.MaxLength)
            throw new DataFormatException(folder, $"{files.Count} images of {channels}×{size}×{size} are more than one array can hold; use a smaller image size");
        DataFiles.RequireMemory(folder, 4L * files.Count * imageSize, $"{files.Count} images of {channels}×{size}×{size} as floats");
        var pixels = new float[files.Count * imageSize];

        // Decoding dominates, and every image has its own slot, so images decode in parallel while the
        // result stays independent of scheduling. Errors are kept per file and the first in path order is
        // reported, so the same broken folder always produces the same message.
        var errors = new Exception?[files.Count];
        Parallel.For(0, files.Count, i =>
        {
            try
            {
                using var bitmap = SkiaImaging.Decode(files[i]);
                SkiaImaging.ResizeCropToPlanes(bitmap, size, channels, pixels.AsSpan(i * imageSize, imageSize));
            }
            catch (DataFormatException e) { errors[i] = e; }
            catch (Exception e) { errors[i] = new DataFormatException(files[i], $"cannot be read as an image ({e.Message})", e); }
        });
        if (errors.FirstOrDefault(e => e is not null) is { } first) throw first;

        return new ImageDataset(name, pixels, files.Count, channels, size, size, labels, classNames);
    }

    /// <summary>Image files under <paramref name="folder"/>, by extension or by their PNG/JPEG signature,
    /// hidden files skipped, sorted by path.</summary>
    private static List<string> FindImages(string folder)
    {
        var options = new EnumerationOptions
        {
            RecurseSubdirectories = true,
            // Dot-files (.DS_Store, editor swap files) are hidden on Unix and never images.
            AttributesToSkip = FileAttributes.Hidden | FileAttributes.System,
            IgnoreInaccessible = false,
        };
        var files = Directory.EnumerateFiles(folder, "*", options)
            .Where(f => ImageExtensions.Contains(Path.GetExtension(f)) || HasImageSignature(f))
            .ToList();
        files.Sort(StringComparer.Ordinal);
        return files;
    }

    /// <summary>PNG (89 50 4E 47) or JPEG (FF D8 FF) magic bytes: images saved without an extension still count.</summary>
    private static bool HasImageSignature(string path)
    {
        Span<byte> head = stackalloc byte[4];
        try
        {
            using var f = File.OpenRead(path);
            int n = f.ReadAtLeast(head, 4, throwOnEndOfStream: false);
            return (n >= 4 && head[0] == 0x89 && head[1] == 0x50 && head[2] == 0x4E && head[3] == 0x47)
                || (n >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF);
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    private static (int[]? Labels, string[]? ClassNames) Classify(string folder, List<string> files)
    {
        string? TopFolder(string file)
        {
            var relative = Path.GetRelativePath(folder, file);
            int sep = relative.IndexOfAny([Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar]);
            return sep < 0 ? null : relative[..sep];
        }

        var tops = files.Select(TopFolder).ToList();
        if (tops.All(t => t is null)) return (null, null);
        int loose = tops.IndexOf(null);
        if (loose >= 0)
            throw new DataFormatException(folder, $"has images both directly inside ({Path.GetFileName(files[loose])}) and in class subfolders; " +
                                                  "move them into a subfolder or remove them");
        var classNames = tops.Select(t => t!).Distinct().Order(StringComparer.Ordinal).ToArray();
        var index = classNames.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
        return (tops.Select(t => index[t!]).ToArray(), classNames);
    }
}
