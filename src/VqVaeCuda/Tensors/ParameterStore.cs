using VqVaeCuda.Device;

namespace VqVaeCuda.Tensors;

/// <summary>How a parameter starts: computed on the host from a seeded generator, so every device starts identically.</summary>
public abstract record Initializer
{
    /// <summary>Fills <paramref name="values"/> (the parameter's elements) using <paramref name="random"/>.</summary>
    public abstract void Fill(Span<float> values, Random random);

    /// <summary>All zeros.</summary>
    public static Initializer Zeros { get; } = new ConstantInitializer(0f);

    /// <summary>All <paramref name="value"/>.</summary>
    public static Initializer Constant(float value) => new ConstantInitializer(value);

    /// <summary>Uniform in [-bound, bound].</summary>
    public static Initializer Uniform(float bound) => new UniformInitializer(bound);

    /// <summary>PyTorch's default for Conv2d/Linear weights and biases: uniform in ±1/sqrt(fanIn).</summary>
    public static Initializer KaimingUniform(int fanIn) => new UniformInitializer(1f / MathF.Sqrt(fanIn));

    private sealed record ConstantInitializer(float Value) : Initializer
    {
        public override void Fill(Span<float> values, Random random) => values.Fill(Value);
    }

    private sealed record UniformInitializer(float Bound) : Initializer
    {
        public override void Fill(Span<float> values, Random random)
        {
            for (int i = 0; i < values.Length; i++) values[i] = (float)((random.NextDouble() * 2 - 1) * Bound);
        }
    }
}

/// <summary>
/// A trainable tensor with its gradient, like <c>torch.nn.Parameter</c>. A module creates it with a
/// shape and an initializer and registers it under a local name; its memory is a slice of a
/// <see cref="ParameterStore"/>, and it gets its full name (the module path, "encoder.conv1.weight")
/// when the store takes it.
/// </summary>
public sealed class Parameter
{
    /// <summary>An unallocated parameter of <paramref name="shape"/> that will start from <paramref name="initializer"/>.</summary>
    public Parameter(Shape shape, Initializer initializer)
    {
        ArgumentNullException.ThrowIfNull(initializer);
        Shape = shape;
        Initializer = initializer;
    }

    /// <summary>Module path ("encoder.conv1.weight"), used as the checkpoint tensor name; empty until a store takes it.</summary>
    public string Name { get; internal set; } = "";

    /// <summary>The shape (PyTorch's layouts).</summary>
    public Shape Shape { get; }

    /// <summary>How it starts.</summary>
    public Initializer Initializer { get; }

    /// <summary>The store holding it; null until one takes it.</summary>
    public ParameterStore? Store { get; internal set; }

    /// <summary>Element offset inside the store's flat buffers.</summary>
    public long Offset { get; internal set; }

    /// <summary>True once its store is allocated.</summary>
    public bool IsAllocated => _value is not null;

    /// <summary>The values (a view into the store). Available after <see cref="ParameterStore.Allocate"/>.</summary>
    public Tensor Value => _value ?? throw NotAllocated();

    /// <summary>The gradient (a view into the store), accumulated by backward passes, zeroed by <see cref="ParameterStore.ZeroGrad"/>.</summary>
    public Tensor Grad => _grad ?? throw NotAllocated();

    private InvalidOperationException NotAllocated() =>
        new($"parameter '{(Name.Length > 0 ? Name : Shape.ToString())}' has no memory yet: allocate its module (Module.Allocate) or its store first");

    internal Tensor? _value;
    internal Tensor? _grad;
}

/// <summary>
/// The parameters of a model in two persistent, contiguous buffers — values and gradients — so that
/// an optimizer step and the global gradient norm are each one kernel over one flat array. Parameters
/// are <see cref="Add">added</see> (or <see cref="Declare">declared</see>) under their full names, then the
/// store is <see cref="Allocate">allocated</see> once. Optimizer state (Adam's moments) belongs to the
/// optimizer, which lays its own buffers out with the same offsets.
/// </summary>
public sealed class ParameterStore : IDisposable
{
    private readonly List<Parameter> _parameters = [];
    private readonly Dictionary<string, Parameter> _byName = new(StringComparer.Ordinal);
    private DeviceBuffer? _values, _grads;
    private long _count;

    /// <summary>A store on <paramref name="device"/>.</summary>
    public ParameterStore(IDevice device) => Device = device;

    /// <summary>The device.</summary>
    public IDevice Device { get; }

    /// <summary>Every parameter in the order added.</summary>
    public IReadOnlyList<Parameter> Parameters => _parameters;

    /// <summary>Elements of the flat buffers: every parameter plus the alignment padding between them.</summary>
    public long Count => _count;

    /// <summary>True once <see cref="Allocate"/> has run.</summary>
    public bool IsAllocated => _values is not null;

    /// <summary>The parameter called <paramref name="name"/>.</summary>
    public Parameter this[string name] =>
        _byName.TryGetValue(name, out var p) ? p : throw new KeyNotFoundException($"no parameter named '{name}'");

    /// <summary>Takes <paramref name="parameter"/> under <paramref name="name"/>; its memory exists after <see cref="Allocate"/>.</summary>
    public Parameter Add(string name, Parameter parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        if (IsAllocated) throw new InvalidOperationException($"cannot add '{name}': the parameter store is already allocated");
        if (_byName.ContainsKey(name)) throw new ArgumentException($"parameter '{name}' is declared twice");
        if (parameter.Store is not null) throw new ArgumentException($"parameter '{name}' already belongs to a store (as '{parameter.Name}')");
        // Each parameter starts on a 64-element boundary: aligned vector access in the kernels that see one parameter.
        long offset = (_count + 63) / 64 * 64;
        parameter.Name = name;
        parameter.Store = this;
        parameter.Offset = offset;
        _count = offset + parameter.Shape.Count;
        _parameters.Add(parameter);
        _byName[name] = parameter;
        return parameter;
    }

    /// <summary>Creates and adds a parameter (<see cref="Add"/> of a new <see cref="Parameter"/>).</summary>
    public Parameter Declare(string name, Shape shape, Initializer initializer) => Add(name, new Parameter(shape, initializer));

    /// <summary>Allocates the buffers and initialises every parameter, in order, from <paramref name="seed"/>; gradients start at zero.</summary>
    public void Allocate(int seed)
    {
        if (IsAllocated) throw new InvalidOperationException("the parameter store is already allocated");
        long bytes = Math.Max(1, _count) * sizeof(float);
        _values = Device.Allocate(bytes);
        try
        {
            _grads = Device.Allocate(bytes);
        }
        catch
        {
            // Out of memory for the gradients: give the values back, so that a refused model costs nothing.
            _values.Dispose();
            _values = null;
            throw;
        }
        foreach (var b in new[] { _values, _grads }) Device.FillBytes(b.Pointer, 0, bytes);
        var random = new Random(seed);
        foreach (var p in _parameters)
        {
            var host = new float[p.Shape.Count];
            p.Initializer.Fill(host, random);
            var value = new Tensor(Device, _values.Pointer.OffsetFloats(p.Offset), p.Shape, DType.Float32) { Name = p.Name, RequiresGrad = true };
            var grad = new Tensor(Device, _grads.Pointer.OffsetFloats(p.Offset), p.Shape, DType.Float32) { Name = p.Name + ".grad" };
            value.PersistentGrad = grad;
            value.CopyFrom(host);
            p._value = value;
            p._grad = grad;
        }
    }

    /// <summary>All values as one flat tensor (padding between parameters included).</summary>
    public Tensor FlatValues => Flat(_values);

    /// <summary>All gradients as one flat tensor.</summary>
    public Tensor FlatGrads => Flat(_grads);

    /// <summary>Sets every gradient to zero (start of a step: backward passes accumulate).</summary>
    public void ZeroGrad()
    {
        var g = _grads ?? throw new InvalidOperationException("the parameter store is not allocated");
        Device.FillBytes(g.Pointer, 0, g.Bytes);
    }

    private Tensor Flat(DeviceBuffer? buffer) =>
        buffer is null
            ? throw new InvalidOperationException("the parameter store is not allocated")
            : new Tensor(Device, buffer.Pointer, new Shape((int)Math.Max(1, _count)), DType.Float32);

    /// <inheritdoc />
    public void Dispose()
    {
        _values?.Dispose();
        _grads?.Dispose();
        _values = _grads = null;
    }
}
