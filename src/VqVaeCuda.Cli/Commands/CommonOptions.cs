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

    public static Option<bool> Tf32() => new("--tf32")
    {
        Description = "Let cuBLAS GEMMs round their inputs to TF32 on tensor cores (Ampere and newer): several times faster, " +
                      "10-bit mantissa instead of 23. Off by default. The cpu device ignores it (and says so).",
    };

    /// <summary>Opens the device, printing which one was chosen and why (and that <c>--tf32</c> does nothing on the CPU).</summary>
    public static IDevice OpenDevice(string specification, string? kernelCache, bool tf32 = false)
    {
        var selected = DeviceSelector.Open(specification, new DeviceSelectorOptions
        {
            Cuda = new CudaDeviceOptions { KernelCacheDirectory = kernelCache, AllowTf32 = tf32 },
        });
        AnsiConsole.MarkupLineInterpolated($"[grey]device: {selected.Reason}[/]");
        if (tf32 && !selected.Device.Capabilities.Tf32Gemm)
            AnsiConsole.MarkupLineInterpolated($"[yellow]--tf32 ignored: {selected.Device.Name} computes GEMM in FP32[/]");
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

    /// <summary>
    /// Runs a command body; a failure becomes one line on stderr ("error: ...", never wrapped, no stack trace) and exit
    /// code 1. Failures of the input, the device or the machine are expected and reported as they are; anything else is a
    /// bug of this program and says so (its stack trace with <c>VQVAE_TRACE=1</c>).
    /// </summary>
    public static int Guard(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (IsExpected(e))
        {
            WriteError(e.Message);
            return 1;
        }
        catch (Exception e) when (e is not (StackOverflowException or AccessViolationException))
        {
            WriteError($"internal error ({e.GetType().Name}): {e.Message}" +
                       (Environment.GetEnvironmentVariable("VQVAE_TRACE") == "1" ? Environment.NewLine + e : " (set VQVAE_TRACE=1 for where)"));
            return 1;
        }
    }

    private static bool IsExpected(Exception e) =>
        e is VqVaeCuda.Tensors.InvalidInputFileException or DeviceUnavailableException or OutOfMemoryException or ArgumentException
            or KernelLaunchException or IOException or UnauthorizedAccessException or DllNotFoundException or Kernels.UnknownKernelException
            or VqVaeCuda.Device.Cuda.Native.KernelCompilationException or VqVaeCuda.Device.Cuda.Native.CudaException
            or VqVaeCuda.Device.Host.HostDeviceException;

    /// <summary>
    /// "error: message" on stderr. Into a file or a pipe it is written as it is: Spectre.Console would wrap it at 80
    /// columns there and split paths mid-name. On a terminal it is red, and the terminal wraps it as it wraps everything.
    /// </summary>
    private static void WriteError(string message)
    {
        if (Console.IsErrorRedirected)
        {
            Console.Error.WriteLine($"error: {message}");
            return;
        }
        var error = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        error.Profile.Width = 100_000;  // the terminal wraps; Spectre must not insert line breaks of its own
        error.MarkupLineInterpolated($"[red]error:[/] {message}");
    }
}
