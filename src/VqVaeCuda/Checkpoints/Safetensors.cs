using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace VqVaeCuda.Checkpoints;

/// <summary>A file that is not valid safetensors, or not what it should hold; the message names the file.</summary>
public sealed class CheckpointFormatException(string message) : IOException(message);

/// <summary>One tensor of a safetensors file: name, dtype ("F32", "I32"), shape and raw little-endian bytes.</summary>
public sealed record SafetensorsTensor(string Name, string DType, long[] Shape, byte[] Data)
{
    /// <summary>The values of an F32 tensor.</summary>
    public float[] ToFloats()
    {
        if (DType != "F32") throw new InvalidOperationException($"tensor '{Name}' is {DType}, not F32");
        var result = new float[Data.Length / 4];
        Buffer.BlockCopy(Data, 0, result, 0, Data.Length);
        return result;
    }

    /// <summary>The values of an I32 tensor.</summary>
    public int[] ToInts()
    {
        if (DType != "I32") throw new InvalidOperationException($"tensor '{Name}' is {DType}, not I32");
        var result = new int[Data.Length / 4];
        Buffer.BlockCopy(Data, 0, result, 0, Data.Length);
        return result;
    }

    /// <summary>An F32 tensor.</summary>
    public static SafetensorsTensor FromFloats(string name, long[] shape, ReadOnlySpan<float> values) =>
        new(name, "F32", shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values).ToArray());

    /// <summary>An I32 tensor.</summary>
    public static SafetensorsTensor FromInts(string name, long[] shape, ReadOnlySpan<int> values) =>
        new(name, "I32", shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values).ToArray());
}

/// <summary>
/// The safetensors format: an 8-byte little-endian header length, a JSON header mapping each tensor
/// name to its dtype, shape and byte range (plus a string-to-string <c>__metadata__</c>), then the raw
/// little-endian data. Readable by PyTorch's <c>safetensors.torch.load_file</c>.
/// Writes are atomic: a temporary file in the same folder, flushed to disk, then renamed over the
/// target — so a crash never leaves a half-written checkpoint under the real name.
/// </summary>
public static class Safetensors
{
    private static readonly Dictionary<string, int> ElementSizes = new() { ["F32"] = 4, ["I32"] = 4, ["F16"] = 2, ["BF16"] = 2, ["I64"] = 8, ["U8"] = 1 };
    private const long MaxHeaderBytes = 100L << 20;

    /// <summary>Writes <paramref name="tensors"/> and <paramref name="metadata"/> to <paramref name="path"/> atomically.</summary>
    public static void Write(string path, IReadOnlyList<SafetensorsTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var meta = new JsonObject();
            foreach (var (k, v) in metadata) meta[k] = v;
            header["__metadata__"] = meta;
        }
        long offset = 0;
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in tensors)
        {
            if (!names.Add(t.Name)) throw new ArgumentException($"tensor '{t.Name}' appears twice");
            if (!ElementSizes.TryGetValue(t.DType, out int size)) throw new ArgumentException($"tensor '{t.Name}': unsupported dtype {t.DType}");
            long expected = t.Shape.Aggregate(1L, (a, b) => a * b) * size;
            if (expected != t.Data.Length)
                throw new ArgumentException($"tensor '{t.Name}': shape [{string.Join(",", t.Shape)}] {t.DType} needs {expected} bytes, got {t.Data.Length}");
            header[t.Name] = new JsonObject
            {
                ["dtype"] = t.DType,
                ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + t.Data.Length),
            };
            offset += t.Data.Length;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        // Pad the header with spaces so the data starts 8-byte aligned (the format allows trailing spaces).
        int padded = (json.Length + 7) / 8 * 8;
        var headerBytes = new byte[padded];
        Array.Fill(headerBytes, (byte)' ');
        json.CopyTo(headerBytes, 0);

        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        var temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                Span<byte> length = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded);
                stream.Write(length);
                stream.Write(headerBytes);
                foreach (var t in tensors) stream.Write(t.Data);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(temporary); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>Reads a whole safetensors file.</summary>
    /// <exception cref="CheckpointFormatException">Missing, truncated, or malformed; the message names the file and the problem.</exception>
    public static (IReadOnlyDictionary<string, SafetensorsTensor> Tensors, IReadOnlyDictionary<string, string> Metadata) Read(string path)
    {
        if (!File.Exists(path)) throw new CheckpointFormatException($"{path}: no such file");
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 8) throw new CheckpointFormatException($"{path}: {bytes.Length} bytes is too short for a safetensors file (truncated?)");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLength > (ulong)Math.Min(MaxHeaderBytes, bytes.Length - 8))
            throw new CheckpointFormatException($"{path}: header length {headerLength} does not fit a {bytes.Length}-byte file (not safetensors, or truncated)");
        JsonObject header;
        try
        {
            header = JsonNode.Parse(bytes.AsSpan(8, (int)headerLength))?.AsObject()
                     ?? throw new CheckpointFormatException($"{path}: empty header");
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException($"{path}: header is not valid JSON ({e.Message})");
        }
        long dataStart = 8 + (long)headerLength;
        long dataLength = bytes.Length - dataStart;
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var tensors = new Dictionary<string, SafetensorsTensor>(StringComparer.Ordinal);
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__")
            {
                foreach (var (k, v) in node!.AsObject()) metadata[k] = v?.GetValue<string>() ?? "";
                continue;
            }
            try
            {
                var entry = node!.AsObject();
                string dtype = entry["dtype"]!.GetValue<string>();
                long[] shape = entry["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray();
                var offsets = entry["data_offsets"]!.AsArray();
                long begin = offsets[0]!.GetValue<long>(), end = offsets[1]!.GetValue<long>();
                if (!ElementSizes.TryGetValue(dtype, out int size)) throw new CheckpointFormatException($"{path}: tensor '{name}' has unsupported dtype {dtype}");
                if (begin < 0 || end < begin || end > dataLength)
                    throw new CheckpointFormatException($"{path}: tensor '{name}' claims bytes {begin}..{end} of {dataLength} data bytes (truncated?)");
                long expected = shape.Aggregate(1L, (a, b) => a * b) * size;
                if (expected != end - begin)
                    throw new CheckpointFormatException($"{path}: tensor '{name}' shape [{string.Join(",", shape)}] {dtype} needs {expected} bytes, the file gives {end - begin}");
                tensors[name] = new SafetensorsTensor(name, dtype, shape, bytes.AsSpan((int)(dataStart + begin), (int)(end - begin)).ToArray());
            }
            catch (Exception e) when (e is InvalidOperationException or NullReferenceException or FormatException)
            {
                throw new CheckpointFormatException($"{path}: tensor '{name}' has a malformed header entry ({e.Message})");
            }
        }
        return (tensors, metadata);
    }
}
