using VqVaeCuda.Autodiff;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Modules;

/// <summary>
/// The VQ-VAE's residual stack (DeepMind's reference): each block is
/// x + conv1×1(ReLU(conv3×3(ReLU(x)))) — 3×3 to <c>residualHidden</c> channels, 1×1 back to
/// <c>hidden</c> — and the stack ends with a ReLU.
/// </summary>
public sealed class ResidualStack
{
    private readonly (Conv2dLayer Conv3, Conv2dLayer Conv1)[] _blocks;

    /// <summary>Declares <paramref name="layers"/> blocks under <c>{path}.{i}</c>.</summary>
    public ResidualStack(ParameterStore store, string path, int hidden, int residualHidden, int layers)
    {
        _blocks = Enumerable.Range(0, layers).Select(i => (
            new Conv2dLayer(store, $"{path}.{i}.conv3", hidden, residualHidden, 3, 1, 1),
            new Conv2dLayer(store, $"{path}.{i}.conv1", residualHidden, hidden, 1, 1, 0))).ToArray();
    }

    /// <summary>Runs the stack.</summary>
    public Tensor Forward(OpContext ctx, Tensor x)
    {
        foreach (var (conv3, conv1) in _blocks)
        {
            var h = conv3.Forward(ctx, Activations.Relu(ctx, x));
            h = conv1.Forward(ctx, Activations.Relu(ctx, h));
            x = Elementwise.Add(ctx, x, h);
        }
        return Activations.Relu(ctx, x);
    }
}
