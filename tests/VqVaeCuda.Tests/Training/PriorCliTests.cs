using SkiaSharp;
using VqVaeCuda.Checkpoints;
using VqVaeCuda.Models;
using VqVaeCuda.Training;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Training;

/// <summary>`vqvae prior train` and `vqvae sample` end to end on the built-in shapes, in process, over one tiny VQ-VAE trained once.</summary>
[TestFixture, Category("Cpu"), NonParallelizable]
public class PriorCliTests
{
    private string _root = "", _dir = "", _vqvae = "", _priorRun = "", _prior = "";

    private static int Vqvae(params string[] args) => VqVaeCuda.Cli.Program.Main(args);

    [OneTimeSetUp]
    public void TrainTheModels()
    {
        TestDevices.Cpu().Dispose();  // skip (or fail under CI) without the CPU library
        Directory.CreateDirectory(_root = Path.Combine(Path.GetTempPath(), "vqvae-prior-cli-" + Guid.NewGuid().ToString("N")));
        var vqRun = Path.Combine(_root, "vq");
        Assert.That(Vqvae("train", "--device", "cpu", "--steps", "8", "--batch", "16", "--log-every", "4", "--out", vqRun), Is.Zero);
        _vqvae = Path.Combine(vqRun, "latest.safetensors");
        _priorRun = Path.Combine(_root, "prior");
        Assert.That(Vqvae("prior", "train", "--vqvae", _vqvae, "--device", "cpu", "--class-conditional", "--steps", "4", "--batch", "16",
                          "--log-every", "2", "--samples", "8", "--out", _priorRun), Is.Zero);
        _prior = Path.Combine(_priorRun, "prior-latest.safetensors");
    }

    [OneTimeTearDown]
    public void RemoveTheModels()
    {
        if (_root.Length > 0 && Directory.Exists(_root)) Directory.Delete(_root, true);
    }

    [SetUp]
    public void SetUp() => Directory.CreateDirectory(_dir = Path.Combine(_root, Guid.NewGuid().ToString("N")));

    [Test]
    public void Prior_train_writes_its_run_folder_and_sample_decodes_its_code_maps()
    {
        foreach (var file in new[] { "codes.safetensors", "prior-config.json", "metrics.jsonl", "prior-latest.safetensors",
                                     "checkpoints/prior-step-000004.safetensors", "loss.png", "samples.png" })
            Assert.That(File.Exists(Path.Combine(_priorRun, file)), file);
        var cache = Safetensors.Read(Path.Combine(_priorRun, "codes.safetensors"));
        Assert.That(cache.Tensors["train.codes"].Shape, Is.EqualTo(new long[] { 10_000, 7, 7 }));
        Assert.That(cache.Tensors["test.labels"].Shape, Is.EqualTo(new long[] { 1_000 }));
        Assert.That(cache.Metadata["vqvae_sha256"], Is.EqualTo(PriorCheckpoint.Sha256OfFile(_vqvae)));
        var header = PriorCheckpoint.ReadHeader(_prior);
        Assert.That((header.Config.CodebookSize, header.Config.Classes, header.Info.Dataset, header.State!.Step), Is.EqualTo((64, 8, "shapes", 4)));
        var metrics = PriorMetricsLog.ReadAll(Path.Combine(_priorRun, "metrics.jsonl"));
        Assert.That(metrics.Where(m => m.Split == "test").Select(m => m.UnigramEntropyNats), Is.All.Not.Null);
        Assert.That(metrics.Where(m => m.Split == "test").Select(m => m.ImagesPerSecond), Is.All.Positive, "the evaluation's maps per second");

        var png = Path.Combine(_dir, "all.png");
        Assert.That(Vqvae("sample", "--vqvae", _vqvae, "--prior", _prior, "--n", "16", "--seed", "1", "--device", "cpu", "--out", png), Is.Zero);
        var codes = Safetensors.Read(Path.ChangeExtension(png, ".safetensors")).Tensors;
        Assert.That(codes["codes"].Shape, Is.EqualTo(new long[] { 16, 7, 7 }));
        Assert.That(codes["codes"].ToInts(), Is.All.InRange(0, 63));
        Assert.That(codes["labels"].ToInts(), Is.EqualTo(PriorGeneration.LabelsForEveryClass(16, 8)), "every class in turn");
        using (var grid = SKBitmap.Decode(png))
            Assert.That((grid.Width, grid.Height), Is.EqualTo((2 * (28 * 3 + 2) + 2, 8 * (28 * 3 + 2) + 2)), "a row per class, two samples each");

        var one = Path.Combine(_dir, "class2.png");
        Assert.That(Vqvae("sample", "--vqvae", _vqvae, "--prior", _prior, "--n", "4", "--class", "2", "--method", "naive", "--device", "cpu", "--out", one), Is.Zero);
        Assert.That(Safetensors.Read(Path.ChangeExtension(one, ".safetensors")).Tensors["labels"].ToInts(), Is.EqualTo(new[] { 2, 2, 2, 2 }));
        using (var grid = SKBitmap.Decode(one)) Assert.That(grid, Is.Not.Null);
    }

    [Test]
    public void Prior_train_resumes_its_run()
    {
        var run = Path.Combine(_dir, "resumed");
        Directory.CreateDirectory(run);
        File.Copy(_prior, Path.Combine(run, "prior-latest.safetensors"));
        File.Copy(Path.Combine(_priorRun, "codes.safetensors"), Path.Combine(run, "codes.safetensors"));
        Assert.That(Vqvae("prior", "train", "--vqvae", _vqvae, "--resume", Path.Combine(run, "prior-latest.safetensors"), "--steps", "6",
                          "--samples", "0", "--device", "cpu"), Is.Zero);
        var header = PriorCheckpoint.ReadHeader(Path.Combine(run, "prior-latest.safetensors"));
        Assert.That((header.State!.Step, header.Config.Classes), Is.EqualTo((6, 8)));
    }

    [Test]
    public void A_stale_code_map_cache_is_rebuilt()
    {
        // A cache of this VQ-VAE whose codes lie outside its codebook (K = 64).
        var cache = Path.Combine(_dir, "codes.safetensors");
        var (tensors, metadata) = Safetensors.Read(Path.Combine(_priorRun, "codes.safetensors"));
        var codes = tensors["train.codes"].ToInts();
        codes[0] = 99;
        var edited = tensors.Values.Select(t => t.Name == "train.codes" ? SafetensorsTensor.FromInts(t.Name, t.Shape, codes) : t).ToList();
        Safetensors.Write(cache, edited, metadata);

        Assert.That(Vqvae("prior", "train", "--vqvae", _vqvae, "--codes-cache", cache, "--steps", "1", "--batch", "8", "--samples", "0",
                          "--device", "cpu", "--out", Path.Combine(_dir, "run")), Is.Zero);
        Assert.That(Safetensors.Read(cache).Tensors["train.codes"].ToInts(), Is.All.InRange(0, 63), "rebuilt from the images");
    }

    [TestCase("--n", "0", "--n 0: at least one sample")]
    [TestCase("--temperature", "0", "--temperature 0: must be a positive number")]
    [TestCase("--temperature", "-1", "--temperature -1: must be a positive number")]
    [TestCase("--class", "8", "--class 8: this prior knows classes 0..7")]
    [TestCase("--class", "-1", "--class -1: this prior knows classes 0..7")]
    public void Sample_refuses_bad_options(string option, string value, string expected)
    {
        var png = Path.Combine(_dir, "s.png");
        Assert.That(Refused(out var error, "sample", "--vqvae", _vqvae, "--prior", _prior, "--device", "cpu", "--out", png, option, value), Is.EqualTo(1));
        Assert.That(error, Does.Contain(expected));
        Assert.That(Directory.GetFiles(_dir), Is.Empty, "nothing written");
    }

    [Test]
    public void Sample_refuses_a_class_for_an_unconditional_prior()
    {
        var prior = SavePrior("unconditional.safetensors", PriorCheckpoint.Sha256OfFile(_vqvae), classes: 0);
        Assert.That(Refused(out var error, "sample", "--vqvae", _vqvae, "--prior", prior, "--class", "1", "--out", Path.Combine(_dir, "s.png")), Is.EqualTo(1));
        Assert.That(error, Does.Contain("--class 1: this prior is unconditional"));
        Assert.That(File.Exists(Path.Combine(_dir, "s.png")), Is.False);
    }

    [Test]
    public void Sample_refuses_a_prior_of_another_codebook_size()
    {
        var prior = SavePrior("k32.safetensors", PriorCheckpoint.Sha256OfFile(_vqvae), classes: 0, codebookSize: 32);
        Assert.That(Refused(out var error, "sample", "--vqvae", _vqvae, "--prior", prior, "--force", "--out", Path.Combine(_dir, "s.png")), Is.EqualTo(1));
        Assert.That(error, Does.Contain("the prior models K = 32 codes").And.Contain("K = 64").And.Contain("do not belong together"));
    }

    [Test]
    public void Sample_refuses_a_prior_of_another_latent_size()
    {
        var prior = SavePrior("8x8.safetensors", PriorCheckpoint.Sha256OfFile(_vqvae), classes: 0, latent: 8);
        Assert.That(Refused(out var error, "sample", "--vqvae", _vqvae, "--prior", prior, "--out", Path.Combine(_dir, "s.png")), Is.EqualTo(1));
        Assert.That(error, Does.Contain("8x8 code maps").And.Contain("7x7"));
    }

    [Test]
    public void Sample_refuses_a_prior_of_another_vqvae_checkpoint_unless_forced()
    {
        var prior = SavePrior("other.safetensors", new string('0', 64), classes: 0);
        var png = Path.Combine(_dir, "s.png");
        Assert.That(Refused(out var error, "sample", "--vqvae", _vqvae, "--prior", prior, "--out", png), Is.EqualTo(1));
        Assert.That(error, Does.Contain("SHA-256 " + new string('0', 64)).And.Contain("refusing (pass --force"));
        Assert.That(File.Exists(png), Is.False);

        Assert.That(Vqvae("sample", "--vqvae", _vqvae, "--prior", prior, "--force", "--n", "2", "--device", "cpu", "--out", png), Is.Zero);
        Assert.That(File.Exists(png) && File.Exists(Path.ChangeExtension(png, ".safetensors")));
    }

    [Test]
    public void Sample_and_prior_train_refuse_a_vqvae_checkpoint_that_is_not_one()
    {
        Assert.That(Refused(out var error, "sample", "--vqvae", _prior, "--prior", _prior, "--out", Path.Combine(_dir, "s.png")), Is.EqualTo(1));
        Assert.That(error, Does.Contain("not a VQ-VAE checkpoint").And.Contain("it is a prior checkpoint"));

        var junk = Path.Combine(_dir, "junk.safetensors");
        File.WriteAllText(junk, "not a checkpoint at all");
        var run = Path.Combine(_dir, "run");
        Assert.That(Refused(out error, "prior", "train", "--vqvae", junk, "--out", run), Is.EqualTo(1));
        Assert.That(error, Does.Contain("junk.safetensors"));
        Assert.That(Directory.Exists(run), Is.False, "no run folder for refused input");
    }

    [TestCase("--steps", "0", "steps = 0")]
    [TestCase("--preset", "huge", "unknown prior preset 'huge'")]
    [TestCase("--dataset", "mnist", "mnist needs --data")]
    [TestCase("--batch", "20000", "--batch 20000: 'shapes/train' has only 10000 images")]
    public void Prior_train_refuses_bad_options_before_writing(string option, string value, string expected)
    {
        var run = Path.Combine(_dir, "run");
        Assert.That(Refused(out var error, "prior", "train", "--vqvae", _vqvae, "--device", "cpu", "--out", run, option, value), Is.EqualTo(1));
        Assert.That(error, Does.Contain(expected));
        Assert.That(Directory.Exists(run), Is.False, "no run folder for refused input");
    }

    [Test]
    public void Prior_train_refuses_to_resume_with_another_vqvae()
    {
        var other = Path.Combine(_dir, "other-vq.safetensors");
        using (var device = TestDevices.Cpu())
        using (var model = new VqVae(device, VqVaeConfig.Preset("tiny"), seed: 77))
        using (var adam = new VqVaeCuda.Optim.Adam(model.Parameters()))
            VqVaeCheckpoint.Save(other, model, new TrainingStateInfo(0, 0, new TrainingOptions(), "shapes/train"), adam);
        Assert.That(Refused(out var error, "prior", "train", "--vqvae", other, "--resume", _prior, "--device", "cpu", "--out", Path.Combine(_dir, "run")), Is.EqualTo(1));
        Assert.That(error, Does.Contain("refusing to resume: give the --vqvae the prior was trained with"));
        Assert.That(Directory.Exists(Path.Combine(_dir, "run")), Is.False);
    }

    // An untrained tiny prior with the given record of what it was trained on.
    private string SavePrior(string name, string sha256, int classes, int codebookSize = 64, int latent = 7)
    {
        var path = Path.Combine(_root, name);
        using var device = TestDevices.Cpu();
        var config = GatedPixelCnnConfig.Preset("tiny") with { CodebookSize = codebookSize, Classes = classes, Width = 8, Layers = 2, HeadHidden = 16 };
        using var prior = new GatedPixelCnn(device, config);
        PriorCheckpoint.Save(path, prior, new PriorCheckpointInfo(sha256, latent, latent, "shapes"));
        return path;
    }

    private static int Refused(out string error, params string[] args)
    {
        var writer = new StringWriter();
        var saved = Console.Error;
        Console.SetError(writer);
        try
        {
            return Vqvae(args);
        }
        finally
        {
            Console.SetError(saved);
            // Redirected, the error console wraps at 80 columns (even inside words): join the pieces of the one message.
            error = writer.ToString().Replace("\r", "").Replace("\n", "");
        }
    }
}
