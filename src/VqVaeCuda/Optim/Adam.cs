using VqVaeCuda.Device;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Optim;

/// <summary>
/// Adam (Kingma and Ba, 2015) with the semantics of PyTorch's <c>torch.optim.Adam</c> (amsgrad=False,
/// maximize=False): bias-corrected moments, and weight decay in PyTorch's L2 form — the decay term
/// wd·θ is added to the gradient before the moments see it (not AdamW's decoupled decay).
/// <para>
/// The optimizer owns its state: the first and second moments of every parameter, kept in two flat
/// device buffers laid out like the parameters' <see cref="ParameterStore"/> (same offsets), and the step
/// count. When it updates every parameter of a store (the usual case: <c>new Adam(model.Parameters())</c>)
/// a <see cref="Step"/> is ONE fused launch of kernels/adam.cu over the flat buffers; for a subset it is
/// one launch per parameter. Bias corrections are computed here, in double. Nothing is read back: a step
/// is asynchronous. <see cref="StateDict"/> names each moment after its parameter
/// (<c>state.encoder.conv1.weight.exp_avg</c>, <c>....exp_avg_sq</c>).
/// </para>
/// </summary>
public sealed class Adam : IDisposable
{
    private readonly Parameter[] _parameters;
    private readonly ParameterStore _store;
    private readonly bool _wholeStore;
    private readonly Tensor _m, _v;
    private double _learningRate;

    /// <summary>An optimizer over <paramref name="parameters"/> (allocated, all of one store: one model's).</summary>
    /// <param name="parameters">The parameters updated from their gradients, e.g. a module's <c>Parameters()</c>.</param>
    /// <param name="learningRate">lr; the paper's 2e-4 by default.</param>
    /// <param name="beta1">Decay of the first moment, in [0, 1).</param>
    /// <param name="beta2">Decay of the second moment, in [0, 1).</param>
    /// <param name="epsilon">Added to the denominator, ≥ 0.</param>
    /// <param name="weightDecay">L2 coefficient (PyTorch Adam's weight_decay), ≥ 0.</param>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is outside its range (PyTorch's checks).</exception>
    /// <exception cref="ArgumentException">No parameters, unallocated ones, or parameters of several stores.</exception>
    public Adam(IEnumerable<Parameter> parameters, double learningRate = 2e-4, double beta1 = 0.9, double beta2 = 0.999,
                double epsilon = 1e-8, double weightDecay = 0.0)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        CheckLearningRate(learningRate);
        if (!(beta1 >= 0 && beta1 < 1)) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "adam: beta1 must be in [0, 1)");
        if (!(beta2 >= 0 && beta2 < 1)) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "adam: beta2 must be in [0, 1)");
        if (!(epsilon >= 0)) throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "adam: epsilon must be >= 0");
        if (!(weightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "adam: weight decay must be >= 0");
        _parameters = parameters.Distinct().ToArray();
        if (_parameters.Length == 0) throw new ArgumentException("adam: no parameters to optimise");
        var unallocated = _parameters.FirstOrDefault(p => !p.IsAllocated || p.Store is null);
        if (unallocated is not null)
            throw new ArgumentException($"adam: parameter '{unallocated.Name}' has no memory yet; allocate the model before creating its optimizer");
        _store = _parameters[0].Store!;
        if (_parameters.Any(p => p.Store != _store)) throw new ArgumentException("adam: the parameters belong to several models (stores); use one optimizer per model");
        _wholeStore = _parameters.Length == _store.Parameters.Count;
        _learningRate = learningRate;
        Beta1 = beta1;
        Beta2 = beta2;
        Epsilon = epsilon;
        WeightDecay = weightDecay;
        var shape = new Shape((int)Math.Max(1, _store.Count));
        _m = Tensor.Allocate(Device, shape);
        _v = Tensor.Allocate(Device, shape);
        Device.FillBytes(_m.Pointer, 0, _m.Bytes);
        Device.FillBytes(_v.Pointer, 0, _v.Bytes);
    }

    /// <summary>An optimizer over every parameter of <paramref name="store"/> (allocated).</summary>
    public Adam(ParameterStore store, double learningRate = 2e-4, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 0.0)
        : this((store ?? throw new ArgumentNullException(nameof(store))).Parameters, learningRate, beta1, beta2, epsilon, weightDecay)
    {
    }

    /// <summary>The parameters this optimizer updates.</summary>
    public IReadOnlyList<Parameter> Parameters => _parameters;

    /// <summary>The device.</summary>
    public IDevice Device => _store.Device;

    /// <summary>The learning rate; may be changed between steps (schedules).</summary>
    public double LearningRate
    {
        get => _learningRate;
        set
        {
            CheckLearningRate(value);
            _learningRate = value;
        }
    }

    /// <summary>β1, the first moment's decay.</summary>
    public double Beta1 { get; }

    /// <summary>β2, the second moment's decay.</summary>
    public double Beta2 { get; }

    /// <summary>ε of the denominator.</summary>
    public double Epsilon { get; }

    /// <summary>L2 weight decay (added to the gradient).</summary>
    public double WeightDecay { get; }

    /// <summary>Steps taken, t (0 before the first step). Settable to resume, together with <see cref="LoadStateDict"/>.</summary>
    public long StepCount
    {
        get;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            field = value;
        }
    }

    /// <summary>The first moment (exp_avg) of <paramref name="parameter"/>: a view with the parameter's shape.</summary>
    public Tensor FirstMoment(Parameter parameter) => MomentOf(_m, parameter, "exp_avg");

    /// <summary>The second moment (exp_avg_sq) of <paramref name="parameter"/>: a view with the parameter's shape.</summary>
    public Tensor SecondMoment(Parameter parameter) => MomentOf(_v, parameter, "exp_avg_sq");

    /// <summary>Sets the gradients of this optimizer's parameters to zero (backward passes accumulate).</summary>
    public void ZeroGrad()
    {
        if (_wholeStore)
        {
            _store.ZeroGrad();
            return;
        }
        foreach (var p in _parameters) Device.FillBytes(p.Grad.Pointer, 0, p.Grad.Bytes);
    }

    /// <summary>
    /// One update of every parameter from its current gradient: t ← t + 1, then the fused kernel with
    /// step_size = lr / (1 − β1^t) and sqrt(1 − β2^t). Gradients are read, not cleared.
    /// </summary>
    public void Step()
    {
        long t = StepCount + 1;
        var (stepSize, bc2Sqrt) = BiasCorrectedScalars(t);
        var h = KernelHyperparameters;
        ForEachSlice((values, grads, m, v, n) =>
            AdamKernels.Step(Device, values, grads, m, v, n, h.OneMinusBeta1, h.Beta2, h.OneMinusBeta2, h.Epsilon, h.WeightDecay, stepSize, bc2Sqrt));
        StepCount = t;
    }

    /// <summary>Floats in an Adam schedule (<see cref="WriteSchedule"/>): the step size and sqrt(1 − β2^t).</summary>
    public const int ScheduleLength = 2;

    /// <summary>
    /// Writes the scalars of the next update (t = <see cref="StepCount"/> + 1, the current <see cref="LearningRate"/>)
    /// into <paramref name="schedule"/> ([<see cref="ScheduleLength"/>] floats on this device) for
    /// <see cref="StepFromSchedule"/>. Call it before the step is launched or replayed: it copies from the host.
    /// </summary>
    public void WriteSchedule(Tensor schedule)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        if (schedule.Count < ScheduleLength || schedule.DType != DType.Float32 || schedule.Device != Device)
            throw new ArgumentException($"adam: the schedule must be {ScheduleLength} float32 values on {Device.Name}, got {schedule.Describe()}");
        var (stepSize, bc2Sqrt) = BiasCorrectedScalars(StepCount + 1);
        Device.CopyToDevice<float>([stepSize, bc2Sqrt], schedule.Pointer);
    }

    /// <summary>
    /// The update <see cref="Step"/> makes, with its per-step scalars read on the device from <paramref name="schedule"/>
    /// (filled by <see cref="WriteSchedule"/>) — the form a captured CUDA graph can replay, since it launches with the
    /// same arguments every step. It copies nothing from the host and does not count the step: the caller sets
    /// <see cref="StepCount"/> once per update it runs (a replayed graph runs it without this method being called).
    /// Same bits as <see cref="Step"/> for the same t and learning rate.
    /// </summary>
    public void StepFromSchedule(Tensor schedule)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        var h = KernelHyperparameters;
        ForEachSlice((values, grads, m, v, n) =>
            AdamKernels.StepScheduled(Device, values, grads, m, v, schedule.Pointer, n, h.OneMinusBeta1, h.Beta2, h.OneMinusBeta2, h.Epsilon, h.WeightDecay));
    }

    // The constant scalars of both kernels, as floats.
    private (float OneMinusBeta1, float Beta2, float OneMinusBeta2, float Epsilon, float WeightDecay) KernelHyperparameters =>
        ((float)(1.0 - Beta1), (float)Beta2, (float)(1.0 - Beta2), (float)Epsilon, (float)WeightDecay);

    // One kernel launch over the whole flat store when the optimizer holds every parameter, else one per parameter: the
    // values, gradients and moments of each slice, and its element count.
    private void ForEachSlice(Action<DevicePointer, DevicePointer, DevicePointer, DevicePointer, int> update)
    {
        if (_wholeStore)
        {
            update(_store.FlatValues.Pointer, _store.FlatGrads.Pointer, _m.Pointer, _v.Pointer, checked((int)_m.Count));
            return;
        }
        foreach (var p in _parameters)
            update(p.Value.Pointer, p.Grad.Pointer, _m.Pointer.OffsetFloats(p.Offset), _v.Pointer.OffsetFloats(p.Offset), checked((int)p.Shape.Count));
    }

    // step_size = lr / (1 − β1^t) and sqrt(1 − β2^t), computed in double and rounded once.
    private (float StepSize, float BiasCorrection2Sqrt) BiasCorrectedScalars(long t)
    {
        double biasCorrection1 = 1.0 - Math.Pow(Beta1, t);
        double biasCorrection2 = 1.0 - Math.Pow(Beta2, t);
        return ((float)(LearningRate / biasCorrection1), (float)Math.Sqrt(biasCorrection2));
    }

    /// <summary>
    /// The moments as <c>state.{parameter}.exp_avg</c> and <c>state.{parameter}.exp_avg_sq</c> (views, in
    /// parameter order). The step count is <see cref="StepCount"/>.
    /// </summary>
    public StateDict StateDict()
    {
        var dict = new StateDict(ownsTensors: false);  // the live state: disposing the dict must not free it
        foreach (var p in _parameters)
        {
            dict.Add($"state.{p.Name}.exp_avg", FirstMoment(p));
            dict.Add($"state.{p.Name}.exp_avg_sq", SecondMoment(p));
        }
        return dict;
    }

    /// <summary>
    /// Restores the moments from <paramref name="state"/> (as <see cref="StateDict"/> names them) and the step
    /// count. All or nothing: every missing, unexpected or mismatched entry is named and nothing changes.
    /// </summary>
    /// <exception cref="StateDictException">The state does not fit these parameters.</exception>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state, long stepCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(stepCount);
        Tensors.StateDict.Load(StateDict(), state, strict: true, "Adam optimizer");
        StepCount = stepCount;
    }

    private Tensor MomentOf(Tensor flat, Parameter parameter, string what)
    {
        if (Array.IndexOf(_parameters, parameter) < 0) throw new ArgumentException($"adam: '{parameter.Name}' is not one of this optimizer's parameters");
        return new Tensor(Device, flat.Pointer.OffsetFloats(parameter.Offset), parameter.Shape, DType.Float32) { Name = $"{parameter.Name}.{what}" };
    }

    private static void CheckLearningRate(double value)
    {
        if (!(value >= 0 && double.IsFinite(value)))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), value, "adam: learning rate must be finite and >= 0");
    }

    /// <summary>Frees the moment buffers.</summary>
    public void Dispose()
    {
        _m.Dispose();
        _v.Dispose();
    }
}
