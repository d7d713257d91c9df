using VqVaeCuda.Device;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Modules;

/// <summary>
/// The base of every layer and model, with <c>torch.nn.Module</c>'s semantics in C# naming. A module
/// registers its children, parameters and buffers by local name in its constructor; a name's full form
/// is the path from the root ("encoder.conv1.weight"), which is also its checkpoint name.
/// <para>
/// Lifetime. A module tree is built without a device (parameters are shapes and initializers), then the
/// root is <see cref="Allocate">allocated</see> once on a device: every parameter of the tree gets a slice
/// of one <see cref="Tensors.ParameterStore"/> (values and gradients in two flat buffers, so an optimizer
/// step is one kernel), initialised in <see cref="NamedParameters"/> order from one seed, and each module
/// then creates its buffers (<see cref="OnAllocated"/>). Disposing the root frees everything.
/// </para>
/// <para>
/// State. <see cref="StateDict"/> maps names to live tensors (parameters, then persistent buffers, module by
/// module in registration order, as PyTorch orders them); <see cref="LoadStateDict"/> copies tensors in,
/// all or nothing, and names every missing, unexpected and mismatched entry when it refuses.
/// </para>
/// </summary>
public abstract class Module : IDisposable
{
    private readonly List<(string Name, Module Module)> _children = [];
    private readonly List<(string Name, Parameter Parameter)> _parameters = [];
    private readonly List<(string Name, Tensor Tensor, bool Persistent)> _buffers = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private ParameterStore? _ownedStore;
    private IDevice? _device;
    private ParameterStore? _store;
    private bool _disposed;

    /// <summary>True in training mode (the default), false after <see cref="Eval"/>.</summary>
    public bool IsTraining { get; private set; } = true;

    /// <summary>True once the tree this module belongs to is allocated.</summary>
    public bool IsAllocated => _device is not null;

    /// <summary>The device the module lives on.</summary>
    /// <exception cref="InvalidOperationException">Not allocated yet.</exception>
    public IDevice Device => _device ?? throw NotAllocated();

    /// <summary>The flat store holding every parameter of the tree (for fused optimizer steps and clipping).</summary>
    /// <exception cref="InvalidOperationException">Not allocated yet.</exception>
    public ParameterStore ParameterStore => _store ?? throw NotAllocated();

    /// <summary>Registers a child under <paramref name="name"/> (no dots); returns it.</summary>
    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        ArgumentNullException.ThrowIfNull(module);
        Claim(name, "module");
        if (IsAllocated || module.IsAllocated) throw new InvalidOperationException($"cannot register module '{name}' after allocation");
        _children.Add((name, module));
        return module;
    }

    /// <summary>Registers a parameter under <paramref name="name"/> (no dots); returns it.</summary>
    protected Parameter RegisterParameter(string name, Parameter parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        Claim(name, "parameter");
        if (IsAllocated) throw new InvalidOperationException($"cannot register parameter '{name}' after allocation");
        _parameters.Add((name, parameter));
        return parameter;
    }

    /// <summary>
    /// Registers non-trainable state under <paramref name="name"/>: typically from <see cref="OnAllocated"/>, once
    /// the device exists. A persistent buffer (EMA statistics) is part of <see cref="StateDict"/>; a
    /// non-persistent one (a constant mask) is not. The module that creates a buffer disposes it.
    /// </summary>
    protected Tensor RegisterBuffer(string name, Tensor tensor, bool persistent = true)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        Claim(name, "buffer");
        _buffers.Add((name, tensor, persistent));
        return tensor;
    }

    /// <summary>
    /// Called on every module of the tree, after every parameter has its memory and initial value: create
    /// buffers here (they may start from parameter values, as the EMA statistics start from the codebook).
    /// </summary>
    protected virtual void OnAllocated(IDevice device)
    {
    }

    /// <summary>Frees what this module itself created (its buffers); children are disposed by the base.</summary>
    protected virtual void DisposeOwned()
    {
    }

    /// <summary>
    /// Gives every parameter of this tree its memory on <paramref name="device"/> (one flat store, owned by
    /// this module, the root) and its initial value from <paramref name="seed"/>, then lets each module create
    /// its buffers. Like PyTorch's <c>.to(device)</c> on a freshly built model. Returns this module.
    /// </summary>
    /// <exception cref="InvalidOperationException">Already allocated, or part of another allocated tree.</exception>
    public Module Allocate(IDevice device, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (IsAllocated) throw new InvalidOperationException($"{GetType().Name} is already allocated on {Device.Name}");
        var store = new ParameterStore(device);
        try
        {
            foreach (var (name, p) in NamedParameters()) store.Add(name, p);
            store.Allocate(seed);
            foreach (var (_, m) in NamedModules())
            {
                m._device = device;
                m._store = store;
            }
            _ownedStore = store;
            foreach (var (_, m) in NamedModules()) m.OnAllocated(device);
            return this;
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>The direct children, in registration order.</summary>
    public IEnumerable<(string Name, Module Module)> NamedChildren() => _children;

    /// <summary>This module (name "") and every descendant, depth first, with full names.</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules()
    {
        yield return ("", this);
        foreach (var (name, child) in _children)
            foreach (var (sub, m) in child.NamedModules())
                yield return (Join(name, sub), m);
    }

    /// <summary>Every parameter of the tree with its full name, this module's own first, then each child's.</summary>
    public IEnumerable<(string Name, Parameter Parameter)> NamedParameters()
    {
        foreach (var p in _parameters) yield return p;
        foreach (var (name, child) in _children)
            foreach (var (sub, p) in child.NamedParameters())
                yield return (Join(name, sub), p);
    }

    /// <summary>Every parameter of the tree (<see cref="NamedParameters"/> without the names).</summary>
    public IEnumerable<Parameter> Parameters() => NamedParameters().Select(p => p.Parameter);

    /// <summary>Every buffer of the tree with its full name (persistent or not).</summary>
    public IEnumerable<(string Name, Tensor Buffer)> NamedBuffers() => NamedBuffersWith(persistentOnly: false);

    private IEnumerable<(string Name, Tensor Buffer)> NamedBuffersWith(bool persistentOnly)
    {
        foreach (var (name, t, persistent) in _buffers)
            if (persistent || !persistentOnly)
                yield return (name, t);
        foreach (var (name, child) in _children)
            foreach (var (sub, t) in child.NamedBuffersWith(persistentOnly))
                yield return (Join(name, sub), t);
    }

    /// <summary>
    /// Name → live tensor for every parameter and persistent buffer, module by module (own parameters, own
    /// buffers, then children), as <c>state_dict()</c>. The tensors are views: read them or copy them.
    /// </summary>
    public StateDict StateDict()
    {
        RequireAllocated("StateDict");
        var dict = new StateDict(ownsTensors: false);  // the live state: disposing the dict must not free it
        AddState(dict, "");
        return dict;
    }

    private void AddState(StateDict dict, string prefix)
    {
        foreach (var (name, p) in _parameters) dict.Add(Join(prefix, name), p.Value);
        foreach (var (name, t, persistent) in _buffers)
            if (persistent)
                dict.Add(Join(prefix, name), t);
        foreach (var (name, child) in _children) child.AddState(dict, Join(prefix, name));
    }

    /// <summary>
    /// Copies <paramref name="state"/> into this tree's parameters and persistent buffers. Every entry is
    /// checked before anything is copied: a shape or type mismatch always refuses; with
    /// <paramref name="strict"/> a missing or an unexpected name refuses too. A refusal names every offending
    /// entry and leaves the module unchanged. Source tensors may live on any device.
    /// </summary>
    /// <returns>The names that were missing and unexpected (empty lists after a strict load).</returns>
    /// <exception cref="StateDictException">The state does not fit this module; nothing was changed.</exception>
    public StateDictLoadResult LoadStateDict(IReadOnlyDictionary<string, Tensor> state, bool strict = true)
    {
        RequireAllocated("LoadStateDict");
        return Tensors.StateDict.Load(StateDict(), state, strict, GetType().Name);
    }

    /// <summary>Sets the mode of this module and every descendant; returns this module.</summary>
    public Module Train(bool training = true)
    {
        foreach (var (_, m) in NamedModules()) m.IsTraining = training;
        return this;
    }

    /// <summary><see cref="Train"/>(false).</summary>
    public Module Eval() => Train(false);

    /// <summary>Zeroes the gradients of this tree's parameters (the whole store in one fill when this module is its root).</summary>
    public void ZeroGrad()
    {
        RequireAllocated("ZeroGrad");
        if (_ownedStore is not null)
        {
            _ownedStore.ZeroGrad();
            return;
        }
        foreach (var p in Parameters()) Device.FillBytes(p.Grad.Pointer, 0, p.Grad.Bytes);
    }

    /// <summary>
    /// The tree as PyTorch prints a module: the type, its own parameters and buffers with shapes, then each
    /// child as "(name): ..." indented, e.g. <c>Conv2d(weight [8,3,3,3], bias [8])</c>.
    /// </summary>
    public override string ToString()
    {
        var own = _parameters.Select(p => $"{p.Name} {p.Parameter.Shape}")
                             .Concat(_buffers.Select(b => $"{b.Name} {b.Tensor.Shape}{(b.Persistent ? "" : " (not saved)")}"));
        var head = $"{GetType().Name}({string.Join(", ", own)}";
        if (_children.Count == 0) return head + ")";
        var lines = _children.Select(c => $"  ({c.Name}): " + c.Module.ToString().Replace("\n", "\n  "));
        return head + "\n" + string.Join("\n", lines) + "\n)";
    }

    /// <summary>Frees the tree: children, this module's buffers and, at the root, the parameter store.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var (_, child) in _children) child.Dispose();
        DisposeOwned();
        _ownedStore?.Dispose();
        GC.SuppressFinalize(this);
    }

    private void Claim(string name, string kind)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"{GetType().Name}: {kind} name '{name}' must be non-empty and contain no '.' (dots join module paths)");
        if (!_names.Add(name)) throw new ArgumentException($"{GetType().Name}: the name '{name}' is already registered");
    }

    private void RequireAllocated(string what)
    {
        if (!IsAllocated) throw new InvalidOperationException($"{what} on {GetType().Name} before it is allocated: call Allocate(device) on the root module first");
    }

    private InvalidOperationException NotAllocated() =>
        new($"{GetType().Name} is not allocated yet: call Allocate(device) on the root module first");

    private static string Join(string prefix, string name) => prefix.Length == 0 ? name : name.Length == 0 ? prefix : prefix + "." + name;
}
