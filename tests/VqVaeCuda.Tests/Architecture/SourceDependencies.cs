using System.Text;
using System.Text.RegularExpressions;

namespace VqVaeCuda.Tests.Architecture;

/// <summary>One place where a file of the library names another folder of it.</summary>
/// <param name="File">The file, relative to <c>src/VqVaeCuda</c> ("Kernels/KernelSourceSet.cs").</param>
/// <param name="Line">1-based line of the reference.</param>
/// <param name="From">The top-level folder the file lives in.</param>
/// <param name="To">The top-level folder it names.</param>
/// <param name="Text">The reference as written ("VqVaeCuda.Device.Cuda", "Autodiff.OpContext").</param>
public sealed record FolderReference(string File, int Line, string From, string To, string Text)
{
    /// <inheritdoc />
    public override string ToString() => $"{File}:{Line}: {Text}";
}

/// <summary>
/// Which top-level folders of <c>src/VqVaeCuda</c> each folder uses, read from the C# sources: the library's
/// namespaces are its folders, so a folder uses another when one of its files names that namespace.
/// </summary>
/// <remarks>
/// A file names another folder in three ways, all counted: a <c>using VqVaeCuda.X...</c> directive (plain,
/// static, alias or global), a name qualified from the root (<c>VqVaeCuda.X.Type</c>, <c>global::VqVaeCuda.X</c>),
/// or a name qualified from the parent namespace, which C# resolves inside any <c>VqVaeCuda.*</c> namespace
/// (<c>Autodiff.OpContext</c>, <c>Device.Native.NativeLibraries</c>). The last form looks like a member access
/// on a property called <c>Device</c> or <c>Data</c>, so it counts only when a later part of the dotted name is a
/// type declared in folder X or one of X's sub-namespaces. Comments and string literals are not code and are
/// skipped, except <c>cref</c> attributes in documentation comments: the compiler resolves those too.
/// Not seen: references hidden inside holes of interpolated strings.
/// </remarks>
public sealed partial class SourceDependencies
{
    private SourceDependencies(IReadOnlyList<string> folders, IReadOnlyList<(string File, string Folder, string Namespace)> files,
                               IReadOnlyList<FolderReference> references)
    {
        Folders = folders;
        Files = files;
        References = references;
    }

    /// <summary>The top-level folders holding C# sources, sorted.</summary>
    public IReadOnlyList<string> Folders { get; }

    /// <summary>Every source file (relative path), its top-level folder ("" at the root) and the namespace it declares (null if none).</summary>
    public IReadOnlyList<(string File, string Folder, string Namespace)> Files { get; }

    /// <summary>Every reference from a file to a folder other than its own.</summary>
    public IReadOnlyList<FolderReference> References { get; }

    /// <summary>Folder → the folders it uses, each with the references that make it so.</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, IReadOnlyList<FolderReference>>> Graph =>
        Folders.ToDictionary(
            f => f,
            f => (IReadOnlyDictionary<string, IReadOnlyList<FolderReference>>)References
                .Where(r => r.From == f)
                .GroupBy(r => r.To)
                .ToDictionary(g => g.Key, g => (IReadOnlyList<FolderReference>)g.ToList()));

    /// <summary>The library's sources in the repository that holds the running tests.</summary>
    public static SourceDependencies OfLibrary() => Read(Path.Combine(RepositoryRoot(), "src", "VqVaeCuda"));

    /// <summary>The repository root: the first directory above the test binaries that holds VqVaeCuda.sln.</summary>
    public static string RepositoryRoot()
    {
        var directory = TestContext.CurrentContext.TestDirectory;
        while (directory is not null && !File.Exists(Path.Combine(directory, "VqVaeCuda.sln")))
            directory = Path.GetDirectoryName(directory);
        return directory ?? throw new DirectoryNotFoundException(
            $"no VqVaeCuda.sln above {TestContext.CurrentContext.TestDirectory}: the layering tests read the sources and need the repository");
    }

    /// <summary>Reads every <c>*.cs</c> under <paramref name="libraryRoot"/> (build output in bin/ and obj/ excluded).</summary>
    public static SourceDependencies Read(string libraryRoot)
    {
        var texts = Directory.EnumerateFiles(libraryRoot, "*.cs", SearchOption.AllDirectories)
            .Select(path => Path.GetRelativePath(libraryRoot, path).Replace('\\', '/'))
            .Where(relative => !relative.StartsWith("bin/", StringComparison.Ordinal) && !relative.StartsWith("obj/", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToDictionary(relative => relative, relative => File.ReadAllText(Path.Combine(libraryRoot, relative)));
        return FromTexts(texts);
    }

    /// <summary>Builds the map from file texts keyed by path relative to the library root ("Ops/Losses.cs").</summary>
    public static SourceDependencies FromTexts(IReadOnlyDictionary<string, string> files)
    {
        static string FolderOf(string file) => file.Contains('/') ? file[..file.IndexOf('/')] : "";
        var code = files.ToDictionary(f => f.Key, f => CodeOnly(f.Value));
        var folders = files.Keys.Select(FolderOf).Where(f => f.Length > 0).Distinct().Order(StringComparer.Ordinal).ToList();

        // What each folder declares: type names anywhere under it, and its sub-namespaces (Device.Cuda.Native → Cuda, Native).
        var declared = folders.ToDictionary(f => f, _ => new HashSet<string>(StringComparer.Ordinal));
        foreach (var (file, text) in code)
        {
            var folder = FolderOf(file);
            if (folder.Length == 0) continue;
            foreach (Match m in TypeDeclaration().Matches(text)) declared[folder].Add(m.Groups["name"].Value);
            foreach (var part in file.Split('/')[1..^1]) declared[folder].Add(part);
        }

        var fileList = new List<(string, string, string)>();
        var references = new List<FolderReference>();
        foreach (var (file, text) in code)
        {
            var from = FolderOf(file);
            var ns = NamespaceDeclaration().Match(text);
            fileList.Add((file, from, ns.Success ? ns.Groups["name"].Value : null!));

            // A file's own namespace declaration names its folder, not a dependency.
            bool InDeclaration(Match m) => ns.Success && m.Index >= ns.Index && m.Index < ns.Index + ns.Length;
            foreach (Match m in RootQualified().Matches(text))
            {
                var to = m.Groups["folder"].Value;
                if (to != from && !InDeclaration(m)) references.Add(new FolderReference(file, LineOf(text, m.Index), from, to, m.Value));
            }
            foreach (Match m in ParentQualified().Matches(text))
            {
                var to = m.Groups["folder"].Value;
                if (to == from || InDeclaration(m) || !declared.TryGetValue(to, out var names)) continue;
                var rest = m.Groups["rest"].Value.Split('.', StringSplitOptions.RemoveEmptyEntries);
                if (rest.Any(names.Contains))
                    references.Add(new FolderReference(file, LineOf(text, m.Index), from, to, m.Value));
            }
        }
        return new SourceDependencies(folders, fileList, references);
    }

    /// <summary>
    /// <paramref name="source"/> with comments and string and character literals blanked (newlines kept, so line
    /// numbers hold), except the values of <c>cref="..."</c> attributes, which stay where they were.
    /// </summary>
    public static string CodeOnly(string source)
    {
        var result = new StringBuilder(source.Length);
        int last = 0;
        foreach (Match m in NonCode().Matches(source))
        {
            result.Append(source, last, m.Index - last);
            var blanked = Blank(m.Value);
            if (m.Value.StartsWith("//", StringComparison.Ordinal) || m.Value.StartsWith("/*", StringComparison.Ordinal))
                foreach (Match cref in Cref().Matches(m.Value))
                {
                    var value = cref.Groups["value"];
                    for (int i = 0; i < value.Length; i++) blanked[value.Index + i] = value.Value[i];
                }
            result.Append(blanked);
            last = m.Index + m.Length;
        }
        result.Append(source, last, source.Length - last);
        return result.ToString();
    }

    private static char[] Blank(string text) => text.Select(c => c is '\n' or '\r' ? c : ' ').ToArray();

    private static int LineOf(string text, int index)
    {
        int line = 1;
        for (int i = 0; i < index; i++)
            if (text[i] == '\n') line++;
        return line;
    }

    // Comments, raw strings, verbatim strings, regular (and interpolated) strings, character literals: whichever starts first.
    [GeneratedRegex("""//[^\n]*|/\*[\s\S]*?\*/|"{3,}[\s\S]*?"{3,}|@"(?:[^"]|"")*"|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)+'""")]
    private static partial Regex NonCode();

    [GeneratedRegex("""cref\s*=\s*"(?<value>[^"]*)"|cref\s*=\s*'(?<value>[^']*)'""")]
    private static partial Regex Cref();

    [GeneratedRegex(@"(?<![\w.])VqVaeCuda\.(?<folder>[A-Z]\w*)(?:\.[A-Z]\w*)*")]
    private static partial Regex RootQualified();

    [GeneratedRegex(@"(?<![\w.])(?<folder>[A-Z]\w*)(?<rest>(?:\.[A-Z]\w*)+)")]
    private static partial Regex ParentQualified();

    [GeneratedRegex(@"\b(?:class|struct|interface|enum|record)\s+(?<name>[A-Z]\w*)|\bdelegate\s+[\w<>\[\],.?*\s]+?\s(?<name>[A-Z]\w*)\s*[(<]")]
    private static partial Regex TypeDeclaration();

    [GeneratedRegex(@"^\s*namespace\s+(?<name>[\w.]+)", RegexOptions.Multiline)]
    private static partial Regex NamespaceDeclaration();
}
