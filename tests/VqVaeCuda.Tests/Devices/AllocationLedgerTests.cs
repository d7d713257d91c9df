using VqVaeCuda.Device.Cuda;

namespace VqVaeCuda.Tests.Devices;

/// <summary>The CUDA device's bookkeeping of live allocations, which makes dispose free what buffers still hold.</summary>
[TestFixture, Category("Cpu")]
public class AllocationLedgerTests
{
    [Test]
    public void A_live_allocation_is_freed_by_its_owner_once()
    {
        var ledger = new AllocationLedger();
        ledger.Add(0x1000);
        Assert.That(ledger.Remove(0x1000), Is.True, "the caller frees it");
        Assert.Throws<ArgumentException>(() => ledger.Remove(0x1000), "a double free is an error while the device lives");
    }

    [Test]
    public void Close_hands_back_every_live_allocation_and_later_frees_do_nothing()
    {
        var ledger = new AllocationLedger();
        foreach (ulong a in new ulong[] { 0x3000, 0x1000, 0x2000 }) ledger.Add(a);
        Assert.That(ledger.Remove(0x2000), Is.True);
        Assert.That(ledger.Close(), Is.EqualTo(new ulong[] { 0x1000, 0x3000 }), "dispose frees these");
        Assert.That(ledger.Count, Is.Zero);
        Assert.That(ledger.Remove(0x1000), Is.False, "a buffer disposed after its device: already freed, nothing to do");
        Assert.That(ledger.Remove(0x9000), Is.False);
    }

    [Test]
    public void No_allocation_is_recorded_after_close()
    {
        var ledger = new AllocationLedger();
        ledger.Close();
        Assert.Throws<InvalidOperationException>(() => ledger.Add(0x1000));
    }

    [Test]
    public void An_address_cannot_be_live_twice()
    {
        var ledger = new AllocationLedger();
        ledger.Add(0x1000);
        Assert.Throws<InvalidOperationException>(() => ledger.Add(0x1000));
    }
}
