using System.Diagnostics;
using System.Text.RegularExpressions;

namespace VqVaeCuda.Tests.Bundle;

/// <summary>
/// tools/gpu-bundle.sh builds the self-contained bundle, and tools/gpu-check.sh runs from it on a machine with no .NET
/// (the SDK off PATH, DOTNET_ROOT unset) and no GPU: it exits 2 with the no-CUDA line after verifying on the cpu
/// device from the bundle. Slow (a trimmed single-file publish and a second build of the CPU kernel library: about a
/// minute and a half on two cores, less when the bundle's build folder is warm); `--filter TestCategory!=Bundle` leaves it out.
/// </summary>
[TestFixture, Category("Bundle"), NonParallelizable]
public partial class GpuBundleTests
{
    private string _dir = "";

    [OneTimeSetUp]
    public void OneTimeSetUp() =>
        Directory.CreateDirectory(_dir = Path.Combine(Path.GetTempPath(), "vqvae-bundle-" + Guid.NewGuid().ToString("N")));

    [OneTimeTearDown]
    public void OneTimeTearDown() => Directory.Delete(_dir, true);

    [GeneratedRegex(@"^bundle: (?<path>.+) \((?<mib>[0-9.]+) MiB\)$")]
    private static partial Regex BundleLine();

    [Test]
    public void The_bundle_runs_the_check_without_dotnet_and_exits_2_without_a_GPU()
    {
        var bundle = Path.Combine(_dir, "gpu-bundle");
        var clock = Stopwatch.StartNew();
        var (buildCode, buildOut, buildErr) = ScriptRun.Bash("tools/gpu-bundle.sh", [bundle], timeout: TimeSpan.FromMinutes(8));
        var buildSeconds = clock.Elapsed.TotalSeconds;
        Assert.That(buildCode, Is.Zero, buildOut + buildErr);
        var last = BundleLine().Match(buildOut.TrimEnd().Split('\n')[^1]);
        Assert.That(last.Success, $"last line: {buildOut.TrimEnd().Split('\n')[^1]}");
        Assert.That(last.Groups["path"].Value, Is.EqualTo(bundle));
        var mib = double.Parse(last.Groups["mib"].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(mib, Is.LessThanOrEqualTo(40));
        var files = Directory.GetFiles(bundle).Select(Path.GetFileName).ToArray();
        Assert.That(files, Is.SupersetOf(new[] { "vqvae", "libvqvae_host.so", "syslibs.tar.xz", "torch_vqvae_step.py", "gpu-check.sh", "BUNDLE.txt" }));

        // The carried copy of the check, run from the bundle folder, finds the bundle it sits in.
        var output = Path.Combine(_dir, "check");
        var env = new Dictionary<string, string?>
        {
            ["PATH"] = ScriptRun.PathWithoutDotnet(Path.Combine(_dir, "bin")),
            ["DOTNET_ROOT"] = null,
            ["VQVAE_BUNDLE"] = null,
        };
        clock.Restart();
        var (code, stdout, stderr) = ScriptRun.Bash(Path.Combine(bundle, "gpu-check.sh"), [output], env, TimeSpan.FromMinutes(8));
        var checkSeconds = clock.Elapsed.TotalSeconds;
        TestContext.Out.WriteLine($"bundle {mib} MiB, built in {buildSeconds:F0} s; gpu-check.sh {checkSeconds:F0} s");

        Assert.That(code, Is.EqualTo(2), stdout + stderr);
        var line = stdout.TrimEnd().Split('\n')[^1];
        Assert.That(line, Does.StartWith("gpu-check: no CUDA device answered ("));
        // The vqvae that answered was the bundle's, with its own CPU kernel library.
        Assert.That(File.ReadAllText(Path.Combine(output, "info.json")),
                    Does.Contain($"{{\"component\":\"CPU kernel library\",\"available\":true,\"detail\":\"{bundle}/libvqvae_host.so:"));
        var help = ScriptRun.Bash("-c", [$"'{bundle}/vqvae' --help"], env).Stdout;
        if (Regex.IsMatch(help, @"^\s+verify\s", RegexOptions.Multiline))
        {
            Assert.That(line, Does.Match(@"verify ran on the cpu device from the bundle: \d+ ops verified, 0 failed$"));
            Assert.That(File.Exists(Path.Combine(output, "verify-cpu.json")));
        }
        else
        {
            Assert.That(line, Does.EndWith("the bundle's vqvae has no verify command; nothing was verified"));
            Assert.Warn("this build's vqvae has no verify command: the check of verify's cpu run waits for it");
        }
    }
}
