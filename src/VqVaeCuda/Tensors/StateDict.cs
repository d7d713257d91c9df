using System.Collections;
namespace VqVaeCuda.Tensors;

/// <summary>
/// An ordered map from names ("encoder.conv1.weight") to tensors: what a module's and an optimizer's
/// <c>StateDict()</c> return and what their <c>LoadStateDict</c> take. Insertion order is
/// kept (a checkpoint lists tensors in module order). A state dict that owns its tensors (one made to carry a
/// loaded file's values) frees them when disposed; a module's or optimizer's <c>StateDict()</c> holds their live
/// tensors (parameters, buffers, moments) and disposing it does nothing: they stay the module's.
/// </summary>
public sealed class StateDict : IReadOnlyDictionary<string, Tensor>, IDisposable
{
    private readonly List<string> _order = [];
    private readonly Dictionary<string, Tensor> _tensors = new(StringComparer.Ordinal);
    private readonly bool _ownsTensors;

    /// <summary>An empty state dict; <paramref name="ownsTensors"/>: whether <see cref="Dispose"/> frees the tensors added.</summary>
    public StateDict(bool ownsTensors = true) => _ownsTensors = ownsTensors;

    /// <summary>Adds an entry; a name may appear once.</summary>
    public void Add(string name, Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (!_tensors.TryAdd(name, tensor)) throw new ArgumentException($"state dict: '{name}' is already present");
        _order.Add(name);
    }

    /// <summary>
    /// Copies <paramref name="state"/> into <paramref name="target"/> (the live tensors of a module or optimizer, named
    /// <paramref name="targetName"/> in messages). Every entry is checked before anything is copied: a shape or type
    /// mismatch always refuses; with <paramref name="strict"/> a missing or an unexpected name refuses too. A refusal
    /// names every offending entry and changes nothing. Source tensors may live on any device.
    /// </summary>
    /// <exception cref="StateDictException">The state does not fit; nothing was changed.</exception>
    public static StateDictLoadResult Load(IReadOnlyDictionary<string, Tensor> target, IReadOnlyDictionary<string, Tensor> state, bool strict,
                                           string targetName)
    {
        ArgumentNullException.ThrowIfNull(state);
        var missing = target.Keys.Where(k => !state.ContainsKey(k)).ToList();
        var unexpected = state.Keys.Where(k => !target.ContainsKey(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var mismatched = new List<string>();
        foreach (var (name, t) in target)
            if (state.TryGetValue(name, out var source) && (source.Shape != t.Shape || source.DType != t.DType))
                mismatched.Add($"{name}: the state has {source.Shape} {Lower(source.DType)}, this {targetName} has {t.Shape} {Lower(t.DType)}");
        if (mismatched.Count > 0 || (strict && (missing.Count > 0 || unexpected.Count > 0)))
            throw new StateDictException(targetName, missing, unexpected, mismatched, strict);
        foreach (var (name, t) in target)
            if (state.TryGetValue(name, out var source))
                CopyInto(source, t);
        return new StateDictLoadResult(missing, unexpected);
    }

    private static void CopyInto(Tensor source, Tensor target)
    {
        if (ReferenceEquals(source, target) || source.Pointer == target.Pointer && source.Device == target.Device) return;
        if (source.Device == target.Device)
        {
            target.Device.Copy(source.Pointer, target.Pointer, target.Bytes);
            return;
        }
        if (source.DType == DType.Int32) target.CopyFrom(source.ToIntArray());
        else target.CopyFrom(source.ToArray());
    }

    private static string Lower(DType t) => t.ToString().ToLowerInvariant();

    /// <summary>The entries whose names start with <paramref name="prefix"/>, with the prefix removed (views of the same tensors).</summary>
    public StateDict WithPrefixRemoved(string prefix)
    {
        var result = new StateDict(ownsTensors: false);  // the same tensors: this one's owner frees them
        foreach (var name in _order)
            if (name.StartsWith(prefix, StringComparison.Ordinal))
                result.Add(name[prefix.Length..], _tensors[name]);
        return result;
    }

    /// <inheritdoc />
    public Tensor this[string key] => _tensors.TryGetValue(key, out var t) ? t : throw new KeyNotFoundException($"state dict: no entry '{key}'");

    /// <inheritdoc />
    public IEnumerable<string> Keys => _order;

    /// <inheritdoc />
    public IEnumerable<Tensor> Values => _order.Select(k => _tensors[k]);

    /// <inheritdoc />
    public int Count => _order.Count;

    /// <inheritdoc />
    public bool ContainsKey(string key) => _tensors.ContainsKey(key);

    /// <inheritdoc />
    public bool TryGetValue(string key, out Tensor value) => _tensors.TryGetValue(key, out value!);

    /// <inheritdoc />
    public IEnumerator<KeyValuePair<string, Tensor>> GetEnumerator() =>
        _order.Select(k => new KeyValuePair<string, Tensor>(k, _tensors[k])).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Frees the tensors held when this state dict owns them; a module's or optimizer's live state is left alone.</summary>
    public void Dispose()
    {
        if (!_ownsTensors) return;
        foreach (var t in _tensors.Values) t.Dispose();
    }
}

/// <summary>What a non-strict <c>LoadStateDict</c> left aside.</summary>
/// <param name="MissingKeys">The module's entries the state did not have (left unchanged).</param>
/// <param name="UnexpectedKeys">The state's entries the module does not have (ignored).</param>
public sealed record StateDictLoadResult(IReadOnlyList<string> MissingKeys, IReadOnlyList<string> UnexpectedKeys);

/// <summary>A state that does not fit a module or optimizer; lists every offending entry. Nothing was changed.</summary>
public sealed class StateDictException : ArgumentException
{
    /// <summary>A refusal to load into <paramref name="target"/>.</summary>
    public StateDictException(string target, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> mismatched, bool strict)
        : base(Describe(target, missing, unexpected, mismatched, strict))
    {
        MissingKeys = missing;
        UnexpectedKeys = unexpected;
        Mismatched = mismatched;
    }

    /// <summary>Entries the target has and the state lacks.</summary>
    public IReadOnlyList<string> MissingKeys { get; }

    /// <summary>Entries the state has and the target lacks.</summary>
    public IReadOnlyList<string> UnexpectedKeys { get; }

    /// <summary>"name: the state has [..], the target has [..]" for each entry whose shape or type differs.</summary>
    public IReadOnlyList<string> Mismatched { get; }

    private static string Describe(string target, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> mismatched, bool strict)
    {
        var parts = new List<string>();
        if (mismatched.Count > 0) parts.Add($"{mismatched.Count} of a different shape or type ({string.Join("; ", mismatched)})");
        if (strict && missing.Count > 0) parts.Add($"{missing.Count} missing ({string.Join(", ", missing)})");
        if (strict && unexpected.Count > 0) parts.Add($"{unexpected.Count} unexpected ({string.Join(", ", unexpected)})");
        return $"the state does not fit this {target}, nothing was loaded: {string.Join("; ", parts)}";
    }
}
