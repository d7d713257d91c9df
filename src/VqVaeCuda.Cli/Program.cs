using System.CommandLine;
using VqVaeCuda.Cli.Commands;

namespace VqVaeCuda.Cli;

/// <summary>The <c>vqvae</c> command: a thin shell over the library's public API.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand(
            "VqVaeCuda: VQ-VAE and Gated PixelCNN training where every numeric operation is a hand-written CUDA kernel, " +
            "compiled at run time with NVRTC — or, on the `cpu` device, the same kernel sources compiled as C++.");
        root.Subcommands.Add(InfoCommand.Create());
        root.Subcommands.Add(KernelsCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        return root.Parse(args).Invoke();
    }
}
