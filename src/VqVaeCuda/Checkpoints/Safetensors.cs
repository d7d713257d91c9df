using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Checkpoints;

/// <summary>A file that is not valid safetensors, or not what it should hold; the message names the file, where, and the problem.</summary>
public sealed class CheckpointFormatException : InvalidInputFileException
{
    /// <summary>An error about the whole of <paramref name="path"/>: "path: problem".</summary>
    public CheckpointFormatException(string path, string problem)
        : base(path, null, problem)
    {
    }

    /// <summary>
    /// A message that already starts with the file's path and a colon ("path: problem"), as callers above this layer
    /// compose them; <see cref="InvalidInputFileException.Path"/> is the text before the first ": ".
    /// </summary>
    public CheckpointFormatException(string message)
        : base(Split(message).Path, null, Split(message).Problem)
    {
    }

    /// <summary>An error about <paramref name="where"/> (a byte range, a tensor, a metadata field) in <paramref name="path"/>: "path: where: problem".</summary>
    public CheckpointFormatException(string path, string where, string problem)
        : base(path, where, problem)
    {
    }

    private static (string Path, string Problem) Split(string message)
    {
        int colon = message.IndexOf(": ", StringComparison.Ordinal);
        return colon > 0 ? (message[..colon], message[(colon + 2)..]) : ("", message);
    }
}

/// <summary>One tensor of a safetensors file: name, dtype ("F32", "I32"), shape and raw little-endian bytes.</summary>
public sealed record SafetensorsTensor(string Name, string DType, long[] Shape, byte[] Data)
{
    /// <summary>The file the tensor was read from (set by <see cref="Safetensors.Read"/>), for messages; null for a tensor made in memory.</summary>
    public string? File { get; init; }

    /// <summary>The values of an F32 tensor.</summary>
    /// <exception cref="CheckpointFormatException">The tensor is of another dtype (a file that gives the tensor's role another type).</exception>
    public float[] ToFloats()
    {
        if (DType != "F32") throw WrongType("F32");
        var result = new float[Data.Length / 4];
        Buffer.BlockCopy(Data, 0, result, 0, Data.Length);
        return result;
    }

    /// <summary>The values of an I32 tensor.</summary>
    /// <exception cref="CheckpointFormatException">The tensor is of another dtype.</exception>
    public int[] ToInts()
    {
        if (DType != "I32") throw WrongType("I32");
        var result = new int[Data.Length / 4];
        Buffer.BlockCopy(Data, 0, result, 0, Data.Length);
        return result;
    }

    private CheckpointFormatException WrongType(string expected) =>
        new(File ?? "(in memory)", $"tensor '{Name}'", $"is {DType}, expected {expected}");

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

    /// <summary>Reads a whole safetensors file, checking every part of it before anything is allocated from its header.</summary>
    /// <remarks>
    /// What is refused, each with the file and the offset or field named: a file shorter than its 8-byte length prefix;
    /// a header length past the end of the file or over 100 MiB; a header that is not UTF-8, not JSON, or not a JSON
    /// object; a name given twice; <c>__metadata__</c> that is not an object of strings; an entry without exactly a
    /// known dtype, a shape of non-negative integers and two data offsets; a shape whose bytes disagree with its offsets;
    /// and byte ranges that overlap, leave a gap, or do not end where the file does (the format indexes every data byte
    /// exactly once).
    /// </remarks>
    /// <exception cref="CheckpointFormatException">Missing, truncated, or malformed; the message names the file, where, and the problem.</exception>
    public static (IReadOnlyDictionary<string, SafetensorsTensor> Tensors, IReadOnlyDictionary<string, string> Metadata) Read(string path)
    {
        if (!File.Exists(path)) throw new CheckpointFormatException(path, "no such file");
        long fileLength = new FileInfo(path).Length;
        // ReadAllBytes would fail with a bare IOException past 2 GiB; no file this program writes comes near.
        if (fileLength > Array.MaxLength)
            throw new CheckpointFormatException(path, $"{fileLength} bytes is more than this reader holds in memory (at most {Array.MaxLength})");
        // The file is held whole, then each tensor copied out of it: twice its length, which must be there to take.
        long available = fileLength < 8L << 20 ? long.MaxValue : Device.HostMemory.AvailableBytes();  // small files: not worth asking
        if (2 * fileLength > available)
            throw new CheckpointFormatException(path, $"reading its {Device.HostMemory.Describe(fileLength)} needs twice that in memory, " +
                                                      $"{Device.HostMemory.Describe(available)} available");
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 8) throw new CheckpointFormatException(path, $"{bytes.Length} bytes is too short for a safetensors file (truncated?)");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLength > (ulong)(bytes.Length - 8))
            throw new CheckpointFormatException(path, "bytes 0..8", $"header length {headerLength} does not fit a {bytes.Length}-byte file (not safetensors, or truncated)");
        if (headerLength > MaxHeaderBytes)
            throw new CheckpointFormatException(path, "bytes 0..8", $"header length {headerLength} is over the {MaxHeaderBytes}-byte bound on a safetensors header");
        var headerBytes = bytes.AsSpan(8, (int)headerLength);
        if (!System.Text.Unicode.Utf8.IsValid(headerBytes))
            throw new CheckpointFormatException(path, $"header (bytes 8..{8 + (long)headerLength})", "is not valid UTF-8");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength), new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(path, $"header (bytes 8..{8 + (long)headerLength})", $"is not valid JSON ({e.Message})");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new CheckpointFormatException(path, "header", $"is a JSON {Kind(root.ValueKind)}, expected an object of tensor entries");
            long dataStart = 8 + (long)headerLength;
            long dataLength = bytes.Length - dataStart;
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var entries = new List<(string Name, string DType, long[] Shape, long Begin, long End)>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in root.EnumerateObject())
            {
                string name = property.Name;
                // JSON allows a name twice and parsers keep either one: a checkpoint must not be ambiguous.
                if (!seen.Add(name)) throw new CheckpointFormatException(path, $"header entry '{name}'", "appears twice");
                if (name == "__metadata__")
                {
                    ReadMetadata(path, property.Value, metadata);
                    continue;
                }
                entries.Add(ReadEntry(path, name, property.Value));
            }
            CheckCoverage(path, entries, dataLength);
            var tensors = new Dictionary<string, SafetensorsTensor>(StringComparer.Ordinal);
            foreach (var (name, dtype, shape, begin, end) in entries)
                tensors[name] = new SafetensorsTensor(name, dtype, shape, bytes.AsSpan((int)(dataStart + begin), (int)(end - begin)).ToArray()) { File = path };
            return (tensors, metadata);
        }
    }

    private static void ReadMetadata(string path, JsonElement node, Dictionary<string, string> metadata)
    {
        if (node.ValueKind != JsonValueKind.Object)
            throw new CheckpointFormatException(path, "header entry '__metadata__'", $"is a JSON {Kind(node.ValueKind)}, expected an object of strings");
        foreach (var item in node.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw new CheckpointFormatException(path, $"metadata '{item.Name}'", $"is a JSON {Kind(item.Value.ValueKind)}, expected a string (safetensors metadata maps strings to strings)");
            if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
                throw new CheckpointFormatException(path, $"metadata '{item.Name}'", "appears twice");
        }
    }

    private static (string Name, string DType, long[] Shape, long Begin, long End) ReadEntry(string path, string name, JsonElement node)
    {
        string where = $"tensor '{name}'";
        if (node.ValueKind != JsonValueKind.Object)
            throw new CheckpointFormatException(path, where, $"is a JSON {Kind(node.ValueKind)}, expected an object with dtype, shape and data_offsets");
        JsonElement? dtypeNode = null, shapeNode = null, offsetsNode = null;
        foreach (var field in node.EnumerateObject())
        {
            switch (field.Name)
            {
                case "dtype" when dtypeNode is null: dtypeNode = field.Value; break;
                case "shape" when shapeNode is null: shapeNode = field.Value; break;
                case "data_offsets" when offsetsNode is null: offsetsNode = field.Value; break;
                default: throw new CheckpointFormatException(path, where, $"has field '{field.Name}' twice or unknown; expected dtype, shape and data_offsets once each");
            }
        }
        if (dtypeNode is not { ValueKind: JsonValueKind.String } d)
            throw new CheckpointFormatException(path, where, "has no string 'dtype'");
        string dtype = d.GetString()!;
        if (!ElementSizes.TryGetValue(dtype, out int size))
            throw new CheckpointFormatException(path, where, $"has unsupported dtype '{dtype}'; expected one of {string.Join(", ", ElementSizes.Keys)}");
        long[] shape = Integers(path, where, "shape", shapeNode, count: null);
        long[] offsets = Integers(path, where, "data_offsets", offsetsNode, count: 2);
        long begin = offsets[0], end = offsets[1];
        if (end < begin)
            throw new CheckpointFormatException(path, where, $"data_offsets [{begin}, {end}] end before they begin");
        // Checked so that a header claiming 10^12 × 10^12 elements is refused, not wrapped round to a small number.
        long expected = size;
        foreach (var dim in shape)
            expected = dim == 0 || expected == 0 ? 0 : expected > long.MaxValue / dim ? -1 : expected * dim;
        if (expected < 0)
            throw new CheckpointFormatException(path, where, $"shape [{string.Join(",", shape)}] {dtype} has more bytes than any file can hold");
        if (expected != end - begin)
            throw new CheckpointFormatException(path, where, $"shape [{string.Join(",", shape)}] {dtype} needs {expected} bytes, its data_offsets [{begin}, {end}] give {end - begin}");
        return (name, dtype, shape, begin, end);
    }

    private static long[] Integers(string path, string where, string field, JsonElement? node, int? count)
    {
        if (node is not { ValueKind: JsonValueKind.Array } array)
            throw new CheckpointFormatException(path, where, $"has no array '{field}'");
        var values = new List<long>();
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out long v) || v < 0)
                throw new CheckpointFormatException(path, where, $"'{field}' holds {item.GetRawText()}; expected non-negative integers");
            values.Add(v);
        }
        if (count is { } n && values.Count != n)
            throw new CheckpointFormatException(path, where, $"'{field}' has {values.Count} values, expected {n}");
        if (values.Count > 8)
            throw new CheckpointFormatException(path, where, $"'{field}' has {values.Count} dimensions; no tensor of this program has more than 8");
        return [.. values];
    }

    /// <summary>The byte ranges must tile the data exactly: no overlap (two tensors sharing bytes), no gap, nothing past the end.</summary>
    private static void CheckCoverage(string path, List<(string Name, string DType, long[] Shape, long Begin, long End)> entries, long dataLength)
    {
        long at = 0;
        string? previous = null;
        foreach (var e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.Begin < at)
                throw new CheckpointFormatException(path, $"tensor '{e.Name}'", $"bytes {e.Begin}..{e.End} overlap tensor '{previous}', which ends at {at}");
            if (e.Begin > at)
                throw new CheckpointFormatException(path, $"tensor '{e.Name}'", $"bytes {e.Begin}..{e.End} leave a gap after byte {at} of the data (no tensor covers {at}..{e.Begin})");
            if (e.End > dataLength)
                throw new CheckpointFormatException(path, $"tensor '{e.Name}'", $"claims bytes {e.Begin}..{e.End} of {dataLength} data bytes (truncated?)");
            at = e.End;
            previous = e.Name;
        }
        if (at != dataLength)
            throw new CheckpointFormatException(path, $"data (bytes {at}..{dataLength})", $"{dataLength - at} bytes after the last tensor belong to none (a header that lost an entry?)");
    }

    private static string Kind(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString().ToLowerInvariant(),
    };
}
