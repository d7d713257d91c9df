// ExampleHost: train a small VQ-VAE with a hand-written loop on the built-in shapes and reconstruct a
// few test images — using only VqVaeCuda's public API, as a C# host program would. The loop is the one
// VqVaeTrainer runs (a test proves the two give bit-identical results).
//
//   dotnet run --project tools/ExampleHost -- [steps] [device]
using VqVaeCuda.Autodiff;
using VqVaeCuda.Data;
using VqVaeCuda.Device;
using VqVaeCuda.Models;
using VqVaeCuda.Optim;
using VqVaeCuda.Tensors;
using VqVaeCuda.Training;

int steps = args.Length > 0 ? int.Parse(args[0]) : 30;
string deviceSpec = args.Length > 1 ? args[1] : "auto";

// 1. A device (the GPU when one answers, else the CPU), data (built in), a model and its optimizer.
var selected = DeviceSelector.Open(deviceSpec);
using var device = selected.Device;
Console.WriteLine(selected.Reason);
var config = VqVaeConfig.Preset("tiny");
var (train, test) = DatasetCatalog.Open("shapes", null, config.ImageSize, config.InputChannels, seed: 1);
using var model = new VqVae(device, config, seed: 1);
using var adam = new Adam(model.Parameters(), learningRate: 2e-4);
using var loader = new BatchLoader(train, new BatchLoaderOptions { BatchSize = 32, Seed = 1, DropLast = true });
using var arena = new Arena(device, 64L << 20);  // one step's activations and gradients

// 2. The training loop: forward, loss, backward, clip, step, codebook update, dead-code restarts.
double first = 0, last = 0;
for (int step = 1; step <= steps; step++)
{
    if (!loader.TryNext(out var batch) && !loader.TryNext(out batch)) throw new InvalidOperationException("no batch");
    arena.Reset();
    adam.ZeroGrad();
    var tape = new Tape(arena);
    var ctx = new OpContext(arena, tape);
    var x = ctx.NewTensor(new Shape(batch.Size, batch.Channels, batch.Height, batch.Width));
    x.CopyFrom(batch.Pixels);
    loader.Recycle(batch);
    var output = model.Forward(ctx, x);                        // z_e, quantizer result, x̂
    var loss = VqVae.ReconstructionLoss(ctx, x, output);        // ‖x − x̂‖²; the quantizer adds its own gradients
    tape.Backward(loss);
    GradientClipping.ClipByGlobalNorm(new OpContext(arena), model.ParameterStore, maxNorm: 10f);
    adam.Step();
    model.Quantizer.UpdateCodebook(new OpContext(arena), output.EncoderOutput, output.Quantized);  // EMA
    model.Quantizer.RecordUsage(output.Quantized.Counts.ToIntArray(), step);
    model.Quantizer.RestartDeadCodes(output.EncoderOutput, step, deadAfterSteps: 10, seed: 1);
    last = loss.ToArray()[0];
    if (step == 1) first = last;
}

// 3. Reconstruct test images: their error and one code map.
model.Eval();
var result = VqVaeInference.Reconstruct(model, test, first: 0, count: 16);
double testMse = result.Inputs.Zip(result.Reconstructions, (a, b) => (double)(a - b) * (a - b)).Average();
Console.WriteLine($"step 1 MSE {first:F4}; after {steps} steps train MSE {last:F4}, test MSE {testMse:F4}");
Console.WriteLine($"code map of image 0: {string.Join(" ", result.Codes.Take(config.LatentSize * config.LatentSize))}");
return testMse < first ? 0 : 1;
