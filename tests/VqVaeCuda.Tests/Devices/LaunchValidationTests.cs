using VqVaeCuda.Device;
using VqVaeCuda.Kernels;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Devices;

/// <summary>Bad launches fail with a clear message before anything runs.</summary>
[TestFixture, Category("Cpu")]
public class LaunchValidationTests
{
    private static void AssertRefusedWithoutRunning(Action<IDevice, Kernel, DeviceBuffer> launch, string expectedMessagePart)
    {
        using var device = TestDevices.Cpu();
        using var buffer = device.Upload(new float[64]);
        var kernel = device.GetKernel("fill_f32");
        var error = Assert.Throws<KernelLaunchException>(() => launch(device, kernel, buffer));
        Assert.That(error!.Message, Does.Contain("fill_f32").And.Contain(expectedMessagePart));
        Assert.That(device.DownloadFloats(buffer), Is.All.EqualTo(0f), "nothing may have run");
    }

    [Test]
    public void A_block_of_more_than_1024_threads_is_refused() =>
        AssertRefusedWithoutRunning((d, k, b) => d.Launch(k, 1, new Dim3(64, 17), 0, b, 1f, 64), "1088 threads");

    [Test]
    public void Shared_memory_beyond_the_device_limit_is_refused() =>
        AssertRefusedWithoutRunning((d, k, b) => d.Launch(k, 1, 64, 48 * 1024 + 4, b, 1f, 64), "shared memory");

    [Test]
    public void A_grid_of_2_to_the_32_threads_along_x_is_refused_for_the_grid_stride_loops() =>
        AssertRefusedWithoutRunning((d, k, b) => d.Launch(k, new Dim3(1u << 23), 512, 0, b, 1f, 64), "fewer than 2^32");

    [Test]
    public void A_zero_grid_dimension_is_refused() =>
        AssertRefusedWithoutRunning((d, k, b) => d.Launch(k, new Dim3(1, 0), 64, 0, b, 1f, 64), "zero dimension");

    [Test]
    public void A_missing_argument_is_refused() =>
        AssertRefusedWithoutRunning((d, k, b) => d.Launch(k, 1, 64, 0, b, 1f), "2 arguments given, the kernel takes 3");

    [Test]
    public void An_argument_of_the_wrong_type_is_refused() =>
        AssertRefusedWithoutRunning((d, k, b) => d.Launch(k, 1, 64, 0, b, 1, 64), "takes float, got int");

    [Test]
    public void A_null_pointer_is_refused() =>
        AssertRefusedWithoutRunning((d, k, _) => d.Launch(k, 1, 64, 0, default(DevicePointer), 1f, 64), "null pointer");

    [Test]
    public void A_null_pointer_passes_only_where_the_parameter_is_marked_optional()
    {
        // Every kernel parameter that may be null says so in its name, and the kernels read it only behind a null test.
        var set = KernelSourceSet.Embedded;
        var optional = set.Kernels.SelectMany(k => k.Parameters.Where(p => p.MayBeNull).Select(p => (k, p))).ToList();
        Assert.That(optional.Select(o => o.k.Name), Is.EquivalentTo(new[]
        {
            "conv_col2im_f32", "conv_col2im_planes_f32", "conv_col2im_phases_f32", "conv_nchw_to_cnhw_f32", "conv_cnhw_to_nchw_bias_f32",
            "vq_codebook_prepare_f32",
        }));
        foreach (var (kernel, parameter) in optional)
            Assert.That(set.Sources[kernel.SourceName], Does.Contain($"{parameter.Name} != nullptr"), $"{kernel.Name}: {parameter} is read behind a null test");
        Assert.That(new KernelParameter("const float*", "bias", 'p', 8).MayBeNull, Is.False);
        Assert.That(new KernelParameter("int", "count_or_null", 'i', 4).MayBeNull, Is.False, "only pointers may be null");
    }

    [Test]
    public void An_unknown_kernel_name_names_the_closest_ones()
    {
        using var device = TestDevices.Cpu();
        var error = Assert.Throws<UnknownKernelException>(() => device.GetKernel("fill_f23"));
        Assert.That(error!.Message, Does.Contain("fill_f23").And.Contain("fill_f32"));
    }

    [Test]
    public void Every_kernel_in_the_sources_is_in_the_CPU_library_with_the_same_signature()
    {
        using var device = TestDevices.Cpu();
        foreach (var definition in device.Sources.Kernels)
            Assert.That(device.GetKernel(definition.Name).Definition, Is.SameAs(definition));
        Assert.That(device.Sources.Kernels.Count, Is.GreaterThanOrEqualTo(8));
    }
}
