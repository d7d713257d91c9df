using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Modules;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;
using VectorQuantizer = VqVaeCuda.Modules.VectorQuantizer;

namespace VqVaeCuda.Models;

/// <summary>What one forward pass of the VQ-VAE produced.</summary>
/// <param name="EncoderOutput">z_e [N, D, h, w].</param>
/// <param name="Quantized">The quantizer's result: z_q, the code map, the codebook and commitment losses (values), the code counts.</param>
/// <param name="Reconstruction">x̂ [N, C, H, W].</param>
public sealed record VqVaeOutput(Tensor EncoderOutput, QuantizeResult Quantized, Tensor Reconstruction);

/// <summary>
/// The VQ-VAE's encoder (DeepMind's reference): conv 4×4/2 → H/2, ReLU, conv 4×4/2 → H, ReLU, conv 3×3 → H,
/// residual stack, conv 1×1 → D. Children <c>conv1</c>, <c>conv2</c>, <c>conv3</c>, <c>residual</c>, <c>pre_quantize</c>.
/// </summary>
public sealed class VqVaeEncoder : Module
{
    private readonly Conv2d _conv1, _conv2, _conv3, _preQuantize;
    private readonly ResidualStack _residual;

    /// <summary>The encoder of <paramref name="config"/>.</summary>
    public VqVaeEncoder(VqVaeConfig config)
    {
        int h = config.Hidden, half = Math.Max(1, config.Hidden / 2);
        _conv1 = RegisterModule("conv1", new Conv2d(config.InputChannels, half, 4, 2, 1));
        _conv2 = RegisterModule("conv2", new Conv2d(half, h, 4, 2, 1));
        _conv3 = RegisterModule("conv3", new Conv2d(h, h, 3, 1, 1));
        _residual = RegisterModule("residual", new ResidualStack(h, config.ResidualHidden, config.ResidualLayers));
        _preQuantize = RegisterModule("pre_quantize", new Conv2d(h, config.EmbeddingDim, 1, 1, 0));
    }

    /// <summary>z_e = encoder(x): [N, C, S, S] → [N, D, S/4, S/4].</summary>
    public Tensor Forward(OpContext ctx, Tensor x)
    {
        // Each ReLU fused into its convolution's output pass (Conv2d.ForwardRelu): the same values, one pass fewer.
        var h = _conv1.ForwardRelu(ctx, x);
        h = _conv2.ForwardRelu(ctx, h);
        h = _conv3.Forward(ctx, h);
        h = _residual.Forward(ctx, h);
        return _preQuantize.Forward(ctx, h);
    }
}

/// <summary>
/// The VQ-VAE's decoder: conv 3×3 → H, residual stack, convᵀ 4×4/2 → H/2, ReLU, convᵀ 4×4/2 → C.
/// Children <c>conv1</c>, <c>residual</c>, <c>deconv1</c>, <c>deconv2</c>.
/// </summary>
public sealed class VqVaeDecoder : Module
{
    private readonly Conv2d _conv1;
    private readonly ResidualStack _residual;
    private readonly ConvTranspose2d _deconv1, _deconv2;

    /// <summary>The decoder of <paramref name="config"/>.</summary>
    public VqVaeDecoder(VqVaeConfig config)
    {
        int h = config.Hidden, half = Math.Max(1, config.Hidden / 2);
        _conv1 = RegisterModule("conv1", new Conv2d(config.EmbeddingDim, h, 3, 1, 1));
        _residual = RegisterModule("residual", new ResidualStack(h, config.ResidualHidden, config.ResidualLayers));
        _deconv1 = RegisterModule("deconv1", new ConvTranspose2d(h, half, 4, 2, 1));
        _deconv2 = RegisterModule("deconv2", new ConvTranspose2d(half, config.InputChannels, 4, 2, 1));
    }

    /// <summary>x̂ = decoder(z_q): [N, D, S/4, S/4] → [N, C, S, S].</summary>
    public Tensor Forward(OpContext ctx, Tensor zq)
    {
        var h = _conv1.Forward(ctx, zq);
        h = _residual.Forward(ctx, h);
        h = _deconv1.ForwardRelu(ctx, h);
        return _deconv2.Forward(ctx, h);
    }
}

/// <summary>
/// The VQ-VAE of van den Oord et al. (2017), with DeepMind's reference architecture, as a tree of modules:
/// <c>encoder</c> (<see cref="VqVaeEncoder"/>), <c>quantizer</c> (<see cref="VectorQuantizer"/>: K codes of
/// dimension D, EMA updates by default), <c>decoder</c> (<see cref="VqVaeDecoder"/>). Parameter names are
/// module paths (<c>encoder.conv1.weight</c>, <c>quantizer.codebook</c>) in PyTorch's layouts, so a
/// checkpoint maps onto a PyTorch model of the same shape.
/// <para>
/// <see cref="Forward"/> computes z_e, the quantizer's result and x̂; the training loss is the caller's
/// (<see cref="ReconstructionLoss"/>): backpropagate it, and the quantizer's backward adds the codebook and
/// commitment gradients itself. Encode/decode methods name what they take and return: z_e, z_q or code maps.
/// </para>
/// </summary>
public sealed class VqVae : Module
{
    /// <summary>Builds the model and allocates it on <paramref name="device"/> with parameters initialised from <paramref name="seed"/>.</summary>
    /// <exception cref="ConfigException">A configuration value is out of range.</exception>
    public VqVae(IDevice device, VqVaeConfig config, int seed = 0)
    {
        Config = config.Validate();
        Encoder = RegisterModule("encoder", new VqVaeEncoder(config));
        Quantizer = RegisterModule("quantizer", new VectorQuantizer(config.CodebookSize, config.EmbeddingDim, config.Beta, config.UseEma,
                                                                    config.EmaDecay, config.EmaEpsilon));
        Decoder = RegisterModule("decoder", new VqVaeDecoder(config));
        Allocate(device, seed);
    }

    /// <summary>The configuration.</summary>
    public VqVaeConfig Config { get; }

    /// <summary>x → z_e.</summary>
    public VqVaeEncoder Encoder { get; }

    /// <summary>z_e → z_q and the code map; owns the codebook and its EMA state.</summary>
    public VectorQuantizer Quantizer { get; }

    /// <summary>z_q → x̂.</summary>
    public VqVaeDecoder Decoder { get; }

    /// <summary>Encoder, quantizer, decoder: z_e, the quantizer's result and x̂ of images x [N, C, S, S]. No loss, no state change.</summary>
    public VqVaeOutput Forward(OpContext ctx, Tensor x)
    {
        var zE = EncodeToZe(ctx, x);
        var q = Quantizer.Forward(ctx, zE);
        return new VqVaeOutput(zE, q, Decoder.Forward(ctx, q.Quantized));
    }

    /// <summary>
    /// The training loss to backpropagate: ‖x − x̂‖² (mean). The quantizer's codebook and commitment terms are
    /// not added here: z_q's backward applies their gradients (see <see cref="Ops.VectorQuantizer"/>), and
    /// their values are in <see cref="QuantizeResult"/>.
    /// </summary>
    public static Tensor ReconstructionLoss(OpContext ctx, Tensor x, VqVaeOutput output) => Losses.Mse(ctx, output.Reconstruction, x);

    /// <summary>z_e = encoder(x): [N, C, S, S] → [N, D, S/4, S/4].</summary>
    public Tensor EncodeToZe(OpContext ctx, Tensor x)
    {
        CheckInput(x);
        return Encoder.Forward(ctx, x);
    }

    /// <summary>The code maps of images x [N, C, S, S]: int32 [N, S/4, S/4]. No gradient.</summary>
    public Tensor EncodeToCodes(OpContext ctx, Tensor x) => Quantizer.NearestCodes(ctx, EncodeToZe(ctx, x));

    /// <summary>x̂ = decoder(z_q): [N, D, S/4, S/4] → [N, C, S, S].</summary>
    public Tensor DecodeFromZq(OpContext ctx, Tensor zq) => Decoder.Forward(ctx, zq);

    /// <summary>Images [N, C, S, S] decoded from code maps int32 [N, S/4, S/4].</summary>
    public Tensor DecodeFromCodes(OpContext ctx, Tensor codes)
    {
        OpChecks.Require(codes.Shape.Rank == 3 && codes.Shape[1] == Config.LatentSize && codes.Shape[2] == Config.LatentSize, "decode codes",
                         $"code maps must be [N, {Config.LatentSize}, {Config.LatentSize}] for this model, got {codes.Describe()}");
        return Decoder.Forward(ctx, Quantizer.Lookup(ctx, codes));
    }

    private void CheckInput(Tensor x)
    {
        var expected = $"[N,{Config.InputChannels},{Config.ImageSize},{Config.ImageSize}]";
        OpChecks.Require(x.Shape.Rank == 4 && x.Shape[1] == Config.InputChannels && x.Shape[2] == Config.ImageSize && x.Shape[3] == Config.ImageSize,
                         "vq-vae", $"input {x.Describe()} does not fit this model, which takes {expected}");
    }
}
