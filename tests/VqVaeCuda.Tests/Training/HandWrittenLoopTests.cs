using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Data;
using VqVaeCuda.Models;
using VqVaeCuda.Optim;
using VqVaeCuda.Tensors;
using VqVaeCuda.Training;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Training;

/// <summary>The trainer is the plain loop a host writes with the public modules, optimizer and quantizer calls.</summary>
public class HandWrittenLoopTests(DeviceKind kind) : DeviceSpecification(kind)
{
    [Test]
    public void A_hand_written_loop_equals_the_trainer_bit_for_bit_over_50_steps_with_dead_code_restarts()
    {
        using var device = Open();
        var config = VqVaeConfig.Preset("tiny");
        var train = SyntheticShapes.Generate(96, seed: 31);
        var test = SyntheticShapes.Generate(16, seed: 32, firstIndex: 96);
        const int steps = 50, seed = 7, deadAfter = 3;
        var options = new TrainingOptions
        {
            Steps = steps, BatchSize = 16, LearningRate = 1e-3, Seed = seed, DeadCodeSteps = deadAfter, MaxGradNorm = 0.5f,
            LogEvery = 10, EvaluateEvery = 0, CheckpointEvery = 0,
        };
        using var trainer = new VqVaeTrainer(new VqVae(device, config, seed: seed), train, test, options, runDirectory: null);
        var trainerLosses = Enumerable.Range(0, steps).Select(_ => trainer.TrainStep()).ToList();

        // The loop of the README and tools/ExampleHost.
        using var model = new VqVae(device, config, seed: seed);
        using var adam = new Adam(model.Parameters(), learningRate: 1e-3);
        using var loader = new BatchLoader(train, new BatchLoaderOptions { BatchSize = 16, Seed = seed, DropLast = true });
        using var arena = new Arena(device, 64L << 20);
        var loopLosses = new List<StepLosses>();
        int restarted = 0;
        for (int step = 1; step <= steps; step++)
        {
            if (!loader.TryNext(out var batch) && !loader.TryNext(out batch)) Assert.Fail("no batch");
            arena.Reset();
            adam.ZeroGrad();
            var tape = new Tape(arena);
            var ctx = new OpContext(arena, tape);
            var x = ctx.NewTensor(new Shape(batch.Size, batch.Channels, batch.Height, batch.Width));
            x.CopyFrom(batch.Pixels);
            loader.Recycle(batch);
            var output = model.Forward(ctx, x);
            var loss = VqVae.ReconstructionLoss(ctx, x, output);
            tape.Backward(loss);
            GradientClipping.ClipByGlobalNorm(new OpContext(arena), model.ParameterStore, 0.5f);
            adam.Step();
            model.Quantizer.UpdateCodebook(new OpContext(arena), output.EncoderOutput, output.Quantized);
            var usage = model.Quantizer.RecordUsage(output.Quantized.Counts.ToIntArray(), step);
            restarted += model.Quantizer.RestartDeadCodes(output.EncoderOutput, step, deadAfter, seed);
            loopLosses.Add(new StepLosses(step, loss.ToArray()[0], output.Quantized.CodebookLoss.ToArray()[0],
                                          output.Quantized.CommitmentLoss.ToArray()[0], usage.CodesUsed));
        }

        Assert.That(restarted, Is.GreaterThan(0), "dead-code restarts took part");
        Assert.That(loopLosses, Is.EqualTo(trainerLosses), "every step's losses and codes used, bit for bit");
        var expected = trainer.Model.StateDict();
        foreach (var (name, t) in model.StateDict())
            Assert.That(t.ToArray(), Is.EqualTo(expected[name].ToArray()), name);
        var expectedMoments = trainer.Optimizer.StateDict();
        foreach (var (name, t) in adam.StateDict())
            Assert.That(t.ToArray(), Is.EqualTo(expectedMoments[name].ToArray()), name);
        Assert.That(model.Quantizer.CodeLastUsed, Is.EqualTo(trainer.Model.Quantizer.CodeLastUsed));
    }
}
