using VqVaeCuda.Checkpoints;
using VqVaeCuda.Device;
using VqVaeCuda.Modules;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Training;

/// <summary>Between state dicts (device tensors by name) and safetensors entries (host bytes by name).</summary>
public static class StateDictFiles
{
    /// <summary>Each entry of <paramref name="state"/> read back to the host as a safetensors tensor named <paramref name="prefix"/> + its name.</summary>
    public static IEnumerable<SafetensorsTensor> ToSafetensors(IReadOnlyDictionary<string, Tensor> state, string prefix = "")
    {
        foreach (var (name, t) in state)
        {
            var dims = t.Shape.Dims.ToArray().Select(d => (long)d).ToArray();
            yield return t.DType == DType.Int32
                ? SafetensorsTensor.FromInts(prefix + name, dims, t.ToIntArray())
                : SafetensorsTensor.FromFloats(prefix + name, dims, t.ToArray());
        }
    }

    /// <summary>
    /// Loads <paramref name="tensors"/> (a checkpoint's model entries) into <paramref name="module"/>, strictly: every
    /// missing, unexpected and mismatched name refuses, and the module is left unchanged.
    /// </summary>
    /// <exception cref="CheckpointFormatException">The entries do not fit the module (each offending name listed, with the file).</exception>
    public static void LoadInto(Module module, IEnumerable<SafetensorsTensor> tensors, string path)
    {
        using var state = Upload(module.Device, tensors, path);
        try
        {
            module.LoadStateDict(state);
        }
        catch (StateDictException e)
        {
            throw new CheckpointFormatException(path, $"{e.Message}");
        }
    }

    /// <summary>
    /// The entries of <paramref name="tensors"/> whose names start with <paramref name="prefix"/> (prefix removed), as
    /// new tensors on <paramref name="device"/>: a state dict to load, then dispose.
    /// </summary>
    /// <exception cref="CheckpointFormatException">An entry of an unsupported type or an impossible shape, or holding NaN or
    /// infinity (named, with the file).</exception>
    public static StateDict Upload(IDevice device, IEnumerable<SafetensorsTensor> tensors, string path, string prefix = "")
    {
        var state = new StateDict();
        try
        {
            foreach (var t in tensors)
            {
                if (!t.Name.StartsWith(prefix, StringComparison.Ordinal)) continue;
                Shape shape;
                try
                {
                    shape = new Shape(t.Shape.Select(d => checked((int)d)).ToArray());
                }
                catch (Exception e) when (e is ArgumentException or OverflowException)
                {
                    throw new CheckpointFormatException(path, $"tensor '{t.Name}' has shape [{string.Join(",", t.Shape)}], which no model tensor has");
                }
                var tensor = t.DType switch
                {
                    "F32" => Tensor.FromArray(device, Finite(t, path), shape),
                    "I32" => Tensor.FromArray(device, t.ToInts(), shape),
                    _ => throw new CheckpointFormatException(path, $"tensor '{t.Name}' is {t.DType}; checkpoints hold F32 and I32 only"),
                };
                state.Add(t.Name[prefix.Length..], tensor);
            }
            return state;
        }
        catch
        {
            state.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The values of an F32 entry, refused when any is NaN or infinite. No weight, EMA statistic or Adam moment of a
    /// healthy run is: such a checkpoint comes from a run that diverged (or a damaged file), and a model loaded from it
    /// would train or infer NaN silently. Refused for inference too, since every output of such a model is meaningless.
    /// </summary>
    private static float[] Finite(SafetensorsTensor t, string path)
    {
        var values = t.ToFloats();
        int bad = 0, first = -1;
        for (int i = 0; i < values.Length; i++)
        {
            if (float.IsFinite(values[i])) continue;
            if (bad++ == 0) first = i;
        }
        if (bad > 0)
            throw new CheckpointFormatException(path, $"tensor '{t.Name}'",
                $"{bad} of its {values.Length} values are NaN or infinite (the first, {values[first]}, at index {first}); " +
                "the checkpoint comes from a run that diverged, or the file is damaged: use an earlier checkpoint");
        return values;
    }
}
