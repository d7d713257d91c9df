using VqVaeCuda.Device.Cuda;
using VqVaeCuda.Device.Cuda.Native;
using VqVaeCuda.Diagnostics;
using VqVaeCuda.Kernels;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Compilation;

/// <summary>The GPU path without a GPU: NVRTC compiles every kernel, and its ptxas report says no spills.</summary>
[TestFixture, Category("Nvrtc")]
public class NvrtcCompileTests
{
    private string _cacheDirectory = "";

    [SetUp]
    public void SetUp()
    {
        TestDevices.RequireNvrtc();
        _cacheDirectory = Path.Combine(Path.GetTempPath(), "vqvae-test-cache-" + Guid.NewGuid().ToString("N"));
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_cacheDirectory)) Directory.Delete(_cacheDirectory, recursive: true);
    }

    [TestCase("sm_70")]
    [TestCase("sm_80")]
    [TestCase("sm_90")]
    public void Every_kernel_compiles_with_no_spills(string architecture)
    {
        var rows = KernelReport.Build(KernelSourceSet.Embedded, architecture, null, new KernelCache(_cacheDirectory));
        var expected = KernelSourceSet.Embedded.Kernels.Select(k => k.Name).OrderBy(n => n);
        Assert.That(rows.Select(r => r.Kernel).OrderBy(n => n), Is.EqualTo(expected), "one report row per kernel");
        Assert.Multiple(() =>
        {
            foreach (var row in rows)
            {
                Assert.That(row.SpillStoreBytes + row.SpillLoadBytes, Is.Zero, $"{row.Kernel} spills on {architecture}");
                Assert.That(row.Registers, Is.InRange(1, 255), $"{row.Kernel} registers on {architecture}");
                Assert.That(row.Occupancy, Is.GreaterThan(0.0).And.LessThanOrEqualTo(1.0), $"{row.Kernel} occupancy");
            }
        });
        var tiled = rows.Single(r => r.Kernel == "transpose_f32_tiled");
        Assert.That(tiled.SharedBytes, Is.EqualTo(32 * 33 * sizeof(float)), "ptxas's static shared memory for the 32x33 tile");
    }

    [Test]
    public void A_compile_error_names_the_file_and_line()
    {
        const string broken = "#include \"common.cuh\"\n\nextern \"C\" __global__ void broken(float* out) {\n    out[0] = undefined_name;\n}\nVQ_KERNEL_NO_SYNC(broken)\n";
        var sources = KernelSourceSet.FromTexts(new Dictionary<string, string> { ["broken.cu"] = broken },
                                                KernelSourceSet.Embedded.Headers);
        var builder = new KernelModuleBuilder(sources, cache: null);
        var error = Assert.Throws<KernelCompilationException>(() => builder.Build("broken.cu", "sm_80"));
        Assert.That(error!.Message, Does.Contain("broken.cu(4)").And.Contain("undefined_name"));
        Assert.That(error.Diagnostics, Has.Some.Matches<(string File, int Line, string Message)>(d => d.File == "broken.cu" && d.Line == 4));
    }

    [Test]
    public void A_second_build_is_served_from_the_disk_cache()
    {
        var cache = new KernelCache(_cacheDirectory);
        var first = new KernelModuleBuilder(KernelSourceSet.Embedded, cache).Build("reduce.cu", "sm_80");
        var builder = new KernelModuleBuilder(KernelSourceSet.Embedded, cache);
        var second = builder.Build("reduce.cu", "sm_80");
        Assert.That(first.FromCache, Is.False);
        Assert.That(second.FromCache, Is.True);
        Assert.That(builder.CompileCount, Is.Zero, "the cached module must not invoke NVRTC");
        Assert.That(second.Image, Is.EqualTo(first.Image));
    }

    [Test]
    public void The_cache_key_changes_with_the_architecture_and_the_source()
    {
        var cache = new KernelCache(_cacheDirectory);
        var builder = new KernelModuleBuilder(KernelSourceSet.Embedded, cache);
        builder.Build("elementwise.cu", "sm_80");
        builder.Build("elementwise.cu", "sm_90");
        var edited = KernelSourceSet.FromTexts(
            new Dictionary<string, string> { ["elementwise.cu"] = KernelSourceSet.Embedded.Sources["elementwise.cu"] + "\n// edited\n" },
            KernelSourceSet.Embedded.Headers);
        var editedBuilder = new KernelModuleBuilder(edited, cache);
        editedBuilder.Build("elementwise.cu", "sm_80");
        Assert.That(builder.CompileCount, Is.EqualTo(2), "two architectures, two compiles");
        Assert.That(editedBuilder.CompileCount, Is.EqualTo(1), "an edited source is a new key");
    }

    [Test]
    public void A_compute_target_gives_NUL_terminated_PTX_that_the_cache_keeps_apart_from_the_cubin()
    {
        var cache = new KernelCache(_cacheDirectory);
        var builder = new KernelModuleBuilder(KernelSourceSet.Embedded, cache);
        var ptx = builder.Build("elementwise.cu", "compute_90");
        var cubin = builder.Build("elementwise.cu", "sm_90");
        Assert.That(ptx.Target, Is.EqualTo(new KernelTarget(KernelTargetKind.Ptx, 90)));
        Assert.That(ptx.Image[^1], Is.Zero, "cuModuleLoadData reads PTX as a C string");
        var text = System.Text.Encoding.UTF8.GetString(ptx.Image, 0, ptx.Image.Length - 1);
        Assert.That(text, Does.Contain(".target sm_90").And.Contain(".entry axpy_f32"));
        Assert.That(cubin.Image[..4], Is.EqualTo(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F' }));
        var again = new KernelModuleBuilder(KernelSourceSet.Embedded, cache);
        Assert.That(again.Build("elementwise.cu", "compute_90").Image, Is.EqualTo(ptx.Image));
        Assert.That(again.Build("elementwise.cu", "compute_90").FromCache, Is.True);
        Assert.That(again.CompileCount, Is.Zero);
    }

    [Test]
    public void Fused_multiply_add_is_off_by_default_and_part_of_the_cache_key()
    {
        var cache = new KernelCache(_cacheDirectory);
        var plain = new KernelModuleBuilder(KernelSourceSet.Embedded, cache);
        var fused = new KernelModuleBuilder(KernelSourceSet.Embedded, cache, fusedMultiplyAdd: true);
        Assert.That(plain.OptionsFor("sm_80"), Does.Contain("--fmad=false"));
        Assert.That(fused.OptionsFor("sm_80"), Does.Contain("--fmad=true"));
        string Ptx(KernelModuleBuilder b) => System.Text.Encoding.UTF8.GetString(b.Build("elementwise.cu", "compute_80").Image);
        // axpy_f32 is y[i] += alpha·x[i]: one fma contracted, or a separately rounded mul and add.
        Assert.That(Ptx(plain), Does.Not.Contain("fma.rn.f32"));
        Assert.That(Ptx(fused), Does.Contain("fma.rn.f32"));
        Assert.That(fused.CompileCount, Is.EqualTo(1), "the fused build is a different key, not the plain one's entry");
    }

    [Test]
    public void The_cache_directory_follows_the_option_then_the_environment()
    {
        Assert.That(KernelCache.ResolveDirectory("/tmp/explicit"), Is.EqualTo("/tmp/explicit"));
        var saved = Environment.GetEnvironmentVariable(KernelCache.EnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable(KernelCache.EnvironmentVariable, "/tmp/from-env");
            Assert.That(KernelCache.ResolveDirectory(null), Is.EqualTo("/tmp/from-env"));
        }
        finally
        {
            Environment.SetEnvironmentVariable(KernelCache.EnvironmentVariable, saved);
        }
    }
}
