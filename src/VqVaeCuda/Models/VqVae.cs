using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Modules;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Models;

/// <summary>What one forward pass of the VQ-VAE produced.</summary>
/// <param name="EncoderOutput">z_e [N, D, h, w].</param>
/// <param name="Quantized">The quantizer's result: z_q, the code map, the loss scalars, the code counts.</param>
/// <param name="Reconstruction">x̂ [N, C, H, W].</param>
/// <param name="ReconstructionLoss">‖x − x̂‖² (mean), the scalar the trainer backpropagates.</param>
public sealed record VqVaeOutput(Tensor EncoderOutput, QuantizeResult Quantized, Tensor Reconstruction, Tensor ReconstructionLoss);

/// <summary>
/// The VQ-VAE of van den Oord et al. (2017), with DeepMind's reference architecture:
/// <code>
///   encoder: conv 4×4/2 → H/2, ReLU, conv 4×4/2 → H, ReLU, conv 3×3 → H, residual stack, conv 1×1 → D
///   quantizer: K codes of dimension D (codebook loss, or EMA updates — the default)
///   decoder: conv 3×3 → H, residual stack, convᵀ 4×4/2 → H/2, ReLU, convᵀ 4×4/2 → C
/// </code>
/// Parameters are named by module path (<c>encoder.conv1.weight</c>, <c>quantizer.codebook</c>) in
/// PyTorch's layouts, so a checkpoint maps onto a PyTorch model of the same shape.
/// </summary>
public sealed class VqVae : IDisposable
{
    private readonly Conv2dLayer _encConv1, _encConv2, _encConv3, _preQuantize, _decConv1;
    private readonly ResidualStack _encResidual, _decResidual;
    private readonly ConvTranspose2dLayer _decDeconv1, _decDeconv2;

    /// <summary>Builds the model on <paramref name="device"/> with parameters initialised from <paramref name="seed"/>.</summary>
    /// <exception cref="ConfigException">A configuration value is out of range.</exception>
    public VqVae(IDevice device, VqVaeConfig config, int seed = 0)
    {
        Config = config.Validate();
        Device = device;
        Parameters = new ParameterStore(device);
        int c = config.InputChannels, h = config.Hidden, half = Math.Max(1, config.Hidden / 2);
        _encConv1 = new Conv2dLayer(Parameters, "encoder.conv1", c, half, 4, 2, 1);
        _encConv2 = new Conv2dLayer(Parameters, "encoder.conv2", half, h, 4, 2, 1);
        _encConv3 = new Conv2dLayer(Parameters, "encoder.conv3", h, h, 3, 1, 1);
        _encResidual = new ResidualStack(Parameters, "encoder.residual", h, config.ResidualHidden, config.ResidualLayers);
        _preQuantize = new Conv2dLayer(Parameters, "encoder.pre_quantize", h, config.EmbeddingDim, 1, 1, 0);
        // nn.Embedding-style start, small against encoder outputs, as in the common PyTorch ports.
        Codebook = Parameters.Declare("quantizer.codebook", new Shape(config.CodebookSize, config.EmbeddingDim),
                                      Initializer.Uniform(1f / config.CodebookSize));
        _decConv1 = new Conv2dLayer(Parameters, "decoder.conv1", config.EmbeddingDim, h, 3, 1, 1);
        _decResidual = new ResidualStack(Parameters, "decoder.residual", h, config.ResidualHidden, config.ResidualLayers);
        _decDeconv1 = new ConvTranspose2dLayer(Parameters, "decoder.deconv1", h, half, 4, 2, 1);
        _decDeconv2 = new ConvTranspose2dLayer(Parameters, "decoder.deconv2", half, c, 4, 2, 1);
        Parameters.Allocate(seed);
        if (config.UseEma) Ema = new EmaCodebook(Codebook.Value, config.EmaDecay, config.EmaEpsilon);
    }

    /// <summary>The configuration.</summary>
    public VqVaeConfig Config { get; }

    /// <summary>The device.</summary>
    public IDevice Device { get; }

    /// <summary>Every parameter (and its gradient and Adam moments).</summary>
    public ParameterStore Parameters { get; }

    /// <summary>E [K, D].</summary>
    public Parameter Codebook { get; }

    /// <summary>The EMA state when <see cref="VqVaeConfig.UseEma"/>; null otherwise.</summary>
    public EmaCodebook? Ema { get; }

    /// <summary>z_e = encoder(x): [N, C, S, S] → [N, D, S/4, S/4].</summary>
    public Tensor Encode(OpContext ctx, Tensor x)
    {
        CheckInput(x);
        var h = Activations.Relu(ctx, _encConv1.Forward(ctx, x));
        h = Activations.Relu(ctx, _encConv2.Forward(ctx, h));
        h = _encConv3.Forward(ctx, h);
        h = _encResidual.Forward(ctx, h);
        return _preQuantize.Forward(ctx, h);
    }

    /// <summary>The quantizer on z_e (straight-through gradient to z_e; codebook gradient unless EMA).</summary>
    public QuantizeResult Quantize(OpContext ctx, Tensor encoderOutput) =>
        VectorQuantizer.Quantize(ctx, encoderOutput, Codebook.Value, Config.Beta, Config.UseEma);

    /// <summary>x̂ = decoder(z_q): [N, D, S/4, S/4] → [N, C, S, S].</summary>
    public Tensor Decode(OpContext ctx, Tensor quantized)
    {
        var h = _decConv1.Forward(ctx, quantized);
        h = _decResidual.Forward(ctx, h);
        h = Activations.Relu(ctx, _decDeconv1.Forward(ctx, h));
        return _decDeconv2.Forward(ctx, h);
    }

    /// <summary>Decodes code maps [N, h, w] (int32) into images.</summary>
    public Tensor DecodeCodes(OpContext ctx, Tensor codes)
    {
        OpChecks.Require(codes.Shape.Rank == 3 && codes.Shape[1] == Config.LatentSize && codes.Shape[2] == Config.LatentSize, "decode codes",
                         $"code maps must be [N, {Config.LatentSize}, {Config.LatentSize}] for this model, got {codes.Describe()}");
        return Decode(ctx, VectorQuantizer.Lookup(ctx, codes, Codebook.Value));
    }

    /// <summary>Encoder, quantizer, decoder, and the reconstruction loss against <paramref name="x"/>.</summary>
    public VqVaeOutput Forward(OpContext ctx, Tensor x)
    {
        var zE = Encode(ctx, x);
        var q = Quantize(ctx, zE);
        var reconstruction = Decode(ctx, q.Quantized);
        var loss = Losses.Mse(ctx, reconstruction, x);
        return new VqVaeOutput(zE, q, reconstruction, loss);
    }

    private void CheckInput(Tensor x)
    {
        var expected = $"[N,{Config.InputChannels},{Config.ImageSize},{Config.ImageSize}]";
        OpChecks.Require(x.Shape.Rank == 4 && x.Shape[1] == Config.InputChannels && x.Shape[2] == Config.ImageSize && x.Shape[3] == Config.ImageSize,
                         "vq-vae", $"input {x.Describe()} does not fit this model, which takes {expected}");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Ema?.Dispose();
        Parameters.Dispose();
    }
}
