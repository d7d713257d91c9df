namespace VqVaeCuda.Verification;

/// <summary>One check of <c>vqvae verify</c>: an op (or kernel, or run) on the device under test against the reference device.</summary>
/// <param name="Group">The check group (<see cref="DeviceVerifier.Groups"/>), e.g. "ops", "kernels", "nearest codes", "training".</param>
/// <param name="Op">What was run, e.g. "relu" or "adam_step_f32".</param>
/// <param name="Shape">Its sizes, e.g. "[3,37,6,6]".</param>
/// <param name="ForwardMaxRelError">Largest forward error (see <see cref="DeviceVerifier.MaxRelativeError"/>); +∞ for a NaN or a differing integer.</param>
/// <param name="BackwardMaxRelError">Largest error of the gradients; null where the check has no backward.</param>
/// <param name="Tolerance">The largest error that passes.</param>
/// <param name="ToleranceReason">Why that tolerance.</param>
/// <param name="Ok">Both errors within the tolerance.</param>
/// <param name="Note">What else was seen: near-tie codes accepted, the failure's reason.</param>
public sealed record VerificationCheck(
    string Group,
    string Op,
    string Shape,
    double ForwardMaxRelError,
    double? BackwardMaxRelError,
    double Tolerance,
    string ToleranceReason,
    bool Ok,
    string? Note = null);

/// <summary>A kernel that verify deliberately does not run, and why.</summary>
/// <param name="Kernel">Its name.</param>
/// <param name="Reason">Why it is left out.</param>
public sealed record KernelExemption(string Kernel, string Reason);

/// <summary>Everything one <c>vqvae verify</c> run found.</summary>
/// <param name="Device">The device under test, e.g. "cuda:0 (NVIDIA H200)" or "cpu (shuffled thread order)".</param>
/// <param name="Reference">The reference: the cpu device, threads in ascending order.</param>
/// <param name="Checks">Every check, in the order run.</param>
/// <param name="KernelsReached">Kernels of the device's source set that at least one check launched on the device under test.</param>
/// <param name="KernelsNotReached">Kernels no check launched (and not exempt): should be empty.</param>
/// <param name="KernelsExempt">Kernels left out on purpose, with the reason.</param>
/// <param name="Seconds">Wall time of the run.</param>
/// <param name="Arithmetic">The device under test's arithmetic as the tolerances depend on it (FMA contraction, TF32, kernel target).</param>
public sealed record VerificationReport(
    string Device,
    string Reference,
    IReadOnlyList<VerificationCheck> Checks,
    IReadOnlyList<string> KernelsReached,
    IReadOnlyList<string> KernelsNotReached,
    IReadOnlyList<KernelExemption> KernelsExempt,
    double Seconds,
    string Arithmetic = "")
{
    /// <summary>Checks that failed.</summary>
    public int Failed => Checks.Count(c => !c.Ok);

    /// <summary>True when every check passed and every kernel was reached.</summary>
    public bool Passed => Failed == 0 && KernelsNotReached.Count == 0;

    /// <summary>The summary line: exactly "N ops verified, N failed".</summary>
    public string Summary => $"{Checks.Count} ops verified, {Failed} failed";
}
