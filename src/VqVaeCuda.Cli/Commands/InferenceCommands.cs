using System.CommandLine;
using Spectre.Console;
using VqVaeCuda.Checkpoints;
using VqVaeCuda.Imaging;
using VqVaeCuda.Training;

namespace VqVaeCuda.Cli.Commands;

/// <summary><c>vqvae reconstruct</c>, <c>vqvae encode</c>, <c>vqvae decode</c>: using a trained model.</summary>
internal static class InferenceCommands
{
    private static Option<string> Checkpoint() => new("--checkpoint", "-c")
    {
        Description = "A checkpoint written by `vqvae train` (e.g. runs/<name>/latest.safetensors).",
        Required = true,
    };

    private static void RequireFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such checkpoint");
    }

    public static Command Reconstruct()
    {
        var checkpoint = Checkpoint();
        var data = new DataOptions();
        var count = new Option<int>("--count") { Description = "Images to reconstruct (from the start of the test split).", DefaultValueFactory = _ => 16 };
        var output = new Option<string>("--out") { Description = "Output folder.", DefaultValueFactory = _ => "reconstruction" };
        var device = CommonOptions.Device();
        var cache = CommonOptions.KernelCache();
        var command = new Command("reconstruct",
            "Reconstruct test images with a trained model: writes <out>/reconstructions.png (originals over reconstructions) and " +
            "<out>/reconstruction.safetensors holding the inputs, z_e, the code map, z_q and the reconstruction.");
        foreach (var o in new Option[] { checkpoint, count, output, device, cache }) command.Options.Add(o);
        data.AddTo(command);
        command.SetAction(result => CommonOptions.Guard(() =>
        {
            int n = result.GetValue(count);
            if (n < 1) throw new ArgumentException($"--count {n}: at least 1");
            RequireFile(result.GetValue(checkpoint)!);
            using var dev = CommonOptions.OpenDevice(result.GetValue(device)!, result.GetValue(cache));
            using var model = VqVaeCheckpoint.LoadModel(result.GetValue(checkpoint)!, dev);
            var (_, test) = data.Open(result, model.Config, seed: 0);
            n = Math.Min(n, test.Count);
            var r = VqVaeInference.Reconstruct(model, test, 0, n);
            var folder = result.GetValue(output)!;
            Directory.CreateDirectory(folder);
            r.SaveGrid(Path.Combine(folder, "reconstructions.png"));
            r.SaveSafetensors(Path.Combine(folder, "reconstruction.safetensors"));
            double mse = r.Inputs.Zip(r.Reconstructions, (a, b) => (double)(a - b) * (a - b)).Average();
            AnsiConsole.MarkupLineInterpolated($"{n} images, MSE {mse:F5}; wrote {Path.GetFullPath(folder)}/reconstructions.png and reconstruction.safetensors");
            return 0;
        }));
        return command;
    }

    public static Command Encode()
    {
        var checkpoint = Checkpoint();
        var data = new DataOptions();
        var split = new Option<string>("--split") { Description = "train | test.", DefaultValueFactory = _ => "train" };
        split.AcceptOnlyFromAmong("train", "test");
        var output = new Option<string>("--out") { Description = "Output safetensors file.", DefaultValueFactory = _ => "codes.safetensors" };
        var device = CommonOptions.Device();
        var cache = CommonOptions.KernelCache();
        var command = new Command("encode",
            "Encode a data set into code maps: a safetensors file with `codes` (int32 [N, h, w]) and, when the data has them, `labels` (int32 [N]). " +
            "The input of prior training.");
        foreach (var o in new Option[] { checkpoint, split, output, device, cache }) command.Options.Add(o);
        data.AddTo(command);
        command.SetAction(result => CommonOptions.Guard(() =>
        {
            RequireFile(result.GetValue(checkpoint)!);
            using var dev = CommonOptions.OpenDevice(result.GetValue(device)!, result.GetValue(cache));
            using var model = VqVaeCheckpoint.LoadModel(result.GetValue(checkpoint)!, dev);
            var (train, test) = data.Open(result, model.Config, seed: 0);
            var set = result.GetValue(split) == "test" ? test : train;
            int[] codes = [];
            AnsiConsole.Progress().Start(ctx =>
            {
                var task = ctx.AddTask($"encoding {Markup.Escape(set.Name)}", maxValue: set.Count);
                codes = VqVaeInference.EncodeCodes(model, set, progress: new Progress<int>(done => task.Value = done));
                task.Value = set.Count;
            });
            long l = model.Config.LatentSize;
            var tensors = new List<SafetensorsTensor> { SafetensorsTensor.FromInts("codes", [set.Count, l, l], codes) };
            if (set.Labels is { } labels) tensors.Add(SafetensorsTensor.FromInts("labels", [set.Count], labels));
            var file = result.GetValue(output)!;
            Safetensors.Write(file, tensors, new Dictionary<string, string>
            {
                ["config"] = model.Config.ToJson(),
                ["dataset"] = set.Name,
                ["checkpoint"] = Path.GetFullPath(result.GetValue(checkpoint)!),
            });
            int used = codes.Distinct().Count();
            AnsiConsole.MarkupLineInterpolated($"{set.Count} code maps of {l}x{l} ({used}/{model.Config.CodebookSize} codes used) written to {Path.GetFullPath(file)}");
            return 0;
        }));
        return command;
    }

    public static Command Decode()
    {
        var checkpoint = Checkpoint();
        var codesFile = new Option<string>("--codes") { Description = "A safetensors file with `codes` int32 [N, h, w] (from `vqvae encode` or a prior's samples).", Required = true };
        var count = new Option<int>("--count") { Description = "Code maps to decode (from the start).", DefaultValueFactory = _ => 64 };
        var output = new Option<string>("--out") { Description = "Output PNG grid.", DefaultValueFactory = _ => "decoded.png" };
        var device = CommonOptions.Device();
        var cache = CommonOptions.KernelCache();
        var command = new Command("decode", "Decode code maps into images with a trained model's decoder and write them as a PNG grid.");
        foreach (var o in new Option[] { checkpoint, codesFile, count, output, device, cache }) command.Options.Add(o);
        command.SetAction(result => CommonOptions.Guard(() =>
        {
            var path = result.GetValue(codesFile)!;
            RequireFile(result.GetValue(checkpoint)!);
            var (tensors, _) = Safetensors.Read(path);
            if (!tensors.TryGetValue("codes", out var t) || t.DType != "I32" || t.Shape.Length != 3)
                throw new CheckpointFormatException(path, $"needs a tensor 'codes' of int32 [N, h, w]");
            RequireFile(result.GetValue(checkpoint)!);
            using var dev = CommonOptions.OpenDevice(result.GetValue(device)!, result.GetValue(cache));
            using var model = VqVaeCheckpoint.LoadModel(result.GetValue(checkpoint)!, dev);
            var c = model.Config;
            if (t.Shape[1] != c.LatentSize || t.Shape[2] != c.LatentSize)
                throw new ArgumentException($"{path}: code maps are {t.Shape[1]}x{t.Shape[2]}, this model's are {c.LatentSize}x{c.LatentSize}");
            int n = (int)Math.Min(Math.Max(1, result.GetValue(count)), t.Shape[0]);
            var codes = t.ToInts().AsSpan(0, n * c.LatentSize * c.LatentSize).ToArray();
            var images = VqVaeInference.DecodeCodes(model, codes);
            int columns = Math.Max(1, (int)Math.Ceiling(Math.Sqrt(n)));
            int per = c.InputChannels * c.ImageSize * c.ImageSize;
            var rows = Enumerable.Range(0, (n + columns - 1) / columns)
                .Select(r => images.AsSpan(r * columns * per, Math.Min(columns, n - r * columns) * per).ToArray()).ToList();
            var file = result.GetValue(output)!;
            ImageGrid.SavePng(file, rows, c.InputChannels, c.ImageSize, c.ImageSize);
            AnsiConsole.MarkupLineInterpolated($"decoded {n} code maps into {Path.GetFullPath(file)}");
            return 0;
        }));
        return command;
    }
}
