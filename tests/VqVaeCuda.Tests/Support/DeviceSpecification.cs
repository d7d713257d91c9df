using VqVaeCuda.Device;

namespace VqVaeCuda.Tests.Support;

/// <summary>
/// Base of the tests that specify computed results (ops, optimizers, modules, models, trainers, sampling): each
/// derived fixture runs once per device kind, cpu always (category <c>Cpu</c>) and cuda (category <c>Cuda</c>),
/// where it is skipped as a whole, with the reason, before any test runs when no GPU answers.
/// A derived class opens its device with <see cref="Open"/> and states device-dependent tolerances through
/// <see cref="DeviceTolerance"/>. Tests about the cpu device itself (its thread orders, its checked memory, its
/// summation trees) do not derive from this: they stay on the cpu.
/// </summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.EveryDevice))]
public abstract class DeviceSpecification(DeviceKind kind)
{
    /// <summary>The device kind this fixture runs on.</summary>
    protected DeviceKind Kind { get; } = kind;

    /// <summary>True on the cpu device.</summary>
    protected bool OnCpu => Kind == DeviceKind.Host;

    [OneTimeSetUp]
    public void SkipWhereTheDeviceIsMissing()
    {
        if (Kind == DeviceKind.Cuda) TestDevices.RequireCuda();
    }

    /// <summary>This fixture's device; <paramref name="order"/> applies to the cpu device only.</summary>
    protected IDevice Open(ThreadOrder order = ThreadOrder.Ascending) => TestDevices.Open(Kind, order);

    /// <summary>
    /// The thread orders a specification runs in: <paramref name="onTheCpu"/> on the cpu device (where a missing barrier
    /// shows as a difference between orders); one run on a GPU, which schedules its threads itself.
    /// </summary>
    protected IEnumerable<ThreadOrder> Orders(params ThreadOrder[] onTheCpu) => OnCpu ? onTheCpu : [ThreadOrder.Ascending];
}
