using System.Diagnostics;
using VqVaeCuda.Checkpoints;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Training;

/// <summary>The `vqvae` command end to end on the built-in data, in process.</summary>
[TestFixture, Category("Cpu"), NonParallelizable]
public class CliTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        TestDevices.Cpu().Dispose();  // skip (or fail under CI) without the CPU library
        Directory.CreateDirectory(_dir = Path.Combine(Path.GetTempPath(), "vqvae-cli-" + Guid.NewGuid().ToString("N")));
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    private static int Vqvae(params string[] args) => VqVaeCuda.Cli.Program.Main(args);

    [Test]
    public void Train_then_reconstruct_encode_and_decode()
    {
        var run = Path.Combine(_dir, "run");
        Assert.That(Vqvae("train", "--device", "cpu", "--steps", "8", "--batch", "16", "--log-every", "4", "--out", run), Is.Zero);
        var checkpoint = Path.Combine(run, "latest.safetensors");
        Assert.That(File.Exists(checkpoint));
        Assert.That(File.Exists(Path.Combine(run, "reconstructions.png")));

        var rec = Path.Combine(_dir, "rec");
        Assert.That(Vqvae("reconstruct", "-c", checkpoint, "--device", "cpu", "--count", "5", "--out", rec), Is.Zero);
        var (tensors, _) = Safetensors.Read(Path.Combine(rec, "reconstruction.safetensors"));
        Assert.That(tensors.Keys, Is.EquivalentTo(new[] { "inputs", "z_e", "codes", "z_q", "reconstruction" }));
        Assert.That(tensors["codes"].Shape, Is.EqualTo(new long[] { 5, 7, 7 }));

        var codes = Path.Combine(_dir, "codes.safetensors");
        Assert.That(Vqvae("encode", "-c", checkpoint, "--device", "cpu", "--split", "test", "--out", codes), Is.Zero);
        var encoded = Safetensors.Read(codes).Tensors;
        Assert.That(encoded["codes"].Shape, Is.EqualTo(new long[] { 1000, 7, 7 }));
        Assert.That(encoded["labels"].Shape, Is.EqualTo(new long[] { 1000 }));
        // The code maps of `encode` equal those of `reconstruct` for the same images.
        Assert.That(encoded["codes"].ToInts()[..(5 * 49)], Is.EqualTo(tensors["codes"].ToInts()));

        var png = Path.Combine(_dir, "decoded.png");
        Assert.That(Vqvae("decode", "-c", checkpoint, "--codes", codes, "--count", "9", "--device", "cpu", "--out", png), Is.Zero);
        Assert.That(File.Exists(png));
    }

    [Test]
    public void Resume_continues_a_run_from_its_checkpoint()
    {
        var run = Path.Combine(_dir, "run");
        Assert.That(Vqvae("train", "--device", "cpu", "--steps", "4", "--batch", "16", "--out", run), Is.Zero);
        Assert.That(Vqvae("train", "--device", "cpu", "--steps", "6", "--resume", Path.Combine(run, "latest.safetensors"), "--out", run), Is.Zero);
        var step = Safetensors.Read(Path.Combine(run, "latest.safetensors")).Metadata["step"];
        Assert.That(step, Is.EqualTo("6"));
    }

    [TestCase("--preset", "huge", "unknown preset 'huge'")]
    [TestCase("--dataset", "mnist", "mnist")]
    [TestCase("--codes", "1", "K (codebook size) = 1")]
    [TestCase("--steps", "0", "steps = 0")]
    public void Bad_input_is_refused_with_a_message_and_nothing_is_written(string option, string value, string expected)
    {
        var run = Path.Combine(_dir, "run");
        var error = new StringWriter();
        var saved = Console.Error;
        Console.SetError(error);
        try
        {
            Assert.That(Vqvae("train", "--device", "cpu", option, value, "--out", run), Is.EqualTo(1));
        }
        finally
        {
            Console.SetError(saved);
        }
        Assert.That(error.ToString(), Does.Contain(expected));
        Assert.That(Directory.Exists(run), Is.False, "no run folder for refused input");
    }

    [Test]
    public void A_missing_checkpoint_is_named()
    {
        var error = new StringWriter();
        var saved = Console.Error;
        Console.SetError(error);
        try
        {
            Assert.That(Vqvae("reconstruct", "-c", Path.Combine(_dir, "none.safetensors"), "--device", "cpu"), Is.EqualTo(1));
        }
        finally
        {
            Console.SetError(saved);
        }
        Assert.That(error.ToString(), Does.Contain("none.safetensors"));
    }
}

/// <summary>tools/ExampleHost — a C# program embedding the library — is built and run.</summary>
[TestFixture, Category("Cpu"), NonParallelizable]
public class ExampleHostTests
{
    [Test]
    public void The_example_host_builds_trains_and_reconstructs()
    {
        TestDevices.Cpu().Dispose();
        var repo = AppContext.BaseDirectory;
        while (repo is not null && !File.Exists(Path.Combine(repo, "VqVaeCuda.sln"))) repo = Path.GetDirectoryName(repo);
        Assert.That(repo, Is.Not.Null, "repository root not found above the test binaries");
        var project = Path.Combine(repo!, "tools", "ExampleHost", "ExampleHost.csproj");
        var configuration = AppContext.BaseDirectory.Contains("/Release/") ? "Release" : "Debug";

        var build = Run("dotnet", $"build \"{project}\" -c {configuration} --nologo -v q");
        Assert.That(build.ExitCode, Is.Zero, build.Output);
        var dll = Path.Combine(repo!, "tools", "ExampleHost", "bin", configuration, "net10.0", "ExampleHost.dll");
        var run = Run("dotnet", $"\"{dll}\" 20 cpu");
        Assert.That(run.ExitCode, Is.Zero, run.Output);
        Assert.That(run.Output, Does.Contain("test MSE").And.Contain("code map of image 0"));
    }

    private static (int ExitCode, string Output) Run(string file, string arguments)
    {
        var start = new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5))) process.Kill(entireProcessTree: true);
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    [Test]
    public void The_closing_line_sets_evaluation_throughput_against_training()
    {
        Assert.That(VqVaeCuda.Cli.Commands.RunControl.EvaluationSpeed(15676.3, 3383.0, "img/s"),
                    Is.EqualTo("evaluated at 15,676 img/s (4.6x the last training window's 3,383)"));
        // No training window (a run that ended before its first log line): the evaluation's figure alone.
        Assert.That(VqVaeCuda.Cli.Commands.RunControl.EvaluationSpeed(1787.2, null, "maps/s"), Is.EqualTo("evaluated at 1,787 maps/s"));
    }
}
