using VqVaeCuda.Device.Host;

namespace VqVaeCuda.Tests.Devices;

/// <summary>A libvqvae_host built with -march=native (VQVAE_NATIVE_ARCH=1) on one machine is refused, with the reason, on a CPU that lacks its extensions.</summary>
[TestFixture, Category("Cpu")]
public class InstructionSetTests
{
    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => Directory.CreateDirectory(_dir = Path.Combine(Path.GetTempPath(), $"vqvae-isa-{Guid.NewGuid():N}"));

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    private (string Isa, string CpuInfo) Files(string required, string flags)
    {
        string isa = Path.Combine(_dir, HostRuntime.IsaFileName), cpuinfo = Path.Combine(_dir, "cpuinfo");
        File.WriteAllText(isa, required);
        File.WriteAllText(cpuinfo, $"processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: {flags}\nbogomips\t: 4000\n");
        return (isa, cpuinfo);
    }

    [Test]
    public void A_cpu_lacking_an_extension_the_library_was_built_for_is_named()
    {
        var (isa, cpuinfo) = Files("avx2\navx512f\nfma\n", "fpu sse2 avx avx2 fma");
        var message = HostRuntime.MissingInstructionSets(isa, cpuinfo);
        Assert.That(message, Does.Contain("lacks avx512f"));
        Assert.That(message, Does.Contain("VQVAE_NATIVE_ARCH=1"));
    }

    [Test]
    public void A_cpu_with_every_extension_or_a_portable_build_loads()
    {
        var (isa, cpuinfo) = Files("avx2\nfma\n", "fpu sse2 avx avx2 fma avx512f");
        Assert.That(HostRuntime.MissingInstructionSets(isa, cpuinfo), Is.Null);
        File.WriteAllText(isa, "");
        Assert.That(HostRuntime.MissingInstructionSets(isa, cpuinfo), Is.Null, "portable build: no list");
    }

    [Test]
    public void The_library_built_here_runs_here()
    {
        // The list the build wrote beside the library must be satisfied by this machine's /proc/cpuinfo.
        Assert.That(HostRuntime.MissingInstructionSets(), Is.Null);
    }
}
