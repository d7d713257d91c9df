using VqVaeCuda.Autodiff;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Modules;

/// <summary>
/// One block of the VQ-VAE's residual stack (DeepMind's reference): x + conv1×1(ReLU(conv3×3(ReLU(x)))),
/// 3×3 to <c>residualHidden</c> channels (<c>conv3</c>), 1×1 back to <c>hidden</c> (<c>conv1</c>).
/// </summary>
public sealed class ResidualBlock : Module
{
    /// <summary>A block on <paramref name="hidden"/> channels with <paramref name="residualHidden"/> inside.</summary>
    public ResidualBlock(int hidden, int residualHidden)
    {
        Conv3 = RegisterModule("conv3", new Conv2d(hidden, residualHidden, 3, 1, 1));
        Conv1 = RegisterModule("conv1", new Conv2d(residualHidden, hidden, 1, 1, 0));
    }

    /// <summary>The 3×3 convolution.</summary>
    public Conv2d Conv3 { get; }

    /// <summary>The 1×1 convolution.</summary>
    public Conv2d Conv1 { get; }

    /// <summary>x + conv1(ReLU(conv3(ReLU(x)))).</summary>
    public Tensor Forward(OpContext ctx, Tensor x)
    {
        // The inner ReLU fused into the 3×3 convolution (Conv2d.ForwardRelu); the first one stays separate, as x itself
        // is the skip connection.
        var h = Conv3.ForwardRelu(ctx, Activations.Relu(ctx, x));
        h = Conv1.Forward(ctx, h);
        return Elementwise.Add(ctx, x, h);
    }
}

/// <summary>
/// The VQ-VAE's residual stack: <c>layers</c> <see cref="ResidualBlock"/>s named <c>0</c>, <c>1</c>, ...
/// (so <c>encoder.residual.0.conv3.weight</c>), then a ReLU.
/// </summary>
public sealed class ResidualStack : Module
{
    private readonly ResidualBlock[] _blocks;

    /// <summary><paramref name="layers"/> blocks on <paramref name="hidden"/> channels.</summary>
    public ResidualStack(int hidden, int residualHidden, int layers)
    {
        _blocks = Enumerable.Range(0, layers).Select(i => RegisterModule(i.ToString(System.Globalization.CultureInfo.InvariantCulture),
                                                                        new ResidualBlock(hidden, residualHidden))).ToArray();
    }

    /// <summary>The blocks in order.</summary>
    public IReadOnlyList<ResidualBlock> Blocks => _blocks;

    /// <summary>Runs the stack.</summary>
    public Tensor Forward(OpContext ctx, Tensor x)
    {
        foreach (var block in _blocks) x = block.Forward(ctx, x);
        return Activations.Relu(ctx, x);
    }
}
