using System.Diagnostics;
using VqVaeCuda.Device;

namespace VqVaeCuda.Verification;

/// <summary>What <see cref="DeviceVerifier.Run"/> checks and how it labels the result.</summary>
public sealed record VerificationOptions
{
    /// <summary>Seed of every input.</summary>
    public int Seed { get; init; } = 2017;

    /// <summary>Training steps compared (the <c>tiny</c> preset).</summary>
    public int TrainingSteps { get; init; } = 20;

    /// <summary>Images per training step.</summary>
    public int TrainingBatch { get; init; } = 16;

    /// <summary>The groups to run (<see cref="DeviceVerifier.Groups"/>); null: all. Kernel coverage is only judged when all run.</summary>
    public IReadOnlyCollection<string>? OnlyGroups { get; init; }

    /// <summary>How the report names the device under test; null: its <see cref="IDevice.Name"/>.</summary>
    public string? DeviceLabel { get; init; }

    /// <summary>How the report names the reference; null: its <see cref="IDevice.Name"/>.</summary>
    public string? ReferenceLabel { get; init; }
}

/// <summary>
/// <c>vqvae verify</c>: differential verification of a device without a test framework. Every op forward and backward,
/// every kernel, the fused and unfused nearest-code searches and a short training run execute on the device under test
/// and on a reference (the cpu device, a block's threads in ascending order) from the same seeded inputs; each result is
/// compared against a tolerance stated with its reason (<see cref="Tolerances"/>). The kernels launched on the device
/// under test are recorded, so the report names any kernel of <see cref="IDevice.Sources"/> that no check reached.
/// </summary>
public static class DeviceVerifier
{
    /// <summary>One group of checks: its name and its cases from a seed.</summary>
    private sealed record Group(string Name, Func<VerificationOptions, IEnumerable<VerificationCase>> Cases);

    // The check groups, in the order they run.
    private static readonly Group[] GroupList =
    [
        new("ops", o => VerificationCatalog.Ops(o.Seed)),
        new("kernels", o => VerificationCatalog.Kernels(o.Seed + 1000)),
        new("nearest codes", o => VerificationCatalog.NearestCodes(o.Seed + 2000)),
        new("execution model", o => VerificationCatalog.ExecutionModel(o.Seed + 3000)),
        new("training", o => VerificationCatalog.Training(o.Seed, o.TrainingSteps, o.TrainingBatch)),
        new("graph replay", o => VerificationCatalog.GraphReplay(o.Seed, o.TrainingBatch)),
    ];

    /// <summary>The names of the check groups, in the order they run.</summary>
    public static IReadOnlyList<string> Groups { get; } = GroupList.Select(g => g.Name).ToList();

    /// <summary>Kernels left out on purpose, with the reason.</summary>
    public static IReadOnlyList<KernelExemption> ExemptKernels => VerificationCatalog.Exempt;

    /// <summary>
    /// The error of <paramref name="tested"/> against <paramref name="reference"/>: max_i |t_i − r_i| / max_i |r_i| (the
    /// largest difference relative to the largest reference value: an element-by-element ratio would blow up wherever
    /// an output is near zero, where float rounding is large next to the value). 0 when both are all zeros; +∞ for a
    /// length mismatch or a NaN or infinity on either side.
    /// </summary>
    public static double MaxRelativeError(ReadOnlySpan<float> tested, ReadOnlySpan<float> reference)
    {
        if (tested.Length != reference.Length) return double.PositiveInfinity;
        double largest = 0, difference = 0;
        for (int i = 0; i < tested.Length; i++)
        {
            float t = tested[i], r = reference[i];
            if (!float.IsFinite(t) || !float.IsFinite(r)) return double.PositiveInfinity;
            largest = Math.Max(largest, Math.Abs(r));
            difference = Math.Max(difference, Math.Abs((double)t - r));
        }
        return difference == 0 ? 0 : largest == 0 ? double.PositiveInfinity : difference / largest;
    }

    /// <summary>
    /// Runs the checks on <paramref name="device"/> against <paramref name="reference"/>. Neither is disposed. Wrap the
    /// device under test in a <see cref="KernelRecordingDevice"/> of your own to alter it (a test breaks a kernel that
    /// way); otherwise it is wrapped here.
    /// </summary>
    /// <param name="device">The device under test.</param>
    /// <param name="reference">The reference: the cpu device with a block's threads in ascending order.</param>
    /// <param name="options">What to check.</param>
    /// <param name="progress">Called after each check.</param>
    /// <param name="starting">Called before each check with its group and name.</param>
    public static VerificationReport Run(IDevice device, IDevice reference, VerificationOptions? options = null,
                                         Action<VerificationCheck>? progress = null, Action<string>? starting = null)
    {
        options ??= new VerificationOptions();
        var recorder = device as KernelRecordingDevice ?? new KernelRecordingDevice(device);
        var clock = Stopwatch.StartNew();
        var unknown = options.OnlyGroups?.Where(g => !Groups.Contains(g)).ToList();
        if (unknown is { Count: > 0 })
            throw new ArgumentException($"unknown check group(s) {string.Join(", ", unknown)}; groups: {string.Join(", ", Groups)}");
        var checks = new List<VerificationCheck>();
        foreach (var group in GroupList.Where(g => options.OnlyGroups is null || options.OnlyGroups.Contains(g.Name)))
            foreach (var c in group.Cases(options))
            {
                starting?.Invoke($"{c.Group}: {c.Op} {c.Shape}");
                var check = Check(c, recorder, reference);
                checks.Add(check);
                progress?.Invoke(check);
            }

        var exempt = VerificationCatalog.Exempt.Select(e => e.Kernel).ToHashSet(StringComparer.Ordinal);
        var all = device.Sources.Kernels.Select(k => k.Name).Order(StringComparer.Ordinal).ToList();
        var reached = all.Where(recorder.Launched.Contains).ToList();
        // Coverage means something only when every group ran.
        var notReached = options.OnlyGroups is null ? all.Where(k => !recorder.Launched.Contains(k) && !exempt.Contains(k)).ToList() : [];
        return new VerificationReport(options.DeviceLabel ?? device.Name, options.ReferenceLabel ?? reference.Name, checks, reached, notReached,
                                      VerificationCatalog.Exempt, clock.Elapsed.TotalSeconds, Arithmetic(device.Capabilities));
    }

    /// <summary>
    /// The device's arithmetic as the tolerances depend on it: whether its kernels contract a·b+c into one rounding and its
    /// GEMMs round inputs to TF32 (both off by default; the cpu device does neither), and how its kernels are built.
    /// </summary>
    public static string Arithmetic(DeviceCapabilities c) =>
        $"FMA contraction {(c.FusedMultiplyAdd ? "on (--fmad=true: one rounding where the cpu device rounds twice)" : "off (a·b+c rounded twice, as on the cpu device)")}; " +
        $"GEMM {(c.Tf32Gemm ? "TF32 (a 1e-3 error is expected: the GEMM checks will fail)" : "FP32")}" +
        (string.IsNullOrEmpty(c.KernelTarget) ? "" : $"; kernels: {c.KernelTarget}");

    private static VerificationCheck Check(VerificationCase c, IDevice device, IDevice reference)
    {
        CaseOutput tested, expected;
        try
        {
            tested = c.Run(device);
            device.Synchronize();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return Failed(c, $"failed on {device.Name}: {e.Message}");
        }
        try
        {
            expected = (c.RunReference ?? c.Run)(reference);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return Failed(c, $"failed on the reference {reference.Name}: {e.Message}");
        }
        var comparison = c.Compare is { } compare ? compare(tested, expected) : CompareOutputs(tested, expected);
        bool ok = comparison.Forward <= c.Tolerance.Value && (comparison.Backward ?? 0) <= c.Tolerance.Value;
        return new VerificationCheck(c.Group, c.Op, c.Shape, comparison.Forward, comparison.Backward, c.Tolerance.Value, c.Tolerance.Why, ok,
                                     comparison.Note);
    }

    private static VerificationCheck Failed(VerificationCase c, string why) =>
        new(c.Group, c.Op, c.Shape, double.PositiveInfinity, null, c.Tolerance.Value, c.Tolerance.Why, false, why);

    // Every float output by MaxRelativeError, every integer exactly; outputs matched by name.
    private static CaseComparison CompareOutputs(CaseOutput tested, CaseOutput reference)
    {
        var notes = new List<string>();
        double Worst(List<(string Name, float[] Values)> a, List<(string Name, float[] Values)> b)
        {
            double worst = 0;
            if (a.Count != b.Count)
            {
                notes.Add($"{a.Count} results against the reference's {b.Count}");
                return double.PositiveInfinity;
            }
            for (int i = 0; i < a.Count; i++)
            {
                double e = MaxRelativeError(a[i].Values, b[i].Values);
                if (e > worst) worst = e;
                if (double.IsPositiveInfinity(e)) notes.Add($"{a[i].Name}: not finite or of another length");
            }
            return worst;
        }
        double forward = Worst(tested.Forward, reference.Forward);
        for (int i = 0; i < Math.Min(tested.Integers.Count, reference.Integers.Count); i++)
        {
            var (a, b) = (tested.Integers[i].Values, reference.Integers[i].Values);
            int differ = a.Length != b.Length ? Math.Max(a.Length, b.Length) : a.Zip(b).Count(p => p.First != p.Second);
            if (differ == 0) continue;
            forward = double.PositiveInfinity;
            int first = a.Length != b.Length ? -1 : Enumerable.Range(0, a.Length).First(j => a[j] != b[j]);
            notes.Add(first < 0 ? $"{tested.Integers[i].Name}: {a.Length} values against {b.Length}"
                                : $"{tested.Integers[i].Name}: {differ} of {a.Length} differ (first at {first}: {a[first]} vs {b[first]})");
        }
        if (tested.Integers.Count != reference.Integers.Count) forward = double.PositiveInfinity;
        double? backward = tested.Backward.Count + reference.Backward.Count > 0 ? Worst(tested.Backward, reference.Backward) : null;
        return new CaseComparison(forward, backward, notes.Count > 0 ? string.Join("; ", notes) : null);
    }
}
