using System.Diagnostics;
using System.Text.Json;
using VqVaeCuda.Data;
using VqVaeCuda.Device;
using VqVaeCuda.Models;

namespace VqVaeCuda.Training;

/// <summary>What the whole-paper pipeline runs: the data, the VQ-VAE and its training, the prior and its training.</summary>
public sealed record PipelineOptions
{
    /// <summary>Data set spec (<see cref="DatasetCatalog"/>): the built-in shapes by default.</summary>
    public string Dataset { get; init; } = "shapes";

    /// <summary>Folder of the data set's files, for data sets that need one.</summary>
    public string? DataPath { get; init; }

    /// <summary>The VQ-VAE (the <c>shapes</c> preset by default).</summary>
    public VqVaeConfig VqVae { get; init; } = VqVaeConfig.Preset("shapes");

    /// <summary>How the VQ-VAE trains.</summary>
    public TrainingOptions VqVaeTraining { get; init; } = new()
    {
        Steps = 1500, BatchSize = 32, LearningRate = 2e-3, LogEvery = 50, EvaluateEvery = 0, CheckpointEvery = 250,
    };

    /// <summary>The prior's architecture (K and the classes come from the VQ-VAE and the data).</summary>
    public GatedPixelCnnConfig Prior { get; init; } = GatedPixelCnnConfig.Preset("shapes");

    /// <summary>
    /// How the prior trains; <see cref="PriorTrainingOptions.SampleCount"/> samples end the run. 3500 steps with a cosine
    /// decay, since the gate's one-pass backward made the prior's CPU step ~33 ms for 32 code maps (was ~40; ~140 before
    /// the CPU work). Chosen on two cores on the varied shapes (`shapes-varied`, then the default data): with the tiny prior
    /// 3000 cosine steps reached a test NLL of 2.29 nats where 2000 constant-rate ones reached 2.38 and 4000 constant-rate
    /// ones 2.28; with the shapes prior (5×5 first layer) 3500 cosine steps reach 2.22–2.24, and the whole pipeline takes
    /// ~140 s. On the plain shapes, the default since, the same settings reach 1.67–1.76 nats in 135–155 s (README).
    /// </summary>
    public PriorTrainingOptions PriorTraining { get; init; } = new()
    {
        Steps = 3500, BatchSize = 32, LearningRate = 5e-3, Schedule = LearningRateSchedule.Cosine, LogEvery = 25, EvaluateEvery = 0,
        CheckpointEvery = 250, SampleCount = 64,
    };

    /// <summary>Condition the prior on the images' classes (one class per row of samples.png).</summary>
    public bool ClassConditional { get; init; } = true;
}

/// <summary>Where the pipeline is: a stage ("vqvae", "codes", "prior", "samples") and its progress.</summary>
public sealed record PipelineProgress(string Stage, int Done, int Total, string? Message = null);

/// <summary>The pipeline's outcome: the run folder and the figures that summarise it.</summary>
public sealed record PipelineResult(string RunDirectory, MetricsRecord VqVaeTest, PriorMetricsRecord PriorTest, double UnigramEntropyNats,
                                    double Seconds)
{
    /// <summary>The VQ-VAE's checkpoint (<c>vqvae/latest.safetensors</c>).</summary>
    public string VqVaeCheckpoint => Path.Combine(RunDirectory, "vqvae", "latest.safetensors");

    /// <summary>The prior's checkpoint (<c>prior/prior-latest.safetensors</c>).</summary>
    public string PriorCheckpoint => Path.Combine(RunDirectory, "prior", "prior-latest.safetensors");
}

/// <summary>
/// The pipeline was cancelled: the stage under way finished its step and wrote a checkpoint (named in the message, with
/// the command that continues that stage).
/// </summary>
public sealed class PipelineInterruptedException(string message, string stage, string? checkpoint) : OperationCanceledException(message)
{
    /// <summary>The stage that was interrupted ("vqvae", "prior"; "codes" or "samples" between steps).</summary>
    public string Stage { get; } = stage;

    /// <summary>The checkpoint the interrupted stage wrote, if it had one.</summary>
    public string? Checkpoint { get; } = checkpoint;
}

/// <summary>
/// The paper end to end, into one run folder: train a VQ-VAE (<c>vqvae/</c>), extract the code maps of both splits
/// with it frozen, fit a Gated PixelCNN prior over them (<c>prior/</c>), sample code maps and decode them. The top
/// of the run folder gets <c>reconstructions.png</c>, <c>samples.png</c> (one class per row when class-conditional)
/// and <c>summary.json</c>; each stage's own folder is what its own command (<c>vqvae train</c>,
/// <c>vqvae prior train</c>) writes, so <c>vqvae sample</c> and <c>--resume</c> work on them as usual.
/// </summary>
public static class Pipeline
{
    /// <summary>Runs every stage on <paramref name="device"/> into <paramref name="runDirectory"/> (see the overload for <paramref name="resume"/>).</summary>
    /// <exception cref="ArgumentException">Bad options, or a data set without labels for a class-conditional prior.</exception>
    public static PipelineResult Run(IDevice device, PipelineOptions options, string runDirectory, IProgress<PipelineProgress>? progress = null,
                                     CancellationToken cancellation = default, bool resume = false)
    {
        var config = options.VqVae.Validate();
        var (train, test) = DatasetCatalog.Open(options.Dataset, options.DataPath, config.ImageSize, config.InputChannels, options.VqVaeTraining.Seed);
        return Run(device, options, train, test, runDirectory, progress, cancellation, resume);
    }

    /// <summary>
    /// Runs every stage on images the caller already holds (<see cref="PipelineOptions.Dataset"/> only names them). When
    /// <paramref name="cancellation"/> is signalled during a training stage, that stage finishes its step and writes a
    /// checkpoint, and <see cref="PipelineInterruptedException"/> is thrown. With <paramref name="resume"/>, an interrupted
    /// or killed pipeline run continues (give the options it was started with): each stage resumes from the newest
    /// checkpoint in its folder that reads back whole (a finished stage only redoes its pictures), and a stage that had
    /// written no checkpoint starts over.
    /// </summary>
    /// <exception cref="PipelineInterruptedException">Cancelled; the message names the checkpoint written.</exception>
    public static PipelineResult Run(IDevice device, PipelineOptions options, ImageDataset train, ImageDataset test, string runDirectory,
                                     IProgress<PipelineProgress>? progress = null, CancellationToken cancellation = default, bool resume = false)
    {
        var clock = Stopwatch.StartNew();
        var vqvaeConfig = options.VqVae.Validate();
        var vqvaeOptions = options.VqVaeTraining.Validate();
        var priorOptions = options.PriorTraining.Validate();
        options.Prior.Validate();
        if (options.ClassConditional && (train.Labels is null || test.Labels is null))
            throw new ArgumentException($"'{options.Dataset}' has no class labels: a class-conditional prior needs them (run the pipeline unconditional)");
        Directory.CreateDirectory(runDirectory);
        string vqvaeDirectory = Path.Combine(runDirectory, "vqvae"), priorDirectory = Path.Combine(runDirectory, "prior");

        var vqvaeCheckpoint = resume
            ? NewestWholeCheckpoint(vqvaeDirectory, VqVaeTrainer.StepCheckpointPrefix, VqVaeTrainer.LatestCheckpointName,
                                    path => VqVaeCheckpoint.ReadHeader(path).Step, "vqvae", progress)
            : null;
        using var vqvaeTrainer = vqvaeCheckpoint is not null
            ? VqVaeTrainer.Resume(device, vqvaeCheckpoint, train, test, vqvaeOptions, vqvaeDirectory)
            : new VqVaeTrainer(new VqVae(device, vqvaeConfig, vqvaeOptions.Seed), train, test, vqvaeOptions, vqvaeDirectory);
        var vqvaeEnd = vqvaeTrainer.Train(progress is null ? null : new InlineProgress<TrainingProgress>(p => progress.Report(new PipelineProgress("vqvae", p.Step, p.TotalSteps,
            p.Message ?? (p.Latest is { } m ? $"step {m.Step} {m.Split}: PSNR {m.Psnr:F1} dB, {m.CodesUsed} codes" : null)))),
                           cancellation);
        if (vqvaeEnd == TrainingEnd.Interrupted)
            throw new PipelineInterruptedException(
                $"interrupted in the VQ-VAE stage at step {vqvaeTrainer.Step}: its checkpoint is {vqvaeTrainer.LastCheckpoint?.Path}; " +
                "a resume of the run folder continues the pipeline", "vqvae", vqvaeTrainer.LastCheckpoint?.Path);
        var vqvae = vqvaeTrainer.Model;
        var vqvaeTest = vqvaeTrainer.History.Last(r => r.Split == "test");

        int l = vqvaeConfig.LatentSize;
        string vqvaePath = Path.Combine(vqvaeDirectory, "latest.safetensors");
        string sha = PriorCheckpoint.Sha256OfFile(vqvaePath);
        var key = new CodeMapCacheKey(sha, $"{options.Dataset}, seed {vqvaeOptions.Seed}", vqvaeConfig.CodebookSize, l, l);
        int images = train.Count + test.Count;
        var codes = CodeMapCache.LoadOrBuild(Path.Combine(priorDirectory, "codes.safetensors"), key, vqvae, () => (train, test),
                                             progress is null ? null : new InlineProgress<int>(done => progress.Report(new PipelineProgress("codes", done, images))));

        var priorConfig = options.Prior with
        {
            CodebookSize = vqvaeConfig.CodebookSize,
            Classes = options.ClassConditional ? codes.Train.Classes : 0,
        };
        var info = new PriorCheckpointInfo(sha, l, l, train.Name);
        var priorCheckpoint = resume
            ? NewestWholeCheckpoint(priorDirectory, PriorTrainer.StepCheckpointPrefix, PriorTrainer.LatestCheckpointName,
                                    path => PriorCheckpoint.ReadHeader(path).State?.Step, "prior", progress)
            : null;
        PriorTrainer priorTrainer;
        if (priorCheckpoint is not null)
        {
            priorTrainer = PriorTrainer.Resume(device, priorCheckpoint, codes.Train, codes.Test, priorOptions.Steps, priorDirectory, vqvae,
                                               priorOptions.KeepCheckpoints, priorOptions.SkipNonFinite);
        }
        else
        {
            var prior = new GatedPixelCnn(device, priorConfig, priorOptions.Seed);
            try
            {
                priorTrainer = new PriorTrainer(prior, codes.Train, codes.Test, priorOptions, info, priorDirectory, vqvae);
            }
            catch
            {
                prior.Dispose();
                throw;
            }
        }
        using (priorTrainer)
        {
            var priorEnd = priorTrainer.Train(progress is null ? null : new InlineProgress<PriorTrainingProgress>(p =>
                progress.Report(new PipelineProgress(p.Message is not null && p.Message.StartsWith("sampling", StringComparison.Ordinal) ? "samples" : "prior",
                                                     p.Step, p.TotalSteps,
                                                     p.Message ?? (p.Latest is { } m ? $"step {m.Step} {m.Split}: NLL {m.NllNats:F3} nats/position" : null)))),
                               cancellation);
            if (priorEnd == TrainingEnd.Interrupted)
                throw new PipelineInterruptedException(
                    $"interrupted in the prior stage at step {priorTrainer.Step}: its checkpoint is {priorTrainer.LastCheckpoint?.Path}; " +
                    "a resume of the run folder continues the pipeline", "prior", priorTrainer.LastCheckpoint?.Path);
            var priorTest = priorTrainer.History.Last(r => r.Split == "test");
            foreach (var picture in new[] { Path.Combine(vqvaeDirectory, "reconstructions.png"), Path.Combine(priorDirectory, "samples.png") })
                if (File.Exists(picture)) File.Copy(picture, Path.Combine(runDirectory, Path.GetFileName(picture)), overwrite: true);
            var result = new PipelineResult(runDirectory, vqvaeTest, priorTest, priorTrainer.UnigramEntropyNats, clock.Elapsed.TotalSeconds);
            WriteSummary(result, options, priorConfig);
            return result;
        }
    }

    // The newest checkpoint of a stage's folder that reads back whole; null when there is none, and then the stage's
    // partial files (its metrics, config, torn checkpoints) are removed so that it starts over in its own folder.
    private static string? NewestWholeCheckpoint(string stageDirectory, string prefix, string latestName, Func<string, int?> stepOf, string stage,
                                                 IProgress<PipelineProgress>? progress)
    {
        if (!Directory.Exists(stageDirectory)) return null;
        try
        {
            return RunFolder.NewestCheckpoint(stageDirectory, prefix, latestName,
                                              path => (0, stepOf(path) ?? throw new Checkpoints.CheckpointFormatException($"{path}: no training state")),
                                              skipped => progress?.Report(new PipelineProgress(stage, 0, 1, skipped))).Path;
        }
        catch (FileNotFoundException)
        {
            progress?.Report(new PipelineProgress(stage, 0, 1, $"no whole checkpoint in {stageDirectory}: the stage starts over"));
            foreach (var name in new[] { "config.json", "prior-config.json", "metrics.jsonl", latestName })
                File.Delete(Path.Combine(stageDirectory, name));
            var checkpoints = Path.Combine(stageDirectory, "checkpoints");
            if (Directory.Exists(checkpoints)) Directory.Delete(checkpoints, recursive: true);
            return null;
        }
    }

    private static void WriteSummary(PipelineResult result, PipelineOptions options, GatedPixelCnnConfig prior)
    {
        var summary = new Dictionary<string, object>
        {
            ["dataset"] = options.Dataset,
            ["vqvae_config"] = JsonDocument.Parse(options.VqVae.ToJson()).RootElement,
            ["vqvae_steps"] = options.VqVaeTraining.Steps,
            ["vqvae_test_mse"] = result.VqVaeTest.ReconstructionMse,
            ["vqvae_test_psnr_db"] = result.VqVaeTest.Psnr,
            ["vqvae_codes_used"] = result.VqVaeTest.CodesUsed,
            ["prior_config"] = JsonDocument.Parse(prior.ToJson()).RootElement,
            ["prior_steps"] = options.PriorTraining.Steps,
            ["prior_test_nll_nats"] = result.PriorTest.NllNats,
            ["prior_test_nll_bits"] = result.PriorTest.NllBits,
            ["unigram_entropy_nats"] = result.UnigramEntropyNats,
            ["seconds"] = result.Seconds,
        };
        File.WriteAllText(Path.Combine(result.RunDirectory, "summary.json"), JsonSerializer.Serialize(summary, new JsonSerializerOptions { WriteIndented = true }));
    }
}
