using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
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
        var json = new Option<bool>("--json")
        {
            Description = "Print JSON instead of a table: an array of {component, available, detail}, one component a line " +
                          "(tools/gpu-check.sh reads whether a cuda:N component is available).",
        };
        var command = new Command("info", "Show the devices found (or why none), NVRTC and cuBLAS versions (or why absent), " +
                                          "the CPU kernel library's status and the kernel cache directory.");
        command.Options.Add(cache);
        command.Options.Add(json);
        command.SetAction(result => CommonOptions.Guard(() =>
        {
            var report = SystemReport.Collect(result.GetValue(cache));
            if (result.GetValue(json))
            {
                // One object a line, so a shell script can grep a component without a JSON parser.
                // Relaxed escaping: the details quote commands (`apt-get ...`) and paths, which read better unescaped.
                var options = new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
                var lines = report.Lines.Select(l => JsonSerializer.Serialize(new { component = l.Component, available = l.Available, detail = l.Detail }, options));
                Console.WriteLine("[\n" + string.Join(",\n", lines) + "\n]");
                return 0;
            }
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
