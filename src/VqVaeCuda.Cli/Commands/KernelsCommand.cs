using System.CommandLine;
using Spectre.Console;
using VqVaeCuda.Device.Cuda;
using VqVaeCuda.Diagnostics;
using VqVaeCuda.Kernels;

namespace VqVaeCuda.Cli.Commands;

/// <summary><c>vqvae kernels list|report</c>: the kernels, and what NVRTC's ptxas says about each.</summary>
internal static class KernelsCommand
{
    public static Command Create()
    {
        var command = new Command("kernels", "Inspect the kernels in kernels/*.cu.");
        command.Subcommands.Add(List());
        command.Subcommands.Add(Report());
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "List every kernel with its source file, parameters and CPU registration.");
        command.SetAction(_ => CommonOptions.Guard(() =>
        {
            var table = new Table().Border(TableBorder.Rounded).AddColumns("kernel", "file", "CPU threads run as", "parameters");
            foreach (var k in KernelSourceSet.Embedded.Kernels.OrderBy(k => k.SourceName).ThenBy(k => k.Name))
                table.AddRow(Markup.Escape(k.Name), Markup.Escape(k.SourceName),
                             k.SyncKind == KernelSyncKind.NoSync ? "plain calls" : "fibers",
                             Markup.Escape(string.Join(", ", k.Parameters)));
            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }

    private static Command Report()
    {
        var arch = new Option<string>("--arch")
        {
            Description = "GPU architecture to compile for: sm_70, sm_75, sm_80, sm_86, sm_89 or sm_90.",
            DefaultValueFactory = _ => "sm_90",
        };
        var block = new Option<int?>("--block")
        {
            Description = "Threads per block assumed for occupancy (default: the kernel's __launch_bounds__, else 256).",
        };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        var cache = CommonOptions.KernelCache();
        var command = new Command("report",
            "Compile every kernel with NVRTC for one architecture and show registers, shared memory, spill bytes and " +
            "theoretical occupancy from ptxas's report. Needs NVRTC, not a GPU.");
        command.Options.Add(arch);
        command.Options.Add(block);
        command.Options.Add(json);
        command.Options.Add(cache);
        command.SetAction(result => CommonOptions.Guard(() =>
        {
            var architecture = result.GetValue(arch)!;
            if (result.GetValue(block) is int b && (b < 1 || b > 1024))
                throw new ArgumentException($"--block {b}: threads per block must be 1..1024");
            var rows = KernelReport.Build(KernelSourceSet.Embedded, architecture, result.GetValue(block),
                                          new KernelCache(KernelCache.ResolveDirectory(result.GetValue(cache))));
            if (result.GetValue(json))
            {
                Console.WriteLine(KernelReport.ToJson(rows));
                return 0;
            }
            var table = new Table().Border(TableBorder.Rounded).Title($"kernels on {architecture}")
                .AddColumns("kernel", "file", "registers", "smem (B)", "spill st/ld (B)", "stack (B)", "block", "occupancy", "limited by");
            foreach (var r in rows)
                table.AddRow(Markup.Escape(r.Kernel), Markup.Escape(r.Source), r.Registers.ToString(), r.SharedBytes.ToString(),
                             (r.SpillStoreBytes + r.SpillLoadBytes) == 0 ? "0" : $"[red]{r.SpillStoreBytes}/{r.SpillLoadBytes}[/]",
                             r.StackFrameBytes.ToString(), r.BlockThreads.ToString(), $"{r.Occupancy:P0}", Markup.Escape(r.LimitedBy));
            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }
}
