using System.CommandLine;
using Spectre.Console;
using VqVaeCuda.Cli.Commands;

namespace VqVaeCuda.Cli;

/// <summary>The <c>vqvae</c> command: a thin shell over the library's public API.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        // Piped into a file or another program, tables keep their full width instead of wrapping at 80 columns.
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200;
        var root = new RootCommand(
            "VqVaeCuda: VQ-VAE training where every numeric operation is a hand-written CUDA kernel, compiled at run time " +
            "with NVRTC — or, on the `cpu` device, the same kernel sources compiled as C++. Run the whole paper in one command (`pipeline`), " +
            "or its stages: train a VQ-VAE (`train`), a Gated PixelCNN prior over its codes (`prior train`), and generate images from the two (`sample`).");
        root.Subcommands.Add(PipelineCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(InferenceCommands.Reconstruct());
        root.Subcommands.Add(InferenceCommands.Encode());
        root.Subcommands.Add(InferenceCommands.Decode());
        root.Subcommands.Add(PriorCommands.Prior());
        root.Subcommands.Add(PriorCommands.Sample());
        root.Subcommands.Add(InfoCommand.Create());
        root.Subcommands.Add(KernelsCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(VerifyCommand.Create());
        return root.Parse(args).Invoke();
    }
}
