using VqVaeCuda.Device;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Optim;

/// <summary>
/// Adam (Kingma and Ba, 2015) with the semantics of PyTorch's <c>torch.optim.Adam</c> (amsgrad=False,
/// maximize=False): bias-corrected moments, and weight decay in PyTorch's L2 form — the decay term
/// wd·θ is added to the gradient before the moments see it (not AdamW's decoupled decay).
/// One fused kernel (kernels/adam.cu) updates every parameter of a <see cref="ParameterStore"/> through
/// its four flat buffers (values, gradients, first and second moments) per <see cref="Step"/>; the
/// bias corrections are computed here, in double, and passed to the kernel. Nothing is read back:
/// a step is one asynchronous launch.
/// </summary>
public sealed class Adam
{
    private readonly Kernel _kernel;
    private double _learningRate;

    /// <summary>An optimizer over every parameter of <paramref name="parameters"/> (allocated or not yet: it is read at each step).</summary>
    /// <param name="parameters">The store whose values are updated from its gradients.</param>
    /// <param name="learningRate">lr; the paper's 2e-4 by default.</param>
    /// <param name="beta1">Decay of the first moment, in [0, 1).</param>
    /// <param name="beta2">Decay of the second moment, in [0, 1).</param>
    /// <param name="epsilon">Added to the denominator, ≥ 0.</param>
    /// <param name="weightDecay">L2 coefficient (PyTorch Adam's weight_decay), ≥ 0.</param>
    /// <exception cref="ArgumentOutOfRangeException">A hyperparameter is outside its range (PyTorch's checks).</exception>
    public Adam(ParameterStore parameters, double learningRate = 2e-4, double beta1 = 0.9, double beta2 = 0.999,
                double epsilon = 1e-8, double weightDecay = 0.0)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        CheckLearningRate(learningRate);
        if (!(beta1 >= 0 && beta1 < 1)) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "adam: beta1 must be in [0, 1)");
        if (!(beta2 >= 0 && beta2 < 1)) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "adam: beta2 must be in [0, 1)");
        if (!(epsilon >= 0)) throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "adam: epsilon must be >= 0");
        if (!(weightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "adam: weight decay must be >= 0");
        Parameters = parameters;
        _learningRate = learningRate;
        Beta1 = beta1;
        Beta2 = beta2;
        Epsilon = epsilon;
        WeightDecay = weightDecay;
        _kernel = parameters.Device.GetKernel("adam_step_f32");
    }

    /// <summary>The parameters this optimizer updates.</summary>
    public ParameterStore Parameters { get; }

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

    /// <summary>
    /// Steps taken, t (0 before the first step). Settable to resume from a checkpoint together with
    /// the store's moment buffers.
    /// </summary>
    public long StepCount
    {
        get;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            field = value;
        }
    }

    /// <summary>
    /// One update of every parameter from its current gradient: t ← t + 1, then the fused kernel with
    /// step_size = lr / (1 − β1^t) and sqrt(1 − β2^t). Gradients are read, not cleared.
    /// </summary>
    /// <exception cref="InvalidOperationException">The store is not allocated.</exception>
    public void Step()
    {
        var values = Parameters.FlatValues;
        int n = checked((int)values.Count);
        long t = StepCount + 1;
        double biasCorrection1 = 1.0 - Math.Pow(Beta1, t);
        double biasCorrection2 = 1.0 - Math.Pow(Beta2, t);
        double stepSize = LearningRate / biasCorrection1;
        double biasCorrection2Sqrt = Math.Sqrt(biasCorrection2);
        const int block = 256;
        var grid = (int)Math.Clamp((n + block - 1L) / block, 1, 65535);
        var device = Parameters.Device;
        device.Launch(_kernel, grid, block, 0, values.Pointer, Parameters.FlatGrads.Pointer, Parameters.FlatFirstMoments.Pointer,
                      Parameters.FlatSecondMoments.Pointer, (float)(1.0 - Beta1), (float)Beta2, (float)(1.0 - Beta2), (float)Epsilon,
                      (float)WeightDecay, (float)stepSize, (float)biasCorrection2Sqrt, n);
        StepCount = t;
    }

    private static void CheckLearningRate(double value)
    {
        if (!(value >= 0 && double.IsFinite(value)))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), value, "adam: learning rate must be finite and >= 0");
    }
}
