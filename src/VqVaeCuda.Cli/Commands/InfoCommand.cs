using System.CommandLine;
using Spectre.Console;
using VqVaeCuda.Device.Cuda;
using VqVaeCuda.Diagnostics;

namespace VqVaeCuda.Cli.Commands;

/// <summary><c>vqvae info</c>: what this machine offers the engine, and why anything is missing.</summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var cache = CommonOptions.KernelCache();
        var command = new Command("info", "Show the devices found (or why none), NVRTC and cuBLAS versions (or why absent), " +
                                          "the CPU kernel library's status and the kernel cache directory.");
        command.Options.Add(cache);
        command.SetAction(result => CommonOptions.Guard(() =>
        {
            var report = SystemReport.Collect(result.GetValue(cache));
            var table = new Table().Border(TableBorder.Rounded).AddColumn("component").AddColumn("status");
            foreach (var line in report.Lines)
                table.AddRow(new Markup(Markup.Escape(line.Component)),
                             new Markup((line.Available ? "[green]ok[/] " : "[yellow]absent[/] ") + Markup.Escape(line.Detail)));
            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }
}
