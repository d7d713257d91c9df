using VqVaeCuda.Device.Host;
using VqVaeCuda.Device.Native;

namespace VqVaeCuda.Tests.Devices;

[TestFixture, Category("Cpu")]
public class OpenBlasCoreTypeTests
{
    [Test]
    public void The_description_names_the_family_and_who_chose_it()
    {
        Assert.That(OpenBlasCoreType.Describe("Haswell", "Haswell"), Is.EqualTo("Haswell kernels (OPENBLAS_CORETYPE=Haswell)"));
        Assert.That(OpenBlasCoreType.Describe("Cooperlake", null), Is.EqualTo("Cooperlake kernels (OpenBLAS's own choice)"));
        Assert.That(OpenBlasCoreType.Describe("Cooperlake", ""), Is.EqualTo("Cooperlake kernels (OpenBLAS's own choice)"));
        Assert.That(OpenBlasCoreType.Describe(null, "Haswell"), Does.StartWith("not OpenBLAS"));
    }

    [Test]
    public void The_loaded_OpenBLAS_reports_a_kernel_family()
    {
        if (!OpenBlas.IsAvailable(out var whyNot)) Assert.Ignore($"no CBLAS library: {whyNot}");
        var name = OpenBlasCoreType.LoadedCoreName(NativeLibraries.Require(NativeLibraries.Blas));
        if (name is null) Assert.Ignore($"{NativeLibraries.LoadedFrom(NativeLibraries.Blas)} is not OpenBLAS");
        Assert.That(name, Is.Not.Empty);
        TestContext.Out.WriteLine($"{OpenBlasCoreType.Variable}={Environment.GetEnvironmentVariable(OpenBlasCoreType.Variable)}: {name}");
        Assert.That(OpenBlas.DescribeKernels(), Does.StartWith($"{name} kernels ("));
    }
}
