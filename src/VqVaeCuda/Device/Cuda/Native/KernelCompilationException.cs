using System.Globalization;
using System.Text.RegularExpressions;

namespace VqVaeCuda.Device.Cuda.Native;

/// <summary>
/// NVRTC rejected a kernel's source (<see cref="NvrtcResult.NVRTC_ERROR_COMPILATION"/>). The message
/// carries the source name and NVRTC's full log, whose lines already read
/// <c>reduce.cu(12): error: identifier "x" is undefined</c>, so it can be shown to a user as is.
/// </summary>
/// <remarks>Public because kernel source errors are user-facing when kernels are edited at run time.</remarks>
public sealed partial class KernelCompilationException : Exception
{
    /// <summary>Creates the exception and parses <paramref name="log"/> into <see cref="Diagnostics"/>.</summary>
    /// <param name="sourceName">Name the main source was registered under (e.g. <c>reduce.cu</c>).</param>
    /// <param name="log">NVRTC's program log.</param>
    /// <param name="options">The options the compile was run with, kept so the failure can be reproduced.</param>
    public KernelCompilationException(string sourceName, string log, IReadOnlyList<string> options)
        : base(BuildMessage(sourceName, log, options))
    {
        SourceName = sourceName;
        Log = log;
        Options = options;
        Diagnostics = ParseDiagnostics(log);
    }

    /// <summary>Name of the main source, as given to NVRTC.</summary>
    public string SourceName { get; }

    /// <summary>NVRTC's complete program log (errors, warnings, notes).</summary>
    public string Log { get; }

    /// <summary>The compile options that produced the failure.</summary>
    public IReadOnlyList<string> Options { get; }

    /// <summary>
    /// The errors found in <see cref="Log"/>, one per <c>file(line): error: message</c> line (including
    /// "catastrophic error"). <c>File</c> may be a header name when the error is inside an include.
    /// Warnings are not listed here; they remain in <see cref="Log"/>.
    /// </summary>
    public IReadOnlyList<(string File, int Line, string Message)> Diagnostics { get; }

    /// <summary>Extracts <c>file(line): error: message</c> entries from an NVRTC log.</summary>
    internal static IReadOnlyList<(string File, int Line, string Message)> ParseDiagnostics(string log)
    {
        var result = new List<(string, int, string)>();
        foreach (Match m in DiagnosticLine().Matches(log))
        {
            // The digit group cannot overflow in practice; TryParse keeps a malformed log from throwing here.
            if (int.TryParse(m.Groups["line"].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var line))
                result.Add((m.Groups["file"].Value, line, m.Groups["message"].Value.Trim()));
        }
        return result;
    }

    private static string BuildMessage(string sourceName, string log, IReadOnlyList<string> options)
    {
        var nl = Environment.NewLine;
        var body = string.IsNullOrWhiteSpace(log) ? "(NVRTC produced no log)" : log.TrimEnd();
        return $"NVRTC failed to compile '{sourceName}' (options: {string.Join(' ', options)}):{nl}{body}";
    }

    // NVRTC (EDG front end) format: `name(line): error: text`; newer releases may add a diagnostic
    // number (`error #20-D:`), and fatal ones say `catastrophic error:`. `\r?` tolerates CRLF logs.
    [GeneratedRegex(@"^(?<file>[^\r\n]+?)\((?<line>\d+)\): (?:catastrophic )?error(?: #[-\w]+)?: (?<message>[^\r\n]*)\r?$",
        RegexOptions.Multiline | RegexOptions.CultureInvariant)]
    private static partial Regex DiagnosticLine();
}
