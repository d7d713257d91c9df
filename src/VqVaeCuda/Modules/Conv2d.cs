using VqVaeCuda.Autodiff;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Modules;

/// <summary>
/// What every convolution layer holds, like PyTorch's <c>_ConvNd</c>: <c>weight</c> (layout set by the
/// subclass) and <c>bias</c> [out], both initialised uniform in ±1/√fan_in as PyTorch does.
/// </summary>
public abstract class ConvolutionLayer : Module
{
    /// <summary>Registers <c>weight</c> of <paramref name="weightShape"/> and <c>bias</c> of <paramref name="outChannels"/>.</summary>
    protected ConvolutionLayer(Shape weightShape, int outChannels, int fanIn)
    {
        Weight = RegisterParameter("weight", new Parameter(weightShape, Initializer.KaimingUniform(fanIn)));
        Bias = RegisterParameter("bias", new Parameter(new Shape(outChannels), Initializer.KaimingUniform(fanIn)));
    }

    /// <summary>The kernel weights.</summary>
    public Parameter Weight { get; }

    /// <summary>[out].</summary>
    public Parameter Bias { get; }
}

/// <summary>
/// A convolution, like <c>torch.nn.Conv2d</c>: <c>weight</c> [out, in, k, k] and <c>bias</c> [out],
/// initialised as PyTorch does (uniform ±1/√fan_in).
/// </summary>
public sealed class Conv2d : ConvolutionLayer
{
    /// <summary>A square <paramref name="kernelSize"/> convolution from <paramref name="inChannels"/> to <paramref name="outChannels"/>; weight [out, in, k, k].</summary>
    public Conv2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0)
        : base(new Shape(outChannels, inChannels, kernelSize, kernelSize), outChannels, inChannels * kernelSize * kernelSize)
    {
        Stride = stride;
        Padding = padding;
    }

    /// <summary>Stride.</summary>
    public int Stride { get; }

    /// <summary>Zero padding on each side.</summary>
    public int Padding { get; }

    /// <summary>y = conv(x, W) + b.</summary>
    public Tensor Forward(OpContext ctx, Tensor x) => Convolution.Conv2d(ctx, x, Weight.Value, Bias.Value, Stride, Padding);

    /// <summary>
    /// relu(<see cref="Forward"/>(x)) as one op (<see cref="Convolution.Conv2dRelu"/>): the ReLU applied as the output is
    /// written and its backward as the output gradient is read; the same values and gradients as
    /// <c>Functional.Relu(ctx, Forward(ctx, x))</c>, one pass over the activations fewer each way.
    /// </summary>
    public Tensor ForwardRelu(OpContext ctx, Tensor x) => Convolution.Conv2dRelu(ctx, x, Weight.Value, Bias.Value, Stride, Padding);
}

/// <summary>
/// A transposed convolution, like <c>torch.nn.ConvTranspose2d</c>: <c>weight</c> [in, out, k, k] (PyTorch's
/// transposed layout) and <c>bias</c> [out]; output side (H − 1)·stride − 2·padding + k.
/// </summary>
public sealed class ConvTranspose2d : ConvolutionLayer
{
    /// <summary>
    /// A square <paramref name="kernelSize"/> transposed convolution from <paramref name="inChannels"/> to <paramref name="outChannels"/>;
    /// weight [in, out, k, k]. Its fan_in is out·k·k, as PyTorch computes it from weight.size(1).
    /// </summary>
    public ConvTranspose2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0)
        : base(new Shape(inChannels, outChannels, kernelSize, kernelSize), outChannels, outChannels * kernelSize * kernelSize)
    {
        Stride = stride;
        Padding = padding;
    }

    /// <summary>Stride.</summary>
    public int Stride { get; }

    /// <summary>Padding.</summary>
    public int Padding { get; }

    /// <summary>y = convᵀ(x, W) + b.</summary>
    public Tensor Forward(OpContext ctx, Tensor x) => Convolution.ConvTranspose2d(ctx, x, Weight.Value, Bias.Value, Stride, Padding);

    /// <summary>
    /// relu(<see cref="Forward"/>(x)) as one op (<see cref="Convolution.ConvTranspose2dRelu"/>): the same values and
    /// gradients as <c>Functional.Relu(ctx, Forward(ctx, x))</c>, one pass over the activations fewer in the forward.
    /// </summary>
    public Tensor ForwardRelu(OpContext ctx, Tensor x) => Convolution.ConvTranspose2dRelu(ctx, x, Weight.Value, Bias.Value, Stride, Padding);
}

/// <summary>
/// A causally masked convolution (stride 1), PixelCNN's layer: <c>weight</c> [out, in, kh, kw] and
/// <c>bias</c> [out] as <see cref="Conv2d"/>, multiplied by a constant <see cref="ConvMask"/> (see
/// <see cref="ConvMasks"/>) in forward and in the weight gradient, so masked taps neither act nor learn.
/// The mask is a non-persistent buffer: it is rebuilt from the constructor's arguments, not saved.
/// </summary>
public sealed class MaskedConv2d : ConvolutionLayer
{
    private Tensor? _mask;

    /// <summary>A masked convolution whose kernel shape is the mask's (weight [out, in, kh, kw]); padding (padH, padW) keeps H×W for odd kernels at (kh/2, kw/2).</summary>
    public MaskedConv2d(int inChannels, int outChannels, ConvMask mask, int padH, int padW)
        : base(new Shape(outChannels, inChannels, Required(mask).Height, mask.Width), outChannels, inChannels * mask.Height * mask.Width)
    {
        Mask = mask;
        PadH = padH;
        PadW = padW;
    }

    /// <summary>The causal mask, [kh, kw].</summary>
    public ConvMask Mask { get; }

    /// <summary>The mask on the device (the <c>mask</c> buffer), [kh, kw].</summary>
    public Tensor MaskTensor => _mask ?? throw new InvalidOperationException("MaskedConv2d is not allocated");

    private static ConvMask Required(ConvMask? mask) => mask ?? throw new ArgumentNullException(nameof(mask));

    /// <summary>Vertical padding.</summary>
    public int PadH { get; }

    /// <summary>Horizontal padding.</summary>
    public int PadW { get; }

    /// <inheritdoc />
    protected override void OnAllocated(Device.IDevice device) => _mask = RegisterBuffer("mask", Mask.ToTensor(device), persistent: false);

    /// <summary>y = conv(x, W ⊙ mask) + b.</summary>
    public Tensor Forward(OpContext ctx, Tensor x) =>
        Convolution.MaskedConv2d(ctx, x, Weight.Value, Bias.Value, MaskTensor, PadH, PadW);

    /// <inheritdoc />
    protected override void DisposeOwned() => _mask?.Dispose();
}
