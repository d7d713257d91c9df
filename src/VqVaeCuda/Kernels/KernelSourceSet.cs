using System.Reflection;
using System.Text.RegularExpressions;

namespace VqVaeCuda.Kernels;

/// <summary>
/// The kernel sources embedded in this assembly (<c>kernels/**/*.cu</c> and the headers they include),
/// with every kernel's declaration parsed from them. This is the single list of kernels both devices
/// share: the GPU compiles these texts with NVRTC, the CPU library was built from the same files.
/// </summary>
public sealed partial class KernelSourceSet
{
    private const string ResourcePrefix = "kernels/";
    private readonly Dictionary<string, KernelDefinition> _kernels;

    private KernelSourceSet(IReadOnlyDictionary<string, string> sources, IReadOnlyDictionary<string, string> headers)
    {
        Sources = sources;
        Headers = headers;
        _kernels = new Dictionary<string, KernelDefinition>(StringComparer.Ordinal);
        foreach (var (name, text) in sources)
            foreach (var kernel in Parse(name, text))
                if (!_kernels.TryAdd(kernel.Name, kernel))
                    throw new InvalidOperationException($"kernel '{kernel.Name}' is defined in both {_kernels[kernel.Name].SourceName} and {name}");
    }

    /// <summary>The kernels shipped with this assembly.</summary>
    public static KernelSourceSet Embedded { get; } = LoadEmbedded();

    /// <summary>Kernel source files by name ("reduce.cu", "testing/semantics.cu").</summary>
    public IReadOnlyDictionary<string, string> Sources { get; }

    /// <summary>Headers by the name kernels include them with ("common.cuh").</summary>
    public IReadOnlyDictionary<string, string> Headers { get; }

    /// <summary>Every kernel, by name.</summary>
    public IReadOnlyCollection<KernelDefinition> Kernels => _kernels.Values;

    /// <summary>Builds a set from explicit texts (tests use this for sources with deliberate errors).</summary>
    public static KernelSourceSet FromTexts(IReadOnlyDictionary<string, string> sources, IReadOnlyDictionary<string, string> headers) =>
        new(sources, headers);

    /// <summary>The kernel called <paramref name="name"/>.</summary>
    /// <exception cref="UnknownKernelException">No such kernel; the message names the closest ones.</exception>
    public KernelDefinition Find(string name)
    {
        if (_kernels.TryGetValue(name, out var kernel)) return kernel;
        throw new UnknownKernelException(name, ClosestNames(name, 3));
    }

    /// <summary>True when a kernel of that name exists.</summary>
    public bool Contains(string name) => _kernels.ContainsKey(name);

    /// <summary>Kernel names nearest to <paramref name="name"/> by edit distance (substring matches first).</summary>
    public IReadOnlyList<string> ClosestNames(string name, int count) =>
        _kernels.Keys
            .Select(k => (k, d: k.Contains(name, StringComparison.OrdinalIgnoreCase) || name.Contains(k, StringComparison.OrdinalIgnoreCase)
                ? 0 : EditDistance(name.ToLowerInvariant(), k.ToLowerInvariant())))
            .OrderBy(t => t.d).ThenBy(t => t.k, StringComparer.Ordinal)
            .Take(count).Select(t => t.k).ToList();

    private static KernelSourceSet LoadEmbedded()
    {
        var assembly = typeof(KernelSourceSet).Assembly;
        var sources = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var headers = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            if (!resource.StartsWith(ResourcePrefix, StringComparison.Ordinal)) continue;
            var name = resource[ResourcePrefix.Length..].Replace('\\', '/');
            var text = ReadResource(assembly, resource);
            if (name.EndsWith(".cu", StringComparison.Ordinal)) sources[name] = text;
            else headers[name] = text;
        }
        return new KernelSourceSet(sources, headers);
    }

    private static string ReadResource(Assembly assembly, string resource)
    {
        using var stream = assembly.GetManifestResourceStream(resource)!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    internal static IEnumerable<KernelDefinition> Parse(string sourceName, string text)
    {
        var withoutComments = CommentPattern().Replace(text, m => new string('\n', m.Value.Count(c => c == '\n')));
        var registrations = RegistrationPattern().Matches(withoutComments)
            .ToDictionary(m => m.Groups[2].Value, m => m.Groups[1].Value switch
            {
                "NO_SYNC" => KernelSyncKind.NoSync,
                "SYNC" => KernelSyncKind.Sync,
                _ => KernelSyncKind.SyncDivergent,
            });
        foreach (Match m in KernelPattern().Matches(withoutComments))
        {
            var name = m.Groups["name"].Value;
            var parameters = ParseParameters(m.Groups["params"].Value);
            int? bounds = m.Groups["bounds"].Success ? int.Parse(m.Groups["bounds"].Value) : null;
            if (!registrations.TryGetValue(name, out var sync))
                throw new InvalidOperationException(
                    $"{sourceName}: kernel '{name}' has no VQ_KERNEL_NO_SYNC/VQ_KERNEL_SYNC/VQ_KERNEL_SYNC_DIVERGENT registration");
            yield return new KernelDefinition(name, sourceName, parameters, sync, bounds);
        }
    }

    private static List<KernelParameter> ParseParameters(string list)
    {
        var result = new List<KernelParameter>();
        foreach (var raw in list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var decl = Regex.Replace(raw, @"\s+", " ");
            var nameMatch = Regex.Match(decl, @"(\w+)$");
            var name = nameMatch.Groups[1].Value;
            var type = decl[..nameMatch.Index].Trim();
            var bare = Regex.Replace(type, @"\b(const|volatile|__restrict__|signed)\b", "").Trim();
            var (kind, size) = bare.Contains('*') ? ('p', 8) : bare switch
            {
                "float" => ('f', 4),
                "double" => ('d', 8),
                "int" => ('i', 4),
                "long long" or "long" or "int64_t" or "ptrdiff_t" => ('i', 8),
                "unsigned" or "unsigned int" or "uint32_t" => ('u', 4),
                "unsigned long long" or "unsigned long" or "uint64_t" or "size_t" => ('u', 8),
                _ => throw new InvalidOperationException($"kernel parameter type '{type}' is not supported (pointers, float, double, int, unsigned, long long)"),
            };
            result.Add(new KernelParameter(type, name, kind, size));
        }
        return result;
    }

    private static int EditDistance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) previous[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }

    [GeneratedRegex(@"//[^\n]*|/\*.*?\*/", RegexOptions.Singleline)]
    private static partial Regex CommentPattern();

    [GeneratedRegex(@"extern\s+""C""\s+__global__\s+(?:__launch_bounds__\s*\(\s*(?<bounds>\d+)[^)]*\)\s*)?void\s+(?<name>\w+)\s*\((?<params>[^)]*)\)")]
    private static partial Regex KernelPattern();

    [GeneratedRegex(@"VQ_KERNEL_(NO_SYNC|SYNC_DIVERGENT|SYNC)\(\s*(\w+)\s*\)")]
    private static partial Regex RegistrationPattern();
}

/// <summary>A kernel name that no source declares.</summary>
public sealed class UnknownKernelException(string name, IReadOnlyList<string> closest)
    : KeyNotFoundException($"unknown kernel '{name}'" + (closest.Count > 0 ? $"; closest: {string.Join(", ", closest)}" : ""))
{
    /// <summary>The name asked for.</summary>
    public string KernelName { get; } = name;
    /// <summary>The nearest existing names.</summary>
    public IReadOnlyList<string> ClosestNames { get; } = closest;
}
