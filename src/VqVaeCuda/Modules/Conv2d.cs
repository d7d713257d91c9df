using VqVaeCuda.Autodiff;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Modules;

/// <summary>
/// A convolution, like <c>torch.nn.Conv2d</c>: <c>weight</c> [out, in, k, k] and <c>bias</c> [out],
/// initialised as PyTorch does (uniform ±1/√fan_in).
/// </summary>
public sealed class Conv2d : Module
{
    /// <summary>A square <paramref name="kernelSize"/> convolution from <paramref name="inChannels"/> to <paramref name="outChannels"/>.</summary>
    public Conv2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0)
    {
        int fanIn = inChannels * kernelSize * kernelSize;
        Weight = RegisterParameter("weight", new Parameter(new Shape(outChannels, inChannels, kernelSize, kernelSize), Initializer.KaimingUniform(fanIn)));
        Bias = RegisterParameter("bias", new Parameter(new Shape(outChannels), Initializer.KaimingUniform(fanIn)));
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
/// A transposed convolution, like <c>torch.nn.ConvTranspose2d</c>: <c>weight</c> [in, out, k, k] (PyTorch's
/// transposed layout) and <c>bias</c> [out]; output side (H − 1)·stride − 2·padding + k.
/// </summary>
public sealed class ConvTranspose2d : Module
{
    /// <summary>A square <paramref name="kernelSize"/> transposed convolution from <paramref name="inChannels"/> to <paramref name="outChannels"/>.</summary>
    public ConvTranspose2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0)
    {
        // PyTorch computes fan_in of a transposed conv from weight.size(1) * k * k.
        int fanIn = outChannels * kernelSize * kernelSize;
        Weight = RegisterParameter("weight", new Parameter(new Shape(inChannels, outChannels, kernelSize, kernelSize), Initializer.KaimingUniform(fanIn)));
        Bias = RegisterParameter("bias", new Parameter(new Shape(outChannels), Initializer.KaimingUniform(fanIn)));
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

/// <summary>
/// A causally masked convolution (stride 1), PixelCNN's layer: <c>weight</c> [out, in, kh, kw] and
/// <c>bias</c> [out] as <see cref="Conv2d"/>, multiplied by a constant <see cref="ConvMask"/> (see
/// <see cref="ConvMasks"/>) in forward and in the weight gradient, so masked taps neither act nor learn.
/// The mask is a non-persistent buffer: it is rebuilt from the constructor's arguments, not saved.
/// </summary>
public sealed class MaskedConv2d : Module
{
    private Tensor? _mask;

    /// <summary>A masked convolution whose kernel shape is the mask's; padding (padH, padW) keeps H×W for odd kernels at (kh/2, kw/2).</summary>
    public MaskedConv2d(int inChannels, int outChannels, ConvMask mask, int padH, int padW)
    {
        ArgumentNullException.ThrowIfNull(mask);
        Mask = mask;
        int fanIn = inChannels * mask.Height * mask.Width;
        Weight = RegisterParameter("weight", new Parameter(new Shape(outChannels, inChannels, mask.Height, mask.Width), Initializer.KaimingUniform(fanIn)));
        Bias = RegisterParameter("bias", new Parameter(new Shape(outChannels), Initializer.KaimingUniform(fanIn)));
        PadH = padH;
        PadW = padW;
    }

    /// <summary>The causal mask, [kh, kw].</summary>
    public ConvMask Mask { get; }

    /// <summary>[out, in, kh, kw].</summary>
    public Parameter Weight { get; }

    /// <summary>[out].</summary>
    public Parameter Bias { get; }

    /// <summary>Vertical padding.</summary>
    public int PadH { get; }

    /// <summary>Horizontal padding.</summary>
    public int PadW { get; }

    /// <inheritdoc />
    protected override void OnAllocated(Device.IDevice device) => _mask = RegisterBuffer("mask", Mask.ToTensor(device), persistent: false);

    /// <summary>y = conv(x, W ⊙ mask) + b.</summary>
    public Tensor Forward(OpContext ctx, Tensor x) =>
        Convolution.MaskedConv2d(ctx, x, Weight.Value, Bias.Value, _mask ?? throw new InvalidOperationException("MaskedConv2d is not allocated"), PadH, PadW);

    /// <inheritdoc />
    protected override void DisposeOwned() => _mask?.Dispose();
}
