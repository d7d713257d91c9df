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
        var output = new Option<string?>("--out") { Description = "Run folder (default: runs/<dataset>-<preset>-<time>)." };
        var resume = new Option<string?>("--resume") { Description = "Continue from a checkpoint written by an earlier run, in its run folder unless --out is given. The run's settings are kept (--steps may extend it); give the same --dataset again." };
        var logEvery = new Option<int>("--log-every") { Description = "Steps per metrics line.", DefaultValueFactory = _ => 25 };
        var evalEvery = new Option<int>("--eval-every") { Description = "Steps between evaluations on the test split (0: only at the end).", DefaultValueFactory = _ => 0 };
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Steps between checkpoints (0: only at the end).", DefaultValueFactory = _ => 0 };
        var deadCode = new Option<int>("--dead-code-steps") { Description = "Re-seed a code unused for this many steps (0: never).", DefaultValueFactory = _ => 200 };
        var kmeans = new Option<bool>("--kmeans-init") { Description = "Initialise the codebook by k-means over the first batches' encoder outputs." };
        var codebookLoss = new Option<bool>("--codebook-loss") { Description = "Update the codebook by its loss (the paper's main variant) instead of EMA." };
        var beta = new Option<float?>("--beta") { Description = "Commitment weight β (default 0.25)." };
        var k = new Option<int?>("--codes") { Description = "Codebook size K (overrides the preset)." };

        var command = new Command("train",
            "Train a VQ-VAE. With no options: the built-in shapes data, the tiny preset, the best device found; about a minute on two CPU cores. " +
            "Writes runs/<name>/: config.json, metrics.jsonl, checkpoints/, latest.safetensors, reconstructions.png, loss.png.");
        data.AddTo(command);
        foreach (var o in new Option[] { preset, steps, batch, lr, seed, device, cache, output, resume, logEvery, evalEvery, checkpointEvery, deadCode, kmeans, codebookLoss, beta, k })
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
            }.Validate();

            // Everything the user gave is checked before a device is opened or a folder created.
            var resumePath = result.GetValue(resume);
            VqVaeConfig config;
            if (resumePath is not null)
            {
                if (!File.Exists(resumePath)) throw new FileNotFoundException($"{resumePath}: no such checkpoint");
                config = VqVaeCheckpoint.ReadHeader(resumePath).Config;
            }
            else
            {
                config = VqVaeConfig.Preset(result.GetValue(preset)!) with { UseEma = !result.GetValue(codebookLoss) };
                if (result.GetValue(beta) is float b) config = config with { Beta = b };
                if (result.GetValue(k) is int codes) config = config with { CodebookSize = codes };
                config.Validate();
            }
            var (train, test) = data.Open(result, config, options.Seed);
            var runDirectory = result.GetValue(output) ?? (resumePath is not null
                ? CommonOptions.RunFolderOf(resumePath)
                : Path.Combine("runs", $"{result.GetValue(data.Dataset)!.Replace(':', '-').Replace('/', '-')}-{result.GetValue(preset)}-{DateTime.Now:yyyyMMdd-HHmmss}"));

            var dev = CommonOptions.OpenDevice(result.GetValue(device)!, result.GetValue(cache));
            VqVaeTrainer trainer;
            if (resumePath is not null)
            {
                // A resumed run keeps its own settings; only an explicit --steps extends (or shortens) it.
                bool stepsGiven = result.GetResult(steps) is { Implicit: false };
                trainer = VqVaeTrainer.Resume(dev, resumePath, train, test, stepsGiven ? options : null, runDirectory);
                AnsiConsole.MarkupLineInterpolated($"[grey]resumed {resumePath} at step {trainer.Step}[/]");
            }
            else
            {
                trainer = new VqVaeTrainer(new VqVae(dev, config, options.Seed), train, test, options, runDirectory);
            }
            using (dev)
            using (trainer)
            {
                var codebookKind = config.UseEma ? "EMA codebook" : "codebook loss";
                AnsiConsole.MarkupLineInterpolated(
                    $"[grey]training on {train.Name}: {train.Count} train / {test.Count} test images {config.InputChannels}x{config.ImageSize}x{config.ImageSize}; {trainer.Model.Parameters().Sum(p => p.Shape.Count):N0} parameters; K={config.CodebookSize}, D={config.EmbeddingDim}, {codebookKind}[/]");
                Run(trainer);
                var final = trainer.History.LastOrDefault(r => r.Split == "test");
                if (final is not null)
                    AnsiConsole.MarkupLineInterpolated(
                        $"test: MSE {final.ReconstructionMse:F5}, PSNR {final.Psnr:F2} dB, perplexity {final.Perplexity:F1}, codes used {final.CodesUsed}/{config.CodebookSize}");
                AnsiConsole.MarkupLineInterpolated($"run folder: {Path.GetFullPath(runDirectory)}");
            }
            return 0;
        }));
        return command;
    }

    private static void Run(VqVaeTrainer trainer)
    {
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("starting", maxValue: trainer.Options.Steps);
                task.Value = trainer.Step;
                trainer.Train(new InlineProgress<TrainingProgress>(p =>
                {
                    task.Value = p.Step;
                    if (p.Message is not null) task.Description = Markup.Escape(p.Message);
                    if (p.Latest is { } m)
                        task.Description = Markup.Escape(
                            $"step {m.Step} {m.Split}: mse {m.ReconstructionMse:F5} psnr {m.Psnr:F1} ppl {m.Perplexity:F1} codes {m.CodesUsed}" +
                            (m.ImagesPerSecond > 0 ? $" {m.ImagesPerSecond:F0} img/s" : ""));
                }));
            });
    }
}
