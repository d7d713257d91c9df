using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Ops;

/// <summary>
/// 2-D convolutions over NCHW float32 tensors with PyTorch's layouts and semantics: <see cref="Conv2d(OpContext, Tensor, Tensor, Tensor?, int, int)"/>,
/// <see cref="ConvTranspose2d(OpContext, Tensor, Tensor, Tensor?, int, int)"/> (output_padding 0, no dilation, no groups),
/// <see cref="MaskedConv2d(OpContext, Tensor, Tensor, Tensor?, Tensor, int)"/> for the Gated PixelCNN, the
/// per-channel bias (<see cref="ChannelBias"/>), and the convolutions with the ReLU after them fused in
/// (<see cref="Conv2dRelu"/>, <see cref="ConvTranspose2dRelu"/>). Kernels: kernels/conv.cu; the products go through the
/// device GEMM.
/// </summary>
/// <remarks>
/// <para>
/// Every convolution is im2col + GEMM. For a convolution of an image [N,C,H,W] with a kh×kw kernel,
/// the column matrix <c>col</c> has K = C·kh·kw rows and N·P columns (P = Ho·Wo): column n·P + p holds
/// the K input values output position p of image n sees (kernels/conv.cu gives the exact index).
/// With the weight read as a row-major Cout×K matrix W:
/// <code>
///   conv2d forward   yᵀ          = W · col      ([Cout][N·P]; to NCHW with the bias in one pass)
///   backward data    dcol        = Wᵀ · dyᵀ;  dx += col2im(dcol)      (dyᵀ = dy as [Cout][N·P])
///   backward weight  dW         += dyᵀ · colᵀ                         (one GEMM, inner size N·P)
///   backward bias    db         += row sums of dyᵀ
///   transposed conv  = the same three products with forward and backward-data exchanged.
/// </code>
/// </para>
/// <para>
/// On the cpu device, where column bytes cost more than launches, a stride-1 convolution with fewer output than input
/// channels works through its adjoint instead (<c>RunsThroughAdjoint</c>: the residual blocks' 3×3 128→32), whose column
/// matrix has Cout·kh·kw rows instead of Cin·kh·kw; a 1×1 one with fewer output channels takes its input gradient that
/// way (<c>InputGradientAsConvolution</c>). A forward that records no backward frees its temporaries as soon as its
/// output is written (<see cref="Arena.Release"/>).
/// </para>
/// <para>
/// Batch handling: all N images share ONE column matrix and every product is a single GEMM over all N·P
/// columns: the forward computes yᵀ = W·col as [Cout][N·P] and one pass (fused with the bias) turns it
/// into NCHW; the backward turns dy into dyᵀ [Cout][N·P] once and uses it three times — its row sums are
/// the bias gradient, dW += dyᵀ·colᵀ, dcol = Wᵀ·dyᵀ. (The transposed convolution keeps strided-batched
/// GEMMs over x and dx as stored, and makes xᵀ for dW only: see its forward.) One large product instead of a strided batch of N small
/// ones (the earlier form: 64 products 128×49×1152 for the fashion-mnist residual convolutions) packs the
/// weight once instead of N times and keeps every core on one well-shaped GEMM; on a GPU it is one cuBLAS
/// call either way, now with N·P-wide tiles instead of P-wide ones. The N·P-deep weight-gradient GEMM
/// accumulates in one place, deterministically. The price is memory: the columns of the whole batch
/// (K·N·P floats) and the [C][N·P] copies come from the arena and stay there until the step ends.
/// </para>
/// <para>
/// GEMM is cuBLAS's column-major convention. Every product here is written for row-major matrices;
/// a row-major Z = X·Y is the column-major Zᵀ = Yᵀ·Xᵀ, i.e. the call with the operands swapped
/// (<see cref="GemmRowMajor"/>; the GEMM tests show the trick on its own).
/// </para>
/// </remarks>
public static class Convolution
{
    /// <summary>
    /// PyTorch's <c>conv2d</c>: x [N,Cin,H,W] ⊛ weight [Cout,Cin,kh,kw] (+ bias [Cout]) → [N,Cout,Ho,Wo] with
    /// Ho = (H + 2·padding − kh)/stride + 1 (rounded down), the same for widths; zero padding.
    /// Backward: dx += col2im(Wᵀ·dy), dW += dy·colᵀ, db += Σ_{n,h,w} dy.
    /// </summary>
    /// <exception cref="OpArgumentException">Bad ranks, channel counts, bias length, an empty output, mixed devices.</exception>
    public static Tensor Conv2d(OpContext ctx, Tensor x, Tensor weight, Tensor? bias, int stride, int padding) =>
        Conv2d(ctx, x, weight, bias, stride, stride, padding, padding);

    /// <summary>
    /// <see cref="Conv2d(OpContext, Tensor, Tensor, Tensor?, int, int)"/> with separate vertical and horizontal
    /// strides and paddings (PyTorch's <c>stride=(sh,sw), padding=(ph,pw)</c>); the kernel may be non-square.
    /// </summary>
    /// <exception cref="OpArgumentException">Bad ranks, channel counts, bias length, an empty output, mixed devices.</exception>
    public static Tensor Conv2d(OpContext ctx, Tensor x, Tensor weight, Tensor? bias, int strideH, int strideW, int padH, int padW)
    {
        const string op = "conv2d";
        var g = CheckConv2d(op, x, weight, bias, strideH, strideW, padH, padW);
        return Conv2dForward(ctx, op, g, x, weight, bias, relu: false);
    }

    /// <summary>
    /// relu(conv2d(x)) as ONE op: the ReLU is applied in the pass that writes the convolution's output, and its backward
    /// (dy where the output is positive, +0 elsewhere) in the pass that reads the output gradient (on the im2col path, the
    /// transpose of dy into [Cout][N·P]; elsewhere one masking pass). The same values as
    /// <see cref="Activations.Relu"/> of <see cref="Conv2d(OpContext, Tensor, Tensor, Tensor?, int, int)"/>, bit for bit, and
    /// the same gradients (as floats: a −0 may come out +0), with one pass over the activations fewer each way (and two
    /// kernel launches fewer on a GPU).
    /// Recorded as "conv2d+relu".
    /// </summary>
    /// <exception cref="OpArgumentException">As <see cref="Conv2d(OpContext, Tensor, Tensor, Tensor?, int, int)"/>.</exception>
    public static Tensor Conv2dRelu(OpContext ctx, Tensor x, Tensor weight, Tensor? bias, int stride, int padding)
    {
        const string op = "conv2d+relu";
        var g = CheckConv2d(op, x, weight, bias, stride, stride, padding, padding);
        return Conv2dForward(ctx, op, g, x, weight, bias, relu: true);
    }

    /// <summary>
    /// PyTorch's <c>conv_transpose2d</c> (output_padding 0): x [N,Cin,H,W], weight [Cin,Cout,kh,kw] (the transposed
    /// layout), bias [Cout] → [N,Cout,Ho,Wo] with Ho = (H − 1)·stride − 2·padding + kh. It is the
    /// backward-data of the convolution that maps [N,Cout,Ho,Wo] to [N,Cin,H,W] with this weight: forward
    /// is GEMM then col2im, backward dx is that convolution's forward (im2col then GEMM).
    /// </summary>
    /// <exception cref="OpArgumentException">Bad ranks, channel counts, bias length, an empty output, mixed devices.</exception>
    public static Tensor ConvTranspose2d(OpContext ctx, Tensor x, Tensor weight, Tensor? bias, int stride, int padding) =>
        ConvTranspose2d(ctx, x, weight, bias, stride, stride, padding, padding);

    /// <summary>
    /// <see cref="ConvTranspose2d(OpContext, Tensor, Tensor, Tensor?, int, int)"/> with separate vertical and
    /// horizontal strides and paddings; the kernel may be non-square.
    /// </summary>
    /// <exception cref="OpArgumentException">Bad ranks, channel counts, bias length, an empty output, mixed devices.</exception>
    public static Tensor ConvTranspose2d(OpContext ctx, Tensor x, Tensor weight, Tensor? bias, int strideH, int strideW, int padH, int padW)
    {
        const string op = "conv_transpose2d";
        return ConvTranspose2dForward(ctx, op, CheckConvTranspose2d(op, x, weight, bias, strideH, strideW, padH, padW), x, weight, bias, relu: false);
    }

    /// <summary>
    /// relu(conv_transpose2d(x)) as ONE op: the ReLU applied by the pass that writes the output (col2im, or the phase planes'
    /// depth to space), its backward one masking pass; bit for bit <see cref="Activations.Relu"/> of
    /// <see cref="ConvTranspose2d(OpContext, Tensor, Tensor, Tensor?, int, int)"/>, with the same gradients. Recorded as
    /// "conv_transpose2d+relu".
    /// </summary>
    /// <exception cref="OpArgumentException">As <see cref="ConvTranspose2d(OpContext, Tensor, Tensor, Tensor?, int, int)"/>.</exception>
    public static Tensor ConvTranspose2dRelu(OpContext ctx, Tensor x, Tensor weight, Tensor? bias, int stride, int padding)
    {
        const string op = "conv_transpose2d+relu";
        return ConvTranspose2dForward(ctx, op, CheckConvTranspose2d(op, x, weight, bias, stride, stride, padding, padding), x, weight, bias, relu: true);
    }

    private static ConvGeometry CheckConvTranspose2d(string op, Tensor x, Tensor weight, Tensor? bias, int strideH, int strideW, int padH, int padW)
    {
        CheckCommon(op, x, weight, bias, strideH, strideW, padH, padW);
        int n = x.Shape[0], cin = x.Shape[1], h = x.Shape[2], w = x.Shape[3];
        int wIn = weight.Shape[0], cout = weight.Shape[1], kh = weight.Shape[2], kw = weight.Shape[3];
        OpChecks.Require(wIn == cin, op, $"weight {weight.Describe()} [Cin,Cout,kh,kw] expects {wIn} input channels but input {x.Describe()} has {cin}");
        CheckBias(op, bias, cout, weight);
        long ho = (long)(h - 1) * strideH - 2L * padH + kh, wo = (long)(w - 1) * strideW - 2L * padW + kw;
        OpChecks.Require(ho >= 1 && wo >= 1, op,
                         $"output of {ho}x{wo} for input {x.Describe()}, kernel {kh}x{kw}, stride ({strideH},{strideW}), padding ({padH},{padW}): it must be at least 1x1");
        // The underlying convolution runs from the output (its image: Cout channels, ho×wo) to x's H×W.
        CheckSizes(op, n, cout, ho, wo, cin, kh, kw, h, w);
        return new ConvGeometry(n, cout, (int)ho, (int)wo, cin, kh, kw, strideH, strideW, padH, padW, h, w);
    }

    /// <summary>
    /// A convolution whose weight is multiplied by a constant <paramref name="mask"/> (stride 1): the
    /// masked convolutions of PixelCNN and of the Gated PixelCNN's stacks (<see cref="ConvMasks"/>). The mask
    /// is [Cout,Cin,kh,kw] or [kh,kw] (shared by every channel pair) and multiplies the weight in forward
    /// and the weight gradient in backward, so a masked tap neither affects the output nor ever learns.
    /// Padding is <paramref name="padding"/> on all sides; with padding kh/2 an odd kernel keeps H×W.
    /// </summary>
    /// <exception cref="OpArgumentException">As <see cref="Conv2d(OpContext, Tensor, Tensor, Tensor?, int, int)"/>, or a mask of the wrong shape.</exception>
    public static Tensor MaskedConv2d(OpContext ctx, Tensor x, Tensor weight, Tensor? bias, Tensor mask, int padding) =>
        MaskedConv2d(ctx, x, weight, bias, mask, padding, padding);

    /// <summary>
    /// <see cref="MaskedConv2d(OpContext, Tensor, Tensor, Tensor?, Tensor, int)"/> with separate vertical and
    /// horizontal padding: the horizontal stack's 1×k kernel takes padding (0, k/2).
    /// </summary>
    /// <exception cref="OpArgumentException">As <see cref="Conv2d(OpContext, Tensor, Tensor, Tensor?, int, int)"/>, or a mask of the wrong shape.</exception>
    public static Tensor MaskedConv2d(OpContext ctx, Tensor x, Tensor weight, Tensor? bias, Tensor mask, int padH, int padW)
    {
        const string op = "masked_conv2d";
        var g = CheckConv2d(op, x, weight, bias, 1, 1, padH, padW);
        OpChecks.DTypeIs(op, mask, DType.Float32, "mask");
        OpChecks.SameDevice(op, weight, mask);
        var kernelShape = new Shape(g.Kh, g.Kw);
        OpChecks.Require(mask.Shape == weight.Shape || mask.Shape == kernelShape, op,
                         $"mask {mask.Describe()} must have the weight's shape {weight.Shape} or the kernel's {kernelShape}");

        int count = (int)weight.Count, maskCount = (int)mask.Count;
        var masked = ctx.NewTensor(weight.Shape, purpose: $"{op} masked weight");
        ConvKernels.MaskMultiply(ctx.Device, weight.Pointer, mask.Pointer, masked.Pointer, count, maskCount);
        ctx.Record($"{op} (weight mask)", masked, [weight], tape =>
        {
            // The convolution's backward (recorded next, so replayed first) filled the masked weight's gradient.
            ConvKernels.MaskMultiplyAdd(ctx.Device, tape.GradOf(masked).Pointer, mask.Pointer, tape.GradOf(weight).Pointer, count, maskCount);
        });
        return Conv2dForward(ctx, op, g, x, masked, bias, relu: false);
    }

    /// <summary>
    /// y[n,c,...] = x[n,c,...] + bias[c] for x of rank ≥ 2 with channels on axis 1 ([N,C], [N,C,L], [N,C,H,W]).
    /// Backward: dx += dy; db[c] += Σ over every other axis of dy.
    /// </summary>
    /// <exception cref="OpArgumentException">Rank below 2, a bias that is not [C], mixed devices.</exception>
    public static Tensor ChannelBias(OpContext ctx, Tensor x, Tensor bias)
    {
        const string op = "channel_bias";
        OpChecks.DTypeIs(op, x, DType.Float32, "input");
        OpChecks.DTypeIs(op, bias, DType.Float32, "bias");
        OpChecks.SameDevice(op, x, bias);
        OpChecks.Require(x.Shape.Rank >= 2, op, $"input must have rank 2 or more with channels on axis 1, got {x.Describe()}");
        int n = x.Shape[0], c = x.Shape[1];
        OpChecks.Require(bias.Shape.Rank == 1 && bias.Shape[0] == c, op, $"bias {bias.Describe()} must be [{c}] for input {x.Describe()}");
        OpChecks.Require(x.Count <= int.MaxValue, op, $"input {x.Describe()} has more than {int.MaxValue} elements");
        int count = (int)x.Count, p = count / (n * c);

        var y = ctx.NewTensor(x.Shape, purpose: op);
        ConvKernels.ChannelBiasForward(ctx.Device, x.Pointer, bias.Pointer, y.Pointer, c, p, count);
        ctx.Record(op, y, [x, bias], tape =>
        {
            var dy = tape.GradOf(y);
            if (x.RequiresGrad) ElementwiseKernels.Axpy(ctx.Device, dy.Pointer, tape.GradOf(x).Pointer, 1f, count);
            if (bias.RequiresGrad) BiasBackward(ctx, dy, tape.GradOf(bias), n, c, p);
        });
        return y;
    }

    // ---- forward and backward ---------------------------------------------------------------

    // relu: the layer's ReLU fused in (Conv2dRelu): y is then relu(conv(x)), and the backward masks dy by y > 0 first.
    private static Tensor Conv2dForward(OpContext ctx, string op, ConvGeometry g, Tensor x, Tensor weight, Tensor? bias, bool relu)
    {
        var device = ctx.Device;
        var y = ctx.NewTensor(new Shape(g.N, g.Co, g.Ho, g.Wo), purpose: op);
        Tensor[] inputs = bias is null ? [x, weight] : [x, weight, bias];
        if (RunsThroughAdjoint(device, g)) return Conv2dThroughAdjoint(ctx, op, g, x, weight, bias, y, inputs, relu);
        var temporaries = ctx.Arena.Mark();
        var col = ctx.NewTensor(new Shape(g.K, g.NP), purpose: $"{op} columns");
        Im2Col(ctx, g, x.Pointer, col.Pointer);
        // yᵀ (Cout×N·P) = W (Cout×K) · col (K×N·P): one GEMM for the whole batch; then to NCHW with the bias added.
        var yT = ctx.NewTensor(new Shape(g.Co, g.NP), purpose: $"{op} output as [C][N·P]");
        GemmRowMajor(device, false, false, g.Co, g.NP, g.K, weight.Pointer, g.K, col.Pointer, g.NP, 0f, yT.Pointer, g.NP);
        if (bias is not null || relu) ConvKernels.CnhwToNchwBias(device, yT.Pointer, bias?.Pointer ?? default, y.Pointer, g.N, g.Co, g.P, relu);
        else ToChannelsFirst(ctx, yT.Pointer, y.Pointer, g.Co, g.N, g.P);  // [C][N][P] → [N][C][P] is the same swap of the outer axes
        // Without a backward to keep them for, the temporaries are free now: inference needs one layer's temporaries at a
        // time instead of every layer's.
        if (!ctx.Records(inputs)) ctx.Arena.Release(temporaries);

        ctx.Record(op, y, inputs, tape =>
        {
            // dyᵀ (Cout×N·P) serves all three gradients: its rows sum to db, it multiplies colᵀ into dW and Wᵀ into dcol. With
            // the ReLU fused, the same pass keeps dy only where y > 0 (the ReLU's backward) — unless the input gradient reads
            // dy as NCHW too (by convolution), which then needs its own masked copy.
            bool inputGradientByConvolution = x.RequiresGrad && InputGradientAsConvolution(device, g);
            bool maskInTranspose = relu && !inputGradientByConvolution;
            var dy = relu && inputGradientByConvolution ? ReluMaskedGradient(ctx, op, tape.GradOf(y), y) : tape.GradOf(y);
            var dyT = ctx.NewTensor(new Shape(g.Co, g.NP), purpose: $"{op} output gradient as [C][N·P]");
            ConvKernels.NchwToCnhw(device, dy.Pointer, dyT.Pointer, g.N, g.Co, g.P, maskInTranspose ? y.Pointer : default);
            if (bias is { RequiresGrad: true }) BiasBackward(ctx, dyT, tape.GradOf(bias), 1, g.Co, g.NP);
            if (weight.RequiresGrad)
            {
                // dW (Cout×K) += dyᵀ (Cout×N·P) · colᵀ (N·P×K): one GEMM summing over images and positions.
                GemmRowMajor(device, false, true, g.Co, g.K, g.NP, dyT.Pointer, g.NP, col.Pointer, g.NP, 1f, tape.GradOf(weight).Pointer, g.K);
            }
            if (inputGradientByConvolution)
                InputGradientByConvolution(ctx, op, g, dy, weight, tape.GradOf(x));
            else if (x.RequiresGrad)
            {
                // dcol (K×N·P) = Wᵀ (K×Cout) · dyᵀ (Cout×N·P); then every column entry goes back to its pixel.
                var dcol = ctx.NewTensor(new Shape(g.K, g.NP), purpose: $"{op} column gradient");
                GemmRowMajor(device, true, false, g.K, g.NP, g.Co, weight.Pointer, g.K, dyT.Pointer, g.NP, 0f, dcol.Pointer, g.NP);
                Col2Im(ctx, g, dcol.Pointer, tape.GradOf(x).Pointer, accumulate: true);
            }
        });
        return y;
    }

    // Which products a convolution is written as: the cpu device's (through the adjoint, the input gradient as a
    // convolution, the transposed convolution over N·P columns) or a GPU's (im2col and strided batches, fewer launches).
    // The device decides; tests set PathFormOverride to take a GPU's path on the cpu device, where its kernels then run in
    // their cpu forms, so both paths are checked without a GPU.
    internal static KernelLaunch.KernelForm? PathFormOverride { get; set; }

    private static KernelLaunch.KernelForm PathFormFor(IDevice device) => PathFormOverride ?? KernelLaunch.FormFor(device);

    // Whether the input gradient of a convolution runs as a convolution of dy with the flipped weight (the cpu device, for
    // a stride-1 convolution with fewer output than input channels): its column matrix has Cout·kh·kw rows where dcol has
    // Cin·kh·kw, and its GEMM's inner dimension is Cout·kh·kw where dcol's is Cout — for the residual blocks' 3×3 128→32,
    // a quarter of the column bytes and a GEMM of inner dimension 288 instead of 32. On a GPU the dcol-then-col2im path
    // stays: this one takes three more launches (flip, transpose, add), and there the column bytes cost less than launches.
    private static bool InputGradientAsConvolution(IDevice device, ConvGeometry g) =>
        PathFormFor(device) == KernelLaunch.KernelForm.Cpu && g.Sh == 1 && g.Sw == 1 && g.Co < g.C && g.Ph < g.Kh && g.Pw < g.Kw;

    // dx += conv(dy, wf), wf[ci][co] = w[co][ci] with the taps reversed, padding k − 1 − p: the adjoint of a stride-1
    // convolution is a stride-1 convolution. Its output lands as [Cin][N·H·W] and is added into dx through a transpose.
    private static void InputGradientByConvolution(OpContext ctx, string op, ConvGeometry g, Tensor dy, Tensor weight, Tensor dx)
    {
        var adjoint = g.Adjoint();
        var flipped = FlippedWeight(ctx, op, g, weight);
        var colDy = ctx.NewTensor(new Shape(adjoint.K, adjoint.NP), purpose: $"{op} output-gradient columns");
        Im2Col(ctx, adjoint, dy.Pointer, colDy.Pointer);
        AddAdjointForward(ctx, op, g, flipped, colDy, dx);
    }

    // wf[ci][co] = w[co][ci] with the taps reversed: the weight of the adjoint convolution.
    private static Tensor FlippedWeight(OpContext ctx, string op, ConvGeometry g, Tensor weight)
    {
        var flipped = ctx.NewTensor(new Shape(g.C, g.Co, g.Kh, g.Kw), purpose: $"{op} flipped weight");
        ConvKernels.WeightFlip(ctx.Device, weight.Pointer, flipped.Pointer, g.Co, g.C, g.Kh, g.Kw);
        return flipped;
    }

    // dx += the adjoint's forward of dy: dxᵀ (Cin × N·H·W) = wf (Cin × Cout·kh·kw) · im2col(dy), to NCHW and added into dx.
    private static void AddAdjointForward(OpContext ctx, string op, ConvGeometry g, Tensor flipped, Tensor colDy, Tensor dx)
    {
        var device = ctx.Device;
        var adjoint = g.Adjoint();
        var dxT = ctx.NewTensor(new Shape(g.C, adjoint.NP), purpose: $"{op} input gradient as [C][N·P]");
        GemmRowMajor(device, false, false, g.C, adjoint.NP, adjoint.K, flipped.Pointer, adjoint.K, colDy.Pointer, adjoint.NP, 0f, dxT.Pointer, adjoint.NP);
        AddChannelsFirst(ctx, op, dxT, dx);
    }

    // dx (NCHW) += gradient as [C][N·P]: a transpose of the outer axes into a temporary, then an add.
    private static void AddChannelsFirst(OpContext ctx, string op, Tensor cnhw, Tensor dx)
    {
        var part = ctx.NewTensor(dx.Shape, purpose: $"{op} input gradient");
        ToChannelsFirst(ctx, cnhw.Pointer, part.Pointer, dx.Shape[1], dx.Shape[0], dx.Shape[2] * dx.Shape[3]);  // [C][N][P] → [N][C][P]
        ElementwiseKernels.Axpy(ctx.Device, part.Pointer, dx.Pointer, 1f, checked((int)dx.Count));
    }

    // Whether the convolution runs through its adjoint (the cpu device; stride 1, fewer output than input channels, a
    // kernel larger than 1×1: the residual blocks' 3×3 128→32). The adjoint of a stride-1 convolution is the stride-1
    // convolution from y's space back to x's with the flipped weight wf[ci][co] = w[co][ci] with the taps reversed and
    // padding k − 1 − p; every product of the op is written with the adjoint's column matrix, Cout·kh·kw rows of N·H·W
    // columns, where im2col of x has Cin·kh·kw rows (a quarter of the bytes for 128→32):
    //   forward          col_y = wfᵀ · xᵀ (Cout·kh·kw × N·H·W, inner Cin);  y = col2im(col_y) + b   (x = convT of the adjoint)
    //   backward data    dxᵀ = wf · im2col(dy)                                                        (a conv of dy with wf)
    //   backward weight  dwf = xᵀ · im2col(dy)ᵀ (Cin × Cout·kh·kw, inner N·H·W);  dW += flip(dwf)
    //   backward bias    db += Σ dy
    // Every GEMM has a well-shaped side of 128 or 288 where im2col's forward and weight gradient have Cout = 32 rows, and
    // x's column matrix (14.4 MB a layer at batch 64) is never written or read. Measured in kernels/NOTES.md. On a GPU
    // the im2col path stays: this one takes more launches (flips, transposes, an add), and there launches cost more than
    // column bytes.
    private static bool RunsThroughAdjoint(IDevice device, ConvGeometry g) =>
        PathFormFor(device) == KernelLaunch.KernelForm.Cpu && g.Sh == 1 && g.Sw == 1 && g.Co < g.C && g.Kh * g.Kw > 1 &&
        g.Ph < g.Kh && g.Pw < g.Kw;

    private static Tensor Conv2dThroughAdjoint(OpContext ctx, string op, ConvGeometry g, Tensor x, Tensor weight, Tensor? bias, Tensor y,
                                               Tensor[] inputs, bool relu)
    {
        var device = ctx.Device;
        var adjoint = g.Adjoint();
        bool records = ctx.Records(inputs);
        var temporaries = ctx.Arena.Mark();
        var flipped = FlippedWeight(ctx, op, g, weight);
        var xT = ctx.NewTensor(new Shape(g.C, adjoint.NP), purpose: $"{op} input as [C][N·H·W]");
        ToChannelsFirst(ctx, x.Pointer, xT.Pointer, g.N, g.C, g.H * g.W);
        var kept = ctx.Arena.Mark();  // the backward reads the flipped weight and xᵀ, not the output's columns
        var colY = ctx.NewTensor(new Shape(adjoint.K, adjoint.NP), purpose: $"{op} output columns");
        GemmRowMajor(device, true, false, adjoint.K, adjoint.NP, g.C, flipped.Pointer, adjoint.K, xT.Pointer, adjoint.NP, 0f, colY.Pointer, adjoint.NP);
        Col2Im(ctx, adjoint, colY.Pointer, y.Pointer, accumulate: false, bias, relu);
        ctx.Arena.Release(records ? kept : temporaries);

        ctx.Record(op, y, inputs, tape =>
        {
            var dy = relu ? ReluMaskedGradient(ctx, op, tape.GradOf(y), y) : tape.GradOf(y);
            if (bias is { RequiresGrad: true }) BiasBackward(ctx, dy, tape.GradOf(bias), g.N, g.Co, g.P);
            if (!x.RequiresGrad && !weight.RequiresGrad) return;
            var colDy = ctx.NewTensor(new Shape(adjoint.K, adjoint.NP), purpose: $"{op} output-gradient columns");
            Im2Col(ctx, adjoint, dy.Pointer, colDy.Pointer);
            if (weight.RequiresGrad)
            {
                // dwf (Cin × Cout·kh·kw) = xᵀ (Cin × N·H·W) · im2col(dy)ᵀ: the flipped weight's gradient; flipped back into dW.
                var dwf = ctx.NewTensor(flipped.Shape, purpose: $"{op} flipped weight gradient");
                GemmRowMajor(device, false, true, g.C, adjoint.K, adjoint.NP, xT.Pointer, adjoint.NP, colDy.Pointer, adjoint.NP, 0f, dwf.Pointer, adjoint.K);
                var dw = ctx.NewTensor(weight.Shape, purpose: $"{op} weight gradient");
                ConvKernels.WeightFlip(device, dwf.Pointer, dw.Pointer, g.C, g.Co, g.Kh, g.Kw);
                ElementwiseKernels.Axpy(device, dw.Pointer, tape.GradOf(weight).Pointer, 1f, checked((int)weight.Count));
            }
            if (x.RequiresGrad) AddAdjointForward(ctx, op, g, flipped, colDy, tape.GradOf(x));
        });
        return y;
    }

    // The transposed convolution's output: col = Wᵀ·x image by image, then col2im writes (not adds) every pixel of y with
    // the bias in the same pass. g is the convolution it reverses (from y's space to x's); weight is [Cin of x = g.Co, Cout of y = g.C, kh, kw].
    private static void TransposedConvolutionOutput(OpContext ctx, string op, ConvGeometry g, Tensor x, Tensor weight, Tensor? bias, Tensor y, bool relu)
    {
        var col = ctx.NewTensor(new Shape(g.K, g.NP), purpose: $"{op} columns");
        // col[:, n·P..] (K×P) = Wᵀ (K×Cin) · x[n] (Cin×P).
        GemmRowMajorBatched(ctx.Device, true, false, g.K, g.P, g.Co, weight.Pointer, g.K, 0, x.Pointer, g.P, (long)g.Co * g.P,
                            0f, col.Pointer, g.NP, g.P, g.N);
        Col2Im(ctx, g, col.Pointer, y.Pointer, accumulate: false, bias, relu);
    }

    // Whether the transposed convolution runs its products over N·P columns (the cpu device): xᵀ ([Cin][N·P]) is written
    // once in the forward and serves the forward's GEMM and the weight gradient's, and the input gradient is one GEMM
    // into [Cin][N·P] added back through a transpose. OpenBLAS runs one product N·P = 3136 columns wide faster than 64
    // products 49 wide (the decoder's 128→64 layer: 4.4 against 5.5 ms forward, 4.3 against 5.4 ms for dx; NOTES.md).
    // On a GPU the strided batches stay: they read and write NCHW as stored, with no transposes, which would add launches.
    private static bool TransposedRunsOverColumns(IDevice device) => PathFormFor(device) == KernelLaunch.KernelForm.Cpu;

    // g describes the underlying convolution from y (its image) to x (its output); g.Co is x's channel count.
    // On a GPU the transposed convolution keeps its strided-batched GEMMs over x and dx as stored (NCHW); on the cpu device
    // it runs over N·P columns (TransposedRunsOverColumns).
    private static Tensor ConvTranspose2dForward(OpContext ctx, string op, ConvGeometry g, Tensor x, Tensor weight, Tensor? bias, bool relu)
    {
        var device = ctx.Device;
        var y = ctx.NewTensor(new Shape(g.N, g.C, g.H, g.W), purpose: op);
        Tensor[] inputs = bias is null ? [x, weight] : [x, weight, bias];
        bool overColumns = TransposedRunsOverColumns(device);
        var temporaries = ctx.Arena.Mark();
        Tensor? xT = null;
        if (overColumns)
        {
            // xᵀ (Cin×N·P); col (K×N·P) = Wᵀ (K×Cin) · xᵀ: one GEMM for the batch. The backward reads xᵀ again (dW).
            xT = ctx.NewTensor(new Shape(g.Co, g.NP), purpose: $"{op} input as [C][N·P]");
            ToChannelsFirst(ctx, x.Pointer, xT.Pointer, g.N, g.Co, g.P);
            var kept = ctx.Arena.Mark();
            var col = ctx.NewTensor(new Shape(g.K, g.NP), purpose: $"{op} columns");
            GemmRowMajor(device, true, false, g.K, g.NP, g.Co, weight.Pointer, g.K, xT.Pointer, g.NP, 0f, col.Pointer, g.NP);
            Col2Im(ctx, g, col.Pointer, y.Pointer, accumulate: false, bias, relu);
            ctx.Arena.Release(ctx.Records(inputs) ? kept : temporaries);  // the columns always; xᵀ when no backward reads it
        }
        else
        {
            TransposedConvolutionOutput(ctx, op, g, x, weight, bias, y, relu);
            ctx.Arena.Release(temporaries);  // the columns: the backward does not read them
        }

        ctx.Record(op, y, inputs, tape =>
        {
            var dy = relu ? ReluMaskedGradient(ctx, op, tape.GradOf(y), y) : tape.GradOf(y);
            if (bias is { RequiresGrad: true }) BiasBackward(ctx, dy, tape.GradOf(bias), g.N, g.C, g.H * g.W);
            if (!x.RequiresGrad && !weight.RequiresGrad) return;
            var dcol = ctx.NewTensor(new Shape(g.K, g.NP), purpose: $"{op} column gradient");
            Im2Col(ctx, g, dy.Pointer, dcol.Pointer);
            if (x.RequiresGrad && overColumns)
            {
                // dxᵀ (Cin×N·P) = W (Cin×K) · dcol (K×N·P): the convolution's forward as one GEMM; then added into dx as NCHW.
                var dxT = ctx.NewTensor(new Shape(g.Co, g.NP), purpose: $"{op} input gradient as [C][N·P]");
                GemmRowMajor(device, false, false, g.Co, g.NP, g.K, weight.Pointer, g.K, dcol.Pointer, g.NP, 0f, dxT.Pointer, g.NP);
                AddChannelsFirst(ctx, op, dxT, tape.GradOf(x));
            }
            else if (x.RequiresGrad)
            {
                // dx[n] (Cin×P) += W (Cin×K) · dcol[:, n·P..] (K×P): the convolution's forward.
                GemmRowMajorBatched(device, false, false, g.Co, g.P, g.K, weight.Pointer, g.K, 0, dcol.Pointer, g.NP, g.P,
                                    1f, tape.GradOf(x).Pointer, g.P, (long)g.Co * g.P, g.N);
            }
            if (weight.RequiresGrad)
            {
                // dW (Cin×K) += xᵀ (Cin×N·P) · dcolᵀ (N·P×K), with the forward's xᵀ where it kept one.
                var xColumns = xT;
                if (xColumns is null)
                {
                    xColumns = ctx.NewTensor(new Shape(g.Co, g.NP), purpose: $"{op} input as [C][N·P]");
                    ToChannelsFirst(ctx, x.Pointer, xColumns.Pointer, g.N, g.Co, g.P);
                }
                GemmRowMajor(device, false, true, g.Co, g.K, g.NP, xColumns.Pointer, g.NP, dcol.Pointer, g.NP, 1f, tape.GradOf(weight).Pointer, g.K);
            }
        });
        return y;
    }

    // ---- launches ---------------------------------------------------------------------------

    private static void Im2Col(OpContext ctx, ConvGeometry g, DevicePointer image, DevicePointer col) =>
        ConvKernels.Im2Col(ctx.Device, image, col, g.N, g.C, g.H, g.W, g.Kh, g.Kw, g.Sh, g.Sw, g.Ph, g.Pw, g.Ho, g.Wo, PhasePlanes(ctx, g));

    // A bias is added, and a fused ReLU applied, (once, in the same pass) only when col2im writes the image.
    private static void Col2Im(OpContext ctx, ConvGeometry g, DevicePointer col, DevicePointer image, bool accumulate, Tensor? bias = null,
                               bool relu = false) =>
        ConvKernels.Col2Im(ctx.Device, col, image, g.N, g.C, g.H, g.W, g.Kh, g.Kw, g.Sh, g.Sw, g.Ph, g.Pw, g.Ho, g.Wo, accumulate,
                           bias?.Pointer ?? default, PhasePlanes(ctx, g), relu);

    // A fused ReLU's backward where no pass of the op's own backward can take it: dy where y > 0, +0 elsewhere, into a new
    // tensor (relu_backward's rule: the zeros plus its masked add).
    private static Tensor ReluMaskedGradient(OpContext ctx, string op, Tensor dy, Tensor y)
    {
        var masked = ctx.Zeros(dy.Shape, DType.Float32, $"{op} output gradient through the ReLU");
        ActivationKernels.ReluBackward(ctx.Device, y.Pointer, dy.Pointer, masked.Pointer, checked((int)dy.Count));
        return masked;
    }

    // The phase planes the cpu device's stride-s im2col and col2im go through (ConvKernels.PhaseScratchFloats), from the
    // arena as the op's other temporaries; none where that path does not apply.
    private static DevicePointer PhasePlanes(OpContext ctx, ConvGeometry g)
    {
        long floats = ConvKernels.PhaseScratchFloats(KernelLaunch.FormFor(ctx.Device), g.N, g.C, g.H, g.W, g.Sh, g.Sw, g.Wo);
        return floats > 0 ? ctx.NewTensor(new Shape(checked((int)floats)), purpose: "phase planes").Pointer : default;
    }

    private static void ToChannelsFirst(OpContext ctx, DevicePointer nchw, DevicePointer cnhw, int n, int c, int p) =>
        ConvKernels.NchwToCnhw(ctx.Device, nchw, cnhw, n, c, p);

    private static void BiasBackward(OpContext ctx, Tensor dy, Tensor dbias, int n, int c, int p) =>
        ConvKernels.ChannelBiasBackward(ctx.Device, dy.Pointer, dbias.Pointer, n, c, p);

    /// <summary>
    /// Z (m×n) = op(X) (m×k) · op(Y) (k×n) + beta·Z for ROW-major matrices with row lengths ldx, ldy, ldz.
    /// Read as column-major, row-major memory holds the transpose, so this is the cuBLAS call for
    /// Zᵀ = op(Y)ᵀ · op(X)ᵀ: operands swapped, m and n swapped, each operand's transpose flag kept.
    /// </summary>
    private static void GemmRowMajor(IDevice device, bool transX, bool transY, int m, int n, int k, DevicePointer x, int ldx,
                                     DevicePointer y, int ldy, float beta, DevicePointer z, int ldz) =>
        device.Gemm(Op(transY), Op(transX), n, m, k, 1f, y, ldy, x, ldx, beta, z, ldz);

    /// <summary><see cref="GemmRowMajor"/> over <paramref name="batch"/> products, each operand advancing by its stride (elements).</summary>
    private static void GemmRowMajorBatched(IDevice device, bool transX, bool transY, int m, int n, int k, DevicePointer x, int ldx, long strideX,
                                            DevicePointer y, int ldy, long strideY, float beta, DevicePointer z, int ldz, long strideZ, int batch) =>
        device.GemmStridedBatched(Op(transY), Op(transX), n, m, k, 1f, y, ldy, strideY, x, ldx, strideX, beta, z, ldz, strideZ, batch);

    private static GemmOp Op(bool transpose) => transpose ? GemmOp.Transpose : GemmOp.None;

    // ---- checks (all before any launch) -------------------------------------------------------

    private static ConvGeometry CheckConv2d(string op, Tensor x, Tensor weight, Tensor? bias, int strideH, int strideW, int padH, int padW)
    {
        CheckCommon(op, x, weight, bias, strideH, strideW, padH, padW);
        int n = x.Shape[0], cin = x.Shape[1], h = x.Shape[2], w = x.Shape[3];
        int cout = weight.Shape[0], wIn = weight.Shape[1], kh = weight.Shape[2], kw = weight.Shape[3];
        OpChecks.Require(wIn == cin, op, $"weight {weight.Describe()} [Cout,Cin,kh,kw] expects {wIn} input channels but input {x.Describe()} has {cin}");
        CheckBias(op, bias, cout, weight);
        long spanH = (long)h + 2L * padH - kh, spanW = (long)w + 2L * padW - kw;
        OpChecks.Require(spanH >= 0 && spanW >= 0, op,
                         $"kernel {kh}x{kw} does not fit input {x.Describe()} padded by ({padH},{padW}): the output would be empty");
        long ho = spanH / strideH + 1, wo = spanW / strideW + 1;
        CheckSizes(op, n, cin, h, w, cout, kh, kw, ho, wo);
        return new ConvGeometry(n, cin, h, w, cout, kh, kw, strideH, strideW, padH, padW, (int)ho, (int)wo);
    }

    private static void CheckCommon(string op, Tensor x, Tensor weight, Tensor? bias, int strideH, int strideW, int padH, int padW)
    {
        OpChecks.DTypeIs(op, x, DType.Float32, "input");
        OpChecks.DTypeIs(op, weight, DType.Float32, "weight");
        OpChecks.Rank(op, x, 4, "input [N,C,H,W]");
        OpChecks.Rank(op, weight, 4, "weight");
        if (bias is null) OpChecks.SameDevice(op, x, weight);
        else
        {
            OpChecks.DTypeIs(op, bias, DType.Float32, "bias");
            OpChecks.SameDevice(op, x, weight, bias);
        }
        OpChecks.Require(strideH >= 1 && strideW >= 1, op, $"stride ({strideH},{strideW}) must be at least 1");
        OpChecks.Require(padH >= 0 && padW >= 0, op, $"padding ({padH},{padW}) must not be negative");
    }

    private static void CheckBias(string op, Tensor? bias, int cout, Tensor weight)
    {
        if (bias is null) return;
        OpChecks.Require(bias.Shape.Rank == 1 && bias.Shape[0] == cout, op,
                         $"bias {bias.Describe()} must be [{cout}]: one value per output channel of weight {weight.Describe()}");
    }

    // The kernels and GEMM calls index with int: every buffer they see must have fewer than 2^31 elements.
    // Products in double: exact far beyond 2^31, and they cannot overflow.
    private static void CheckSizes(string op, long n, long c, long h, long w, long co, long kh, long kw, long ho, long wo)
    {
        double image = (double)n * c * h * w, output = (double)n * co * ho * wo, columns = (double)c * kh * kw * n * ho * wo;
        double largest = Math.Max(image, Math.Max(output, columns));
        OpChecks.Require(largest <= int.MaxValue, op,
                         $"{largest:0} elements in one buffer (image {image:0}, output {output:0}, columns {columns:0}) exceed the kernels' int indexing; split the batch");
    }

    /// <summary>
    /// One convolution from an image [N,C,H,W] to an output [N,Co,Ho,Wo] with a kh×kw kernel, stride
    /// (Sh,Sw), padding (Ph,Pw). The transposed convolution is described by the convolution it reverses.
    /// </summary>
    private readonly record struct ConvGeometry(int N, int C, int H, int W, int Co, int Kh, int Kw, int Sh, int Sw, int Ph, int Pw, int Ho, int Wo)
    {
        /// <summary>Output positions per image.</summary>
        public int P => Ho * Wo;

        /// <summary>Columns of the column matrix: every output position of every image.</summary>
        public int NP => N * Ho * Wo;

        /// <summary>Rows of the column matrix: the values one output position sees.</summary>
        public int K => C * Kh * Kw;

        /// <summary>
        /// The adjoint of this stride-1 convolution: the convolution from its output's space (Co channels, Ho×Wo) back to
        /// its input's (C channels, H×W) with padding k − 1 − p, whose weight is the flipped one. Its K is Co·kh·kw and its
        /// N·P is N·H·W.
        /// </summary>
        public ConvGeometry Adjoint() => new(N, Co, Ho, Wo, C, Kh, Kw, 1, 1, Kh - 1 - Ph, Kw - 1 - Pw, H, W);
    }
}
