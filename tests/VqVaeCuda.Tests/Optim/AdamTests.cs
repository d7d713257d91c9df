using VqVaeCuda.Device;
using VqVaeCuda.Optim;
using VqVaeCuda.Tensors;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Optim;

/// <summary>Optim.Adam (kernels/adam.cu) against a C# transcription of torch.optim.Adam's update, in double.</summary>
public class AdamTests(DeviceKind kind) : DeviceSpecification(kind)
{
    /// <summary>torch.optim.Adam, single-tensor path, amsgrad=False: one step on flat arrays.</summary>
    private sealed class ReferenceAdam(double lr, double beta1, double beta2, double eps, double weightDecay, int n)
    {
        private readonly double[] _m = new double[n], _v = new double[n];
        private int _t;

        public void Step(double[] theta, float[] grad)
        {
            _t++;
            double bc1 = 1 - Math.Pow(beta1, _t), bc2 = 1 - Math.Pow(beta2, _t);
            double stepSize = lr / bc1, bc2Sqrt = Math.Sqrt(bc2);
            for (int i = 0; i < n; i++)
            {
                double g = grad[i] + weightDecay * theta[i];       // grad = grad.add(param, alpha=weight_decay)
                _m[i] += (1 - beta1) * (g - _m[i]);               // exp_avg.lerp_(grad, 1 - beta1)
                _v[i] = beta2 * _v[i] + (1 - beta2) * g * g;      // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                double denom = Math.Sqrt(_v[i]) / bc2Sqrt + eps;  // (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
                theta[i] -= stepSize * _m[i] / denom;             // param.addcdiv_(exp_avg, denom, value=-step_size)
            }
        }

        public double[] M => _m;
        public double[] V => _v;
    }

    internal static ParameterStore Store(IDevice device, int seed)
    {
        var store = new ParameterStore(device);
        store.Declare("encoder.conv.weight", new Shape(4, 3, 3, 3), Initializer.Uniform(1f));
        store.Declare("encoder.conv.bias", new Shape(4), Initializer.Uniform(0.5f));
        store.Declare("codebook", new Shape(10, 7), Initializer.Uniform(1f));
        store.Allocate(seed);
        return store;
    }

    /// <summary>The parameters' elements in declaration order (store padding skipped).</summary>
    private static float[] Gather(ParameterStore store, Func<Parameter, Tensor> pick) => store.Parameters.SelectMany(p => pick(p).ToArray()).ToArray();

    private static void Scatter(ParameterStore store, float[] values)
    {
        int at = 0;
        foreach (var p in store.Parameters)
        {
            p.Grad.CopyFrom(values.AsSpan(at, (int)p.Shape.Count));
            at += (int)p.Shape.Count;
        }
    }

    private static void AssertRelative(float[] actual, double[] expected, string what)
    {
        for (int i = 0; i < actual.Length; i++)
            Assert.That(actual[i], Is.EqualTo(expected[i]).Within(1e-6 * Math.Max(Math.Abs(expected[i]), 1e-2)), $"{what}[{i}]");
    }

    private static void AssertRelativeToScale(float[] actual, double[] expected, string what)
    {
        double scale = expected.Max(Math.Abs);
        for (int i = 0; i < actual.Length; i++)
            Assert.That(actual[i], Is.EqualTo(expected[i]).Within(1e-6 * scale), $"{what}[{i}]");
    }

    [TestCase(2e-4, 0.0)]
    [TestCase(1e-2, 0.0)]
    [TestCase(1e-2, 0.05)]
    [TestCase(3e-3, 1e-4)]
    public void Several_steps_equal_pytorchs_adam(double lr, double weightDecay)
    {
        using var device = Open();
        using var store = Store(device, seed: TestData.Random.Next());
        var adam = new Adam(store, learningRate: lr, weightDecay: weightDecay);
        var theta = Gather(store, p => p.Value).Select(v => (double)v).ToArray();
        var reference = new ReferenceAdam(lr, 0.9, 0.999, 1e-8, weightDecay, theta.Length);
        for (int step = 1; step <= 6; step++)
        {
            // Gradients of changing scale, some tiny (where eps matters) and some large.
            var grad = TestData.Floats(theta.Length).Select((g, i) => g * (i % 5 == 0 ? 1e-6f : step)).ToArray();
            Scatter(store, grad);
            adam.Step();
            reference.Step(theta, grad);
            Assert.That(adam.StepCount, Is.EqualTo(step));
            AssertRelative(Gather(store, p => p.Value), theta, $"θ after step {step}");
        }
        var m = Gather(store, adam.FirstMoment);
        var v = Gather(store, adam.SecondMoment);
        // The moments are sums of terms larger than themselves (cancellation): compare them to their buffer's scale.
        AssertRelativeToScale(m, reference.M, "m");
        AssertRelativeToScale(v, reference.V, "v");
    }

    [Test]
    public void The_first_step_moves_every_parameter_by_the_learning_rate_against_its_gradient_sign()
    {
        // With bias correction, m̂ / sqrt(v̂) = g / |g| at t = 1: the step is lr·sign(g) whatever the gradient's scale.
        using var device = Open();
        using var store = Store(device, seed: 7);
        var before = Gather(store, p => p.Value);
        var grad = TestData.Floats(before.Length).Select(g => g * 100f + MathF.Sign(g) * 1e-2f).ToArray();
        Scatter(store, grad);
        new Adam(store, learningRate: 1e-3).Step();
        var after = Gather(store, p => p.Value);
        for (int i = 0; i < before.Length; i++)
            Assert.That(after[i] - before[i], Is.EqualTo(-1e-3 * Math.Sign(grad[i])).Within(1e-6), $"element {i}");
    }

    [Test]
    public void Zero_gradients_without_weight_decay_leave_every_value_and_the_padding_unchanged()
    {
        using var device = Open();
        using var store = Store(device, seed: 3);
        var before = store.FlatValues.ToArray();
        var adam = new Adam(store);
        adam.Step();
        adam.Step();
        Assert.That(store.FlatValues.ToArray(), Is.EqualTo(before));
    }

    [Test]
    public void Hyperparameters_out_of_range_are_refused()
    {
        using var device = Open();
        using var store = Store(device, seed: 1);
        Assert.That(() => new Adam(store, learningRate: -1), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("learning rate"));
        Assert.That(() => new Adam(store, beta1: 1.0), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("beta1"));
        Assert.That(() => new Adam(store, beta2: -0.1), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("beta2"));
        Assert.That(() => new Adam(store, epsilon: -1e-8), Throws.TypeOf<ArgumentOutOfRangeException>());
        Assert.That(() => new Adam(store, weightDecay: double.NaN), Throws.TypeOf<ArgumentOutOfRangeException>());
        var adam = new Adam(store);
        Assert.That(adam.LearningRate, Is.EqualTo(2e-4));
        Assert.That((adam.Beta1, adam.Beta2, adam.Epsilon), Is.EqualTo((0.9, 0.999, 1e-8)));
        Assert.That(() => adam.LearningRate = double.PositiveInfinity, Throws.TypeOf<ArgumentOutOfRangeException>());
    }
}

/// <summary>Adam owns its state: per-parameter moments by name, restored exactly; subsets step per parameter.</summary>
public class AdamStateTests(DeviceKind kind) : DeviceSpecification(kind)
{
    private static ParameterStore Store(IDevice device, int seed) => AdamTests.Store(device, seed);

    private static void RandomGradients(ParameterStore store, int seed)
    {
        var random = new Random(seed);
        foreach (var p in store.Parameters) p.Grad.CopyFrom(Enumerable.Range(0, (int)p.Shape.Count).Select(_ => (float)random.NextDouble() - 0.5f).ToArray());
    }

    [Test]
    public void The_state_dict_names_each_moment_after_its_parameter_and_a_restored_optimizer_continues_identically()
    {
        using var device = Open();
        using var a = Store(device, 1);
        using var b = Store(device, 1);
        using var adamA = new Adam(a, learningRate: 1e-2);
        using var adamB = new Adam(b, learningRate: 1e-2);
        for (int s = 0; s < 3; s++)
        {
            RandomGradients(a, s);
            adamA.Step();
        }
        Assert.That(adamA.StateDict().Keys, Is.EqualTo(new[]
        {
            "state.encoder.conv.weight.exp_avg", "state.encoder.conv.weight.exp_avg_sq", "state.encoder.conv.bias.exp_avg",
            "state.encoder.conv.bias.exp_avg_sq", "state.codebook.exp_avg", "state.codebook.exp_avg_sq",
        }));
        Assert.That(adamA.StateDict()["state.codebook.exp_avg"].Shape, Is.EqualTo(new Shape(10, 7)));
        b.FlatValues.CopyFrom(a.FlatValues.ToArray());
        adamB.LoadStateDict(adamA.StateDict(), adamA.StepCount);
        Assert.That(adamB.StepCount, Is.EqualTo(3));
        RandomGradients(a, 9);
        RandomGradients(b, 9);
        adamA.Step();
        adamB.Step();
        Assert.That(b.FlatValues.ToArray(), Is.EqualTo(a.FlatValues.ToArray()));
    }

    [Test]
    public void Loading_moments_of_other_parameters_names_them_and_changes_nothing()
    {
        using var device = Open();
        using var store = Store(device, 1);
        using var adam = new Adam(store);
        using var wrong = Tensor.Allocate(device, new Shape(4, 3));
        var state = new StateDict();
        foreach (var (name, t) in adam.StateDict())
            if (name != "state.codebook.exp_avg_sq")
                state.Add(name, name == "state.encoder.conv.bias.exp_avg" ? wrong : t);
        state.Add("state.decoder.weight.exp_avg", wrong);
        var e = Assert.Throws<StateDictException>(() => adam.LoadStateDict(state, 5))!;
        Assert.That(e.Message, Does.Contain("state.codebook.exp_avg_sq").And.Contain("state.decoder.weight.exp_avg")
                                   .And.Contain("state.encoder.conv.bias.exp_avg").And.Contain("[4,3]"));
        Assert.That(adam.StepCount, Is.Zero);
    }

    [Test]
    public void An_optimizer_over_some_parameters_updates_exactly_those_as_the_whole_store_optimizer_would()
    {
        using var device = Open();
        using var whole = Store(device, 2);
        using var part = Store(device, 2);
        using var adamWhole = new Adam(whole, learningRate: 1e-2);
        using var adamPart = new Adam([part["encoder.conv.weight"], part["codebook"]], learningRate: 1e-2);
        var biasBefore = part["encoder.conv.bias"].Value.ToArray();
        for (int s = 0; s < 3; s++)
        {
            RandomGradients(whole, s);
            RandomGradients(part, s);
            adamWhole.Step();
            adamPart.Step();
        }
        Assert.That(part["encoder.conv.weight"].Value.ToArray(), Is.EqualTo(whole["encoder.conv.weight"].Value.ToArray()));
        Assert.That(part["codebook"].Value.ToArray(), Is.EqualTo(whole["codebook"].Value.ToArray()));
        Assert.That(part["encoder.conv.bias"].Value.ToArray(), Is.EqualTo(biasBefore), "not an optimised parameter");
        adamPart.ZeroGrad();
        Assert.That(part["codebook"].Grad.ToArray(), Is.All.EqualTo(0f));
        Assert.That(part["encoder.conv.bias"].Grad.ToArray(), Has.Some.Not.EqualTo(0f), "ZeroGrad touches only its parameters");
    }
}
