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

/// <summary>A trainable tensor with its gradient, named by module path ("encoder.conv1.weight").</summary>
public sealed class Parameter
{
    internal Parameter(string name, Shape shape, Initializer initializer, long offset)
    {
        Name = name;
        Shape = shape;
        Initializer = initializer;
        Offset = offset;
    }

    /// <summary>Module path, used as the checkpoint tensor name.</summary>
    public string Name { get; }

    /// <summary>The shape (PyTorch's layouts).</summary>
    public Shape Shape { get; }

    /// <summary>How it starts.</summary>
    public Initializer Initializer { get; }

    /// <summary>Element offset inside the store's flat buffers.</summary>
    public long Offset { get; }

    /// <summary>The values (a view into the store). Available after <see cref="ParameterStore.Allocate"/>.</summary>
    public Tensor Value => _value ?? throw new InvalidOperationException($"parameter '{Name}' is declared but its store has not been allocated yet");

    /// <summary>The gradient (a view into the store), accumulated by backward passes, zeroed by <see cref="ParameterStore.ZeroGrad"/>.</summary>
    public Tensor Grad => _grad ?? throw new InvalidOperationException($"parameter '{Name}' is declared but its store has not been allocated yet");

    internal Tensor? _value;
    internal Tensor? _grad;
}

/// <summary>
/// All parameters of a model in four persistent, contiguous buffers — values, gradients, and Adam's
/// first and second moments — so that the optimizer step and the global gradient norm are each one
/// kernel over one flat array. Modules <see cref="Declare"/> their parameters; the model then calls
/// <see cref="Allocate"/> once.
/// </summary>
public sealed class ParameterStore : IDisposable
{
    private readonly List<Parameter> _parameters = [];
    private readonly Dictionary<string, Parameter> _byName = new(StringComparer.Ordinal);
    private DeviceBuffer? _values, _grads, _m, _v;
    private long _count;

    /// <summary>A store on <paramref name="device"/>.</summary>
    public ParameterStore(IDevice device) => Device = device;

    /// <summary>The device.</summary>
    public IDevice Device { get; }

    /// <summary>Every parameter in declaration order.</summary>
    public IReadOnlyList<Parameter> Parameters => _parameters;

    /// <summary>Total elements over all parameters.</summary>
    public long Count => _count;

    /// <summary>True once <see cref="Allocate"/> has run.</summary>
    public bool IsAllocated => _values is not null;

    /// <summary>The parameter called <paramref name="name"/>.</summary>
    public Parameter this[string name] =>
        _byName.TryGetValue(name, out var p) ? p : throw new KeyNotFoundException($"no parameter named '{name}'");

    /// <summary>Declares a parameter; its memory exists after <see cref="Allocate"/>.</summary>
    public Parameter Declare(string name, Shape shape, Initializer initializer)
    {
        if (IsAllocated) throw new InvalidOperationException($"cannot declare '{name}': the parameter store is already allocated");
        if (_byName.ContainsKey(name)) throw new ArgumentException($"parameter '{name}' is declared twice");
        // Each parameter starts on a 64-element boundary: aligned vector access in the kernels that see one parameter.
        long offset = (_count + 63) / 64 * 64;
        var p = new Parameter(name, shape, initializer, offset);
        _count = offset + shape.Count;
        _parameters.Add(p);
        _byName[name] = p;
        return p;
    }

    /// <summary>Allocates the four buffers and initialises every parameter from <paramref name="seed"/>; moments and gradients start at zero.</summary>
    public void Allocate(int seed)
    {
        if (IsAllocated) throw new InvalidOperationException("the parameter store is already allocated");
        long bytes = Math.Max(1, _count) * sizeof(float);
        _values = Device.Allocate(bytes);
        _grads = Device.Allocate(bytes);
        _m = Device.Allocate(bytes);
        _v = Device.Allocate(bytes);
        foreach (var b in new[] { _values, _grads, _m, _v }) Device.FillBytes(b.Pointer, 0, bytes);
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

    /// <summary>Adam's first moments.</summary>
    public Tensor FlatFirstMoments => Flat(_m);

    /// <summary>Adam's second moments.</summary>
    public Tensor FlatSecondMoments => Flat(_v);

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
        _m?.Dispose();
        _v?.Dispose();
    }
}
