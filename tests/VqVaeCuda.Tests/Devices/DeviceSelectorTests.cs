using VqVaeCuda.Device;
using VqVaeCuda.Device.Cuda;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Devices;

[TestFixture, Category("Cpu")]
public class DeviceSelectorTests
{
    [Test]
    public void Cpu_opens_the_host_device()
    {
        TestDevices.Cpu().Dispose();  // skips with the reason when the CPU library is missing
        var selected = DeviceSelector.Open("cpu");
        using var device = selected.Device;
        Assert.That(device.Kind, Is.EqualTo(DeviceKind.Host));
        Assert.That(device.Name, Is.EqualTo("cpu"));
    }

    [Test]
    public void Auto_says_which_device_it_took_and_why()
    {
        TestDevices.Cpu().Dispose();
        var selected = DeviceSelector.Open("auto");
        using var device = selected.Device;
        if (CudaDevice.DeviceCount(out var whyNone) == 0)
        {
            Assert.That(device.Kind, Is.EqualTo(DeviceKind.Host));
            Assert.That(selected.Reason, Does.Contain("no CUDA device").And.Contain(whyNone!));
        }
        else
        {
            Assert.That(device.Kind, Is.EqualTo(DeviceKind.Cuda));
        }
    }

    [Test]
    public void Cuda_without_a_gpu_is_unavailable_with_the_reason()
    {
        if (CudaDevice.DeviceCount(out _) > 0) Assert.Ignore("a CUDA device is present: this test is about machines without one");
        var error = Assert.Throws<DeviceUnavailableException>(() => DeviceSelector.Open("cuda:0"));
        Assert.That(error!.Message, Does.Contain("cuda:0"));
    }

    [TestCase("gpu")]
    [TestCase("cuda:-1")]
    [TestCase("cuda:x")]
    [TestCase("")]
    public void A_malformed_specification_names_the_accepted_forms(string spec)
    {
        var error = Assert.Throws<ArgumentException>(() => DeviceSelector.Open(spec));
        Assert.That(error!.Message, Does.Contain(DeviceSelector.Forms));
    }
}
