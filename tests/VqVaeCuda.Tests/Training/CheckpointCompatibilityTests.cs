using System.Globalization;
using VqVaeCuda.Checkpoints;
using VqVaeCuda.Data;
using VqVaeCuda.Training;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Training;

/// <summary>
/// Checkpoints of the first format (Fixtures/README.md: written by the code before the module layer) still
/// load and resume exactly; today's format stores optimizer state per parameter.
/// </summary>
[TestFixture, Category("Cpu")]
public class CheckpointCompatibilityTests
{
    private static string Fixture(string name) => Path.Combine(TestContext.CurrentContext.TestDirectory, "Fixtures", name);

    // The fixture run's data (Fixtures/README.md).
    private static (ImageDataset Train, ImageDataset Test) FixtureData() =>
        (SyntheticShapes.Generate(64, seed: 21), SyntheticShapes.Generate(16, seed: 22, firstIndex: 64));

    private static StepLosses[] FixtureLosses() =>
        File.ReadAllLines(Fixture("vqvae-format1-losses.txt")).Select(line =>
        {
            var f = line.Split(' ');
            return new StepLosses(int.Parse(f[0], CultureInfo.InvariantCulture), double.Parse(f[1], CultureInfo.InvariantCulture),
                                  double.Parse(f[2], CultureInfo.InvariantCulture), double.Parse(f[3], CultureInfo.InvariantCulture),
                                  int.Parse(f[4], CultureInfo.InvariantCulture));
        }).ToArray();

    [Test]
    public void A_format_1_checkpoint_resumes_to_the_same_losses_and_parameters_as_the_run_that_wrote_it()
    {
        using var device = TestDevices.Cpu();
        var (train, test) = FixtureData();
        using var trainer = VqVaeTrainer.Resume(device, Fixture("vqvae-format1-step5.safetensors"), train, test, null, runDirectory: null);
        Assert.That(trainer.Step, Is.EqualTo(5));
        Assert.That(trainer.Optimizer.StepCount, Is.EqualTo(5));
        var resumed = Enumerable.Range(0, 3).Select(_ => trainer.TrainStep()).ToArray();
        Assert.That(resumed, Is.EqualTo(FixtureLosses()[5..8]), "steps 6 to 8, bit for bit");

        // The step-8 checkpoint of the original run: every weight, EMA statistic and Adam moment.
        var step8 = VqVaeCheckpoint.Load(Fixture("vqvae-format1-step8.safetensors"), device);
        using var model8 = step8.Model;
        using var moments8 = step8.OptimizerState!;
        var expected = model8.StateDict();
        var actual = trainer.Model.StateDict();
        Assert.That(actual.Keys, Is.EqualTo(expected.Keys));
        foreach (var (name, t) in expected) Assert.That(actual[name].ToArray(), Is.EqualTo(t.ToArray()), name);
        foreach (var (name, t) in trainer.Optimizer.StateDict()) Assert.That(t.ToArray(), Is.EqualTo(moments8[name].ToArray()), name);
        Assert.That(trainer.Model.Quantizer.CodeLastUsed, Is.EqualTo(model8.Quantizer.CodeLastUsed));
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
