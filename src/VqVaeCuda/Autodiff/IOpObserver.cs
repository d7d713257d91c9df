using VqVaeCuda.Tensors;

namespace VqVaeCuda.Autodiff;

/// <summary>
/// Watches ops as they run: each op's forward calls <see cref="ForwardDone"/> once its kernels are launched,
/// and each recorded backward calls <see cref="BackwardDone"/> once its kernels are launched. The step
/// benchmark times ops with it (it synchronises the device at each call); a trainer can check outputs for
/// non-finite values with it. Ops launch asynchronously on a GPU: an observer that reads outputs or times
/// must synchronise itself.
/// </summary>
public interface IOpObserver
{
    /// <summary>
    /// The forward of <paramref name="op"/> has launched everything that produces <paramref name="outputs"/> from
    /// <paramref name="inputs"/> (the op's differentiable inputs, e.g. x, weight, bias). Called before the op marks its
    /// outputs as needing gradients; the op is recorded on the tape when any input <see cref="Tensor.RequiresGrad"/>.
    /// </summary>
    void ForwardDone(string op, IReadOnlyList<Tensor> inputs, IReadOnlyList<Tensor> outputs);

    /// <summary>The backward of <paramref name="op"/> has launched everything that adds into its inputs' gradients.</summary>
    void BackwardDone(string op);
}
