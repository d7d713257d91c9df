using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.Json;
using Spectre.Console;
using VqVaeCuda.Data;
using VqVaeCuda.Device;
using VqVaeCuda.Models;
using VqVaeCuda.Training;

namespace VqVaeCuda.Cli.Commands;

/// <summary><c>vqvae pipeline</c>: the paper end to end — VQ-VAE, code maps, prior, samples — into one run folder.</summary>
internal static class PipelineCommand
{
    public static Command Create()
    {
        var defaults = new PipelineOptions();
        var data = new DataOptions();
        var vqvaePreset = new Option<string>("--vqvae-preset")
        {
            Description = $"VQ-VAE size: {string.Join(" | ", VqVaeConfig.Presets.Keys)}.",
            DefaultValueFactory = _ => "shapes",
        };
        var vqvaeSteps = new Option<int>("--vqvae-steps") { Description = "VQ-VAE optimizer steps.", DefaultValueFactory = _ => defaults.VqVaeTraining.Steps };
        var vqvaeLr = new Option<double>("--vqvae-lr") { Description = "VQ-VAE Adam learning rate.", DefaultValueFactory = _ => defaults.VqVaeTraining.LearningRate };
        var priorPreset = new Option<string>("--prior-preset")
        {
            Description = $"Prior size: {string.Join(" | ", GatedPixelCnnConfig.Presets.Keys)}.",
            DefaultValueFactory = _ => "shapes",
        };
        var priorSteps = new Option<int>("--prior-steps") { Description = "Prior optimizer steps.", DefaultValueFactory = _ => defaults.PriorTraining.Steps };
        var priorLr = new Option<double>("--prior-lr") { Description = "Prior Adam learning rate.", DefaultValueFactory = _ => defaults.PriorTraining.LearningRate };
        var batch = new Option<int>("--batch") { Description = "Images (VQ-VAE) and code maps (prior) per step.", DefaultValueFactory = _ => 32 };
        var unconditional = new Option<bool>("--unconditional") { Description = "Fit the prior without the class labels (default: one learned bias per class in every gate)." };
        var samples = new Option<int>("--samples") { Description = "Samples drawn at the end (a class-conditional prior visits every class in turn, a row each).", DefaultValueFactory = _ => 64 };
        var seed = new Option<int>("--seed") { Description = "Seed of data, initialisation, batches and samples.", DefaultValueFactory = _ => 0 };
        var device = CommonOptions.Device();
        var cache = CommonOptions.KernelCache();
        var tf32 = CommonOptions.Tf32();
        var output = new Option<string?>("--out") { Description = "Run folder; it must not exist (default: runs/pipeline-<dataset>-<time>, with -2, -3, ... when taken)." };
        var resume = new Option<string?>("--resume")
        {
            HelpName = "RUN_DIR",
            Description = "Continue an interrupted or killed pipeline run with the settings it was started with (the other options are ignored; " +
                          "--device may change): each stage resumes from the newest checkpoint in its folder that reads back whole.",
        };

        var command = new Command("pipeline",
            "The paper end to end: train a VQ-VAE, extract the code maps of the data with it frozen, fit a Gated PixelCNN prior over them " +
            "(class-conditional by default), sample code maps and decode them. With no options: the built-in shapes data on the best device " +
            "found, a few minutes on two CPU cores. Writes one run folder: reconstructions.png, samples.png (one class per row), summary.json, " +
            "and vqvae/ and prior/ (what `vqvae train` and `vqvae prior train` write: metrics, checkpoints, loss plots). " +
            "SIGINT or SIGTERM finishes the step of the stage under way, writes its checkpoint and exits 0 with the command that resumes " +
            "(a second one quits at once).");
        data.AddTo(command);
        foreach (var o in new Option[] { vqvaePreset, vqvaeSteps, vqvaeLr, priorPreset, priorSteps, priorLr, batch, unconditional, samples, seed, device, cache, tf32, output, resume })
            command.Options.Add(o);

        command.SetAction(given => CommonOptions.Guard(() =>
        {
            // A resumed pipeline takes its settings from the command line that started it, saved in its folder.
            var resumeDirectory = given.GetValue(resume);
            var result = given;
            if (resumeDirectory is not null)
            {
                var argsFile = Path.Combine(resumeDirectory, ArgsFileName);
                if (!File.Exists(argsFile)) throw new FileNotFoundException($"{resumeDirectory}: not a pipeline run folder (no {ArgsFileName})");
                result = command.Parse(JsonSerializer.Deserialize<string[]>(File.ReadAllText(argsFile)) ?? []);
                foreach (var option in command.Options.Where(o => o != resume && o != device && o != cache && o != tf32 && RunControl.Given(given, o)))
                    AnsiConsole.MarkupLineInterpolated($"[yellow]{option.Name} is ignored: a resumed pipeline keeps the settings it was started with[/]");
            }
            int b = result.GetValue(batch), s = result.GetValue(seed);
            var options = new PipelineOptions
            {
                Dataset = result.GetValue(data.Dataset)!,
                DataPath = result.GetValue(data.Data),
                VqVae = VqVaeConfig.Preset(result.GetValue(vqvaePreset)!),
                VqVaeTraining = defaults.VqVaeTraining with { Steps = result.GetValue(vqvaeSteps), BatchSize = b, LearningRate = result.GetValue(vqvaeLr), Seed = s },
                Prior = GatedPixelCnnConfig.Preset(result.GetValue(priorPreset)!),
                PriorTraining = defaults.PriorTraining with
                {
                    Steps = result.GetValue(priorSteps), BatchSize = b, LearningRate = result.GetValue(priorLr), Seed = s, SampleCount = result.GetValue(samples),
                },
                ClassConditional = !result.GetValue(unconditional),
            };
            // Everything the user gave is checked before a device is opened or a folder created.
            options.VqVae.Validate();
            options.VqVaeTraining.Validate();
            options.PriorTraining.Validate();
            string runDirectory;
            if (resumeDirectory is not null)
            {
                runDirectory = resumeDirectory;
            }
            else
            {
                runDirectory = RunControl.ClaimNewRun(result.GetValue(output),
                                                      Path.Combine("runs", $"pipeline-{options.Dataset.Replace(':', '-').Replace('/', '-')}-{DateTime.Now:yyyyMMdd-HHmmss}"));
                File.WriteAllText(Path.Combine(runDirectory, ArgsFileName),
                                  JsonSerializer.Serialize(given.Tokens.Where(t => t.Type != TokenType.Command).Select(t => t.Value).ToArray()));
            }

            IDevice dev;
            try
            {
                dev = CommonOptions.OpenDevice(given.GetValue(device)!, given.GetValue(cache), given.GetValue(tf32));
            }
            catch
            {
                if (resumeDirectory is null)
                {
                    File.Delete(Path.Combine(runDirectory, ArgsFileName));
                    RunControl.ReleaseIfEmpty(runDirectory);
                }
                throw;
            }
            using var _ = dev;
            using var signals = new StopSignals();
            PipelineResult? outcome = null;
            try
            {
                AnsiConsole.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var tasks = new Dictionary<string, ProgressTask>
                        {
                            ["vqvae"] = ctx.AddTask("1/3 VQ-VAE", maxValue: options.VqVaeTraining.Steps),
                            ["codes"] = ctx.AddTask("2/3 code maps", maxValue: 1),
                            ["prior"] = ctx.AddTask("3/3 prior", maxValue: options.PriorTraining.Steps),
                        };
                        outcome = Pipeline.Run(dev, options, runDirectory, new InlineProgress<PipelineProgress>(p =>
                        {
                            var stage = p.Stage == "samples" ? "prior" : p.Stage;
                            var task = tasks[stage];
                            task.MaxValue = Math.Max(1, p.Total);
                            task.Value = p.Done;
                            if (p.Message is not null) task.Description = Markup.Escape($"{Label(stage)}: {p.Message}");
                            if (stage == "codes") task.Description = Markup.Escape($"2/3 code maps: {p.Done}/{p.Total} images encoded");
                            foreach (var earlier in tasks.Values.TakeWhile(t => t != task)) earlier.Value = earlier.MaxValue;
                        }), signals.Token, resume: resumeDirectory is not null);
                        foreach (var task in tasks.Values) task.Value = task.MaxValue;
                    });
            }
            catch (PipelineInterruptedException e)
            {
                // Unwrapped: the resume command must survive a copy and paste.
                Console.Out.WriteLine($"{e.Message}. Resume with: vqvae pipeline --resume {RunControl.Shell(runDirectory)}");
                return 0;
            }
            catch (NonFiniteTrainingException e)
            {
                return RunControl.Failed(e);
            }
            var r = outcome!;
            AnsiConsole.MarkupLineInterpolated(
                $"VQ-VAE test: MSE {r.VqVaeTest.ReconstructionMse:F5}, PSNR {r.VqVaeTest.Psnr:F2} dB, codes used {r.VqVaeTest.CodesUsed}/{options.VqVae.CodebookSize}");
            AnsiConsole.MarkupLineInterpolated(
                $"prior test: NLL {r.PriorTest.NllNats:F4} nats = {r.PriorTest.NllBits:F4} bits per position (unigram entropy {r.UnigramEntropyNats:F4} nats)");
            AnsiConsole.MarkupLineInterpolated($"{r.Seconds:F0} s; run folder: {Path.GetFullPath(runDirectory)} (reconstructions.png, samples.png, summary.json)");
            return 0;
        }));
        return command;
    }

    /// <summary>The file in a pipeline's run folder that holds the arguments it was started with (for --resume).</summary>
    private const string ArgsFileName = "pipeline-args.json";

    private static string Label(string stage) => stage switch { "vqvae" => "1/3 VQ-VAE", "codes" => "2/3 code maps", _ => "3/3 prior" };
}
