using System.Globalization;
using VqVaeCuda.Autodiff;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Training;

/// <summary>
/// A training step had a non-finite loss or gradient (and no skip was left): training stopped before the optimizer
/// applied it, so the weights and the last checkpoint are good. The message names the step, where its first non-finite
/// value appeared (an op's output, or an input from outside the ops) and the last good checkpoint, and suggests a lower
/// learning rate.
/// </summary>
public sealed class NonFiniteTrainingException(string message, int step, string firstOp) : ArithmeticException(message)
{
    /// <summary>The step (1-based) whose loss or gradient was not finite.</summary>
    public int Step { get; } = step;

    /// <summary>
    /// Where the step's first non-finite value appeared: an op's output ("the forward of conv2d (op 7 of the step, …)"), or an
    /// input from outside the ops, the batch or a parameter ("an input of conv2d+relu (op 1 of the step, …)").
    /// </summary>
    public string FirstOp { get; } = firstOp;
}

/// <summary>What the trainers share to detect, explain and report a non-finite step.</summary>
internal static class NonFiniteCheck
{
    /// <summary>Which of the step's read-back values are not finite ("the loss is NaN, a gradient is Infinity"), or null.</summary>
    public static string? Describe(params (string Name, double Value)[] values)
    {
        var bad = values.Where(v => !double.IsFinite(v.Value)).Select(v => $"{v.Name} is {v.Value.ToString(CultureInfo.InvariantCulture)}").ToList();
        return bad.Count == 0 ? null : string.Join(", ", bad);
    }

    /// <summary>
    /// The gradient norm to judge the gradients by: the device's float norm as it is. It overflows to infinity when the
    /// squares of the gradients do, which is exactly when Adam's second moment (1 − β2)·g² would turn infinite and freeze
    /// those weights for good (and a checkpoint holding it is refused on load): so an overflowing norm is a divergence
    /// too, and the step is not applied.
    /// </summary>
    public static double GradientNorm(float deviceNorm) => deviceNorm;

    /// <summary>The stop message: what was not finite, where it began, what is safe on disk, what to try.</summary>
    public static string StopMessage(int step, string what, string firstOp, double learningRate, (string Path, int Step)? lastCheckpoint, int skipped)
    {
        var (lr, lower, kept) = Advice(learningRate, lastCheckpoint);
        var skips = skipped > 0 ? $" after skipping {skipped} such step{(skipped == 1 ? "" : "s")}" : "";
        return $"training stopped at step {step}{skips}: {what}; the first value not finite: {firstOp}. " +
               $"The step was not applied and {kept}. The learning rate {lr} is probably too high: try {lower} " +
               "(or --skip-nonfinite N to pass over up to N such steps)";
    }

    /// <summary>What a <see cref="CapturableStep"/> reports as the first op: it keeps no batch to re-run.</summary>
    public const string NotLocatedInCapturedStep =
        "not located (the graph-shaped step keeps no batch to re-run; resume from the checkpoint with --step-mode eager to find it)";

    /// <summary>
    /// The stop message of the graph-shaped step, whose non-finite steps are found when its accumulators are read (at a
    /// log, evaluation or checkpoint): unlike the eager loop's, the steps after the first bad one were applied, so only
    /// the checkpoint (never written from a non-finite step) is good.
    /// </summary>
    public static string CapturedStepStopMessage(int step, int firstStep, int count, double learningRate, (string Path, int Step)? lastCheckpoint)
    {
        var (lr, lower, kept) = Advice(learningRate, lastCheckpoint);
        return $"training stopped at step {step}: the loss or the gradient norm was not finite at step {firstStep} " +
               $"({count} step{(count == 1 ? "" : "s")} in all since the last read); the first value not finite: {NotLocatedInCapturedStep}. " +
               $"The weights are not trusted after step {firstStep - 1} and {kept}. The learning rate {lr} is probably too high: try {lower} " +
               "(or --step-mode eager --skip-nonfinite N to pass over up to N such steps)";
    }

    // The parts both stop messages share: the learning rate, a tenth of it to try, and what is safe on disk.
    private static (string Rate, string Lower, string Kept) Advice(double learningRate, (string Path, int Step)? lastCheckpoint) =>
        (learningRate.ToString("G3", CultureInfo.InvariantCulture), (learningRate / 10).ToString("G3", CultureInfo.InvariantCulture),
         lastCheckpoint is { } c ? $"the last good checkpoint, {c.Path} (step {c.Step}), is kept" : "no checkpoint of this run had been written");
}

/// <summary>
/// Finds the first op of a step whose output (or, first of all, an input from outside the ops: the batch, a parameter) is
/// not finite: each forward input and output (float) is read back as it is made;
/// after each backward, the parameters' gradients are read back (activation gradients are not handed to observers, and
/// a non-finite one reaches a parameter's gradient at the next op with parameters). Slow (it synchronises and copies at
/// every op), so it only re-runs a step already known to be bad.
/// </summary>
internal sealed class FirstNonFiniteObserver(ParameterStore parameters) : IOpObserver
{
    private int _forward, _backward;

    /// <summary>The first op found, described; null while every output so far was finite.</summary>
    public string? Found { get; private set; }

    /// <inheritdoc />
    public void ForwardDone(string op, IReadOnlyList<Tensor> inputs, IReadOnlyList<Tensor> outputs)
    {
        _forward++;
        if (Found is not null) return;
        // An input not finite before any earlier op's output was came from outside the step's ops: the batch or a parameter.
        // Checked first, as an op may map it to finite values (a convolution with its ReLU fused sends NaN to 0), and then
        // no output would ever show it.
        foreach (var t in inputs)
            if (t.DType == DType.Float32 && t.ToArray().Any(v => !float.IsFinite(v)))
            {
                Found = $"an input of {op} (op {_forward} of the step, input {t.Describe()})";
                return;
            }
        foreach (var t in outputs)
            if (t.DType == DType.Float32 && t.ToArray().Any(v => !float.IsFinite(v)))
            {
                Found = $"the forward of {op} (op {_forward} of the step, output {t.Describe()})";
                return;
            }
    }

    /// <inheritdoc />
    public void BackwardDone(string op)
    {
        _backward++;
        if (Found is not null) return;
        var grads = parameters.FlatGrads.ToArray();
        if (grads.Any(v => !float.IsFinite(v)))
            Found = $"the backward of {op} (backward op {_backward} of the step; a parameter gradient)";
        else if (grads.Any(v => Math.Abs(v) > OverflowsWhenSquared))
            Found = $"the backward of {op} (backward op {_backward} of the step; a parameter gradient whose square overflows)";
    }

    // |g| above √float.MaxValue: g² is infinite, so the gradient norm and Adam's second moment overflow (GradientNorm).
    private static readonly float OverflowsWhenSquared = MathF.Sqrt(float.MaxValue);
}
