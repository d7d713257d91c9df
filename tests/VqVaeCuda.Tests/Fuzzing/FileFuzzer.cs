using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Tests.Fuzzing;

/// <summary>A header field of a binary format: where it is, how wide, and its byte order.</summary>
internal sealed record FuzzField(string Name, int Offset, int Size, bool BigEndian);

/// <summary>One mutated file: the seed that made it, what was done, the bytes.</summary>
internal sealed record FuzzCase(int Seed, string Mutation, byte[] Bytes);

/// <summary>What a reader did with a mutated file: read it, or refused it with the project's exception.</summary>
internal enum FuzzOutcome { Accepted, Rejected }

/// <summary>Counts of one fuzz run and its slowest rejection.</summary>
internal sealed record FuzzReport(string Reader, int Cases, int Accepted, int Rejected, double SlowestRejectionMs, string SlowestRejection,
                                  string RefusedAs)
{
    public override string ToString() =>
        $"fuzz {Reader}: {Cases} cases, {Accepted} read, {Rejected} refused {RefusedAs}; " +
        $"slowest refusal {SlowestRejectionMs:F1} ms ({SlowestRejection})";
}

/// <summary>
/// Seeded mutations of a small valid file (bit flips, truncations, header field edits, splices with another valid file,
/// overwritten and duplicated ranges, appended bytes, and format-aware edits such as a safetensors header rewritten with
/// its length fixed up), each handed to a reader under a time bound. A case passes when the reader returns or throws
/// <see cref="InvalidInputFileException"/>; anything else (another exception, a hang) fails the run with the case's seed
/// and mutation, so that it can be replayed.
/// </summary>
internal sealed class FileFuzzer(byte[] valid, IReadOnlyList<FuzzField> fields, IReadOnlyList<byte[]> donors,
                                 Func<byte[], Random, (string, byte[])?>? structured = null)
{
    /// <summary>How long one case may take before it counts as a hang.</summary>
    public static readonly TimeSpan CaseLimit = TimeSpan.FromSeconds(10);

    /// <summary>The mutated file of case <paramref name="seed"/>: the same seed always gives the same bytes.</summary>
    public FuzzCase Make(int seed)
    {
        var r = new Random(seed);
        for (int attempt = 0; ; attempt++)
        {
            int kind = r.Next(structured is null ? 7 : 10);
            var made = kind switch
            {
                0 => FlipBits(r),
                1 => Truncate(r),
                2 => EditField(r),
                3 => Splice(r),
                4 => Overwrite(r),
                5 => Append(r),
                6 => Duplicate(r),
                _ => structured!(valid, r),
            };
            if (made is { } m) return new FuzzCase(seed, m.Item1, m.Item2);
            if (attempt > 100) return new FuzzCase(seed, "truncate to 0 bytes", []);
        }
    }

    /// <summary>
    /// Runs <paramref name="cases"/> cases from <paramref name="firstSeed"/>: each is written by <paramref name="write"/> and read by
    /// <paramref name="read"/>, which returns true when the file was read, and throws the project's exception (or, for a
    /// reader that refuses by returning a reason, returns false) to refuse it.
    /// </summary>
    public FuzzReport Run(string reader, int cases, int firstSeed, Action<byte[]> write, Func<bool> read,
                          string refusedAs = "with the project's exception")
    {
        int accepted = 0, rejected = 0;
        double slowest = 0;
        string slowestCase = "none";
        var failures = new List<string>();
        for (int i = 0; i < cases; i++)
        {
            var c = Make(firstSeed + i);
            write(c.Bytes);
            var watch = Stopwatch.StartNew();
            var task = Task.Run(read);
            // Waits on a continuation, which never faults: the reader's own exception is looked at below.
            if (!task.ContinueWith(_ => { }, TaskContinuationOptions.ExecuteSynchronously).Wait(CaseLimit))
            {
                failures.Add($"seed {c.Seed} ({c.Mutation}): no answer within {CaseLimit.TotalSeconds} s");
                break;  // the reader is still running on a pool thread; later cases would race it
            }
            double ms = watch.Elapsed.TotalMilliseconds;
            var error = task.Exception?.InnerException;
            if (error is null && task.Result) accepted++;
            else if (error is null or InvalidInputFileException)
            {
                rejected++;
                if (ms > slowest) (slowest, slowestCase) = (ms, $"seed {c.Seed}, {c.Mutation}");
            }
            else failures.Add($"seed {c.Seed} ({c.Mutation}): {error.GetType().Name}: {error.Message}{Environment.NewLine}{error.StackTrace}");
            if (failures.Count >= 5) break;
        }
        Assert.That(failures, Is.Empty, $"{reader}: inputs that ended in something other than a read or the project's exception:" +
                                        Environment.NewLine + string.Join(Environment.NewLine, failures));
        var report = new FuzzReport(reader, cases, accepted, rejected, slowest, slowestCase, refusedAs);
        TestContext.Progress.WriteLine(report.ToString());
        TestContext.Out.WriteLine(report.ToString());
        return report;
    }

    private (string, byte[])? FlipBits(Random r)
    {
        if (valid.Length == 0) return null;
        var bytes = (byte[])valid.Clone();
        int flips = 1 + r.Next(8);
        var at = new List<string>();
        for (int i = 0; i < flips; i++)
        {
            // Half the flips land in the first 64 bytes, where the headers are.
            int position = r.Next(2) == 0 ? r.Next(Math.Min(64, bytes.Length)) : r.Next(bytes.Length);
            int bit = r.Next(8);
            bytes[position] ^= (byte)(1 << bit);
            at.Add($"{position}.{bit}");
        }
        return ($"flip bits {string.Join(", ", at)}", bytes);
    }

    private (string, byte[])? Truncate(Random r)
    {
        int length = r.Next(valid.Length);
        return ($"truncate to {length} of {valid.Length} bytes", valid[..length]);
    }

    private (string, byte[])? EditField(Random r)
    {
        if (fields.Count == 0) return null;
        var f = fields[r.Next(fields.Count)];
        if (f.Offset + f.Size > valid.Length) return null;
        var bytes = (byte[])valid.Clone();
        var span = bytes.AsSpan(f.Offset, f.Size);
        long original = f.Size == 8 ? (long)BinaryPrimitives.ReadUInt64LittleEndian(span)
                      : f.BigEndian ? BinaryPrimitives.ReadInt32BigEndian(span) : BinaryPrimitives.ReadInt32LittleEndian(span);
        long[] interesting = [0, 1, -1, original + 1, original - 1, original * 2, original / 2, int.MaxValue, int.MinValue, 1_000_000,
                              1_000_000_000_000, valid.Length, valid.Length - 8, long.MaxValue, 1L << 32, 65536];
        long value = interesting[r.Next(interesting.Length)];
        if (f.Size == 8) BinaryPrimitives.WriteInt64LittleEndian(span, value);
        else if (f.BigEndian) BinaryPrimitives.WriteInt32BigEndian(span, unchecked((int)value));
        else BinaryPrimitives.WriteInt32LittleEndian(span, unchecked((int)value));
        return ($"field {f.Name} (bytes {f.Offset}..{f.Offset + f.Size}) = {value}", bytes);
    }

    private (string, byte[])? Splice(Random r)
    {
        if (donors.Count == 0) return null;
        int d = r.Next(donors.Count);
        var donor = donors[d];
        int cut = r.Next(valid.Length + 1), from = r.Next(donor.Length + 1);
        return ($"splice bytes 0..{cut} with donor {d} from byte {from}", [.. valid[..cut], .. donor[from..]]);
    }

    private (string, byte[])? Overwrite(Random r)
    {
        if (valid.Length == 0) return null;
        var bytes = (byte[])valid.Clone();
        int at = r.Next(bytes.Length), length = Math.Min(1 + r.Next(16), bytes.Length - at);
        byte[] fill = [0x00, 0xFF, 0x7F, 0x80, (byte)r.Next(256)];
        byte value = fill[r.Next(fill.Length)];
        bool random = r.Next(2) == 0;
        for (int i = 0; i < length; i++) bytes[at + i] = random ? (byte)r.Next(256) : value;
        return ($"overwrite bytes {at}..{at + length} with {(random ? "random bytes" : $"0x{value:X2}")}", bytes);
    }

    private (string, byte[])? Append(Random r)
    {
        var extra = new byte[1 + r.Next(64)];
        r.NextBytes(extra);
        return ($"append {extra.Length} random bytes", [.. valid, .. extra]);
    }

    private (string, byte[])? Duplicate(Random r)
    {
        if (valid.Length == 0) return null;
        int at = r.Next(valid.Length), length = Math.Min(1 + r.Next(64), valid.Length - at), to = r.Next(valid.Length + 1);
        return ($"insert a copy of bytes {at}..{at + length} at {to}", [.. valid[..to], .. valid.AsSpan(at, length), .. valid[to..]]);
    }
}

/// <summary>Format-aware mutations of JSON text: the edits a hand-edited or damaged header has.</summary>
internal static class JsonMutations
{
    private static readonly string[] Numbers = ["-1", "0", "1", "1e12", "4294967296", "1000000000000", "9223372036854775807",
                                                "99999999999999999999", "1.5", "null", "\"7\"", "true", "[]", "{}"];

    private static readonly string[] Strings = ["\"F64\"", "\"I32\"", "\"F32\"", "\"U8\"", "\"BF16\"", "\"\"", "1", "null", "[]", "{}",
                                                "\"vqvaecuda-vqvae/2\"", "\"vqvaecuda-prior/1\"", "\"\\u0000\"", "\"{}\""];

    private static readonly string[] Values = ["null", "1", "-1", "\"x\"", "[]", "{}", "[1,2]", "{\"a\":1}", "true", "[\"F32\"]", "1e400"];

    /// <summary>One edit of <paramref name="json"/>: a number or string token replaced, a character deleted or inserted,
    /// a key entry duplicated; the description says which.</summary>
    public static (string Mutation, string Json) Mutate(string json, Random r)
    {
        switch (r.Next(8))
        {
            case 5 or 6:
            {
                // A whole value replaced by one of another JSON type: metadata that is a number, an entry that is an array,
                // a shape that is an object... the confusions a hand-edited header has.
                var keys = StringTokens(json).Where(t => t.At + t.Length < json.Length && json[t.At + t.Length] == ':').ToList();
                if (keys.Count == 0) goto case 3;
                var (at, length) = keys[r.Next(keys.Count)];
                int start = at + length + 1, end = ValueEnd(json, start);
                var by = Values[r.Next(Values.Length)];
                return ($"value of {Short(json.Substring(at, length))} -> {by}", json[..start] + by + json[end..]);
            }
            case 7:
            {
                if (r.Next(2) == 0) return ("whole document wrapped in [ ]", $"[{json}]");
                var by = Values[r.Next(Values.Length)];
                return ($"whole document -> {by}", by);
            }
            case 0:
            {
                var tokens = NumberTokens(json);
                if (tokens.Count == 0) goto case 3;
                var (at, length) = tokens[r.Next(tokens.Count)];
                var by = Numbers[r.Next(Numbers.Length)];
                return ($"number '{json.Substring(at, length)}' at char {at} -> {by}", json[..at] + by + json[(at + length)..]);
            }
            case 1:
            {
                var tokens = StringTokens(json);
                if (tokens.Count == 0) goto case 3;
                var (at, length) = tokens[r.Next(tokens.Count)];
                var by = Strings[r.Next(Strings.Length)];
                return ($"string {Short(json.Substring(at, length))} at char {at} -> {by}", json[..at] + by + json[(at + length)..]);
            }
            case 2:
            {
                // A key with its value, written twice: duplicate names in a header.
                var tokens = StringTokens(json).Where(t => t.At + t.Length < json.Length && json[t.At + t.Length] == ':').ToList();
                if (tokens.Count == 0) goto case 3;
                var (at, length) = tokens[r.Next(tokens.Count)];
                int end = ValueEnd(json, at + length + 1);
                var entry = json[at..end];
                return ($"entry {Short(json.Substring(at, length))} duplicated", json[..end] + "," + entry + json[end..]);
            }
            case 3:
            {
                if (json.Length == 0) return ("empty", json);
                int at = r.Next(json.Length);
                return ($"delete char {at} '{json[at]}'", json.Remove(at, 1));
            }
            default:
            {
                const string structural = "{}[],:\"\\ 0-e.";
                int at = r.Next(json.Length + 1);
                char c = r.Next(4) == 0 ? (char)r.Next(0x20, 0x7F) : structural[r.Next(structural.Length)];
                return ($"insert '{c}' at char {at}", json.Insert(at, c.ToString()));
            }
        }
    }

    private static string Short(string s) => s.Length > 40 ? s[..40] + "…" : s;

    private static List<(int At, int Length)> NumberTokens(string json)
    {
        var result = new List<(int, int)>();
        bool inString = false;
        for (int i = 0; i < json.Length; i++)
        {
            char c = json[i];
            if (c == '"' && (i == 0 || json[i - 1] != '\\')) inString = !inString;
            if (inString || !(char.IsDigit(c) || c == '-')) continue;
            int start = i;
            while (i < json.Length && (char.IsDigit(json[i]) || json[i] is '-' or '.' or 'e' or 'E' or '+')) i++;
            result.Add((start, i - start));
        }
        return result;
    }

    private static List<(int At, int Length)> StringTokens(string json)
    {
        var result = new List<(int, int)>();
        for (int i = 0; i < json.Length; i++)
        {
            if (json[i] != '"') continue;
            int start = i++;
            while (i < json.Length && !(json[i] == '"' && json[i - 1] != '\\')) i++;
            result.Add((start, Math.Min(i + 1, json.Length) - start));
        }
        return result;
    }

    /// <summary>The end of the JSON value starting at <paramref name="from"/> (balanced brackets, strings skipped).</summary>
    private static int ValueEnd(string json, int from)
    {
        int depth = 0;
        bool inString = false;
        for (int i = from; i < json.Length; i++)
        {
            char c = json[i];
            if (c == '"' && json[i - 1] != '\\')
            {
                inString = !inString;
                if (!inString && depth == 0) return i + 1;  // a string value ends with its closing quote
                continue;
            }
            if (inString) continue;
            if (c is '{' or '[') depth++;
            else if (c is '}' or ']')
            {
                if (depth == 0) return i;
                if (--depth == 0) return i + 1;
            }
            else if (c == ',' && depth == 0) return i;
        }
        return json.Length;
    }
}

/// <summary>Safetensors-aware mutations: the JSON header edited (tokens, duplicates, offsets, shapes) with its length prefix
/// fixed up, so that the edit reaches the checks behind the length check; sometimes left stale.</summary>
internal static class SafetensorsMutations
{
    public static (string, byte[])? Mutate(byte[] valid, Random r)
    {
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(valid);
        var header = Encoding.UTF8.GetString(valid, 8, (int)headerLength).TrimEnd(' ');
        var data = valid[(8 + (int)headerLength)..];
        var (mutation, edited) = JsonMutations.Mutate(header, r);
        // Now and then the data loses or gains bytes too: offsets past the end, or bytes no tensor covers.
        if (r.Next(8) == 0)
        {
            int change = r.Next(-8, 9) * 4;
            data = change < 0 ? data[..Math.Max(0, data.Length + change)] : [.. data, .. new byte[change]];
            mutation += $", data {change:+#;-#;0} bytes";
        }
        var json = Encoding.UTF8.GetBytes(edited);
        bool fixLength = r.Next(8) != 0;
        ulong length = fixLength ? (ulong)json.Length : (ulong)headerLength;
        var bytes = new byte[8 + json.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, length);
        json.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + json.Length);
        return ($"header: {mutation}{(fixLength ? "" : ", length left stale")}", bytes);
    }
}
