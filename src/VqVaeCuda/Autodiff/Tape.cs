using VqVaeCuda.Tensors;

namespace VqVaeCuda.Autodiff;

/// <summary>A misuse of the tape: backward without a forward, twice, or from a tensor it did not produce.</summary>
public sealed class TapeException(string message) : InvalidOperationException(message);

/// <summary>
/// Reverse-mode autodiff, just what the two models need. Each op's forward launches its kernels and
/// records a closure that launches its backward kernels; <see cref="Backward(Tensor)"/> replays the
/// closures in reverse. Gradients accumulate: every backward kernel adds into the gradient of its
/// inputs, so a tensor used twice (a residual connection) receives both contributions. Parameter
/// gradients live in the <see cref="ParameterStore"/>; every other gradient comes from the arena.
/// A tape is used once: record a forward pass, call Backward, start a new tape.
/// </summary>
public sealed class Tape
{
    private readonly List<(string Op, Action Backward)> _nodes = [];
    private readonly HashSet<Tensor> _produced = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<Tensor, Tensor> _grads = new(ReferenceEqualityComparer.Instance);
    private readonly Arena _arena;
    private bool _consumed;

    /// <summary>A tape whose temporary gradients come from <paramref name="arena"/>.</summary>
    public Tape(Arena arena) => _arena = arena;

    /// <summary>Ops recorded so far.</summary>
    public int Count => _nodes.Count;

    /// <summary>True after Backward has run.</summary>
    public bool IsConsumed => _consumed;

    /// <summary>Records an op: its outputs (for validation) and the closure that computes its input gradients.</summary>
    public void Record(string op, Action backward, params Tensor[] outputs)
    {
        if (_consumed) throw new TapeException($"cannot record '{op}': this tape was already consumed by Backward; start a new tape for a new forward pass");
        _nodes.Add((op, backward));
        foreach (var o in outputs) _produced.Add(o);
    }

    /// <summary>Backpropagates from a scalar <paramref name="loss"/> (its gradient is seeded with 1).</summary>
    public void Backward(Tensor loss)
    {
        if (loss.Count != 1) throw new TapeException($"Backward needs a scalar loss, got {loss.Describe()}; pass an explicit seed gradient for a non-scalar output");
        CheckCanRun(loss);
        var seed = GradOf(loss);
        loss.Device.CopyToDevice<float>([1f], seed.Pointer);
        Replay();
    }

    /// <summary>Backpropagates from <paramref name="output"/> with an explicit upstream gradient (same shape).</summary>
    public void Backward(Tensor output, Tensor seedGradient)
    {
        if (seedGradient.Shape != output.Shape)
            throw new TapeException($"seed gradient {seedGradient.Shape} does not match the output {output.Shape}");
        CheckCanRun(output);
        var g = GradOf(output);
        output.Device.Copy(seedGradient.Pointer, g.Pointer, g.Bytes);
        Replay();
    }

    /// <summary>
    /// The gradient buffer of <paramref name="t"/>, created zero-filled on first request. Backward
    /// closures call this for each input that <see cref="Tensor.RequiresGrad"/> and add into it.
    /// </summary>
    public Tensor GradOf(Tensor t)
    {
        if (t.PersistentGrad is { } persistent) return persistent;
        if (_grads.TryGetValue(t, out var g)) return g;
        g = _arena.Zeros(t.Shape, DType.Float32, $"gradient of {t.Describe()}");
        _grads[t] = g;
        return g;
    }

    /// <summary>The gradient of <paramref name="t"/> if any has flowed into it; null otherwise.</summary>
    public Tensor? TryGradOf(Tensor t) => t.PersistentGrad ?? (_grads.TryGetValue(t, out var g) ? g : null);

    private void CheckCanRun(Tensor output)
    {
        if (_consumed) throw new TapeException("Backward was already called on this tape; its gradients are consumed. Record a new forward pass");
        if (_nodes.Count == 0) throw new TapeException("Backward without a forward: nothing was recorded on this tape");
        if (!_produced.Contains(output)) throw new TapeException($"Backward from {output.Describe()}, which no op on this tape produced");
    }

    private void Replay()
    {
        _consumed = true;
        for (int i = _nodes.Count - 1; i >= 0; i--) _nodes[i].Backward();
    }
}
