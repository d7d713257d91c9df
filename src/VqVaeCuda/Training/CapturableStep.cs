using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Models;
using VqVaeCuda.Optim;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Training;

/// <summary>What a run of captured or eager steps added up since the last <see cref="CapturableStep.ReadInterval"/>.</summary>
/// <param name="Steps">Steps run in the interval.</param>
/// <param name="ReconstructionMseSum">Σ of the steps' reconstruction losses (summed in double, in step order).</param>
/// <param name="CodebookLossSum">Σ of the codebook losses.</param>
/// <param name="CommitmentLossSum">Σ of the commitment losses.</param>
/// <param name="Counts">Per code, how many vectors chose it over the interval.</param>
/// <param name="NonFiniteSteps">Steps whose losses or gradient norm were not finite.</param>
/// <param name="FirstNonFiniteStep">The first of those (0 when none).</param>
public sealed record StepInterval(int Steps, double ReconstructionMseSum, double CodebookLossSum, double CommitmentLossSum, int[] Counts,
                                  int NonFiniteSteps, int FirstNonFiniteStep);

/// <summary>
/// The VQ-VAE training step in the shape a CUDA graph can capture (DESIGN.md, "One step, two shapes"): zero the
/// gradients, forward, loss, backward, clip, Adam, EMA codebook update — with nothing read back to the host and
/// nothing copied from it inside the step. What the eager loop (<see cref="VqVaeTrainer.TrainStep"/>) reads after
/// each step stays on the device instead: the losses and the gradient norm's finiteness accumulate in device
/// counters, the quantizer's per-code counts and last-use steps in device arrays, and Adam's per-step scalars and the
/// step number are read from a small schedule the host writes before each step. The host reads the accumulators
/// with <see cref="ReadInterval"/> (at log intervals); dead-code restarts and evaluation run between steps.
/// <para>
/// Every step allocates the same arena tensors in the same order, so its addresses do not change: a graph captured
/// once replays the step with the next batch copied into <see cref="Input"/>. Where the device cannot capture (the
/// cpu device, or a failed capture) the same step runs eagerly, launch by launch — the same kernels with the same
/// arguments, so the same bits as the eager loop.
/// </para>
/// </summary>
public sealed class CapturableStep : IDisposable
{
    private const int StepIndexSlot = Adam.ScheduleLength;  // the int step number sits after Adam's floats
    private readonly VqVae _model;
    private readonly Adam _adam;
    private readonly Arena _arena;
    private readonly float _maxGradNorm;
    private readonly Shape _inputShape;
    private readonly Tensor _schedule, _one, _intervalCounts, _lastUsed, _nonFinite;
    private readonly DeviceBuffer _sums;  // double[4]: three loss sums and the step count
    private readonly int _codes;
    private CapturedGraph? _graph;
    private string? _captureFailure;
    private int _eagerRuns;

    /// <param name="model">The model, in training mode.</param>
    /// <param name="adam">Its optimizer (over the whole model).</param>
    /// <param name="arena">The per-step arena; the step resets it and allocates its activations there.</param>
    /// <param name="batchSize">Images per step: every batch must have this many (a graph's shapes are fixed).</param>
    /// <param name="maxGradNorm">Global gradient-norm clipping, 0 for none (the norm is still computed: its finiteness is checked).</param>
    public CapturableStep(VqVae model, Adam adam, Arena arena, int batchSize, float maxGradNorm)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(adam);
        ArgumentNullException.ThrowIfNull(arena);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        _model = model;
        _adam = adam;
        _arena = arena;
        _maxGradNorm = maxGradNorm;
        var c = model.Config;
        _inputShape = new Shape(batchSize, c.InputChannels, c.ImageSize, c.ImageSize);
        _codes = model.Quantizer.CodebookSize;
        var device = model.Device;
        _schedule = Tensor.Allocate(device, new Shape(StepIndexSlot + 1));
        _one = Tensor.Allocate(device, new Shape(1));  // the loss is [1]
        _one.CopyFrom([1f]);
        _intervalCounts = Tensor.Allocate(device, new Shape(_codes), DType.Int32);
        _lastUsed = Tensor.Allocate(device, new Shape(_codes), DType.Int32);
        _nonFinite = Tensor.Allocate(device, new Shape(2), DType.Int32);
        _sums = device.Allocate(4 * sizeof(double));
        ResetAccumulators();
        PushCodeLastUsed();
    }

    /// <summary>The batch tensor of the step; <see cref="Run"/> copies each batch into it.</summary>
    public Tensor? Input { get; private set; }

    /// <summary>The last step's encoder output z_e (an arena tensor, valid until the arena is next used): what dead-code restarts draw from.</summary>
    public Tensor? EncoderOutput { get; private set; }

    /// <summary>How the steps run: "launch by launch (...)" with the reason, or as a replayed CUDA graph.</summary>
    public string Execution =>
        _graph is not null ? $"one captured graph per step, replayed ({_graph.OperationCount} operations)"
        : _captureFailure is not null ? $"launch by launch: the capture failed ({_captureFailure})"
        : !Capture ? "launch by launch (capture turned off)"
        : _model.Device is not IGraphCapture ? $"launch by launch ({_model.Device.Name} cannot capture)"
        : "launch by launch (captured from the second step on)";

    /// <summary>Kernel launches and GEMM calls of one step, counted on the last eager run (0 before the first).</summary>
    public long LaunchesPerStep { get; private set; }

    /// <summary>
    /// One training step on <paramref name="pixels"/> ([batch, C, H, W] row-major, the constructor's batch size) as step
    /// number <paramref name="step"/>: writes the schedule, copies the batch in, runs the step, and counts Adam's step.
    /// The first step runs launch by launch (it loads every kernel and sizes nothing new after); on a device that can
    /// capture (<see cref="IGraphCapture"/>) the second is captured and every step from then on replays that graph.
    /// A capture that fails is reported in <see cref="Execution"/> and the steps run launch by launch.
    /// </summary>
    public void Run(ReadOnlySpan<float> pixels, int step)
    {
        if (pixels.Length != _inputShape.Count)
            throw new ArgumentException($"a batch of {pixels.Length} floats for a step over {_inputShape} ({_inputShape.Count} floats)");
        WriteSchedule(step);
        if (_graph is not null)
        {
            Input!.CopyFrom(pixels);
            _graph.Launch();
        }
        else if (_eagerRuns > 0 && Capture && _model.Device is IGraphCapture capture && _captureFailure is null)
        {
            PrepareInput(pixels);
            CaptureBody(capture, step);
            if (_graph is not null) _graph.Launch();
            else RunEagerly(pixels);  // the failed capture ran nothing
        }
        else
        {
            RunEagerly(pixels);
        }
        _adam.StepCount++;
    }

    /// <summary>Whether <see cref="Run"/> captures the step where the device can (default true; false keeps every step launch by launch).</summary>
    public bool Capture { get; init; } = true;

    /// <summary>Whether the steps now replay a captured graph.</summary>
    public bool IsCaptured => _graph is not null;

    /// <summary>Operations (launches, GEMMs, copies, fills) in the captured graph; 0 before a capture.</summary>
    public int CapturedOperations => _graph?.OperationCount ?? 0;

    private void RunEagerly(ReadOnlySpan<float> pixels)
    {
        var device = _model.Device;
        long before = device.KernelLaunches + device.GemmCalls;
        PrepareInput(pixels);
        Body();
        LaunchesPerStep = device.KernelLaunches + device.GemmCalls - before;
        _eagerRuns++;
    }

    private void PrepareInput(ReadOnlySpan<float> pixels)
    {
        _arena.Reset();
        Input = new OpContext(_arena).NewTensor(_inputShape, purpose: "batch");
        Input.CopyFrom(pixels);
    }

    // Records the step instead of running it. Anything the contract refuses (a host read, an allocation, a kernel loaded
    // for the first time) or a failed launch ends the capture; the reason is kept and the steps go on launch by launch.
    private void CaptureBody(IGraphCapture capture, int step)
    {
        try
        {
            capture.BeginCapture();
            Body();
            _graph = capture.EndCapture();
        }
        catch (Exception e)
        {
            // Whatever ended the capture, the step is then run launch by launch: an error of the step itself (not of
            // capturing) shows up there, from the eager run, as it would without capture.
            if (capture.IsCapturing)
            {
                try { capture.EndCapture().Dispose(); }
                catch (Exception) { /* the capture was already invalid: the reason kept is the first failure */ }
            }
            _captureFailure = $"at step {step}: {e.Message}";
        }
    }

    /// <summary>Reads and clears what the steps since the last call accumulated, and brings the quantizer's last-use record up to date.</summary>
    public StepInterval ReadInterval()
    {
        var device = _model.Device;
        var sums = new double[4];
        device.CopyToHost<double>(_sums.Pointer, sums);
        var nonFinite = _nonFinite.ToIntArray();
        var counts = _intervalCounts.ToIntArray();
        _model.Quantizer.LoadCodeLastUsed(_lastUsed.ToIntArray());
        ResetAccumulators();
        return new StepInterval((int)sums[3], sums[0], sums[1], sums[2], counts, nonFinite[0], nonFinite[1]);
    }

    /// <summary>Sends the quantizer's last-use record to the device (after dead-code restarts changed it on the host).</summary>
    public void PushCodeLastUsed() => _lastUsed.CopyFrom(_model.Quantizer.CodeLastUsed.ToArray());

    // The step itself: launches only (no host reads, no copies from the host, no allocation beyond the arena).
    private void Body()
    {
        var device = _model.Device;
        _adam.ZeroGrad();
        var tape = new Tape(_arena);
        var ctx = new OpContext(_arena, tape);
        var output = _model.Forward(ctx, Input!);
        var loss = VqVae.ReconstructionLoss(ctx, Input!, output);
        tape.Backward(loss, _one);  // the seed gradient is a device-to-device copy of 1: Backward(loss) would copy it from the host
        var plain = new OpContext(_arena);
        var norm = _maxGradNorm > 0
            ? GradientClipping.ClipByGlobalNorm(plain, _model.ParameterStore, _maxGradNorm)
            : GradientClipping.GlobalNorm(plain, _model.ParameterStore.FlatGrads);
        var stepIndex = _schedule.Pointer.OffsetFloats(StepIndexSlot);
        TrainingStepKernels.Accumulate(device, loss.Pointer, output.Quantized.CodebookLoss.Pointer, output.Quantized.CommitmentLoss.Pointer,
                                       norm.Pointer, stepIndex, _sums.Pointer, _nonFinite.Pointer);
        _adam.StepFromSchedule(_schedule);
        _model.Quantizer.UpdateCodebook(plain, output.EncoderOutput, output.Quantized);
        TrainingStepKernels.Usage(device, output.Quantized.Counts.Pointer, stepIndex, _intervalCounts.Pointer, _lastUsed.Pointer, _codes);
        EncoderOutput = output.EncoderOutput;
    }

    private void WriteSchedule(int step)
    {
        _adam.WriteSchedule(_schedule);
        _model.Device.CopyToDevice<int>([step], _schedule.Pointer.OffsetFloats(StepIndexSlot));
    }

    private void ResetAccumulators()
    {
        var device = _model.Device;
        device.FillBytes(_sums.Pointer, 0, _sums.Bytes);
        device.FillBytes(_nonFinite.Pointer, 0, _nonFinite.Bytes);
        device.FillBytes(_intervalCounts.Pointer, 0, _intervalCounts.Bytes);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _graph?.Dispose();
        _schedule.Dispose();
        _one.Dispose();
        _intervalCounts.Dispose();
        _lastUsed.Dispose();
        _nonFinite.Dispose();
        _sums.Dispose();
    }
}
