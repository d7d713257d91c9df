using VqVaeCuda.Autodiff;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Modules;

/// <summary>
/// One layer of the Gated PixelCNN (van den Oord et al. 2016, figure 2), on a vertical and a horizontal
/// feature map of the same size:
/// <code>
///   v_pre = vertical(v)                          k×k, vertical-stack mask (rows above; B: and the centre row)
///   h_pre = horizontal(h) + vertical_to_horizontal(v_pre)      1×k horizontal mask, plus the 1×1 link
///   v'    = tanh(v_pre_a + c_v) · σ(v_pre_b + c_v')            c: the class's learned bias, if conditioned
///   h'    = horizontal_out(tanh(h_pre_a + c_h) · σ(h_pre_b + c_h'))  [+ h, the residual, after the first layer]
/// </code>
/// The masks (<see cref="ConvMasks"/>) keep the vertical stack at row i blind to rows ≥ i of the input, so
/// it can feed the horizontal stack at the same position without a shift, and the two stacks together
/// leave no blind spot. Children: <c>vertical</c>, <c>horizontal</c>, <c>vertical_to_horizontal</c>,
/// <c>horizontal_out</c>, and with classes <c>vertical_condition</c>, <c>horizontal_condition</c> ([classes, 2C]).
/// </summary>
public sealed class GatedLayer : Module
{
    /// <summary>A layer from <paramref name="inChannels"/> to <paramref name="channels"/> with a <paramref name="kernelSize"/> kernel.</summary>
    /// <param name="inChannels">Channels of both inputs.</param>
    /// <param name="channels">C: channels of both outputs (the gates' halves).</param>
    /// <param name="kernelSize">Odd kernel size of both stacks.</param>
    /// <param name="mask">A for the first layer (the centre position is not seen), B after.</param>
    /// <param name="residual">Add h to the horizontal output (needs inChannels = channels).</param>
    /// <param name="classes">Number of classes to condition on; 0 for none.</param>
    public GatedLayer(int inChannels, int channels, int kernelSize, MaskType mask, bool residual, int classes)
    {
        if (residual && inChannels != channels) throw new ArgumentException($"a residual gated layer needs as many input as output channels ({inChannels} vs {channels})");
        Channels = channels;
        MaskType = mask;
        Residual = residual;
        Vertical = RegisterModule("vertical", new MaskedConv2d(inChannels, 2 * channels, ConvMasks.VerticalStack(kernelSize, mask), kernelSize / 2, kernelSize / 2));
        Horizontal = RegisterModule("horizontal", new MaskedConv2d(inChannels, 2 * channels, ConvMasks.HorizontalStack(kernelSize, mask), 0, kernelSize / 2));
        VerticalToHorizontal = RegisterModule("vertical_to_horizontal", new Conv2d(2 * channels, 2 * channels, 1));
        HorizontalOut = RegisterModule("horizontal_out", new Conv2d(channels, channels, 1));
        if (classes > 0)
        {
            VerticalCondition = RegisterModule("vertical_condition", new Embedding(classes, 2 * channels));
            HorizontalCondition = RegisterModule("horizontal_condition", new Embedding(classes, 2 * channels));
        }
    }

    /// <summary>C.</summary>
    public int Channels { get; }

    /// <summary>The mask type of both stacks.</summary>
    public MaskType MaskType { get; }

    /// <summary>Whether h is added to the horizontal output.</summary>
    public bool Residual { get; }

    /// <summary>The vertical stack's masked k×k convolution.</summary>
    public MaskedConv2d Vertical { get; }

    /// <summary>The horizontal stack's masked 1×k convolution.</summary>
    public MaskedConv2d Horizontal { get; }

    /// <summary>The 1×1 link from the vertical pre-activation into the horizontal one.</summary>
    public Conv2d VerticalToHorizontal { get; }

    /// <summary>The horizontal stack's 1×1 output convolution.</summary>
    public Conv2d HorizontalOut { get; }

    /// <summary>Per-class bias of the vertical gate, [classes, 2C]; null when unconditional.</summary>
    public Embedding? VerticalCondition { get; }

    /// <summary>Per-class bias of the horizontal gate; null when unconditional.</summary>
    public Embedding? HorizontalCondition { get; }

    /// <summary>
    /// One layer on v and h ([N, Cin, H, W] each); <paramref name="labels"/> (int32 [N]) is required exactly when the
    /// layer is class-conditioned. Returns (v', h'), each [N, C, H, W]; v' is null when <paramref name="verticalOutput"/>
    /// is false — the last layer's, which nothing reads (the head sees the horizontal stack only).
    /// </summary>
    public (Tensor? Vertical, Tensor Horizontal) Forward(OpContext ctx, Tensor v, Tensor h, Tensor? labels, bool verticalOutput = true)
    {
        var vPre = Vertical.Forward(ctx, v);
        var hPre = Elementwise.Add(ctx, Horizontal.Forward(ctx, h), VerticalToHorizontal.Forward(ctx, vPre));
        var vOut = verticalOutput ? Gate(ctx, vPre, VerticalCondition, labels) : null;
        var hOut = HorizontalOut.Forward(ctx, Gate(ctx, hPre, HorizontalCondition, labels));
        if (Residual) hOut = Elementwise.Add(ctx, hOut, h);
        return (vOut, hOut);
    }

    private static Tensor Gate(OpContext ctx, Tensor x, Embedding? condition, Tensor? labels)
    {
        if (condition is null) return Gating.GatedTanhSigmoid(ctx, x);
        if (labels is null) throw new ArgumentException("this gated layer is class-conditioned: pass the labels");
        return Gating.GatedTanhSigmoid(ctx, x, Ops.Embedding.LookupLabels(ctx, condition.Weight.Value, labels));
    }
}
