using VqVaeCuda.Autodiff;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;
using VqVaeCuda.Tests.Support;

namespace VqVaeCuda.Tests.Tensors;

[TestFixture, Category("Cpu")]
public class MemoryTests
{
    [Test]
    public void The_arena_hands_out_the_same_addresses_every_step()
    {
        using var device = TestDevices.Cpu();
        using var arena = new Arena(device, 1 << 20);
        using var x = VqVaeCuda.Tensors.Tensor.FromArray(device, TestData.Floats(1000), new Shape(10, 100));
        x.RequiresGrad = true;

        List<ulong> Step()
        {
            arena.Reset();
            var tape = new Tape(arena);
            var ctx = new OpContext(arena, tape);
            var y = Activations.Relu(ctx, x);
            var z = Elementwise.Add(ctx, y, x);
            var seed = ctx.Zeros(z.Shape);
            tape.Backward(z, seed);
            return [y.Pointer.Address, z.Pointer.Address, tape.GradOf(y).Pointer.Address, tape.GradOf(x).Pointer.Address];
        }

        var first = Step();
        Assert.That(Step(), Is.EqualTo(first));
        Assert.That(first.Distinct().Count(), Is.EqualTo(first.Count), "live tensors of one step never overlap");
    }

    [Test]
    public void An_exhausted_arena_says_how_much_was_asked_for_and_by_whom()
    {
        using var device = TestDevices.Cpu();
        using var arena = new Arena(device, 4096);
        var error = Assert.Throws<ArenaExhaustedException>(() => arena.Allocate(new Shape(2000), purpose: "relu"));
        Assert.That(error!.Message, Does.Contain("relu").And.Contain("[2000]"));
    }

    [Test]
    public void Releasing_to_a_mark_frees_what_came_after_it_and_nothing_before()
    {
        using var device = TestDevices.Cpu();
        using var arena = new Arena(device, 1 << 20);
        var kept = arena.Allocate(new Shape(100));
        var mark = arena.Mark();
        var temporary = arena.Allocate(new Shape(5000));
        arena.Allocate(new Shape(7));
        long highWater = arena.HighWater;
        arena.Release(mark);
        Assert.That(arena.Used, Is.EqualTo(mark.Offset));
        Assert.That(arena.HighWater, Is.EqualTo(highWater), "the high-water mark remembers the temporaries");
        var next = arena.Allocate(new Shape(10));
        Assert.That(next.Pointer.Address, Is.EqualTo(temporary.Pointer.Address), "the freed bytes are handed out again");
        Assert.That(next.Pointer.Address, Is.GreaterThanOrEqualTo(kept.Pointer.Address + 400), "the tensor before the mark stays");
    }

    [Test]
    public void A_mark_from_before_a_reset_or_beyond_the_bytes_in_use_is_refused()
    {
        using var device = TestDevices.Cpu();
        using var arena = new Arena(device, 1 << 20);
        arena.Allocate(new Shape(100));
        var mark = arena.Mark();
        arena.Reset();
        Assert.Throws<InvalidOperationException>(() => arena.Release(mark), "a mark from an earlier step");
        var early = arena.Mark();
        arena.Allocate(new Shape(100));
        var late = arena.Mark();
        arena.Release(early);
        Assert.Throws<InvalidOperationException>(() => arena.Release(late), "a mark beyond the bytes in use");
    }

    [Test]
    public void Parameters_are_contiguous_initialised_from_the_seed_and_have_zeroed_gradients()
    {
        using var device = TestDevices.Cpu();
        float[] Values(int seed)
        {
            using var store = new ParameterStore(device);
            store.Declare("conv.weight", new Shape(8, 3, 3, 3), Initializer.KaimingUniform(27));
            store.Declare("conv.bias", new Shape(8), Initializer.Zeros);
            store.Allocate(seed);
            Assert.That(store["conv.weight"].Grad.ToArray(), Is.All.EqualTo(0f));
            Assert.That(store["conv.bias"].Value.ToArray(), Is.All.EqualTo(0f));
            Assert.That(store["conv.bias"].Offset, Is.GreaterThanOrEqualTo(8 * 27));
            return store["conv.weight"].Value.ToArray();
        }
        var a = Values(7);
        Assert.That(a, Is.EqualTo(Values(7)), "same seed, same values");
        Assert.That(a, Is.Not.EqualTo(Values(8)));
        Assert.That(a.Max(Math.Abs), Is.LessThanOrEqualTo(1f / MathF.Sqrt(27)));
    }

    [Test]
    public void Declaring_after_allocation_or_twice_is_refused()
    {
        using var device = TestDevices.Cpu();
        using var store = new ParameterStore(device);
        store.Declare("w", new Shape(4), Initializer.Zeros);
        Assert.Throws<ArgumentException>(() => store.Declare("w", new Shape(4), Initializer.Zeros));
        store.Allocate(1);
        Assert.Throws<InvalidOperationException>(() => store.Declare("v", new Shape(4), Initializer.Zeros));
    }

    [Test]
    public void Shape_mismatches_are_refused_before_any_launch_naming_the_op_and_shapes()
    {
        using var device = TestDevices.Cpu();
        using var arena = new Arena(device, 1 << 20);
        var ctx = new OpContext(arena);
        var a = ctx.NewTensor(new Shape(2, 3));
        var b = ctx.NewTensor(new Shape(3, 2));
        var error = Assert.Throws<OpArgumentException>(() => Elementwise.Add(ctx, a, b));
        Assert.That(error!.Message, Does.Contain("add").And.Contain("[2,3]").And.Contain("[3,2]"));
    }
}
