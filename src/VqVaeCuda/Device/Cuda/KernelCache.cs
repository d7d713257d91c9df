using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace VqVaeCuda.Device.Cuda;

/// <summary>
/// On-disk cache of compiled kernel modules: one <c>&lt;key&gt;.cubin</c> (or <c>&lt;key&gt;.ptx</c> for a PTX target)
/// and one <c>&lt;key&gt;.log</c> per compiled source file, where the key (<see cref="ComputeKey"/>) hashes everything that
/// can change the image. NVRTC takes seconds per file; a warm cache makes opening a GPU device cost milliseconds.
/// </summary>
/// <remarks>
/// The cache is an optimisation, never a source of truth: an entry that is missing, unreadable or
/// damaged is a miss, and the caller recompiles and overwrites it. Entries are written to a temporary
/// file in the same directory and renamed into place, so concurrent processes (parallel test runs, two
/// trainers) only ever see complete files; two writers of the same key write identical bytes.
/// </remarks>
public sealed class KernelCache
{
    /// <summary>Environment variable that overrides the default cache directory.</summary>
    public const string EnvironmentVariable = "VQVAE_KERNEL_CACHE";

    private const string CubinExtension = ".cubin";
    private const string PtxExtension = ".ptx";
    private const string LogExtension = ".log";

    /// <summary>Uses <paramref name="directory"/>, which is created on the first <see cref="Store"/>.</summary>
    public KernelCache(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        Directory = Path.GetFullPath(directory);
    }

    /// <summary>The directory that holds the entries.</summary>
    public string Directory { get; }

    /// <summary>A cache in the directory chosen by <see cref="ResolveDirectory"/>.</summary>
    public static KernelCache Open(string? explicitDirectory = null) => new(ResolveDirectory(explicitDirectory));

    /// <summary>
    /// Where the cache lives: <paramref name="explicitDirectory"/> when given, else <c>$VQVAE_KERNEL_CACHE</c>,
    /// else <c>$XDG_CACHE_HOME/vqvae/kernels</c>, else <c>~/.cache/vqvae/kernels</c>.
    /// </summary>
    public static string ResolveDirectory(string? explicitDirectory = null)
    {
        if (!string.IsNullOrWhiteSpace(explicitDirectory)) return Path.GetFullPath(explicitDirectory);
        var fromEnvironment = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment)) return Path.GetFullPath(fromEnvironment);
        // XDG says a relative XDG_CACHE_HOME is invalid and must be ignored.
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (!string.IsNullOrWhiteSpace(xdg) && Path.IsPathRooted(xdg)) return Path.Combine(xdg, "vqvae", "kernels");
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (string.IsNullOrEmpty(home)) home = Path.GetTempPath();
        return Path.Combine(home, ".cache", "vqvae", "kernels");
    }

    /// <summary>
    /// The entry key: SHA-256 (lower-case hex) over the NVRTC version, the target's kind (cubin or PTX) and architecture,
    /// the compile options (in order, so <c>--fmad</c> is in it), the source's name and text, and every header's name and text (sorted by name, so the
    /// order a dictionary happens to enumerate in cannot change the key).
    /// </summary>
    /// <remarks>Every field is length-prefixed, so no two different inputs can concatenate to the same bytes.</remarks>
    public static string ComputeKey(string nvrtcVersion, KernelTargetKind kind, string architecture, IReadOnlyList<string> options, string sourceName,
                                    string sourceText, IReadOnlyDictionary<string, string> headers)
    {
        ArgumentNullException.ThrowIfNull(nvrtcVersion);
        ArgumentNullException.ThrowIfNull(architecture);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(sourceName);
        ArgumentNullException.ThrowIfNull(sourceText);
        ArgumentNullException.ThrowIfNull(headers);

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Add(string field)
        {
            var bytes = Encoding.UTF8.GetBytes(field);
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(length, bytes.LongLength);
            hash.AppendData(length);
            hash.AppendData(bytes);
        }

        Add("vqvae-kernel-cache/2");  // bump when the entry format or key recipe changes (2: target kind, PTX entries)
        Add(nvrtcVersion);
        Add(kind.ToString());
        Add(architecture);
        Add(options.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        foreach (var option in options) Add(option);
        Add(sourceName);
        Add(sourceText);
        var sortedHeaders = headers.OrderBy(h => h.Key, StringComparer.Ordinal).ToList();
        Add(sortedHeaders.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        foreach (var (name, text) in sortedHeaders)
        {
            Add(name);
            Add(text);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>
    /// Reads the entry for <paramref name="key"/>. False (a miss) when it is absent, unreadable, or the
    /// image is not a complete ELF file (cubin) or NUL-terminated PTX; never throws for a bad entry.
    /// </summary>
    public bool TryLoad(string key, KernelTargetKind kind, out byte[] image, out string log)
    {
        ValidateKey(key);
        image = [];
        log = string.Empty;
        try
        {
            var imagePath = PathFor(key, ExtensionOf(kind));
            var logPath = PathFor(key, LogExtension);
            if (!File.Exists(imagePath) || !File.Exists(logPath)) return false;
            var bytes = File.ReadAllBytes(imagePath);
            if (kind == KernelTargetKind.Cubin ? !LooksLikeCompleteElf(bytes) : !LooksLikeCompletePtx(bytes)) return false;
            log = File.ReadAllText(logPath, Encoding.UTF8);
            image = bytes;
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or System.Security.SecurityException)
        {
            image = [];
            log = string.Empty;
            return false;
        }
    }

    /// <summary>Writes (or overwrites) the entry for <paramref name="key"/>, each file atomically.</summary>
    /// <exception cref="IOException">The directory cannot be created or written.</exception>
    /// <exception cref="UnauthorizedAccessException">The directory is not writable.</exception>
    public void Store(string key, KernelTargetKind kind, byte[] image, string log)
    {
        ValidateKey(key);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(log);
        System.IO.Directory.CreateDirectory(Directory);
        // The log goes first: TryLoad wants both files, and an image without its log would be a miss anyway.
        WriteAtomically(PathFor(key, LogExtension), Encoding.UTF8.GetBytes(log));
        WriteAtomically(PathFor(key, ExtensionOf(kind)), image);
    }

    /// <inheritdoc />
    public override string ToString() => $"KernelCache({Directory})";

    private static string ExtensionOf(KernelTargetKind kind) => kind == KernelTargetKind.Cubin ? CubinExtension : PtxExtension;

    /// <summary>PTX as the driver takes it: text naming its ISA version and target, ending in the NUL that <c>cuModuleLoadData</c> needs.</summary>
    private static bool LooksLikeCompletePtx(byte[] bytes)
    {
        if (bytes.Length < 2 || bytes[^1] != 0 || Array.IndexOf(bytes, (byte)0) != bytes.Length - 1) return false;
        var text = Encoding.UTF8.GetString(bytes, 0, bytes.Length - 1);
        return text.Contains(".version", StringComparison.Ordinal) && text.Contains(".target", StringComparison.Ordinal);
    }

    private string PathFor(string key, string extension) => Path.Combine(Directory, key + extension);

    private void WriteAtomically(string path, byte[] content)
    {
        // Same directory as the target, so the rename never crosses a file system and stays atomic.
        var temporary = Path.Combine(Directory, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A stray temporary file is harmless; the original failure is the one worth reporting.
        }
    }

    // Keys become file names: only the hex digests ComputeKey produces (or similar safe names) are allowed,
    // so a caller can never escape the cache directory.
    private static void ValidateKey(string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        foreach (var c in key)
            if (!char.IsAsciiLetterOrDigit(c) && c is not '-' and not '_')
                throw new ArgumentException($"kernel cache key '{key}' may only contain ASCII letters, digits, '-' and '_'", nameof(key));
    }

    /// <summary>
    /// A CUBIN is a 64-bit little-endian ELF file. Checking the magic and that the section header table
    /// lies inside the file catches truncated or overwritten entries without parsing the whole image; a
    /// subtler corruption is caught when the driver refuses the image (the device then recompiles).
    /// </summary>
    private static bool LooksLikeCompleteElf(byte[] bytes)
    {
        const int headerSize = 64;
        if (bytes.Length < headerSize) return false;
        if (bytes[0] != 0x7f || bytes[1] != (byte)'E' || bytes[2] != (byte)'L' || bytes[3] != (byte)'F') return false;
        if (bytes[4] != 2 || bytes[5] != 1) return false;  // ELFCLASS64, little-endian
        var span = bytes.AsSpan();
        ulong sectionHeaderOffset = BinaryPrimitives.ReadUInt64LittleEndian(span[0x28..]);
        ushort sectionHeaderSize = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3a..]);
        ushort sectionHeaderCount = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3c..]);
        ulong end = sectionHeaderOffset + (ulong)sectionHeaderSize * sectionHeaderCount;
        return end <= (ulong)bytes.Length;
    }
}
