using System.IO.Compression;
using System.Numerics;
using VqVaeCuda.Device;

namespace VqVaeCuda.Data;

/// <summary>File helpers shared by the binary readers: open (transparently un-gzipping) and read exactly.</summary>
internal static class DataFiles
{
    /// <summary>
    /// Opens <paramref name="path"/> for reading, through a gzip decoder when the file starts with the gzip
    /// magic bytes 1F 8B. The content decides, not the extension: downloads are often renamed, or
    /// decompressed by a browser while keeping ".gz".
    /// </summary>
    public static Stream OpenMaybeGzip(string path)
    {
        if (!File.Exists(path)) throw new DataFormatException(path, "file not found");
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            Span<byte> magic = stackalloc byte[2];
            int n = file.ReadAtLeast(magic, 2, throwOnEndOfStream: false);
            file.Position = 0;
            if (n == 2 && magic[0] == 0x1F && magic[1] == 0x8B)
                return new BufferedStream(new GZipStream(file, CompressionMode.Decompress), 1 << 16);
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Reads into <paramref name="buffer"/> until it is full or the stream ends; returns the bytes read.
    /// A damaged gzip stream becomes a <see cref="DataFormatException"/> naming the file.</summary>
    public static int ReadFully(Stream stream, Span<byte> buffer, string path)
    {
        try
        {
            return stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        }
        catch (InvalidDataException e)
        {
            throw new DataFormatException(path, $"corrupt gzip data ({e.Message})", e);
        }
    }

    /// <summary>
    /// Reads the <paramref name="count"/> bytes a header promises, allocating only for bytes that exist. A plain file's
    /// length is checked before the buffer is made; a gzip stream's length is unknown until it ends, so its buffer grows
    /// (doubling) with the data actually decompressed. Either way a header that claims 10^9 items in a 1 KB file costs
    /// nothing but the refusal. <paramref name="truncated"/> says what the header promised, given the bytes found.
    /// </summary>
    /// <exception cref="DataFormatException">The data ends before <paramref name="count"/> bytes, or there is not
    /// memory for them.</exception>
    public static byte[] ReadPromised(Stream stream, long count, string path, Func<long, string> truncated)
    {
        if (stream.CanSeek)
        {
            long remaining = stream.Length - stream.Position;
            if (remaining < count) throw new DataFormatException(path, truncated(remaining));
        }
        RequireMemory(path, count, "the data its header promises");
        var buffer = new byte[stream.CanSeek ? count : Math.Min(count, 1 << 20)];
        long done = 0;
        while (done < count)
        {
            if (done == buffer.Length) Array.Resize(ref buffer, (int)Math.Min(count, 2L * buffer.Length));
            int got = ReadFully(stream, buffer.AsSpan((int)done, buffer.Length - (int)done), path);
            done += got;
            if (done < buffer.Length) throw new DataFormatException(path, truncated(done));
        }
        return buffer;
    }

    /// <summary>Refuses, naming the file, an allocation of <paramref name="bytes"/> that this machine does not have free.</summary>
    /// <exception cref="DataFormatException">More than the memory available (<see cref="HostMemory.AvailableBytes"/>).</exception>
    public static void RequireMemory(string path, long bytes, string what)
    {
        if (bytes < 16L << 20) return;  // not worth reading /proc/meminfo for
        long available = HostMemory.AvailableBytes();
        if (bytes > available)
            throw new DataFormatException(path, $"{what} needs {HostMemory.Describe(bytes)} of memory, {HostMemory.Describe(available)} available");
    }

    /// <summary>True when the stream has at least one more byte (used to reject trailing garbage).</summary>
    public static bool HasMore(Stream stream, string path)
    {
        Span<byte> one = stackalloc byte[1];
        return ReadFully(stream, one, path) == 1;
    }

    /// <summary>Big-endian 32-bit integer, as IDX headers store them.</summary>
    public static int BigEndianInt32(ReadOnlySpan<byte> bytes)
        => System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes);

    /// <summary>Converts 8-bit pixels to floats in [0, 1]: k/255, correctly rounded (vector lanes divide
    /// exactly like scalars), so every reader and test agrees to the bit.</summary>
    public static void BytesToUnit(ReadOnlySpan<byte> source, Span<float> destination)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var divisor = new Vector<float>(255f);
            int bytesPerStep = Vector<byte>.Count, floatsPerVector = Vector<float>.Count;
            for (; i <= source.Length - bytesPerStep; i += bytesPerStep)
            {
                Vector.Widen(new Vector<byte>(source[i..]), out var lo16, out var hi16);
                Vector.Widen(lo16, out var a, out var b);
                Vector.Widen(hi16, out var c, out var d);
                int k = 0;
                foreach (var part in (ReadOnlySpan<Vector<uint>>)[a, b, c, d])
                {
                    (Vector.ConvertToSingle(Vector.AsVectorInt32(part)) / divisor).CopyTo(destination[(i + k)..]);
                    k += floatsPerVector;
                }
            }
        }
        for (; i < source.Length; i++) destination[i] = source[i] / 255f;
    }
}
