using VqVaeCuda.Autodiff;
using VqVaeCuda.Models;
using VqVaeCuda.Ops;
using VqVaeCuda.Optim;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Training;

/// <summary>The points of <see cref="VqVaeStep"/> at which it reports a section done (the step benchmark's profiler marks).</summary>
internal enum VqVaeStepSection
{
    /// <summary>The gradients zeroed and the batch uploaded.</summary>
    BatchUploaded,
    /// <summary>The gradient norm (clipped when asked) and the losses, norm and code counts read back.</summary>
    ReadBack,
    /// <summary>Adam's step.</summary>
    Adam,
    /// <summary>The EMA codebook update (nothing under the loss-based update).</summary>
    CodebookUpdate,
    /// <summary>The usage record and dead-code restarts.</summary>
    CodeUsage,
}

/// <summary>
/// What <see cref="VqVaeStep.Compute"/> leaves for <see cref="VqVaeStep.Apply"/>: the step's tensors (alive in the arena
/// until the next step resets it) and its read-back figures.
/// </summary>
/// <param name="Input">The batch as uploaded.</param>
/// <param name="Output">The forward's outputs.</param>
/// <param name="ReconstructionMse">The reconstruction loss.</param>
/// <param name="CodebookLoss">The quantizer's codebook loss.</param>
/// <param name="CommitmentLoss">Its commitment loss (before β).</param>
/// <param name="GradientNorm">The global gradient norm (before clipping).</param>
/// <param name="Counts">Vectors assigned to each code.</param>
internal sealed record ComputedVqVaeStep(Tensor Input, VqVaeOutput Output, float ReconstructionMse, float CodebookLoss, float CommitmentLoss,
                                         float GradientNorm, int[] Counts);

/// <summary>
/// The VQ-VAE training step in its one order, written once: zero the gradients, upload the batch, forward, loss,
/// backward, the gradient norm (clipping by it when asked) and the losses, norm and code counts read back
/// (<see cref="Compute"/>); then, when the caller accepts the step, Adam, the EMA codebook update, the usage record and
/// dead-code restarts (<see cref="Apply"/>). Between the two the trainer checks the figures (a non-finite step is
/// never applied). The trainer, its non-finite re-run and the step benchmark run it; <see cref="CapturableStep"/> is
/// the same step shaped for a graph (nothing read back inside it), held to the same bits by CapturableStepTests.
/// </summary>
internal sealed class VqVaeStep(VqVae model, Adam adam, Arena arena)
{
    /// <summary>Told as each section ends (the step benchmark marks its profile there).</summary>
    public Action<VqVaeStepSection>? SectionDone { get; init; }

    /// <summary>
    /// Forward, loss and backward on <paramref name="pixels"/> (<paramref name="shape"/>), the gradient norm — clipping
    /// to <paramref name="maxGradNorm"/> when it is positive — and the figures read back. The arena is reset first.
    /// </summary>
    public ComputedVqVaeStep Compute(ReadOnlySpan<float> pixels, Shape shape, float maxGradNorm, IOpObserver? observer = null)
    {
        arena.Reset();
        adam.ZeroGrad();
        var tape = new Tape(arena);
        var ctx = new OpContext(arena, tape) { Observer = observer };
        var x = ctx.NewTensor(shape, purpose: "batch");
        x.CopyFrom(pixels);
        SectionDone?.Invoke(VqVaeStepSection.BatchUploaded);

        var output = model.Forward(ctx, x);
        var loss = VqVae.ReconstructionLoss(ctx, x, output);
        tape.Backward(loss);  // each op reports itself to the observer

        // The gradient norm (the clipping's own, else one reduction) and the losses are read before Adam's step, so a
        // non-finite step is caught before it reaches the weights.
        var plain = new OpContext(arena);
        var norm = maxGradNorm > 0
            ? GradientClipping.ClipByGlobalNorm(plain, model.ParameterStore, maxGradNorm)
            : GradientClipping.GlobalNorm(plain, model.ParameterStore.FlatGrads);
        var counts = output.Quantized.Counts.ToIntArray();
        var computed = new ComputedVqVaeStep(x, output, loss.ToArray()[0], output.Quantized.CodebookLoss.ToArray()[0],
                                             output.Quantized.CommitmentLoss.ToArray()[0], norm.ToArray()[0], counts);
        SectionDone?.Invoke(VqVaeStepSection.ReadBack);
        return computed;
    }

    /// <summary>
    /// Applies a computed step: Adam, the EMA codebook update, then the quantizer's usage record for step
    /// <paramref name="step"/> (the step's number once applied) and its dead-code restarts after
    /// <paramref name="deadCodeSteps"/> unused steps (0: none), seeded by <paramref name="seed"/>.
    /// </summary>
    public void Apply(ComputedVqVaeStep computed, int step, int deadCodeSteps, int seed)
    {
        adam.Step();
        SectionDone?.Invoke(VqVaeStepSection.Adam);
        model.Quantizer.UpdateCodebook(new OpContext(arena), computed.Output.EncoderOutput, computed.Output.Quantized);
        SectionDone?.Invoke(VqVaeStepSection.CodebookUpdate);
        model.Quantizer.RecordUsage(computed.Counts, step);
        if (deadCodeSteps > 0) model.Quantizer.RestartDeadCodes(computed.Output.EncoderOutput, step, deadCodeSteps, seed);
        SectionDone?.Invoke(VqVaeStepSection.CodeUsage);
    }
}
