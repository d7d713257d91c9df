using VqVaeCuda.Tensors;

namespace VqVaeCuda.Training;

/// <summary>
/// Codebook health: a code that no position has chosen for <see cref="TrainingOptions.DeadCodeSteps"/>
/// steps is moved onto a randomly chosen encoder output of the current batch, so it lands where the
/// data is and starts winning assignments again. With EMA updates its state restarts as a fresh code
/// (N_k = 1, m_k = e_k). The choice of vectors is seeded by (run seed, step): runs stay reproducible.
/// </summary>
internal static class DeadCodeRestart
{
    public static void Run(VqVaeTrainer trainer, Tensor encoderOutput, int[] lastUsed, int step)
    {
        int deadAfter = trainer.Options.DeadCodeSteps;
        var dead = Enumerable.Range(0, lastUsed.Length).Where(k => step - lastUsed[k] >= deadAfter).ToArray();
        if (dead.Length == 0) return;

        var model = trainer.Model;
        int d = model.Config.EmbeddingDim;
        int n = encoderOutput.Shape[0], hw = encoderOutput.Shape[2] * encoderOutput.Shape[3];
        var z = encoderOutput.ToArray();  // [N, D, h, w]
        // Not HashCode.Combine: its seed changes per process, and a resumed run must draw the same vectors.
        var random = new Random(unchecked(trainer.Options.Seed * 1_000_003 + step * 7_919 + 0x0DEAD));
        var codebook = model.Codebook.Value;
        var row = new float[d];
        foreach (int k in dead)
        {
            EncoderVectors.Copy(z, random.Next(n * hw), d, hw, row);
            model.Device.CopyToDevice<float>(row, codebook.Pointer.OffsetFloats((long)k * d));
            if (model.Ema is { } ema)
            {
                model.Device.CopyToDevice<float>(row, ema.EmbeddingSums.Pointer.OffsetFloats((long)k * d));
                model.Device.CopyToDevice<float>([1f], ema.ClusterSizes.Pointer.OffsetFloats(k));
            }
            lastUsed[k] = step;
        }
    }
}
