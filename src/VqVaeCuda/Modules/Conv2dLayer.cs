using VqVaeCuda.Autodiff;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Modules;

/// <summary>
/// A convolution with its parameters, like <c>torch.nn.Conv2d</c>: weight [out, in, k, k] and bias [out],
/// named <c>{path}.weight</c> / <c>{path}.bias</c>, initialised as PyTorch does (uniform ±1/√fan_in).
/// </summary>
public sealed class Conv2dLayer
{
    /// <summary>Declares the layer's parameters in <paramref name="store"/>.</summary>
    public Conv2dLayer(ParameterStore store, string path, int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0)
    {
        int fanIn = inChannels * kernelSize * kernelSize;
        Weight = store.Declare($"{path}.weight", new Shape(outChannels, inChannels, kernelSize, kernelSize), Initializer.KaimingUniform(fanIn));
        Bias = store.Declare($"{path}.bias", new Shape(outChannels), Initializer.KaimingUniform(fanIn));
        Stride = stride;
        Padding = padding;
    }

    /// <summary>[out, in, k, k].</summary>
    public Parameter Weight { get; }

    /// <summary>[out].</summary>
    public Parameter Bias { get; }

    /// <summary>Stride.</summary>
    public int Stride { get; }

    /// <summary>Zero padding on each side.</summary>
    public int Padding { get; }

    /// <summary>y = conv(x, W) + b.</summary>
    public Tensor Forward(OpContext ctx, Tensor x) => Convolution.Conv2d(ctx, x, Weight.Value, Bias.Value, Stride, Padding);
}

/// <summary>
/// A transposed convolution, like <c>torch.nn.ConvTranspose2d</c>: weight [in, out, k, k] (PyTorch's
/// transposed layout) and bias [out]; output side (H − 1)·stride − 2·padding + k.
/// </summary>
public sealed class ConvTranspose2dLayer
{
    /// <summary>Declares the layer's parameters in <paramref name="store"/>.</summary>
    public ConvTranspose2dLayer(ParameterStore store, string path, int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0)
    {
        // PyTorch computes fan_in of a transposed conv from weight.size(1) * k * k.
        int fanIn = outChannels * kernelSize * kernelSize;
        Weight = store.Declare($"{path}.weight", new Shape(inChannels, outChannels, kernelSize, kernelSize), Initializer.KaimingUniform(fanIn));
        Bias = store.Declare($"{path}.bias", new Shape(outChannels), Initializer.KaimingUniform(fanIn));
        Stride = stride;
        Padding = padding;
    }

    /// <summary>[in, out, k, k].</summary>
    public Parameter Weight { get; }

    /// <summary>[out].</summary>
    public Parameter Bias { get; }

    /// <summary>Stride.</summary>
    public int Stride { get; }

    /// <summary>Padding.</summary>
    public int Padding { get; }

    /// <summary>y = convᵀ(x, W) + b.</summary>
    public Tensor Forward(OpContext ctx, Tensor x) => Convolution.ConvTranspose2d(ctx, x, Weight.Value, Bias.Value, Stride, Padding);
}
