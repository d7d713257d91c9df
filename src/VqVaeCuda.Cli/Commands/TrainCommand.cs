using System.CommandLine;
using Spectre.Console;
using VqVaeCuda.Device;
using VqVaeCuda.Models;
using VqVaeCuda.Training;

namespace VqVaeCuda.Cli.Commands;

/// <summary><c>vqvae train</c>: train a VQ-VAE and write a run folder.</summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var data = new DataOptions();
        var preset = new Option<string>("--preset")
        {
            Description = $"Model size: {string.Join(" | ", VqVaeConfig.Presets.Keys)}.",
            DefaultValueFactory = _ => "tiny",
        };
        var steps = new Option<int>("--steps") { Description = "Optimizer steps.", DefaultValueFactory = _ => 600 };
        var batch = new Option<int>("--batch") { Description = "Images per step.", DefaultValueFactory = _ => 32 };
        var lr = new Option<double>("--lr") { Description = "Adam learning rate (the paper: 2e-4).", DefaultValueFactory = _ => 2e-4 };
        var seed = new Option<int>("--seed") { Description = "Seed of initialisation, data order and restarts.", DefaultValueFactory = _ => 0 };
        var device = CommonOptions.Device();
        var cache = CommonOptions.KernelCache();
        var tf32 = CommonOptions.Tf32();
        var output = new Option<string?>("--out") { Description = "Run folder of a new run; it must not exist (default: runs/<dataset>-<preset>-<time>, with -2, -3, ... when taken)." };
        var resume = new Option<string?>("--resume")
        {
            HelpName = "RUN_DIR|CKPT",
            Description = "Continue a run: a run folder (its newest checkpoint that reads back whole) or a checkpoint file; in its run folder unless --out " +
                          "names a new one. The run's settings are kept and any that differ are named (--steps, --keep-checkpoints, --skip-nonfinite " +
                          "may change); metrics.jsonl is cut back to the checkpoint's step. Give the same --dataset again.",
        };
        var keep = RunControl.KeepCheckpoints();
        var skip = RunControl.SkipNonFinite();
        var stepMode = RunControl.StepMode();
        var logEvery = RunControl.LogEvery();
        var evalEvery = RunControl.EvaluateEvery();
        var checkpointEvery = RunControl.CheckpointEvery();
        var deadCode = new Option<int>("--dead-code-steps") { Description = "Re-seed a code unused for this many steps (0: never).", DefaultValueFactory = _ => 200 };
        var kmeans = new Option<bool>("--kmeans-init") { Description = "Initialise the codebook by k-means over the first batches' encoder outputs." };
        var codebookLoss = new Option<bool>("--codebook-loss") { Description = "Update the codebook by its loss (the paper's main variant) instead of EMA." };
        var beta = new Option<float?>("--beta") { Description = "Commitment weight β (default 0.25)." };
        var k = new Option<int?>("--codes") { Description = "Codebook size K (overrides the preset)." };

        var command = new Command("train",
            "Train a VQ-VAE. With no options: the built-in shapes data, the tiny preset, the best device found; 6–7 seconds on two CPU cores. " +
            "Writes runs/<name>/: config.json, metrics.jsonl, checkpoints/, latest.safetensors, reconstructions.png, loss.png. " +
            "SIGINT or SIGTERM finishes the step, writes a checkpoint and exits 0 with the command that resumes (a second one quits at once).");
        data.AddTo(command);
        foreach (var o in new Option[] { preset, steps, batch, lr, seed, device, cache, tf32, output, resume, keep, skip, stepMode, logEvery, evalEvery, checkpointEvery, deadCode, kmeans, codebookLoss, beta, k })
            command.Options.Add(o);

        command.SetAction(result => CommonOptions.Guard(() =>
        {
            var options = new TrainingOptions
            {
                Steps = result.GetValue(steps),
                BatchSize = result.GetValue(batch),
                LearningRate = result.GetValue(lr),
                Seed = result.GetValue(seed),
                LogEvery = result.GetValue(logEvery),
                EvaluateEvery = result.GetValue(evalEvery),
                CheckpointEvery = result.GetValue(checkpointEvery),
                DeadCodeSteps = result.GetValue(deadCode),
                KMeansInit = result.GetValue(kmeans),
                KeepCheckpoints = result.GetValue(keep),
                SkipNonFinite = result.GetValue(skip),
                StepExecution = result.GetValue(stepMode),
            }.Validate();

            // Everything the user gave is checked before a device is opened or a folder created.
            var resumePath = result.GetValue(resume);
            VqVaeConfig config;
            VqVaeCheckpoint.Header? resumed = null;
            if (resumePath is not null)
            {
                resumePath = RunControl.ResolveResume(resumePath, VqVaeTrainer.StepCheckpointPrefix, VqVaeTrainer.LatestCheckpointName, path =>
                {
                    var h = VqVaeCheckpoint.ReadHeader(path);
                    return (h, h.Step ?? throw new VqVaeCuda.Checkpoints.CheckpointFormatException($"{path}: holds a model but no training state"));
                });
                resumed = VqVaeCheckpoint.ReadHeader(resumePath);
                config = resumed.Config;
            }
            else
            {
                config = VqVaeConfig.Preset(result.GetValue(preset)!) with { UseEma = !result.GetValue(codebookLoss) };
                if (result.GetValue(beta) is float b) config = config with { Beta = b };
                if (result.GetValue(k) is int codes) config = config with { CodebookSize = codes };
                config.Validate();
            }
            var (train, test) = data.Open(result, config, options.Seed);
            string runDirectory;
            TrainingOptions? resumeOptions = null;
            if (resumePath is not null)
            {
                // A resumed run keeps its own settings; --steps, --keep-checkpoints and --skip-nonfinite, when given, replace the saved ones.
                var saved = resumed!.Training ?? throw new VqVaeCuda.Checkpoints.CheckpointFormatException($"{resumePath}: holds a model but no training state, so training cannot resume from it");
                resumeOptions = saved with
                {
                    Steps = RunControl.Given(result, steps) ? options.Steps : saved.Steps,
                    KeepCheckpoints = RunControl.Given(result, keep) ? options.KeepCheckpoints : saved.KeepCheckpoints,
                    SkipNonFinite = RunControl.Given(result, skip) ? options.SkipNonFinite : saved.SkipNonFinite,
                    StepExecution = options.StepExecution,  // how steps run, not what they compute: this session's choice
                };
                RunControl.ReportSettings(result,
                    [(batch, options.BatchSize, saved.BatchSize), (lr, options.LearningRate, saved.LearningRate), (seed, options.Seed, saved.Seed),
                     (logEvery, options.LogEvery, saved.LogEvery), (evalEvery, options.EvaluateEvery, saved.EvaluateEvery),
                     (checkpointEvery, options.CheckpointEvery, saved.CheckpointEvery), (deadCode, options.DeadCodeSteps, saved.DeadCodeSteps),
                     (kmeans, options.KMeansInit, saved.KMeansInit),
                     (codebookLoss, result.GetValue(codebookLoss), !config.UseEma), (beta, result.GetValue(beta), config.Beta), (k, result.GetValue(k), config.CodebookSize)],
                    [(steps, options.Steps, saved.Steps), (keep, options.KeepCheckpoints, saved.KeepCheckpoints), (skip, options.SkipNonFinite, saved.SkipNonFinite)],
                    preset);
                runDirectory = RunControl.ResumeRunFolder(resumePath, result.GetValue(output));
            }
            else
            {
                runDirectory = RunControl.ClaimNewRun(result.GetValue(output),
                    Path.Combine("runs", $"{result.GetValue(data.Dataset)!.Replace(':', '-').Replace('/', '-')}-{result.GetValue(preset)}-{DateTime.Now:yyyyMMdd-HHmmss}"));
            }

            IDevice? dev = null;
            VqVaeTrainer trainer;
            try
            {
                dev = CommonOptions.OpenDevice(result.GetValue(device)!, result.GetValue(cache), result.GetValue(tf32));
                if (resumePath is not null)
                {
                    trainer = VqVaeTrainer.Resume(dev, resumePath, train, test, resumeOptions, runDirectory);
                    var dropped = trainer.MetricsLinesDropped > 0 ? $"; {trainer.MetricsLinesDropped} metrics lines after it dropped" : "";
                    AnsiConsole.MarkupLineInterpolated($"[grey]resumed {resumePath} at step {trainer.Step}{dropped}[/]");
                }
                else
                {
                    trainer = new VqVaeTrainer(new VqVae(dev, config, options.Seed), train, test, options, runDirectory);
                }
            }
            catch
            {
                dev?.Dispose();
                // No device, or a model that does not fit it: the new run's folder is left as it was found (absent).
                if (resumePath is null) RunControl.ReleaseIfEmpty(runDirectory);
                throw;
            }
            using (dev)
            using (trainer)
            {
                var codebookKind = config.UseEma ? "EMA codebook" : "codebook loss";
                AnsiConsole.MarkupLineInterpolated(
                    $"[grey]training on {train.Name}: {train.Count} train / {test.Count} test images {config.InputChannels}x{config.ImageSize}x{config.ImageSize}; {trainer.Model.Parameters().Sum(p => p.Shape.Count):N0} parameters; K={config.CodebookSize}, D={config.EmbeddingDim}, {codebookKind}[/]");
                TrainingEnd end;
                try
                {
                    end = Run(trainer);
                }
                catch (NonFiniteTrainingException e)
                {
                    return RunControl.Failed(e);
                }
                if (end == TrainingEnd.Interrupted)
                {
                    var dataPath = result.GetValue(data.Data);
                    RunControl.ReportInterrupted(trainer.Step, trainer.LastCheckpoint,
                        $"vqvae train --resume {RunControl.Shell(runDirectory)} --dataset {RunControl.Shell(result.GetValue(data.Dataset)!)}" +
                        (dataPath is null ? "" : $" --data {RunControl.Shell(dataPath)}"));
                    return 0;
                }
                AnsiConsole.MarkupLineInterpolated($"[grey]training step: {trainer.StepDescription}[/]");
                var final = trainer.History.LastOrDefault(r => r.Split == "test");
                if (final is not null)
                    AnsiConsole.MarkupLineInterpolated(
                        $"test: MSE {final.ReconstructionMse:F5}, PSNR {final.Psnr:F2} dB, perplexity {final.Perplexity:F1}, codes used {final.CodesUsed}/{config.CodebookSize}; {RunControl.EvaluationSpeed(final.ImagesPerSecond, trainer.History.LastOrDefault(r => r.Split == "train")?.ImagesPerSecond, "img/s")}");
                AnsiConsole.MarkupLineInterpolated($"run folder: {Path.GetFullPath(runDirectory)}");
            }
            return 0;
        }));
        return command;
    }

    private static TrainingEnd Run(VqVaeTrainer trainer)
    {
        using var signals = new StopSignals();
        var end = TrainingEnd.Finished;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("starting", maxValue: trainer.Options.Steps);
                task.Value = trainer.Step;
                end = trainer.Train(new InlineProgress<TrainingProgress>(p =>
                {
                    task.Value = p.Step;
                    if (p.Message is not null) task.Description = Markup.Escape(p.Message);
                    if (p.Latest is { } m)
                        task.Description = Markup.Escape(
                            $"step {m.Step} {m.Split}: mse {m.ReconstructionMse:F5} psnr {m.Psnr:F1} ppl {m.Perplexity:F1} codes {m.CodesUsed}" +
                            (m.ImagesPerSecond > 0 ? $" {m.ImagesPerSecond:F0} img/s" : ""));
                }), signals.Token);
            });
        return end;
    }
}
