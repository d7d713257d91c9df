using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using VqVaeCuda.Checkpoints;
using VqVaeCuda.Device;
using VqVaeCuda.Models;
using VqVaeCuda.Optim;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Training;

/// <summary>What a prior was trained on: which VQ-VAE's codes, of which size, from which data.</summary>
/// <param name="VqVaeSha256">Lower-case hex SHA-256 of the VQ-VAE checkpoint file whose codes the prior models.</param>
/// <param name="LatentHeight">Rows of the code maps.</param>
/// <param name="LatentWidth">Columns of the code maps.</param>
/// <param name="Dataset">The data set the code maps came from.</param>
public sealed record PriorCheckpointInfo(string VqVaeSha256, int LatentHeight, int LatentWidth, string Dataset);

/// <summary>A prior's training state, enough to continue exactly.</summary>
/// <param name="Step">Optimizer steps done.</param>
/// <param name="AdamStep">Adam's step counter (bias correction).</param>
/// <param name="Options">The training options of the run.</param>
public sealed record PriorTrainingState(int Step, long AdamStep, PriorTrainingOptions Options);

/// <summary>A prior checkpoint that does not belong with the VQ-VAE it is used with; the message says how and what to do.</summary>
public sealed class CheckpointMismatchException(string message) : IOException(message);

/// <summary>
/// Gated PixelCNN prior checkpoints in safetensors (format <c>vqvaecuda-prior/1</c>): the prior's
/// <see cref="Modules.Module.StateDict"/> under its own names (<c>embedding.weight</c>, <c>layers.0.vertical.weight</c>, ...);
/// with training state, the optimizer's <see cref="Adam.StateDict"/> under <c>optimizer.</c>. Metadata: <c>format</c>,
/// <c>config</c> (the prior's config as JSON), <c>vqvae_sha256</c> (the VQ-VAE checkpoint whose codes it models),
/// <c>latent_height</c>, <c>latent_width</c>, <c>dataset</c>; with training state also <c>step</c>, <c>adam_step</c> and
/// <c>training</c> (the options as JSON). Written atomically.
/// </summary>
public static class PriorCheckpoint
{
    /// <summary>The format tag written in the metadata.</summary>
    public const string Format = "vqvaecuda-prior/1";

    private const string OptimizerPrefix = "optimizer.";

    /// <summary>Writes the prior (and, when given, the training state with <paramref name="optimizer"/>'s moments) atomically.</summary>
    public static void Save(string path, GatedPixelCnn prior, PriorCheckpointInfo info, PriorTrainingState? state = null, Adam? optimizer = null)
    {
        if (state is not null && optimizer is null) throw new ArgumentException("a checkpoint with training state needs the optimizer, whose moments it holds");
        var tensors = StateDictFiles.ToSafetensors(prior.StateDict()).ToList();
        var metadata = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["config"] = prior.Config.ToJson(),
            ["vqvae_sha256"] = info.VqVaeSha256,
            ["latent_height"] = Text(info.LatentHeight),
            ["latent_width"] = Text(info.LatentWidth),
            ["dataset"] = info.Dataset,
        };
        if (state is not null)
        {
            tensors.AddRange(StateDictFiles.ToSafetensors(optimizer!.StateDict(), OptimizerPrefix));
            metadata["step"] = Text(state.Step);
            metadata["adam_step"] = state.AdamStep.ToString(CultureInfo.InvariantCulture);
            metadata["training"] = JsonSerializer.Serialize(state.Options);
        }
        Safetensors.Write(path, tensors, metadata);
    }

    /// <summary>A prior rebuilt from a checkpoint; with training state, the optimizer's state (device tensors: load them into an <see cref="Adam"/>, then dispose).</summary>
    public sealed record Loaded(GatedPixelCnn Prior, PriorCheckpointInfo Info, PriorTrainingState? State, StateDict? OptimizerState);

    /// <summary>The header of a prior checkpoint, read without a device: its config, what it was trained on, its training state if any.</summary>
    public sealed record Header(GatedPixelCnnConfig Config, PriorCheckpointInfo Info, PriorTrainingState? State);

    /// <summary>Reads and checks the metadata of a prior checkpoint (no device needed).</summary>
    /// <exception cref="CheckpointFormatException">Missing, not safetensors, or not a prior checkpoint of this program (the format is named).</exception>
    public static Header ReadHeader(string path) => ParseHeader(path, Safetensors.Read(path).Metadata);

    /// <summary>Loads a prior checkpoint onto <paramref name="device"/>.</summary>
    /// <exception cref="CheckpointFormatException">Not a prior checkpoint, a bad config, or tensors that do not fit it (each named).</exception>
    public static Loaded Load(string path, IDevice device)
    {
        var (tensors, metadata) = Safetensors.Read(path);
        var header = ParseHeader(path, metadata);
        var prior = new GatedPixelCnn(device, header.Config);
        StateDict? optimizerState = null;
        try
        {
            StateDictFiles.LoadInto(prior, tensors.Values.Where(t => !t.Name.StartsWith(OptimizerPrefix, StringComparison.Ordinal)), path);
            if (header.State is not null) optimizerState = StateDictFiles.Upload(device, tensors.Values, path, OptimizerPrefix);
            return new Loaded(prior, header.Info, header.State, optimizerState);
        }
        catch
        {
            optimizerState?.Dispose();
            prior.Dispose();
            throw;
        }
    }

    /// <summary>Loads only the prior and what it was trained on (sampling): the training state, if any, is dropped.</summary>
    public static (GatedPixelCnn Prior, PriorCheckpointInfo Info) LoadModel(string path, IDevice device)
    {
        var loaded = Load(path, device);
        loaded.OptimizerState?.Dispose();
        return (loaded.Prior, loaded.Info);
    }

    /// <summary>Lower-case hex SHA-256 of a file's bytes: how a prior names the VQ-VAE checkpoint whose codes it models.</summary>
    public static string Sha256OfFile(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>
    /// Checks that a prior (its <paramref name="config"/> and <paramref name="info"/>) belongs with a VQ-VAE (its config and
    /// checkpoint hash). Another K or another code-map size always refuses: the prior's codes would mean nothing to this
    /// decoder. Another checkpoint hash (the same shapes, other weights: e.g. a later checkpoint of the same run) refuses
    /// unless <paramref name="force"/>, and then returns the warning to show.
    /// </summary>
    /// <param name="priorPath">The prior checkpoint, for messages.</param>
    /// <param name="config">The prior's config.</param>
    /// <param name="info">What the prior was trained on.</param>
    /// <param name="vqvaePath">The VQ-VAE checkpoint, for messages.</param>
    /// <param name="vqvae">The VQ-VAE's config.</param>
    /// <param name="vqvaeSha256">SHA-256 of the VQ-VAE checkpoint file (<see cref="Sha256OfFile"/>).</param>
    /// <param name="force">Accept another hash (with a warning) when K and the code-map size agree.</param>
    /// <param name="refusal">What the refusal of another hash says to do (by default: pass --force).</param>
    /// <exception cref="CheckpointMismatchException">They do not belong together; the message says how and whether --force helps.</exception>
    public static string? CheckMatches(string priorPath, GatedPixelCnnConfig config, PriorCheckpointInfo info, string vqvaePath, VqVaeConfig vqvae,
                                       string vqvaeSha256, bool force, string refusal = "refusing (pass --force to use them together anyway)")
    {
        if (config.CodebookSize != vqvae.CodebookSize)
            throw new CheckpointMismatchException(
                $"{priorPath}: the prior models K = {config.CodebookSize} codes, the VQ-VAE {vqvaePath} has K = {vqvae.CodebookSize}: they do not belong together");
        if (info.LatentHeight != vqvae.LatentSize || info.LatentWidth != vqvae.LatentSize)
            throw new CheckpointMismatchException(
                $"{priorPath}: the prior was trained on {info.LatentHeight}x{info.LatentWidth} code maps, the VQ-VAE {vqvaePath} makes " +
                $"{vqvae.LatentSize}x{vqvae.LatentSize}: they do not belong together");
        if (info.VqVaeSha256 == vqvaeSha256) return null;
        var difference = $"{priorPath}: the prior was trained on the codes of a VQ-VAE checkpoint with SHA-256 {info.VqVaeSha256}, " +
                         $"but {vqvaePath} has SHA-256 {vqvaeSha256}";
        if (!force) throw new CheckpointMismatchException($"{difference}; {refusal}");
        return difference + "; going ahead because of --force (the samples may decode to nonsense)";
    }

    private static Header ParseHeader(string path, IReadOnlyDictionary<string, string> metadata)
    {
        metadata.TryGetValue("format", out var format);
        if (format != Format)
            throw new CheckpointFormatException(path, $"not a prior checkpoint of this program (format '{format ?? "missing"}', expected '{Format}')");
        try
        {
            var config = GatedPixelCnnConfig.FromJson(metadata["config"]);
            var info = new PriorCheckpointInfo(metadata["vqvae_sha256"], int.Parse(metadata["latent_height"], CultureInfo.InvariantCulture),
                                               int.Parse(metadata["latent_width"], CultureInfo.InvariantCulture), metadata.GetValueOrDefault("dataset", ""));
            PriorTrainingState? state = null;
            if (metadata.TryGetValue("step", out var step))
                state = new PriorTrainingState(int.Parse(step, CultureInfo.InvariantCulture), long.Parse(metadata["adam_step"], CultureInfo.InvariantCulture),
                                               JsonSerializer.Deserialize<PriorTrainingOptions>(metadata["training"]) ?? throw new JsonException("empty training options"));
            return new Header(config, info, state);
        }
        catch (Exception e) when (e is ConfigException or JsonException or KeyNotFoundException or FormatException or OverflowException)
        {
            throw new CheckpointFormatException(path, $"bad prior metadata ({e.Message})");
        }
    }

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);
}
