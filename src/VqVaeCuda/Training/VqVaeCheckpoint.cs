using System.Globalization;
using VqVaeCuda.Checkpoints;
using VqVaeCuda.Device;
using VqVaeCuda.Models;
using VqVaeCuda.Modules;
using VqVaeCuda.Optim;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Training;

/// <summary>Training state stored beside the weights, enough to continue exactly.</summary>
/// <param name="Step">Optimizer steps done.</param>
/// <param name="AdamStep">Adam's step counter (bias correction).</param>
/// <param name="Options">The training options of the run.</param>
/// <param name="Dataset">Name of the training data.</param>
public sealed record TrainingStateInfo(int Step, long AdamStep, TrainingOptions Options, string Dataset);

/// <summary>
/// VQ-VAE checkpoints in safetensors (DESIGN.md, "Files users touch"). Format 2 (written): the model's
/// <see cref="Module.StateDict"/> under its own names (<c>encoder.conv1.weight</c>, <c>quantizer.codebook</c>,
/// <c>quantizer.ema.cluster_sizes</c>, ...) in PyTorch's layouts; with training state, the optimizer's
/// <see cref="Adam.StateDict"/> under <c>optimizer.</c> (<c>optimizer.state.encoder.conv1.weight.exp_avg</c>)
/// and the quantizer's per-code last-use steps as <c>trainer.code_last_used</c>; the model config and the
/// training state as JSON in <c>__metadata__</c>. Format 1 (read only) held Adam's moments as two flat
/// arrays (<c>optimizer.exp_avg</c>, <c>optimizer.exp_avg_sq</c>) in the parameter store's layout.
/// </summary>
public static class VqVaeCheckpoint
{
    /// <summary>The format tag written in the metadata.</summary>
    public const string Format = "vqvaecuda-vqvae/2";

    /// <summary>The first format, still read.</summary>
    public const string Format1 = "vqvaecuda-vqvae/1";

    private const string OptimizerPrefix = "optimizer.";
    private const string TrainerPrefix = "trainer.";
    private const string CodeLastUsed = "trainer.code_last_used";
    private const string Format1FirstMoments = "optimizer.exp_avg";
    private const string Format1SecondMoments = "optimizer.exp_avg_sq";

    /// <summary>
    /// Writes the model (and, when given, the training state with <paramref name="optimizer"/>'s state and the
    /// quantizer's code usage) to <paramref name="path"/>, atomically.
    /// </summary>
    public static void Save(string path, VqVae model, TrainingStateInfo? state = null, Adam? optimizer = null)
    {
        if (state is not null && optimizer is null) throw new ArgumentException("a checkpoint with training state needs the optimizer, whose moments it holds");
        var tensors = StateDictFiles.ToSafetensors(model.StateDict()).ToList();
        var metadata = new Dictionary<string, string>
        {
            ["format"] = Format,
            ["config"] = model.Config.ToJson(),
        };
        if (state is not null)
        {
            tensors.AddRange(StateDictFiles.ToSafetensors(optimizer!.StateDict(), OptimizerPrefix));
            var lastUsed = model.Quantizer.CodeLastUsed.ToArray();
            tensors.Add(SafetensorsTensor.FromInts(CodeLastUsed, [lastUsed.Length], lastUsed));
            metadata["step"] = state.Step.ToString(CultureInfo.InvariantCulture);
            metadata["adam_step"] = state.AdamStep.ToString(CultureInfo.InvariantCulture);
            metadata["training"] = System.Text.Json.JsonSerializer.Serialize(state.Options);
            metadata["dataset"] = state.Dataset;
        }
        Safetensors.Write(path, tensors, metadata);
    }

    /// <summary>
    /// A model rebuilt from a checkpoint; with training state, the optimizer's state (device tensors named as
    /// <see cref="Adam.StateDict"/> names them: load it into an <see cref="Adam"/> over the model, then dispose it).
    /// The quantizer's code usage is restored into the model.
    /// </summary>
    public sealed record Loaded(VqVae Model, TrainingStateInfo? State, StateDict? OptimizerState);

    /// <summary>Loads a checkpoint of either format onto <paramref name="device"/>.</summary>
    /// <exception cref="CheckpointFormatException">
    /// Not a VQ-VAE checkpoint, a bad config, or tensors that do not fit the config (every missing, unexpected and
    /// mismatched name listed).
    /// </exception>
    public static Loaded Load(string path, IDevice device)
    {
        var (tensors, metadata) = Safetensors.Read(path);
        var header = ParseHeader(path, metadata);
        var config = header.Config;
        var model = new VqVae(device, config);
        StateDict? optimizerState = null;
        try
        {
            StateDictFiles.LoadInto(model, tensors.Values.Where(t => !t.Name.StartsWith(OptimizerPrefix, StringComparison.Ordinal) &&
                                                                     !t.Name.StartsWith(TrainerPrefix, StringComparison.Ordinal)), path);
            if (!metadata.ContainsKey("step")) return new Loaded(model, null, null);

            optimizerState = header.Format == Format1 ? Format1Moments(path, tensors, model) : StateDictFiles.Upload(device, tensors.Values, path, OptimizerPrefix);
            var options = header.Training ?? throw new CheckpointFormatException(path, $"training state without its training options");
            var training = new TrainingStateInfo(Count<int>(path, metadata, "step"), Count<long>(path, metadata, "adam_step"), options,
                                                 metadata.GetValueOrDefault("dataset", ""));
            if (tensors.TryGetValue(CodeLastUsed, out var lastUsed))
            {
                var steps = lastUsed.ToInts();
                if (steps.Length != config.CodebookSize)
                    throw new CheckpointFormatException(path, $"'{CodeLastUsed}' has {steps.Length} entries for a codebook of {config.CodebookSize} codes");
                model.Quantizer.LoadCodeLastUsed(steps);
            }
            return new Loaded(model, training, optimizerState);
        }
        catch
        {
            optimizerState?.Dispose();
            model.Dispose();
            throw;
        }
    }

    /// <summary>What a checkpoint's metadata says, read without a device.</summary>
    /// <param name="Format">The format tag (<see cref="Format"/> or <see cref="Format1"/>).</param>
    /// <param name="Config">The model's configuration.</param>
    /// <param name="Training">The run's training options, when the checkpoint has training state.</param>
    /// <param name="Dataset">The training data's name ("shapes/train"), when recorded.</param>
    /// <param name="Step">Steps done, when the checkpoint has training state.</param>
    public sealed record Header(string Format, VqVaeConfig Config, TrainingOptions? Training, string? Dataset, int? Step = null);

    /// <summary>Reads and checks a VQ-VAE checkpoint's metadata (no device needed).</summary>
    /// <exception cref="CheckpointFormatException">Not safetensors, not a VQ-VAE checkpoint of this program (the format seen is named), or a bad config.</exception>
    public static Header ReadHeader(string path) => ParseHeader(path, Safetensors.Read(path).Metadata);

    private static Header ParseHeader(string path, IReadOnlyDictionary<string, string> metadata)
    {
        metadata.TryGetValue("format", out var format);
        if (format is not (Format or Format1))
            throw new CheckpointFormatException(path, $"not a VQ-VAE checkpoint of this program (format '{format ?? "missing"}', expected '{Format}' or '{Format1}')" +
                                                (format == PriorCheckpoint.Format ? ": it is a prior checkpoint; give it where a prior is expected (--prior, or --resume of prior train)" : ""));
        try
        {
            var config = VqVaeConfig.FromJson(metadata["config"]);
            var training = metadata.TryGetValue("training", out var json) ? System.Text.Json.JsonSerializer.Deserialize<TrainingOptions>(json) : null;
            int? step = metadata.ContainsKey("step") ? Count<int>(path, metadata, "step") : null;
            return new Header(format, config, training, metadata.GetValueOrDefault("dataset"), step);
        }
        catch (Exception e) when (e is ConfigException or System.Text.Json.JsonException or KeyNotFoundException or FormatException or OverflowException)
        {
            throw new CheckpointFormatException(path, $"bad model config or training options in the metadata ({e.Message})");
        }
    }

    /// <summary>Loads only the model of a checkpoint (inference): the training state, if any, is read and dropped.</summary>
    /// <exception cref="CheckpointFormatException">As <see cref="Load"/>.</exception>
    public static VqVae LoadModel(string path, IDevice device)
    {
        var loaded = Load(path, device);
        loaded.OptimizerState?.Dispose();
        return loaded.Model;
    }

    /// <summary>A non-negative count from the metadata, or a refusal naming the field and what it holds.</summary>
    private static T Count<T>(string path, IReadOnlyDictionary<string, string> metadata, string field) where T : struct, System.Numerics.IBinaryInteger<T>
    {
        if (!metadata.TryGetValue(field, out var text))
            throw new CheckpointFormatException(path, $"metadata '{field}'", "is missing (a checkpoint with training state has it)");
        if (!T.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            throw new CheckpointFormatException(path, $"metadata '{field}'", $"is '{text}', expected a non-negative integer (of at most {(typeof(T) == typeof(int) ? "10" : "19")} digits)");
        return value;
    }

    // Format 1 kept Adam's moments as flat arrays laid out like the parameter store (each parameter at its
    // 64-aligned offset); the store's layout has not changed, so each parameter's moments are its slice.
    private static StateDict Format1Moments(string path, IReadOnlyDictionary<string, SafetensorsTensor> tensors, VqVae model)
    {
        var store = model.ParameterStore;
        var m = TakeFlat(path, tensors, Format1FirstMoments, store.Count);
        var v = TakeFlat(path, tensors, Format1SecondMoments, store.Count);
        var state = new StateDict();
        foreach (var p in store.Parameters)
        {
            int offset = checked((int)p.Offset), count = checked((int)p.Shape.Count);
            state.Add($"state.{p.Name}.exp_avg", Tensor.FromArray(model.Device, m.AsSpan(offset, count).ToArray(), p.Shape));
            state.Add($"state.{p.Name}.exp_avg_sq", Tensor.FromArray(model.Device, v.AsSpan(offset, count).ToArray(), p.Shape));
        }
        return state;
    }

    private static float[] TakeFlat(string path, IReadOnlyDictionary<string, SafetensorsTensor> tensors, string name, long count)
    {
        if (!tensors.TryGetValue(name, out var t))
            throw new CheckpointFormatException(path, $"tensor '{name}' is missing (a format-1 checkpoint with training state has it)");
        if (t.Shape.Length != 1 || t.Shape[0] != count || t.DType != "F32")
            throw new CheckpointFormatException(path, $"tensor '{name}' is {t.DType} [{string.Join(",", t.Shape)}]; the model's config expects F32 [{count}]");
        return t.ToFloats();
    }
}
