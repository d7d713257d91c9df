using System.CommandLine;
using Spectre.Console;
using VqVaeCuda.Device;
using VqVaeCuda.Device.Cuda;

namespace VqVaeCuda.Cli.Commands;

/// <summary>Options shared by several commands, and the one way commands report failure.</summary>
internal static class CommonOptions
{
    public static Option<string> Device() => new("--device", "-d")
    {
        Description = $"Device to run on: {DeviceSelector.Forms}. auto takes a CUDA GPU when one answers, else the CPU.",
        DefaultValueFactory = _ => "auto",
    };

    public static Option<string?> KernelCache() => new("--kernel-cache")
    {
        Description = $"Directory of compiled GPU kernels (default: ${KernelCache_EnvironmentVariable}, else ~/.cache/vqvae/kernels).",
    };

    public const string KernelCache_EnvironmentVariable = "VQVAE_KERNEL_CACHE";

    /// <summary>Opens the device, printing which one was chosen and why.</summary>
    public static IDevice OpenDevice(string specification, string? kernelCache)
    {
        var selected = DeviceSelector.Open(specification, new DeviceSelectorOptions
        {
            Cuda = new CudaDeviceOptions { KernelCacheDirectory = kernelCache },
        });
        AnsiConsole.MarkupLineInterpolated($"[grey]device: {selected.Reason}[/]");
        return selected.Device;
    }

    /// <summary>
    /// The run folder a checkpoint belongs to: runs/&lt;name&gt;/latest.safetensors and
    /// runs/&lt;name&gt;/checkpoints/step-N.safetensors (likewise the prior's) both belong to runs/&lt;name&gt;.
    /// </summary>
    public static string RunFolderOf(string checkpoint)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(checkpoint))!;
        return Path.GetFileName(folder) == "checkpoints" ? Path.GetDirectoryName(folder)! : folder;
    }

    /// <summary>Runs a command body; a known failure becomes one red line on stderr and exit code 1.</summary>
    public static int Guard(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (e is DeviceUnavailableException or ArgumentException or KernelLaunchException or IOException
                                      or UnauthorizedAccessException or DllNotFoundException or Kernels.UnknownKernelException
                                      or VqVaeCuda.Device.Cuda.Native.KernelCompilationException
                                      or VqVaeCuda.Data.DataFormatException or VqVaeCuda.Checkpoints.CheckpointFormatException
                                      or FileNotFoundException)
        {
            var error = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            // Into a file or a pipe, the message stays one line: wrapping at 80 columns would split paths mid-name.
            if (Console.IsErrorRedirected) error.Profile.Width = 100_000;
            error.MarkupLineInterpolated($"[red]error:[/] {e.Message}");
            return 1;
        }
    }
}
