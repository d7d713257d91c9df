using VqVaeCuda.Device.Native;
using VqVaeCuda.Tests.Data;

namespace VqVaeCuda.Tests.Devices;

[TestFixture, Category("Cpu")]
public class NativeLibrariesTests
{
    [Test]
    public void A_library_that_is_absent_has_no_loader_problem_to_report()
    {
        Assert.That(NativeLibraries.LoaderProblem("libvqvae-no-such-library.so.7"), Is.Null);
    }

    [Test]
    public void A_library_that_is_there_but_does_not_load_says_why()
    {
        using var dir = new TempFolder();
        var path = Path.Combine(dir.Path, "libbroken.so");
        File.WriteAllText(path, new string('x', 256));  // not an ELF file
        var problem = NativeLibraries.LoaderProblem(path);
        TestContext.Out.WriteLine(problem);
        Assert.That(problem, Does.StartWith(path + ":"), "dlerror's line names the file");
        Assert.That(problem, Does.Not.Contain("strace"), ".NET's advice line is left out");
    }

    [Test]
    public void Only_the_loader_lines_beyond_not_found_are_kept()
    {
        const string message = "Unable to load shared library 'libcublas.so.12' or one of its dependencies. In order to help diagnose loading " +
                               "problems, consider using a tool like strace. If you're using glibc, consider setting the LD_DEBUG environment variable: \n" +
                               "/opt/cuda/libcublas.so.12: version `GLIBCXX_3.4.30' not found (required by /opt/cuda/libcublasLt.so.12)\n" +
                               "libcublas.so.12: cannot open shared object file: No such file or directory\n";
        Assert.That(NativeLibraries.LoaderProblemIn(message),
                    Is.EqualTo("/opt/cuda/libcublas.so.12: version `GLIBCXX_3.4.30' not found (required by /opt/cuda/libcublasLt.so.12)"));
        Assert.That(NativeLibraries.LoaderProblemIn("Unable to load shared library 'x': \nx: cannot open shared object file: No such file or directory\n"), Is.Null);
    }
}
