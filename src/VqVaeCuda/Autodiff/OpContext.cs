using VqVaeCuda.Device;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Autodiff;

/// <summary>
/// What an op needs to run: the device, the arena its outputs come from, and — when gradients are
/// wanted — the tape it records on. With no tape, ops only compute (inference, finite differences).
/// </summary>
public sealed class OpContext
{
    /// <summary>A context on <paramref name="arena"/>'s device, recording on <paramref name="tape"/> when given.</summary>
    public OpContext(Arena arena, Tape? tape = null)
    {
        Arena = arena;
        Tape = tape;
    }

    /// <summary>The device.</summary>
    public IDevice Device => Arena.Device;

    /// <summary>Per-step memory for outputs and temporaries.</summary>
    public Arena Arena { get; }

    /// <summary>The tape, or null when not recording.</summary>
    public Tape? Tape { get; }

    /// <summary>Told of every op's forward and (when recorded) backward: timing, non-finite checks. Null: none.</summary>
    public IOpObserver? Observer { get; init; }

    /// <summary>A fresh output tensor from the arena.</summary>
    public Tensor NewTensor(Shape shape, DType dtype = DType.Float32, string? purpose = null) => Arena.Allocate(shape, dtype, purpose);

    /// <summary>A zero-filled tensor from the arena.</summary>
    public Tensor Zeros(Shape shape, DType dtype = DType.Float32, string? purpose = null) => Arena.Zeros(shape, dtype, purpose);

    /// <summary>
    /// Whether an op with these inputs records a backward: there is a tape and one of them needs a gradient. An op that
    /// does not can free its temporaries as soon as its output is written.
    /// </summary>
    [System.Diagnostics.CodeAnalysis.MemberNotNullWhen(true, nameof(Tape))]
    public bool Records(params Tensor[] inputs) => Tape is not null && inputs.Any(i => i.RequiresGrad);

    /// <summary>
    /// Records <paramref name="backward"/> when a tape is present and any of <paramref name="inputs"/> needs a
    /// gradient; marks <paramref name="output"/> as needing one in that case.
    /// </summary>
    public void Record(string op, Tensor output, Tensor[] inputs, Action<Tape> backward)
    {
        Observer?.ForwardDone(op, inputs, [output]);
        if (!Records(inputs)) return;
        output.RequiresGrad = true;
        var tape = Tape;
        var observer = Observer;
        tape.Record(op, () =>
        {
            // No gradient reached this output (it did not feed the loss): nothing to propagate.
            if (tape.TryGradOf(output) is not null) backward(tape);
            observer?.BackwardDone(op);
        }, output);
    }

    /// <summary>As <see cref="Record(string, Tensor, Tensor[], Action{Tape})"/> for ops with several outputs.</summary>
    public void Record(string op, Tensor[] outputs, Tensor[] inputs, Action<Tape> backward)
    {
        Observer?.ForwardDone(op, inputs, outputs);
        if (!Records(inputs)) return;
        foreach (var o in outputs) o.RequiresGrad = true;
        var tape = Tape;
        var observer = Observer;
        tape.Record(op, () =>
        {
            if (outputs.Any(o => tape.TryGradOf(o) is not null)) backward(tape);
            observer?.BackwardDone(op);
        }, outputs);
    }
}
