using System.Globalization;
using VqVaeCuda.Checkpoints;
using VqVaeCuda.Data;
using VqVaeCuda.Training;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Training;

/// <summary>
/// Checkpoints of the first format (Fixtures/README.md: written by the code before the module layer) still
/// load and resume: like the run that wrote them (to float rounding: see below), and bit for bit like the same
/// state saved in today's format, which stores optimizer state per parameter.
/// </summary>
[TestFixture, Category("Cpu")]
public class CheckpointCompatibilityTests
{
    private static string Fixture(string name) => Path.Combine(TestContext.CurrentContext.TestDirectory, "Fixtures", name);

    // The fixture run's data (Fixtures/README.md): the shapes were then always drawn in the varied style.
    private static (ImageDataset Train, ImageDataset Test) FixtureData() =>
        (SyntheticShapes.Generate(64, seed: 21, style: ShapeStyle.Varied), SyntheticShapes.Generate(16, seed: 22, firstIndex: 64, style: ShapeStyle.Varied));

    private static StepLosses[] FixtureLosses() =>
        File.ReadAllLines(Fixture("vqvae-format1-losses.txt")).Select(line =>
        {
            var f = line.Split(' ');
            return new StepLosses(int.Parse(f[0], CultureInfo.InvariantCulture), double.Parse(f[1], CultureInfo.InvariantCulture),
                                  double.Parse(f[2], CultureInfo.InvariantCulture), double.Parse(f[3], CultureInfo.InvariantCulture),
                                  int.Parse(f[4], CultureInfo.InvariantCulture));
        }).ToArray();

    // The fixture run's numbers were computed by the code of its day. Since then the cpu device's summation orders
    // have changed on purpose (2026-12-01, kernels/NOTES.md: the bias gradient a thread per channel, col2im a thread
    // per plane, the two-pass reductions 64 elements a thread, the nearest code by GEMM), so today's continuation
    // agrees with the original run to float rounding, not bit for bit: measured after the first of those changes,
    // parameters within 1.5e-8 and Adam moments within 7e-6 relative after 3 steps; the bounds below are ~10x that
    // and still hold. Bit-exact resume within today's code is the next test and the trainer's.
    private const double LossTolerance = 1e-5;         // relative
    private const double ParameterTolerance = 2e-7;    // absolute, weights and EMA statistics of ~0.01–1
    private const double MomentTolerance = 1e-4;       // relative, Adam moments (plus 1e-12 absolute for the ~0 ones)

    [Test]
    public void A_format_1_checkpoint_resumes_like_the_run_that_wrote_it()
    {
        using var device = TestDevices.Cpu();
        var (train, test) = FixtureData();
        using var trainer = VqVaeTrainer.Resume(device, Fixture("vqvae-format1-step5.safetensors"), train, test, null, runDirectory: null);
        Assert.That(trainer.Step, Is.EqualTo(5));
        Assert.That(trainer.Optimizer.StepCount, Is.EqualTo(5));
        var resumed = Enumerable.Range(0, 3).Select(_ => trainer.TrainStep()).ToArray();
        var original = FixtureLosses()[5..8];
        for (int i = 0; i < 3; i++)
        {
            string step = $"step {original[i].Step}";
            Assert.That(resumed[i].Step, Is.EqualTo(original[i].Step));
            Assert.That(resumed[i].CodesUsed, Is.EqualTo(original[i].CodesUsed), $"{step}: codes used");
            Assert.That(resumed[i].ReconstructionMse, Is.EqualTo(original[i].ReconstructionMse).Within(LossTolerance * 100).Percent, $"{step}: reconstruction");
            Assert.That(resumed[i].CodebookLoss, Is.EqualTo(original[i].CodebookLoss).Within(LossTolerance * 100).Percent, $"{step}: codebook loss");
            Assert.That(resumed[i].CommitmentLoss, Is.EqualTo(original[i].CommitmentLoss).Within(LossTolerance * 100).Percent, $"{step}: commitment");
        }

        // The step-8 checkpoint of the original run: every weight, EMA statistic and Adam moment.
        var step8 = VqVaeCheckpoint.Load(Fixture("vqvae-format1-step8.safetensors"), device);
        using var model8 = step8.Model;
        using var moments8 = step8.OptimizerState!;
        var expected = model8.StateDict();
        var actual = trainer.Model.StateDict();
        Assert.That(actual.Keys, Is.EqualTo(expected.Keys));
        foreach (var (name, t) in expected) Assert.That(actual[name].ToArray(), Is.EqualTo(t.ToArray()).Within(ParameterTolerance), name);
        foreach (var (name, t) in trainer.Optimizer.StateDict())
        {
            var (a, e) = (t.ToArray(), moments8[name].ToArray());
            for (int i = 0; i < a.Length; i++)
                Assert.That(Math.Abs(a[i] - e[i]), Is.LessThanOrEqualTo(MomentTolerance * Math.Abs(e[i]) + 1e-12), $"{name}[{i}]");
        }
        Assert.That(trainer.Model.Quantizer.CodeLastUsed, Is.EqualTo(model8.Quantizer.CodeLastUsed));
    }

    [Test]
    public void A_format_1_checkpoint_saved_as_format_2_resumes_bit_for_bit_like_the_original_file()
    {
        using var device = TestDevices.Cpu();
        var (train, test) = FixtureData();
        var converted = Path.Combine(Path.GetTempPath(), $"vqvae-format1-as-2-{Guid.NewGuid():N}.safetensors");
        try
        {
            using (var fromFormat1 = VqVaeTrainer.Resume(device, Fixture("vqvae-format1-step5.safetensors"), train, test, null, runDirectory: null))
                fromFormat1.SaveCheckpoint(converted);
            using var a = VqVaeTrainer.Resume(device, Fixture("vqvae-format1-step5.safetensors"), train, test, null, runDirectory: null);
            using var b = VqVaeTrainer.Resume(device, converted, train, test, null, runDirectory: null);
            var lossesA = Enumerable.Range(0, 3).Select(_ => a.TrainStep()).ToArray();
            var lossesB = Enumerable.Range(0, 3).Select(_ => b.TrainStep()).ToArray();
            Assert.That(lossesB, Is.EqualTo(lossesA), "steps 6 to 8, bit for bit");
            foreach (var (name, t) in a.Model.StateDict()) Assert.That(b.Model.StateDict()[name].ToArray(), Is.EqualTo(t.ToArray()), name);
            foreach (var (name, t) in a.Optimizer.StateDict()) Assert.That(b.Optimizer.StateDict()[name].ToArray(), Is.EqualTo(t.ToArray()), name);
            Assert.That(b.Model.Quantizer.CodeLastUsed, Is.EqualTo(a.Model.Quantizer.CodeLastUsed));
        }
        finally
        {
            File.Delete(converted);
        }
    }

    [Test]
    public void A_checkpoint_stores_optimizer_state_per_parameter_under_its_module_path()
    {
        using var device = TestDevices.Cpu();
        var (train, test) = FixtureData();
        using var trainer = VqVaeTrainer.Resume(device, Fixture("vqvae-format1-step5.safetensors"), train, test, null, runDirectory: null);
        var path = Path.Combine(Path.GetTempPath(), $"vqvae-format2-{Guid.NewGuid():N}.safetensors");
        try
        {
            trainer.SaveCheckpoint(path);
            var (tensors, metadata) = Safetensors.Read(path);
            Assert.That(metadata["format"], Is.EqualTo(VqVaeCheckpoint.Format));
            var weight = tensors["encoder.conv1.weight"];
            foreach (var moment in new[] { "exp_avg", "exp_avg_sq" })
            {
                var t = tensors[$"optimizer.state.encoder.conv1.weight.{moment}"];
                Assert.That(t.Shape, Is.EqualTo(weight.Shape), moment);
                Assert.That(t.ToFloats(), Is.EqualTo(trainer.Optimizer.StateDict()[$"state.encoder.conv1.weight.{moment}"].ToArray()));
            }
            Assert.That(tensors.Keys, Does.Not.Contain("optimizer.exp_avg"), "no flat format-1 arrays");
            Assert.That(tensors.Keys.Count(k => k.StartsWith("optimizer.state.", StringComparison.Ordinal)),
                        Is.EqualTo(2 * trainer.Model.Parameters().Count()));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
