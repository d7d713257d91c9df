using System.Globalization;
using VqVaeCuda.Checkpoints;
using VqVaeCuda.Device;
using VqVaeCuda.Models;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Training;

/// <summary>Training state stored beside the weights, enough to continue exactly.</summary>
/// <param name="Step">Optimizer steps done.</param>
/// <param name="AdamStep">Adam's step counter (bias correction).</param>
/// <param name="Options">The training options of the run.</param>
/// <param name="Dataset">Name of the training data.</param>
public sealed record TrainingStateInfo(int Step, long AdamStep, TrainingOptions Options, string Dataset);

/// <summary>
/// VQ-VAE checkpoints in safetensors (DESIGN.md, "Files users touch"): one tensor per parameter under its
/// module path in PyTorch's layout; the EMA state, Adam's moments and the per-code last-use steps
/// under <c>quantizer.ema.*</c>, <c>optimizer.*</c>, <c>trainer.*</c>; the model config and training
/// state as JSON in <c>__metadata__</c>.
/// </summary>
public static class VqVaeCheckpoint
{
    /// <summary>The format tag in the metadata.</summary>
    public const string Format = "vqvaecuda-vqvae/1";

    private const string EmaClusterSizes = "quantizer.ema.cluster_sizes";
    private const string EmaEmbeddingSums = "quantizer.ema.embedding_sums";
    private const string AdamFirstMoments = "optimizer.exp_avg";
    private const string AdamSecondMoments = "optimizer.exp_avg_sq";
    private const string CodeLastUsed = "trainer.code_last_used";

    /// <summary>Writes the model (and, when given, the training state) to <paramref name="path"/>, atomically.</summary>
    public static void Save(string path, VqVae model, TrainingStateInfo? state = null, int[]? codeLastUsed = null)
    {
        var tensors = new List<SafetensorsTensor>();
        foreach (var p in model.Parameters.Parameters)
            tensors.Add(SafetensorsTensor.FromFloats(p.Name, Dims(p.Shape), p.Value.ToArray()));
        if (model.Ema is { } ema)
        {
            tensors.Add(SafetensorsTensor.FromFloats(EmaClusterSizes, Dims(ema.ClusterSizes.Shape), ema.ClusterSizes.ToArray()));
            tensors.Add(SafetensorsTensor.FromFloats(EmaEmbeddingSums, Dims(ema.EmbeddingSums.Shape), ema.EmbeddingSums.ToArray()));
        }
        var metadata = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["config"] = model.Config.ToJson(),
        };
        if (state is not null)
        {
            tensors.Add(SafetensorsTensor.FromFloats(AdamFirstMoments, [model.Parameters.Count], model.Parameters.FlatFirstMoments.ToArray()));
            tensors.Add(SafetensorsTensor.FromFloats(AdamSecondMoments, [model.Parameters.Count], model.Parameters.FlatSecondMoments.ToArray()));
            if (codeLastUsed is not null) tensors.Add(SafetensorsTensor.FromInts(CodeLastUsed, [codeLastUsed.Length], codeLastUsed));
            metadata["step"] = state.Step.ToString(CultureInfo.InvariantCulture);
            metadata["adam_step"] = state.AdamStep.ToString(CultureInfo.InvariantCulture);
            metadata["training"] = System.Text.Json.JsonSerializer.Serialize(state.Options);
            metadata["dataset"] = state.Dataset;
        }
        Safetensors.Write(path, tensors, metadata);
    }

    /// <summary>A model rebuilt from a checkpoint, with its training state when the checkpoint has one.</summary>
    public sealed record Loaded(VqVae Model, TrainingStateInfo? State, int[]? CodeLastUsed);

    /// <summary>Loads a checkpoint onto <paramref name="device"/>.</summary>
    /// <exception cref="CheckpointFormatException">Not a VQ-VAE checkpoint, or a tensor missing or of the wrong shape (named).</exception>
    public static Loaded Load(string path, IDevice device)
    {
        var (tensors, metadata) = Safetensors.Read(path);
        if (!metadata.TryGetValue("format", out var format) || format != Format)
            throw new CheckpointFormatException($"{path}: not a VQ-VAE checkpoint of this program (format '{format ?? "missing"}', expected '{Format}')");
        VqVaeConfig config;
        try
        {
            config = VqVaeConfig.FromJson(metadata["config"]);
        }
        catch (Exception e) when (e is ConfigException or System.Text.Json.JsonException or KeyNotFoundException)
        {
            throw new CheckpointFormatException($"{path}: bad model config in the metadata ({e.Message})");
        }
        var model = new VqVae(device, config);
        try
        {
            foreach (var p in model.Parameters.Parameters) p.Value.CopyFrom(Take(path, tensors, p.Name, p.Shape));
            if (model.Ema is { } ema)
            {
                ema.ClusterSizes.CopyFrom(Take(path, tensors, EmaClusterSizes, ema.ClusterSizes.Shape));
                ema.EmbeddingSums.CopyFrom(Take(path, tensors, EmaEmbeddingSums, ema.EmbeddingSums.Shape));
            }
            if (!metadata.TryGetValue("step", out var stepText)) return new Loaded(model, null, null);
            model.Parameters.FlatFirstMoments.CopyFrom(Take(path, tensors, AdamFirstMoments, new Shape((int)model.Parameters.Count)));
            model.Parameters.FlatSecondMoments.CopyFrom(Take(path, tensors, AdamSecondMoments, new Shape((int)model.Parameters.Count)));
            var options = System.Text.Json.JsonSerializer.Deserialize<TrainingOptions>(metadata["training"])!;
            var state = new TrainingStateInfo(int.Parse(stepText, CultureInfo.InvariantCulture),
                                              long.Parse(metadata["adam_step"], CultureInfo.InvariantCulture), options,
                                              metadata.GetValueOrDefault("dataset", ""));
            int[]? lastUsed = tensors.TryGetValue(CodeLastUsed, out var t) ? t.ToInts() : null;
            return new Loaded(model, state, lastUsed);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static float[] Take(string path, IReadOnlyDictionary<string, SafetensorsTensor> tensors, string name, Shape shape)
    {
        if (!tensors.TryGetValue(name, out var t))
            throw new CheckpointFormatException($"{path}: tensor '{name}' is missing (the model's config expects it with shape {shape})");
        if (!t.Shape.SequenceEqual(Dims(shape)))
            throw new CheckpointFormatException($"{path}: tensor '{name}' has shape [{string.Join(",", t.Shape)}] but the model's config expects {shape}");
        return t.ToFloats();
    }

    private static long[] Dims(Shape s) => s.Dims.ToArray().Select(d => (long)d).ToArray();
}
