using VqVaeCuda.Autodiff;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Modules;

/// <summary>
/// Every functional op in one place, like <c>torch.nn.functional</c>: stateless functions of tensors that a
/// module's forward (or a host's own code) composes. Each forwards to its op in <c>VqVaeCuda.Ops</c>, where the
/// forward and backward are written side by side; all record on the context's tape when it has one.
/// </summary>
public static class Functional
{
    /// <summary>max(x, 0).</summary>
    public static Tensor Relu(OpContext ctx, Tensor x) => Activations.Relu(ctx, x);

    /// <summary>a + b (same shape).</summary>
    public static Tensor Add(OpContext ctx, Tensor a, Tensor b) => Elementwise.Add(ctx, a, b);

    /// <summary>Convolution: x [N, Cin, H, W], weight [Cout, Cin, k, k], optional bias [Cout].</summary>
    public static Tensor Conv2d(OpContext ctx, Tensor x, Tensor weight, Tensor? bias, int stride = 1, int padding = 0) =>
        Convolution.Conv2d(ctx, x, weight, bias, stride, padding);

    /// <summary>relu(conv2d(x)) as one op: the same values and gradients, the ReLU inside the convolution's own passes.</summary>
    public static Tensor Conv2dRelu(OpContext ctx, Tensor x, Tensor weight, Tensor? bias, int stride = 1, int padding = 0) =>
        Convolution.Conv2dRelu(ctx, x, weight, bias, stride, padding);

    /// <summary>Transposed convolution: weight [Cin, Cout, k, k] (PyTorch's layout).</summary>
    public static Tensor ConvTranspose2d(OpContext ctx, Tensor x, Tensor weight, Tensor? bias, int stride = 1, int padding = 0) =>
        Convolution.ConvTranspose2d(ctx, x, weight, bias, stride, padding);

    /// <summary>relu(conv_transpose2d(x)) as one op: the same values and gradients, the ReLU applied as the output is written.</summary>
    public static Tensor ConvTranspose2dRelu(OpContext ctx, Tensor x, Tensor weight, Tensor? bias, int stride = 1, int padding = 0) =>
        Convolution.ConvTranspose2dRelu(ctx, x, weight, bias, stride, padding);

    /// <summary>Stride-1 convolution with the weight multiplied by a constant causal mask ([kh, kw] or the weight's shape).</summary>
    public static Tensor MaskedConv2d(OpContext ctx, Tensor x, Tensor weight, Tensor? bias, Tensor mask, int padH, int padW) =>
        Convolution.MaskedConv2d(ctx, x, weight, bias, mask, padH, padW);

    /// <summary>x + bias over the channel axis (axis 1).</summary>
    public static Tensor ChannelBias(OpContext ctx, Tensor x, Tensor bias) => Convolution.ChannelBias(ctx, x, bias);

    /// <summary>tanh(a)·σ(b), a and b the two channel halves of x.</summary>
    public static Tensor GatedTanhSigmoid(OpContext ctx, Tensor x) => Gating.GatedTanhSigmoid(ctx, x);

    /// <summary>tanh(a + h_a)·σ(b + h_b), with a per-image conditioning vector h [N, 2C].</summary>
    public static Tensor GatedTanhSigmoid(OpContext ctx, Tensor x, Tensor condition) => Gating.GatedTanhSigmoid(ctx, x, condition);

    /// <summary>Rows of <paramref name="table"/> [V, D] at <paramref name="indices"/> (int32, any shape S): [S..., D].</summary>
    public static Tensor Embedding(OpContext ctx, Tensor table, Tensor indices) => Ops.Embedding.Lookup(ctx, table, indices);

    /// <summary>A code map's embedding, channel-first: codes [N, H, W] → [N, D, H, W].</summary>
    public static Tensor EmbeddingNchw(OpContext ctx, Tensor table, Tensor codes) => Ops.Embedding.LookupNchw(ctx, table, codes);

    /// <summary>Mean squared error, a scalar.</summary>
    public static Tensor MseLoss(OpContext ctx, Tensor prediction, Tensor target) => Losses.Mse(ctx, prediction, target);

    /// <summary>Mean softmax cross-entropy over the class axis of logits [N, K, H, W] or [N, K] against int32 targets.</summary>
    public static Tensor CrossEntropy(OpContext ctx, Tensor logits, Tensor targets) => Ops.CrossEntropy.SoftmaxCrossEntropy(ctx, logits, targets);

    /// <summary>Vector quantization of z_e [N, D, H, W] with <paramref name="codebook"/> [K, D] (straight-through backward).</summary>
    public static QuantizeResult Quantize(OpContext ctx, Tensor zE, Tensor codebook, float beta, bool useEma) =>
        Ops.VectorQuantizer.Quantize(ctx, zE, codebook, beta, useEma);

    /// <summary>The nearest code of every vector of z: [N, D, H, W] → int32 [N, H, W].</summary>
    public static Tensor NearestCodes(OpContext ctx, Tensor z, Tensor codebook) => Ops.VectorQuantizer.NearestCodes(ctx, z, codebook);

    /// <summary>Code vectors of a code map: int32 [N, H, W] → [N, D, H, W].</summary>
    public static Tensor CodebookLookup(OpContext ctx, Tensor codes, Tensor codebook) => Ops.VectorQuantizer.Lookup(ctx, codes, codebook);
}
