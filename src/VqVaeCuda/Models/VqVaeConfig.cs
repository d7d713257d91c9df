using System.Text.Json;
using System.Text.Json.Serialization;

namespace VqVaeCuda.Models;

/// <summary>A configuration value out of range; names the value and the accepted range.</summary>
public sealed class ConfigException(string message) : ArgumentException(message);

/// <summary>
/// Everything that defines a VQ-VAE's shape and quantizer, as in the paper and DeepMind's reference:
/// encoder = two 4×4 stride-2 convolutions with ReLU, a 3×3 convolution, a residual stack, a 1×1
/// convolution to D; quantizer with K codes of dimension D; decoder = 3×3 convolution, residual
/// stack, two 4×4 stride-2 transposed convolutions. Saved in every checkpoint's metadata.
/// </summary>
public sealed record VqVaeConfig
{
    /// <summary>Image channels (1 grey, 3 RGB).</summary>
    public int InputChannels { get; init; } = 1;

    /// <summary>Image side in pixels (square images); must be divisible by 4 (two stride-2 halvings).</summary>
    public int ImageSize { get; init; } = 28;

    /// <summary>Hidden channels of the convolutions.</summary>
    public int Hidden { get; init; } = 128;

    /// <summary>Channels inside each residual block (the 3×3 conv's output).</summary>
    public int ResidualHidden { get; init; } = 32;

    /// <summary>Residual blocks in each stack.</summary>
    public int ResidualLayers { get; init; } = 2;

    /// <summary>K: codebook size.</summary>
    public int CodebookSize { get; init; } = 512;

    /// <summary>D: code vector dimension.</summary>
    public int EmbeddingDim { get; init; } = 64;

    /// <summary>β: commitment loss weight (0.25 in the paper).</summary>
    public float Beta { get; init; } = 0.25f;

    /// <summary>Codebook updated by exponential moving averages (the default) instead of the codebook loss.</summary>
    public bool UseEma { get; init; } = true;

    /// <summary>γ: EMA decay (0.99 in the paper).</summary>
    public float EmaDecay { get; init; } = 0.99f;

    /// <summary>ε: Laplace smoothing of the EMA counts.</summary>
    public float EmaEpsilon { get; init; } = 1e-5f;

    /// <summary>The named presets.</summary>
    [JsonIgnore]
    public static IReadOnlyDictionary<string, VqVaeConfig> Presets { get; } = new Dictionary<string, VqVaeConfig>
    {
        // Small enough for tests and for `vqvae train` to finish in seconds on two CPU cores (6–7 s, README).
        ["tiny"] = new() { InputChannels = 1, ImageSize = 28, Hidden = 32, ResidualHidden = 8, ResidualLayers = 1, CodebookSize = 64, EmbeddingDim = 16 },
        // The pipeline's demo on the built-in shapes: twice the residual width and depth of tiny and K = 128, which
        // took the test PSNR from 20.6 dB (tiny, 600 steps at 2e-4) to ~26 dB at 1500 steps of 2e-3 in the same minute or two.
        ["shapes"] = new() { InputChannels = 1, ImageSize = 28, Hidden = 32, ResidualHidden = 16, ResidualLayers = 2, CodebookSize = 128, EmbeddingDim = 16 },
        ["fashion-mnist"] = new() { InputChannels = 1, ImageSize = 28, Hidden = 128, ResidualHidden = 32, ResidualLayers = 2, CodebookSize = 512, EmbeddingDim = 64 },
        // The paper's CIFAR-10 model: 256 hidden units, K = 512.
        ["cifar10"] = new() { InputChannels = 3, ImageSize = 32, Hidden = 256, ResidualHidden = 256, ResidualLayers = 2, CodebookSize = 512, EmbeddingDim = 64 },
    };

    /// <summary>The preset called <paramref name="name"/>.</summary>
    public static VqVaeConfig Preset(string name) =>
        Presets.TryGetValue(name, out var c) ? c : throw new ConfigException($"unknown preset '{name}'; presets: {string.Join(", ", Presets.Keys)}");

    /// <summary>Side of the latent code map (ImageSize / 4).</summary>
    [JsonIgnore]
    public int LatentSize => ImageSize / 4;

    /// <summary>Throws <see cref="ConfigException"/> naming the first value out of range.</summary>
    public VqVaeConfig Validate()
    {
        static void Need(bool ok, string message)
        {
            if (!ok) throw new ConfigException(message);
        }
        Need(InputChannels is 1 or 3, $"input channels = {InputChannels}: must be 1 or 3");
        Need(ImageSize >= 4 && ImageSize % 4 == 0, $"image size = {ImageSize}: the encoder halves it twice, so it must be a positive multiple of 4");
        Need(Hidden >= 1, $"hidden = {Hidden}: must be at least 1");
        Need(ResidualHidden >= 1, $"residual hidden = {ResidualHidden}: must be at least 1");
        Need(ResidualLayers >= 0, $"residual layers = {ResidualLayers}: must be at least 0");
        Need(CodebookSize >= 2, $"K (codebook size) = {CodebookSize}: must be at least 2");
        Need(EmbeddingDim >= 1, $"D (embedding dim) = {EmbeddingDim}: must be at least 1");
        Need(Beta >= 0 && float.IsFinite(Beta), $"beta = {Beta}: must be a finite number >= 0");
        Need(EmaDecay is > 0 and < 1, $"EMA decay = {EmaDecay}: must be in (0, 1)");
        Need(EmaEpsilon > 0, $"EMA epsilon = {EmaEpsilon}: must be > 0");
        return this;
    }

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>JSON for the checkpoint metadata.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Parses <see cref="ToJson"/>'s output.</summary>
    public static VqVaeConfig FromJson(string json) =>
        (JsonSerializer.Deserialize<VqVaeConfig>(json, Json) ?? throw new ConfigException("empty model config")).Validate();
}
