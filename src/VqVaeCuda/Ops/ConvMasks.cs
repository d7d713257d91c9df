using VqVaeCuda.Device;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Ops;

/// <summary>Whether a causal mask keeps the centre tap (the pixel being predicted).</summary>
public enum MaskType
{
    /// <summary>Excludes the centre: the first layer, which must not see the pixel it predicts.</summary>
    A,
    /// <summary>Includes the centre: every later layer, whose centre input already excludes that pixel.</summary>
    B,
}

/// <summary>
/// A kernel-shaped 0/1 mask for <see cref="Convolution.MaskedConv2d(Autodiff.OpContext, Tensor, Tensor, Tensor?, Tensor, int)"/>:
/// [Height, Width], row-major, 1 where the tap is kept. <see cref="ToString"/> draws it ('x' kept, '.' masked).
/// </summary>
public sealed class ConvMask
{
    private readonly float[] _values;

    internal ConvMask(int height, int width, Func<int, int, bool> keeps)
    {
        Height = height;
        Width = width;
        _values = new float[height * width];
        for (int r = 0; r < height; r++)
            for (int c = 0; c < width; c++)
                _values[r * width + c] = keeps(r, c) ? 1f : 0f;
    }

    /// <summary>Kernel rows (kh).</summary>
    public int Height { get; }

    /// <summary>Kernel columns (kw).</summary>
    public int Width { get; }

    /// <summary>The kernel shape [Height, Width]: the mask's tensor shape.</summary>
    public Shape Shape => new(Height, Width);

    /// <summary>True when tap (row, column) of the kernel is kept.</summary>
    public bool Keeps(int row, int column) => _values[row * Width + column] != 0f;

    /// <summary>A copy of the values, row-major.</summary>
    public float[] ToArray() => (float[])_values.Clone();

    /// <summary>The mask as a new [Height, Width] tensor on <paramref name="device"/> (the caller disposes it).</summary>
    public Tensor ToTensor(IDevice device) => Tensor.FromArray(device, _values, Shape);

    /// <summary>One line per kernel row, 'x' for a kept tap and '.' for a masked one, e.g. "xxx\nx..\n...".</summary>
    public override string ToString() =>
        string.Join("\n", Enumerable.Range(0, Height).Select(r => new string(Enumerable.Range(0, Width).Select(c => Keeps(r, c) ? 'x' : '.').ToArray())));
}

/// <summary>
/// The causal masks of PixelCNN (van den Oord et al., <i>Pixel Recurrent Neural Networks</i>, 2016) and of the
/// Gated PixelCNN (<i>Conditional Image Generation with PixelCNN Decoders</i>, 2016), built on the host.
/// Pixels are generated in raster order (row by row, left to right); a mask keeps only taps that look
/// at pixels already generated. Every mask is for a convolution of stride 1 whose padding centres the
/// kernel, so the output keeps the input's H×W: padding (k/2, k/2) for the k×k masks, (0, k/2) for the
/// 1×k horizontal one. Kernel sizes are odd (the centre must be a tap). One mask is shared by every
/// (out, in) channel pair: the inputs here are embedded discrete codes, with no sub-pixel channel order.
/// </summary>
/// <remarks>
/// The Gated PixelCNN's stacks are built as MASKED full-width kernels rather than as PyTorch
/// implementations' (k/2+1)×k and 1×(k/2+1) kernels followed by a crop: with symmetric padding the
/// output needs no crop or shift op, at the cost of multiplying the masked half of each kernel by zero.
/// The two forms compute the same function. Pictures for k = 5 ('x' kept, '.' masked, centre = row 2, column 2):
/// <code>
///   PixelCnn A     PixelCnn B     VerticalStack A   VerticalStack B   HorizontalStack A   HorizontalStack B
///   xxxxx          xxxxx          xxxxx             xxxxx             xx...               xxx..
///   xxxxx          xxxxx          xxxxx             xxxxx
///   xx...          xxx..          .....             xxxxx
///   .....          .....          .....             .....
///   .....          .....          .....             .....
/// </code>
/// How the stacks stay causal without a shift: the first layer's vertical stack (mask A) sees only
/// rows strictly above, so its output at row i depends on input rows &lt; i. Later vertical layers (mask
/// B) add the centre row of the previous vertical features — which themselves only hold rows &lt; i — so
/// the vertical stack at row i never sees row i of the input, and it may feed the horizontal stack at
/// the same position directly. The horizontal stack sees the current row left of the centre (A) or up
/// to and including it (B). PixelCnn A/B is the original single-stack mask, with its blind spot.
/// </remarks>
public static class ConvMasks
{
    /// <summary>
    /// PixelCNN's k×k mask: every row above the centre, and the centre row left of the centre; B also keeps
    /// the centre. Use with padding k/2.
    /// </summary>
    public static ConvMask PixelCnn(int kernelSize, MaskType type)
    {
        int centre = Centre(kernelSize);
        return new ConvMask(kernelSize, kernelSize, (r, c) => r < centre || (r == centre && (c < centre || (type == MaskType.B && c == centre))));
    }

    /// <summary>
    /// The Gated PixelCNN's vertical stack as a k×k mask: all k columns of the rows above the centre row;
    /// B also keeps the whole centre row (see the remarks on why that is causal). Use with padding k/2.
    /// </summary>
    public static ConvMask VerticalStack(int kernelSize, MaskType type)
    {
        int centre = Centre(kernelSize);
        return new ConvMask(kernelSize, kernelSize, (r, _) => r < centre || (type == MaskType.B && r == centre));
    }

    /// <summary>
    /// The Gated PixelCNN's horizontal stack as a 1×k mask: the taps left of the centre; B also keeps the
    /// centre. Use with padding (0, k/2).
    /// </summary>
    public static ConvMask HorizontalStack(int kernelSize, MaskType type)
    {
        int centre = Centre(kernelSize);
        return new ConvMask(1, kernelSize, (_, c) => c < centre || (type == MaskType.B && c == centre));
    }

    private static int Centre(int kernelSize)
    {
        if (kernelSize < 1 || kernelSize % 2 == 0)
            throw new ArgumentOutOfRangeException(nameof(kernelSize), kernelSize, "a causal mask needs an odd kernel size (the centre must be a tap)");
        return kernelSize / 2;
    }
}
