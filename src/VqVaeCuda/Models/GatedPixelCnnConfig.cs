using System.Text.Json;
using System.Text.Json.Serialization;

namespace VqVaeCuda.Models;

/// <summary>
/// The shape of a Gated PixelCNN prior over code maps (van den Oord et al. 2016): K codes in, a code
/// embedding of <see cref="Width"/> channels, <see cref="Layers"/> gated layers (the first with mask A and a
/// <see cref="FirstKernel"/>-sized kernel, the rest mask B with <see cref="Kernel"/>), an output head
/// 1×1 → ReLU → 1×1 to K logits, optional class conditioning. Saved in every prior checkpoint.
/// Nothing here fixes the code map's size: one prior runs on 7×7, 8×8, 32×32 or non-square maps.
/// </summary>
public sealed record GatedPixelCnnConfig
{
    /// <summary>K: number of codes (the VQ-VAE's codebook size).</summary>
    public int CodebookSize { get; init; } = 512;

    /// <summary>Channels of the embedding and of both stacks.</summary>
    public int Width { get; init; } = 64;

    /// <summary>Gated layers in all, the first (mask A) included.</summary>
    public int Layers { get; init; } = 15;

    /// <summary>Kernel size of the first (mask A) layer; odd.</summary>
    public int FirstKernel { get; init; } = 7;

    /// <summary>Kernel size of the later (mask B) layers; odd.</summary>
    public int Kernel { get; init; } = 3;

    /// <summary>Channels of the output head's hidden 1×1 layer.</summary>
    public int HeadHidden { get; init; } = 512;

    /// <summary>Number of classes for class conditioning; 0 = unconditional.</summary>
    public int Classes { get; init; }

    /// <summary>True when the prior takes a class label per sample.</summary>
    [JsonIgnore]
    public bool IsClassConditional => Classes > 0;

    /// <summary>The named presets (architecture only: <see cref="CodebookSize"/> and <see cref="Classes"/> come from the VQ-VAE and the data).</summary>
    [JsonIgnore]
    public static IReadOnlyDictionary<string, GatedPixelCnnConfig> Presets { get; } = new Dictionary<string, GatedPixelCnnConfig>
    {
        // Small enough for tests and the default pipeline on two CPU cores; 5 layers cover a 7×7 map.
        ["tiny"] = new() { Width = 32, Layers = 5, FirstKernel = 7, Kernel = 3, HeadHidden = 128 },
        // The pipeline's: tiny with a 5×5 first layer, the smallest with which 5 layers still see a whole 7×7 map (2 rows
        // and columns from the first layer, 1 from each after). On the shapes' code maps it learns faster as well as
        // being cheaper: on the varied shapes, 3500 cosine steps reach a test NLL of 2.22 nats in 113 s where the 7×7
        // first layer reaches 2.28 in 127 s, and 7 layers 2.23 in 129 s at 3000 steps (two CPU cores, 2026-12-01).
        ["shapes"] = new() { Width = 32, Layers = 5, FirstKernel = 5, Kernel = 3, HeadHidden = 128 },
        // The common PyTorch VQ-VAE prior: 15 layers of 64 channels, 7×7 first, 3×3 after, a 512-wide head.
        ["fashion-mnist"] = new() { Width = 64, Layers = 15, FirstKernel = 7, Kernel = 3, HeadHidden = 512 },
        ["cifar10"] = new() { Width = 128, Layers = 20, FirstKernel = 7, Kernel = 3, HeadHidden = 1024 },
    };

    /// <summary>The preset called <paramref name="name"/>.</summary>
    public static GatedPixelCnnConfig Preset(string name) =>
        Presets.TryGetValue(name, out var c) ? c : throw new ConfigException($"unknown prior preset '{name}'; presets: {string.Join(", ", Presets.Keys)}");

    /// <summary>
    /// Rows and columns above and left of a position that its logits can see: the first layer reaches
    /// FirstKernel/2, each later layer Kernel/2 more.
    /// </summary>
    [JsonIgnore]
    public int ReceptiveReach => FirstKernel / 2 + (Layers - 1) * (Kernel / 2);

    /// <summary>Throws <see cref="ConfigException"/> naming the first value out of range.</summary>
    public GatedPixelCnnConfig Validate()
    {
        static void Need(bool ok, string message)
        {
            if (!ok) throw new ConfigException(message);
        }
        Need(CodebookSize >= 2, $"K (codebook size) = {CodebookSize}: must be at least 2");
        Need(Width >= 1, $"width = {Width}: must be at least 1");
        Need(Layers >= 1, $"layers = {Layers}: must be at least 1");
        Need(FirstKernel >= 1 && FirstKernel % 2 == 1, $"first kernel = {FirstKernel}: must be odd (the centre is a tap)");
        Need(Kernel >= 1 && Kernel % 2 == 1, $"kernel = {Kernel}: must be odd (the centre is a tap)");
        Need(HeadHidden >= 1, $"head hidden = {HeadHidden}: must be at least 1");
        Need(Classes >= 0, $"classes = {Classes}: must be 0 (unconditional) or more");
        return this;
    }

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>JSON for the checkpoint metadata.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Parses <see cref="ToJson"/>'s output.</summary>
    public static GatedPixelCnnConfig FromJson(string json) =>
        (JsonSerializer.Deserialize<GatedPixelCnnConfig>(json, Json) ?? throw new ConfigException("empty prior config")).Validate();
}
