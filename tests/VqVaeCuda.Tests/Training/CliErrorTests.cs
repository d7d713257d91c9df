using System.Text;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Training;

/// <summary>The CLI's failures: one line on stderr, "error: ...", never wrapped, no stack trace, exit code 1.</summary>
[TestFixture, Category("Cpu"), NonParallelizable]
public class CliErrorTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        TestDevices.Cpu().Dispose();
        // A long folder name, so that a message wrapped at 80 columns would split the path.
        Directory.CreateDirectory(_dir = Path.Combine(Path.GetTempPath(), "vqvae-cli-errors-" + Guid.NewGuid().ToString("N"), "a-folder-name-long-enough-to-pass-eighty-columns"));
    }

    [TearDown]
    public void TearDown() => Directory.Delete(Path.GetDirectoryName(_dir)!, true);

    [TestCase("[1,2,3]", "expected an object")]
    [TestCase("{\"__metadata__\":{\"format\":null}}", "metadata 'format'")]
    [TestCase("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "appears twice")]
    public void A_malformed_checkpoint_header_is_one_line_naming_the_file(string header, string expected)
    {
        var path = Path.Combine(_dir, "model.safetensors");
        var json = Encoding.UTF8.GetBytes(header);
        File.WriteAllBytes(path, [.. BitConverter.GetBytes((ulong)json.Length), .. json, .. new byte[8]]);
        var (code, error) = Cli.Run("reconstruct", "-c", path, "--device", "cpu");
        Assert.That(code, Is.EqualTo(1));
        Cli.AssertOneErrorLine(error, path, expected);
    }

    [Test]
    public void An_unknown_device_is_one_line_listing_the_devices_that_exist()
    {
        var (code, error) = Cli.Run("train", "--device", "gpu", "--steps", "1", "--out", Path.Combine(_dir, "run"));
        Assert.That(code, Is.EqualTo(1));
        Cli.AssertOneErrorLine(error, "unknown device 'gpu'", "devices here: cpu");
    }
}

/// <summary>Runs the CLI in process, capturing stderr.</summary>
internal static class Cli
{
    public static (int Code, string Error) Run(params string[] args)
    {
        var error = new StringWriter();
        var saved = Console.Error;
        Console.SetError(error);
        try
        {
            return (VqVaeCuda.Cli.Program.Main(args), error.ToString());
        }
        finally
        {
            Console.SetError(saved);
        }
    }

    /// <summary>Exactly one line, "error: ...", naming what it must, with no stack trace and no internal error.</summary>
    public static void AssertOneErrorLine(string stderr, params string[] mentions)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), $"one line on stderr, got:{Environment.NewLine}{stderr}");
        Assert.That(lines[0], Does.StartWith("error: ").Or.Contain("error:"));
        Assert.That(lines[0], Does.Not.Contain("internal error").And.Not.Contain("   at "));
        foreach (var m in mentions) Assert.That(lines[0], Does.Contain(m));
    }
}
