// ExampleHost: train a small VQ-VAE for a few steps on the built-in shapes and reconstruct a few
// test images — using only VqVaeCuda's public API, as a C# host program would.
//
//   dotnet run --project tools/ExampleHost -- [steps] [device]
using VqVaeCuda.Data;
using VqVaeCuda.Device;
using VqVaeCuda.Models;
using VqVaeCuda.Training;

int steps = args.Length > 0 ? int.Parse(args[0]) : 30;
string deviceSpec = args.Length > 1 ? args[1] : "auto";

// 1. A device: the GPU when one answers, else the CPU.
var selected = DeviceSelector.Open(deviceSpec);
using var device = selected.Device;
Console.WriteLine(selected.Reason);

// 2. Data: the built-in synthetic shapes (nothing to install).
var config = VqVaeConfig.Preset("tiny");
var (train, test) = DatasetCatalog.Open("shapes", null, config.ImageSize, config.InputChannels, seed: 1);

// 3. A model and a trainer (no run folder: everything stays in memory).
var options = new TrainingOptions { Steps = steps, BatchSize = 32, LogEvery = 10, EvaluateEvery = 0, CheckpointEvery = 0 };
using var trainer = new VqVaeTrainer(new VqVae(device, config, seed: 1), train, test, options, runDirectory: null);
var first = trainer.TrainStep();
trainer.Train();
var evaluation = trainer.History.Last(r => r.Split == "test");
Console.WriteLine($"step 1 MSE {first.ReconstructionMse:F4}; after {trainer.Step} steps test MSE {evaluation.ReconstructionMse:F4}, " +
                  $"codes used {evaluation.CodesUsed}/{config.CodebookSize}");

// 4. Reconstruct four test images and inspect their code maps.
var result = VqVaeInference.Reconstruct(trainer.Model, test, first: 0, count: 4);
Console.WriteLine($"code map of image 0: {string.Join(" ", result.Codes.Take(config.LatentSize * config.LatentSize))}");
return evaluation.ReconstructionMse < first.ReconstructionMse ? 0 : 1;
