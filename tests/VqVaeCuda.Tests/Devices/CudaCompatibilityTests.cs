using VqVaeCuda.Device.Cuda;

namespace VqVaeCuda.Tests.Devices;

/// <summary>Which NVRTC target and which CUDA libraries fit a GPU, an NVRTC and a driver: the rules, without a GPU.</summary>
[TestFixture, Category("Cpu")]
public class CudaCompatibilityTests
{
    private static readonly IReadOnlyList<int> Nvrtc118 = [35, 37, 50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 89, 90];
    private static readonly IReadOnlyList<int> Nvrtc130 = [75, 80, 86, 87, 89, 90, 100, 103, 110, 120, 121];

    [Test]
    public void A_GPU_that_NVRTC_knows_gets_its_own_cubin()
    {
        var target = CudaCompatibility.ChooseTarget(9, 0, Nvrtc118, (11, 8), 12080, out var why);
        Assert.That(target, Is.EqualTo(new KernelTarget(KernelTargetKind.Cubin, 90)), why);
        Assert.That(target!.Description, Is.EqualTo("cubin sm_90"));
    }

    [Test]
    public void A_later_minor_of_a_known_major_gets_the_newest_same_major_cubin()
    {
        var target = CudaCompatibility.ChooseTarget(8, 9, [70, 75, 80, 86], (11, 4), 11040, out _);
        Assert.That(target, Is.EqualTo(new KernelTarget(KernelTargetKind.Cubin, 86)));
    }

    [Test]
    public void A_GPU_newer_than_NVRTC_gets_PTX_for_the_newest_architecture_NVRTC_knows()
    {
        // Blackwell (sm_120) under Debian's NVRTC 11.8 and a 12.8 driver.
        var target = CudaCompatibility.ChooseTarget(12, 0, Nvrtc118, (11, 8), 12080, out var why);
        Assert.That(target, Is.EqualTo(new KernelTarget(KernelTargetKind.Ptx, 90)), why);
        Assert.That(target!.Description, Is.EqualTo("PTX compute_90, JIT-compiled by the driver"));
    }

    [Test]
    public void PTX_from_an_NVRTC_newer_than_the_driver_is_refused_because_the_driver_cannot_JIT_it()
    {
        var target = CudaCompatibility.ChooseTarget(12, 0, [50, 60, 70, 75, 80, 86, 89, 90], (12, 6), 12040, out var why);
        Assert.That(target, Is.Null);
        Assert.That(why, Does.Contain("cannot JIT-compile PTX from a newer NVRTC").And.Contain("12.4"));
    }

    [Test]
    public void A_GPU_older_than_NVRTC_supports_asks_for_an_older_NVRTC_not_a_newer_one()
    {
        // Volta under CUDA 13, which dropped sm_70.
        var target = CudaCompatibility.ChooseTarget(7, 0, Nvrtc130, (13, 0), 13000, out var why);
        Assert.That(target, Is.Null);
        Assert.That(why, Does.Contain("older NVRTC").And.Not.Contain("newer NVRTC"));
    }

    [Test]
    public void An_NVRTC_of_a_newer_major_than_the_driver_is_refused()
    {
        var target = CudaCompatibility.ChooseTarget(9, 0, Nvrtc130, (13, 0), 12080, out var why);
        Assert.That(target, Is.Null);
        Assert.That(why, Does.Contain("newer than the driver").And.Contain("libnvrtc.so.12"));
    }

    [Test]
    public void Without_a_supported_list_the_release_table_is_used()
    {
        Assert.That(CudaCompatibility.KnownArchitectures(11, 0), Does.Contain(80).And.Not.Contain(86));
        Assert.That(CudaCompatibility.KnownArchitectures(11, 8), Is.EqualTo(Nvrtc118));
        Assert.That(CudaCompatibility.KnownArchitectures(13, 0).Min(), Is.EqualTo(75));
        var target = CudaCompatibility.ChooseTarget(8, 6, null, (11, 0), 11000, out _);
        Assert.That(target, Is.EqualTo(new KernelTarget(KernelTargetKind.Cubin, 80)));
    }

    [Test]
    public void An_unknown_driver_version_checks_nothing_about_the_driver()
    {
        Assert.That(CudaCompatibility.ChooseTarget(12, 0, Nvrtc118, (11, 8), null, out _), Is.EqualTo(new KernelTarget(KernelTargetKind.Ptx, 90)));
    }

    [Test]
    public void Library_sonames_keep_only_the_majors_the_driver_supports_newest_first()
    {
        Assert.That(CudaCompatibility.NvrtcSonames(12080), Is.EqualTo(new[]
        {
            "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so.11.1", "libnvrtc.so.11.0", "libnvrtc.so",
        }));
        Assert.That(CudaCompatibility.CublasSonames(11040), Is.EqualTo(new[] { "libcublas.so.11", "libcublas.so" }));
        Assert.That(CudaCompatibility.CublasSonames(13000)[0], Is.EqualTo("libcublas.so.13"));
        Assert.That(CudaCompatibility.NvrtcSonames(null)[0], Is.EqualTo("libnvrtc.so.13"), "no driver: NVRTC still compiles, newest first");
    }

    [TestCase("sm_90", KernelTargetKind.Cubin, 90, "")]
    [TestCase("sm_90a", KernelTargetKind.Cubin, 90, "a")]
    [TestCase("compute_120", KernelTargetKind.Ptx, 120, "")]
    public void Target_names_round_trip(string name, KernelTargetKind kind, int architecture, string variant)
    {
        var target = KernelTarget.Parse(name);
        Assert.That(target, Is.EqualTo(new KernelTarget(kind, architecture, variant)));
        Assert.That(target.Name, Is.EqualTo(name));
    }

    [Test]
    public void A_version_prints_as_major_dot_minor() => Assert.That(CudaCompatibility.FormatVersion(12080), Is.EqualTo("12.8"));
}
