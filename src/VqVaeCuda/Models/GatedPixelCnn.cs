using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Modules;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;
using Embedding = VqVaeCuda.Modules.Embedding;

namespace VqVaeCuda.Models;

/// <summary>
/// The Gated PixelCNN prior over VQ-VAE code maps (van den Oord et al. 2016, <i>Conditional Image Generation
/// with PixelCNN Decoders</i>), as the VQ-VAE paper fits it: p(k) = Π_q p(k_q | k_&lt;q) in raster order.
/// <code>
///   embedding   codes [N, H, W] → [N, C, H, W]
///   layers.0    gated layer, mask A, FirstKernel (v = h = the embedding)
///   layers.i    gated layers, mask B, Kernel, residual on the horizontal stack
///   output      1×1 → HeadHidden, ReLU, 1×1 → K logits, on the last horizontal stack
/// </code>
/// With classes, every gate adds its layer's learned per-class bias. The logits at position q depend only on
/// codes before q in raster order (tests prove it), and with enough layers on all of them (no blind spot).
/// </summary>
public sealed class GatedPixelCnn : Module
{
    private readonly GatedLayer[] _layers;

    /// <summary>Builds the prior and allocates it on <paramref name="device"/> with parameters initialised from <paramref name="seed"/>.</summary>
    /// <exception cref="ConfigException">A configuration value is out of range.</exception>
    public GatedPixelCnn(IDevice device, GatedPixelCnnConfig config, int seed = 0)
    {
        Config = config.Validate();
        int c = config.Width;
        EmbeddingLayer = RegisterModule("embedding", new Embedding(config.CodebookSize, c));
        var layers = RegisterModule("layers", new ModuleList());
        _layers = new GatedLayer[config.Layers];
        for (int i = 0; i < config.Layers; i++)
            _layers[i] = layers.Add(new GatedLayer(c, c, i == 0 ? config.FirstKernel : config.Kernel, i == 0 ? MaskType.A : MaskType.B,
                                                   residual: i > 0, config.Classes));
        OutputHidden = RegisterModule("output_hidden", new Conv2d(c, config.HeadHidden, 1));
        Output = RegisterModule("output", new Conv2d(config.HeadHidden, config.CodebookSize, 1));
        Allocate(device, seed);
    }

    /// <summary>The configuration.</summary>
    public GatedPixelCnnConfig Config { get; }

    /// <summary>The code embedding, [K, C].</summary>
    public Embedding EmbeddingLayer { get; }

    /// <summary>The gated layers in order.</summary>
    public IReadOnlyList<GatedLayer> Layers => _layers;

    /// <summary>The head's hidden 1×1 convolution.</summary>
    public Conv2d OutputHidden { get; }

    /// <summary>The head's 1×1 convolution to K logits.</summary>
    public Conv2d Output { get; }

    /// <summary>
    /// Logits [N, K, H, W] of each position's code given the codes before it: <paramref name="codes"/> int32
    /// [N, H, W] (any H, W); <paramref name="labels"/> int32 [N] exactly when the prior is class-conditional.
    /// </summary>
    public Tensor Forward(OpContext ctx, Tensor codes, Tensor? labels = null)
    {
        CheckInputs(codes, labels);
        var x = EmbeddingLayer.ForwardNchw(ctx, codes);
        Tensor? v = x;
        Tensor h = x;
        for (int i = 0; i < _layers.Length; i++) (v, h) = _layers[i].Forward(ctx, v!, h, labels, verticalOutput: i + 1 < _layers.Length);
        return Head(ctx, h);
    }

    /// <summary>The output head on a horizontal-stack feature map: 1×1, ReLU, 1×1 → logits.</summary>
    public Tensor Head(OpContext ctx, Tensor horizontal) => Output.Forward(ctx, OutputHidden.ForwardRelu(ctx, horizontal));

    /// <summary>The training loss: mean negative log-likelihood of <paramref name="codes"/> under <paramref name="logits"/>, in nats per position.</summary>
    public static Tensor Loss(OpContext ctx, Tensor logits, Tensor codes) => CrossEntropy.SoftmaxCrossEntropy(ctx, logits, codes);

    private void CheckInputs(Tensor codes, Tensor? labels)
    {
        OpChecks.Require(codes.Shape.Rank == 3 && codes.DType == DType.Int32, "gated pixelcnn", $"codes must be int32 [N, H, W], got {codes.Describe()}");
        if (Config.IsClassConditional)
            OpChecks.Require(labels is not null && labels.Shape == new Shape(codes.Shape[0]) && labels.DType == DType.Int32, "gated pixelcnn",
                             $"this prior is class-conditional ({Config.Classes} classes): labels must be int32 [{codes.Shape[0]}], got {labels?.Describe() ?? "none"}");
        else
            OpChecks.Require(labels is null, "gated pixelcnn", "this prior is unconditional: it takes no labels");
    }
}
