using System.CommandLine;
using Spectre.Console;
using VqVaeCuda.Checkpoints;
using VqVaeCuda.Data;
using VqVaeCuda.Models;
using VqVaeCuda.Sampling;
using VqVaeCuda.Training;

namespace VqVaeCuda.Cli.Commands;

/// <summary><c>vqvae prior train</c> and <c>vqvae sample</c>: the Gated PixelCNN prior over a VQ-VAE's codes.</summary>
internal static class PriorCommands
{
    private const string CacheFileName = "codes.safetensors";

    private static Option<string> VqVaeCheckpointOption() => new("--vqvae")
    {
        Description = "The frozen VQ-VAE: a checkpoint written by `vqvae train` (e.g. runs/<name>/latest.safetensors).",
        Required = true,
    };

    /// <summary>The <c>prior</c> command group.</summary>
    public static Command Prior()
    {
        var command = new Command("prior", "The Gated PixelCNN prior over a trained VQ-VAE's code maps.");
        command.Subcommands.Add(Train());
        return command;
    }

    private static Command Train()
    {
        var vqvae = VqVaeCheckpointOption();
        var dataset = new Option<string?>("--dataset")
        {
            Description = $"The images whose code maps the prior learns: {string.Join(" | ", DatasetCatalog.Specs)} (default: the data set the VQ-VAE was trained on, from its checkpoint).",
        };
        var dataFolder = new Option<string?>("--data") { Description = "Folder holding the data set's files (IDX, CIFAR-10 binary batches)." };
        var preset = new Option<string>("--preset")
        {
            Description = $"Prior size: {string.Join(" | ", GatedPixelCnnConfig.Presets.Keys)} (K comes from the VQ-VAE).",
            DefaultValueFactory = _ => "tiny",
        };
        var steps = new Option<int>("--steps") { Description = "Optimizer steps.", DefaultValueFactory = _ => 1000 };
        var batch = new Option<int>("--batch") { Description = "Code maps per step.", DefaultValueFactory = _ => 32 };
        var lr = new Option<double>("--lr") { Description = "Adam learning rate.", DefaultValueFactory = _ => 1e-3 };
        var schedule = new Option<LearningRateSchedule>("--lr-schedule")
        {
            HelpName = "constant|cosine",
            Description = "The learning rate over the run: constant, or cosine (half a cosine from --lr down towards 0 at the last step).",
            DefaultValueFactory = _ => LearningRateSchedule.Constant,
        };
        var seed = new Option<int>("--seed") { Description = "Seed of initialisation, data order and the end-of-run samples.", DefaultValueFactory = _ => 0 };
        var conditional = new Option<bool>("--class-conditional") { Description = "Condition the prior on the images' classes (the data must have labels)." };
        var device = CommonOptions.Device();
        var cache = CommonOptions.KernelCache();
        var tf32 = CommonOptions.Tf32();
        var output = new Option<string?>("--out") { Description = "Run folder of a new run; it must not exist (default: runs/prior-<dataset>-<preset>-<time>, with -2, -3, ... when taken; on --resume the checkpoint's run folder)." };
        var resume = new Option<string?>("--resume")
        {
            HelpName = "RUN_DIR|CKPT",
            Description = "Continue a prior run: a run folder (its newest checkpoint that reads back whole) or a prior checkpoint file. Its settings are kept " +
                          "and any that differ are named (--steps, --keep-checkpoints, --skip-nonfinite may change); metrics.jsonl is cut back to the " +
                          "checkpoint's step; the --vqvae must be the one it was trained on.",
        };
        var keep = RunControl.KeepCheckpoints();
        var skip = RunControl.SkipNonFinite();
        var codesCache = new Option<string?>("--codes-cache") { Description = $"The code-map cache file (default: <run folder>/{CacheFileName}); reused when made by this VQ-VAE checkpoint from this data set, rebuilt otherwise." };
        var logEvery = RunControl.LogEvery();
        var evalEvery = RunControl.EvaluateEvery();
        var checkpointEvery = RunControl.CheckpointEvery();
        var samples = new Option<int>("--samples") { Description = "Code maps sampled and decoded into samples.png at the end (0: none).", DefaultValueFactory = _ => 64 };

        var command = new Command("train",
            "Train a Gated PixelCNN prior over the code maps of a frozen VQ-VAE. The data set is the one the VQ-VAE was trained on " +
            "(from its checkpoint) unless --dataset is given. Writes the run folder: codes.safetensors (the code-map cache), " +
            "prior-config.json, metrics.jsonl (NLL in nats and bits per position; test lines carry the unigram entropy of the test codes), " +
            "checkpoints/, prior-latest.safetensors, loss.png, samples.png. " +
            "SIGINT or SIGTERM finishes the step, writes a checkpoint and exits 0 with the command that resumes (a second one quits at once).");
        foreach (var o in new Option[] { vqvae, dataset, dataFolder }) command.Options.Add(o);
        foreach (var o in new Option[] { preset, steps, batch, lr, schedule, seed, conditional, device, cache, tf32, output, resume, keep, skip, codesCache, logEvery, evalEvery, checkpointEvery, samples })
            command.Options.Add(o);

        command.SetAction(result => CommonOptions.Guard(() =>
        {
            var options = new PriorTrainingOptions
            {
                Steps = result.GetValue(steps),
                BatchSize = result.GetValue(batch),
                LearningRate = result.GetValue(lr),
                Schedule = result.GetValue(schedule),
                Seed = result.GetValue(seed),
                LogEvery = result.GetValue(logEvery),
                EvaluateEvery = result.GetValue(evalEvery),
                CheckpointEvery = result.GetValue(checkpointEvery),
                SampleCount = result.GetValue(samples),
                KeepCheckpoints = result.GetValue(keep),
                SkipNonFinite = result.GetValue(skip),
            }.Validate();

            // Everything the user gave is checked before a device is opened or a file written.
            var vqvaePath = result.GetValue(vqvae)!;
            var vqvaeHeader = ReadVqVaeHeader(vqvaePath);
            var resumePath = result.GetValue(resume);
            PriorCheckpoint.Header? resumed = null;
            GatedPixelCnnConfig config;
            if (resumePath is not null)
            {
                resumePath = RunControl.ResolveResume(resumePath, PriorTrainer.StepCheckpointPrefix, PriorTrainer.LatestCheckpointName, path =>
                {
                    var h = PriorCheckpoint.ReadHeader(path);
                    return (h, h.State?.Step ?? throw new CheckpointFormatException($"{path}: holds a prior but no training state"));
                });
                resumed = PriorCheckpoint.ReadHeader(resumePath);
                if (resumed.State is null) throw new CheckpointFormatException($"{resumePath}: holds a prior but no training state, so training cannot resume from it");
                PriorCheckpoint.CheckMatches(resumePath, resumed.Config, resumed.Info, vqvaePath, vqvaeHeader.Config, vqvaeHeader.Sha256, force: false,
                                             refusal: "refusing to resume: give the --vqvae the prior was trained with");
                config = resumed.Config;
            }
            else
            {
                config = GatedPixelCnnConfig.Preset(result.GetValue(preset)!) with { CodebookSize = vqvaeHeader.Config.CodebookSize };
                config.Validate();
            }
            bool wantClasses = resumed is null ? result.GetValue(conditional) : resumed.Config.IsClassConditional;
            var spec = DatasetSpec(result.GetValue(dataset), vqvaePath, vqvaeHeader, resumed);
            var dataPath = result.GetValue(dataFolder);
            int dataSeed = vqvaeHeader.DataSeed;
            var datasetKey = $"{spec}{(dataPath is null ? "" : $" at {Path.GetFullPath(dataPath)}")}, seed {dataSeed}";
            string runDirectory;
            if (resumed is not null)
            {
                var saved = resumed.State!.Options;
                RunControl.ReportSettings(result,
                    [(batch, options.BatchSize, saved.BatchSize), (lr, options.LearningRate, saved.LearningRate), (schedule, options.Schedule, saved.Schedule),
                     (seed, options.Seed, saved.Seed), (logEvery, options.LogEvery, saved.LogEvery), (evalEvery, options.EvaluateEvery, saved.EvaluateEvery),
                     (checkpointEvery, options.CheckpointEvery, saved.CheckpointEvery), (samples, options.SampleCount, saved.SampleCount),
                     (conditional, result.GetValue(conditional), resumed.Config.IsClassConditional)],
                    [(steps, options.Steps, saved.Steps), (keep, options.KeepCheckpoints, saved.KeepCheckpoints), (skip, options.SkipNonFinite, saved.SkipNonFinite)],
                    preset);
                runDirectory = RunControl.ResumeRunFolder(resumePath!, result.GetValue(output));
            }
            else
            {
                // Claimed before the code maps are cached in it.
                runDirectory = RunControl.ClaimNewRun(result.GetValue(output),
                    Path.Combine("runs", $"prior-{spec.Replace(':', '-').Replace('/', '-')}-{result.GetValue(preset)}-{DateTime.Now:yyyyMMdd-HHmmss}"));
            }
            try
            {
                var cachePath = result.GetValue(codesCache) ?? Path.Combine(runDirectory, CacheFileName);
                int l = vqvaeHeader.Config.LatentSize;
                var key = new CodeMapCacheKey(vqvaeHeader.Sha256, datasetKey, vqvaeHeader.Config.CodebookSize, l, l);

                using var dev = CommonOptions.OpenDevice(result.GetValue(device)!, result.GetValue(cache), result.GetValue(tf32));
                using var model = VqVaeCheckpoint.LoadModel(vqvaePath, dev);
                int batchSize = resumed?.State!.Options.BatchSize ?? options.BatchSize;
                var (train, test) = CodeMaps(cachePath, key, model, () => DatasetCatalog.Open(spec, dataPath, model.Config.ImageSize, model.Config.InputChannels, dataSeed),
                                             wantClasses, batchSize);
                if (resumed is null && wantClasses) config = config with { Classes = train.Classes };
                var info = new PriorCheckpointInfo(vqvaeHeader.Sha256, l, l, spec);

                PriorTrainer trainer;
                if (resumePath is not null)
                {
                    trainer = PriorTrainer.Resume(dev, resumePath, train, test, RunControl.Given(result, steps) ? options.Steps : null, runDirectory, model,
                                                  RunControl.Given(result, keep) ? options.KeepCheckpoints : null, RunControl.Given(result, skip) ? options.SkipNonFinite : null);
                    var dropped = trainer.MetricsLinesDropped > 0 ? $"; {trainer.MetricsLinesDropped} metrics lines after it dropped" : "";
                    AnsiConsole.MarkupLineInterpolated($"[grey]resumed {resumePath} at step {trainer.Step}{dropped}[/]");
                }
                else
                {
                    var prior = new GatedPixelCnn(dev, config, options.Seed);
                    try
                    {
                        trainer = new PriorTrainer(prior, train, test, options, info, runDirectory, model);
                    }
                    catch
                    {
                        prior.Dispose();
                        throw;
                    }
                }
                using (trainer)
                {
                    var c = trainer.Prior.Config;
                    var summary = $"prior on {train.Name}: {train.Count} train / {test.Count} test code maps {l}x{l}, K={c.CodebookSize}; " +
                                  $"{trainer.Prior.Parameters().Sum(p => p.Shape.Count):N0} parameters; {c.Layers} layers of width {c.Width}" +
                                  $"{(c.IsClassConditional ? $", {c.Classes} classes" : "")}; unigram entropy of the test codes " +
                                  $"{trainer.UnigramEntropyNats:F4} nats ({trainer.UnigramEntropyNats / Math.Log(2):F4} bits)";
                    AnsiConsole.MarkupLineInterpolated($"[grey]{summary}[/]");
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
                        var dataOption = result.GetValue(dataset) is { } given ? $" --dataset {RunControl.Shell(given)}" : "";
                        if (dataPath is not null) dataOption += $" --data {RunControl.Shell(dataPath)}";
                        RunControl.ReportInterrupted(trainer.Step, trainer.LastCheckpoint,
                            $"vqvae prior train --vqvae {RunControl.Shell(vqvaePath)} --resume {RunControl.Shell(runDirectory)}{dataOption}");
                        return 0;
                    }
                    var final = trainer.History.LastOrDefault(r => r.Split == "test");
                    if (final is not null)
                        AnsiConsole.MarkupLineInterpolated(
                            $"test: NLL {final.NllNats:F4} nats = {final.NllBits:F4} bits per position (unigram entropy {trainer.UnigramEntropyNats:F4} nats); {RunControl.EvaluationSpeed(final.ImagesPerSecond, trainer.History.LastOrDefault(r => r.Split == "train")?.ImagesPerSecond, "maps/s")}");
                    AnsiConsole.MarkupLineInterpolated($"run folder: {Path.GetFullPath(runDirectory)}");
                }
                return 0;
            }
            catch when (resumed is null)
            {
                // A refusal found only now (too few images for a batch, no labels, no device) leaves no empty run folder behind.
                RunControl.ReleaseIfEmpty(runDirectory);
                throw;
            }
        }));
        return command;
    }

    /// <summary><c>vqvae sample</c>.</summary>
    public static Command Sample()
    {
        var vqvae = VqVaeCheckpointOption();
        var prior = new Option<string>("--prior") { Description = "A prior checkpoint written by `vqvae prior train` (e.g. runs/<name>/prior-latest.safetensors).", Required = true };
        var count = new Option<int>("--n") { Description = "Code maps to sample.", DefaultValueFactory = _ => 64 };
        var label = new Option<int?>("--class") { Description = "The class of every sample (class-conditional priors; default: every class in turn, a row each)." };
        var temperature = new Option<float>("--temperature") { Description = "Divide the logits by this before the softmax (< 1 sharper, > 1 flatter).", DefaultValueFactory = _ => 1f };
        var seed = new Option<int>("--seed") { Description = "Seed of the draws.", DefaultValueFactory = _ => 0 };
        var method = new Option<string>("--method") { Description = "naive (re-run the prior per position) | cached (keep each layer's activations); the same samples.", DefaultValueFactory = _ => "cached" };
        method.AcceptOnlyFromAmong("naive", "cached");
        var output = new Option<string>("--out") { Description = "Output PNG grid; the code maps go beside it as <name>.safetensors.", DefaultValueFactory = _ => "samples.png" };
        var force = new Option<bool>("--force") { Description = "Use a prior trained on another checkpoint of a VQ-VAE of the same shape (SHA-256 differs)." };
        var device = CommonOptions.Device();
        var cache = CommonOptions.KernelCache();
        var command = new Command("sample",
            "Sample code maps from a trained prior and decode them with the VQ-VAE: writes a PNG grid and a safetensors file of the code maps " +
            "(`codes` int32 [N, h, w], and `labels` for a class-conditional prior).");
        foreach (var o in new Option[] { vqvae, prior, count, label, temperature, seed, method, output, force, device, cache }) command.Options.Add(o);
        command.SetAction(result => CommonOptions.Guard(() =>
        {
            int n = result.GetValue(count);
            if (n < 1) throw new ArgumentException($"--n {n}: at least one sample");
            float t = result.GetValue(temperature);
            if (!(t > 0) || !float.IsFinite(t)) throw new ArgumentException($"--temperature {t}: must be a positive number");
            var vqvaePath = result.GetValue(vqvae)!;
            var priorPath = result.GetValue(prior)!;
            var vqvaeHeader = ReadVqVaeHeader(vqvaePath);
            RequireFile(priorPath, "prior checkpoint");
            var priorHeader = PriorCheckpoint.ReadHeader(priorPath);
            var warning = PriorCheckpoint.CheckMatches(priorPath, priorHeader.Config, priorHeader.Info, vqvaePath, vqvaeHeader.Config, vqvaeHeader.Sha256,
                                                       result.GetValue(force));
            var classes = priorHeader.Config.Classes;
            int[]? labels = null;
            if (result.GetValue(label) is int c)
            {
                if (classes == 0) throw new ArgumentException($"--class {c}: this prior is unconditional (trained without --class-conditional); drop --class");
                if (c < 0 || c >= classes) throw new ArgumentException($"--class {c}: this prior knows classes 0..{classes - 1}");
                labels = Enumerable.Repeat(c, n).ToArray();
            }
            else if (classes > 0) labels = PriorGeneration.LabelsForEveryClass(n, classes);
            var png = result.GetValue(output)!;
            var codesFile = Path.ChangeExtension(png, ".safetensors");
            if (Path.GetFullPath(codesFile) == Path.GetFullPath(png)) throw new ArgumentException($"--out {png}: give a .png file name (the code maps go beside it as .safetensors)");
            if (warning is not null) AnsiConsole.MarkupLineInterpolated($"[yellow]warning:[/] {warning}");

            using var dev = CommonOptions.OpenDevice(result.GetValue(device)!, result.GetValue(cache));
            using var model = VqVaeCheckpoint.LoadModel(vqvaePath, dev);
            var (priorModel, _) = PriorCheckpoint.LoadModel(priorPath, dev);
            using (priorModel)
            {
                var options = new SamplingOptions
                {
                    Count = n, Temperature = t, Seed = result.GetValue(seed), Labels = labels,
                    Method = result.GetValue(method) == "naive" ? SamplingMethod.Naive : SamplingMethod.Cached,
                };
                GeneratedSamples samples = null!;
                int positions = model.Config.LatentSize * model.Config.LatentSize;
                AnsiConsole.Progress().Start(ctx =>
                {
                    var task = ctx.AddTask($"sampling {n} code maps ({options.Method.ToString().ToLowerInvariant()})", maxValue: positions);
                    samples = PriorGeneration.Generate(model, priorModel, options, new InlineProgress<int>(done => task.Value = done));
                    task.Value = positions;
                });
                samples.SaveCodes(codesFile, new Dictionary<string, string>
                {
                    ["vqvae"] = Path.GetFullPath(vqvaePath),
                    ["prior"] = Path.GetFullPath(priorPath),
                    ["temperature"] = t.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
                    ["seed"] = options.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    ["method"] = options.Method.ToString().ToLowerInvariant(),
                });
                samples.SaveGrid(png);
                AnsiConsole.MarkupLineInterpolated($"{n} samples ({samples.Codes.Distinct().Count()}/{model.Config.CodebookSize} codes used): wrote {Path.GetFullPath(png)} and {Path.GetFullPath(codesFile)}");
            }
            return 0;
        }));
        return command;
    }

    /// <summary>What `prior train` and `sample` need of a VQ-VAE checkpoint before a device is opened.</summary>
    private sealed record VqVaeHeader(VqVaeConfig Config, string Sha256, string? Dataset, int DataSeed);

    private static VqVaeHeader ReadVqVaeHeader(string path)
    {
        RequireFile(path, "VQ-VAE checkpoint");
        var header = VqVaeCheckpoint.ReadHeader(path);
        // The images a VQ-VAE was trained on depend on the run's seed (the synthetic set, a folder's split): reuse it.
        return new VqVaeHeader(header.Config, PriorCheckpoint.Sha256OfFile(path), header.Dataset, header.Training?.Seed ?? 0);
    }

    // --dataset when given; else the data set of a resumed prior; else the one the VQ-VAE was trained on ("shapes/train" → shapes).
    private static string DatasetSpec(string? given, string vqvaePath, VqVaeHeader vqvae, PriorCheckpoint.Header? resumed)
    {
        if (given is not null) return given;
        if (resumed is not null && resumed.Info.Dataset.Length > 0) return resumed.Info.Dataset;
        if (string.IsNullOrEmpty(vqvae.Dataset))
            throw new ArgumentException($"{vqvaePath} records no data set (it was saved without training state): pass --dataset");
        var name = vqvae.Dataset.EndsWith("/train", StringComparison.Ordinal) ? vqvae.Dataset[..^"/train".Length] : vqvae.Dataset;
        var known = DatasetCatalog.Specs.Where(s => !s.Contains(':')).ToList();
        if (!known.Contains(name))
            throw new ArgumentException($"{vqvaePath} was trained on '{vqvae.Dataset}', which is not a data set name this command can reopen: " +
                                        $"pass --dataset ({string.Join(", ", DatasetCatalog.Specs)}) and --data");
        return name;
    }

    // The cached code maps, or new ones extracted with a progress bar (the cache is written only once they are known to fit).
    private static (CodeMapSet Train, CodeMapSet Test) CodeMaps(string cachePath, CodeMapCacheKey key, VqVae model,
                                                                Func<(ImageDataset Train, ImageDataset Test)> open, bool wantClasses, int batchSize)
    {
        var cached = CodeMapCache.TryLoad(cachePath, key, out var reason);
        CodeMapSet train, test;
        if (cached is { } sets)
        {
            (train, test) = sets;
            AnsiConsole.MarkupLineInterpolated($"[grey]code maps from {cachePath}: {reason}[/]");
        }
        else
        {
            if (File.Exists(cachePath)) AnsiConsole.MarkupLineInterpolated($"[yellow]code-map cache {cachePath} is stale: {reason}; rebuilding it[/]");
            var (trainImages, testImages) = open();
            if (wantClasses && (trainImages.Labels is null || testImages.Labels is null))
                throw new ArgumentException($"--class-conditional: '{trainImages.Name}' has no labels to condition on");
            if (trainImages.Count < batchSize)
                throw new ArgumentException($"--batch {batchSize}: '{trainImages.Name}' has only {trainImages.Count} images, fewer than one batch");
            (CodeMapSet Train, CodeMapSet Test)? extracted = null;
            AnsiConsole.Progress().Start(ctx =>
            {
                var task = ctx.AddTask($"encoding {Markup.Escape(trainImages.Name)} and {Markup.Escape(testImages.Name)}", maxValue: trainImages.Count + testImages.Count);
                extracted = CodeMapCache.Extract(model, trainImages, testImages, new InlineProgress<int>(done => task.Value = done));
            });
            (train, test) = extracted!.Value;
            CodeMapCache.Save(cachePath, key, train, test);
            AnsiConsole.MarkupLineInterpolated($"[grey]code maps extracted with the frozen VQ-VAE and cached in {cachePath}[/]");
        }
        if (wantClasses && train.Classes == 0) throw new ArgumentException($"--class-conditional: '{train.Name}' has no labels to condition on");
        return (train, test);
    }

    private static void RequireFile(string path, string what)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such {what}");
    }

    private static TrainingEnd Run(PriorTrainer trainer)
    {
        using var signals = new StopSignals();
        var end = TrainingEnd.Finished;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("starting", maxValue: trainer.Options.Steps);
                task.Value = trainer.Step;
                end = trainer.Train(new InlineProgress<PriorTrainingProgress>(p =>
                {
                    task.Value = p.Step;
                    if (p.Message is not null) task.Description = Markup.Escape(p.Message);
                    if (p.Latest is { } m)
                        task.Description = Markup.Escape(
                            $"step {m.Step} {m.Split}: nll {m.NllNats:F4} nats {m.NllBits:F4} bits" +
                            (m.UnigramEntropyNats is double u ? $" (unigram {u:F4} nats)" : "") +
                            (m.ImagesPerSecond > 0 ? $" {m.ImagesPerSecond:F0} maps/s" : ""));
                }), signals.Token);
            });
        return end;
    }
}
