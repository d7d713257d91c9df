using System.Globalization;
using System.Text.RegularExpressions;

namespace VqVaeCuda.Diagnostics;

/// <summary>What ptxas reported for one kernel (entry function) compiled for one architecture.</summary>
/// <param name="Kernel">The entry function's name as ptxas prints it (the extern "C" name for our kernels).</param>
/// <param name="Architecture">"sm_80" etc.</param>
/// <param name="Registers">Registers per thread.</param>
/// <param name="StaticSharedBytes">Statically declared shared memory per block (dynamic shared memory is chosen at launch).</param>
/// <param name="StackFrameBytes">Per-thread stack frame (local memory), e.g. for arrays indexed at run time.</param>
/// <param name="SpillStoreBytes">Bytes of register spills stored to local memory per thread; should be 0.</param>
/// <param name="SpillLoadBytes">Bytes of spills loaded back.</param>
/// <param name="ConstantBytes">Constant memory used, summed over all banks (<c>cmem[0]</c> holds the parameters).</param>
public sealed record KernelResourceUsage(
    string Kernel,
    string Architecture,
    int Registers,
    int StaticSharedBytes,
    int StackFrameBytes,
    int SpillStoreBytes,
    int SpillLoadBytes,
    int ConstantBytes);

/// <summary>
/// Parses the resource usage that NVRTC's log carries when compiled with <c>--ptxas-options=-v</c>:
/// <code>
/// ptxas info    : Compiling entry function 'k' for 'sm_90'
/// ptxas info    : Function properties for k
/// ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
/// ptxas info    : Used 10 registers, 1024 bytes smem, 380 bytes cmem[0]
/// </code>
/// </summary>
/// <remarks>
/// "Function properties for" also appears for non-inlined device functions (with their own stack frame
/// line); only the properties of the entry function being compiled are attributed to it, because a
/// callee's frame is not the kernel's. The smem and cmem parts of the "Used" line are omitted when zero.
/// </remarks>
public static partial class PtxasReport
{
    /// <summary>One record per entry function found in <paramref name="log"/>, in the order ptxas compiled them.</summary>
    public static IReadOnlyList<KernelResourceUsage> Parse(string log)
    {
        ArgumentNullException.ThrowIfNull(log);
        var result = new List<KernelResourceUsage>();
        Pending? entry = null;            // the entry function whose "Used" line has not been seen yet
        string? propertiesOf = null;      // the function named by the latest "Function properties for"

        foreach (var rawLine in log.Split('\n'))
        {
            var line = rawLine.TrimEnd('\r');
            Match m;
            if ((m = CompilingEntry().Match(line)).Success)
            {
                entry = new Pending(m.Groups["name"].Value, m.Groups["arch"].Value);
                propertiesOf = null;
            }
            else if ((m = CompilingFunction().Match(line)).Success)
            {
                // A device function compiled separately: whatever follows until the next entry is its own.
                entry = null;
                propertiesOf = null;
            }
            else if ((m = FunctionProperties().Match(line)).Success)
            {
                propertiesOf = m.Groups["name"].Value;
            }
            else if ((m = StackLine().Match(line)).Success)
            {
                if (entry is not null && propertiesOf == entry.Name)
                {
                    entry.StackFrame = Int(m, "stack");
                    entry.SpillStores = Int(m, "stores");
                    entry.SpillLoads = Int(m, "loads");
                }
            }
            else if ((m = UsedLine().Match(line)).Success)
            {
                if (entry is null) continue;
                var usage = m.Groups["usage"].Value;
                int registers = FirstInt(RegistersPart(), usage);
                int shared = FirstInt(SharedPart(), usage);
                int constant = ConstantPart().Matches(usage).Sum(c => int.Parse(c.Groups[1].Value, CultureInfo.InvariantCulture));
                result.Add(new KernelResourceUsage(entry.Name, entry.Architecture, registers, shared, entry.StackFrame,
                                                   entry.SpillStores, entry.SpillLoads, constant));
                entry = null;
                propertiesOf = null;
            }
        }
        return result;
    }

    /// <summary>The usage of <paramref name="kernel"/>, or null when the log does not mention it.</summary>
    public static KernelResourceUsage? Find(IReadOnlyList<KernelResourceUsage> usages, string kernel) =>
        usages.FirstOrDefault(u => string.Equals(u.Kernel, kernel, StringComparison.Ordinal));

    private sealed class Pending(string name, string architecture)
    {
        public string Name { get; } = name;
        public string Architecture { get; } = architecture;
        public int StackFrame { get; set; }
        public int SpillStores { get; set; }
        public int SpillLoads { get; set; }
    }

    private static int Int(Match m, string group) => int.Parse(m.Groups[group].Value, CultureInfo.InvariantCulture);

    private static int FirstInt(Regex pattern, string text)
    {
        var m = pattern.Match(text);
        return m.Success ? int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
    }

    [GeneratedRegex(@"Compiling entry function '(?<name>[^']+)' for '(?<arch>[^']+)'", RegexOptions.CultureInvariant)]
    private static partial Regex CompilingEntry();

    [GeneratedRegex(@"Compiling function '(?<name>[^']+)' for '(?<arch>[^']+)'", RegexOptions.CultureInvariant)]
    private static partial Regex CompilingFunction();

    [GeneratedRegex(@"Function properties for (?<name>\S+)", RegexOptions.CultureInvariant)]
    private static partial Regex FunctionProperties();

    [GeneratedRegex(@"(?<stack>\d+) bytes stack frame, (?<stores>\d+) bytes spill stores, (?<loads>\d+) bytes spill loads",
        RegexOptions.CultureInvariant)]
    private static partial Regex StackLine();

    [GeneratedRegex(@"ptxas info\s*: Used (?<usage>.*)$", RegexOptions.CultureInvariant)]
    private static partial Regex UsedLine();

    [GeneratedRegex(@"(\d+) registers", RegexOptions.CultureInvariant)]
    private static partial Regex RegistersPart();

    [GeneratedRegex(@"(\d+) bytes smem", RegexOptions.CultureInvariant)]
    private static partial Regex SharedPart();

    [GeneratedRegex(@"(\d+) bytes cmem\[\d+\]", RegexOptions.CultureInvariant)]
    private static partial Regex ConstantPart();
}
