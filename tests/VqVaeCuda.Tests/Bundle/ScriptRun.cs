using System.Diagnostics;

namespace VqVaeCuda.Tests.Bundle;

/// <summary>Runs the repository's shell scripts (tools/gpu-bundle.sh, tools/gpu-check.sh) as child processes.</summary>
internal static class ScriptRun
{
    /// <summary>The repository root: the folder above the test assembly that holds VqVaeCuda.sln.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "VqVaeCuda.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no VqVaeCuda.sln above {AppContext.BaseDirectory}");
    }

    /// <summary>
    /// A PATH holding every command of <c>PATH</c>'s folders except <c>dotnet</c> (symbolic links in
    /// <paramref name="folder"/>): what a machine without .NET offers, while bash, coreutils and python3 stay reachable.
    /// </summary>
    public static string PathWithoutDotnet(string folder)
    {
        Directory.CreateDirectory(folder);
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!Directory.Exists(dir)) continue;
            foreach (var file in Directory.EnumerateFiles(dir))
            {
                var name = Path.GetFileName(file);
                var link = Path.Combine(folder, name);
                if (name == "dotnet" || File.Exists(link) || Directory.Exists(link)) continue;  // the first on PATH wins, as in a shell
                File.CreateSymbolicLink(link, file);
            }
        }
        return folder;
    }

    /// <summary>Runs <c>bash SCRIPT ARGS</c> to its end; environment entries set to null are removed.</summary>
    public static (int ExitCode, string Stdout, string Stderr) Bash(string script, IEnumerable<string> args,
                                                                    IReadOnlyDictionary<string, string?>? environment = null,
                                                                    TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo("bash") { WorkingDirectory = RepoRoot, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(script);
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null) start.Environment.Remove(key);
            else start.Environment[key] = value;
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout ?? TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{script} did not finish in {timeout ?? TimeSpan.FromMinutes(5)}; stderr so far:\n{stderr.Result}");
        }
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
