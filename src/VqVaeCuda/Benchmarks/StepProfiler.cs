using System.Diagnostics;
using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Benchmarks;

/// <summary>Time, launches and work attributed to one op in one phase of a step, summed over its calls.</summary>
/// <param name="Op">The op ("conv2d", "relu", ...) or step part ("adam", "ema codebook update", ...).</param>
/// <param name="Phase">"forward", "backward" or "update" (what runs after backward: optimizer, codebook, read-backs).</param>
/// <param name="Calls">Calls in one step.</param>
/// <param name="Milliseconds">Time in one step.</param>
/// <param name="KernelLaunches">Kernel launches in one step.</param>
/// <param name="GemmCalls">GEMM calls in one step.</param>
/// <param name="Flops">FLOPs in one step (<see cref="OpCosts"/>).</param>
/// <param name="Bytes">Fewest bytes moved in one step (<see cref="OpCosts"/>).</param>
public sealed record OpTime(string Op, string Phase, int Calls, double Milliseconds, long KernelLaunches, long GemmCalls, double Flops, double Bytes);

/// <summary>
/// Splits a step's time by op: an <see cref="IOpObserver"/> that synchronises the device at every op boundary and
/// gives the time since the previous boundary to the op that just finished, so the parts add up to the whole
/// step. Whatever runs between ops (the host's bookkeeping) is charged to the next op, as a kernel engineer's
/// timeline would show it. Parts of the step that are not ops (optimizer, codebook update, read-backs) are marked
/// with <see cref="Mark"/>. On a GPU the synchronisations make the profiled step slower than an unprofiled one:
/// compare <see cref="TotalMilliseconds"/> with the unprofiled median.
/// </summary>
public sealed class StepProfiler : IOpObserver
{
    private readonly IDevice _device;
    private readonly Dictionary<(string Op, string Phase), Accumulator> _parts = [];
    private readonly List<(string Op, string Phase)> _order = [];
    private readonly Stack<(string Op, OpCost Cost)> _pendingBackward = new();
    private long _last, _launches, _gemms;
    private double _total;

    /// <summary>A profiler for steps on <paramref name="device"/>.</summary>
    public StepProfiler(IDevice device) => _device = device;

    /// <summary>Steps profiled so far.</summary>
    public int Steps { get; private set; }

    /// <summary>Time of all profiled steps, summed.</summary>
    public double TotalMilliseconds => _total;

    /// <summary>Marks the start of a step (synchronises first, so earlier work is not charged to it).</summary>
    public void BeginStep()
    {
        _device.Synchronize();
        _pendingBackward.Clear();
        _last = Stopwatch.GetTimestamp();
        _launches = _device.KernelLaunches;
        _gemms = _device.GemmCalls;
    }

    /// <summary>Ends a step (the time since the last boundary goes to <paramref name="lastPart"/>).</summary>
    public void EndStep(string lastPart = "host")
    {
        Mark(lastPart, "update");
        Steps++;
    }

    /// <summary>Charges the time since the previous boundary to <paramref name="part"/> in <paramref name="phase"/>, with optional work.</summary>
    public void Mark(string part, string phase, double flops = 0, double bytes = 0)
    {
        _device.Synchronize();
        long now = Stopwatch.GetTimestamp();
        double ms = Stopwatch.GetElapsedTime(_last, now).TotalMilliseconds;
        long launches = _device.KernelLaunches, gemms = _device.GemmCalls;
        var key = (part, phase);
        if (!_parts.TryGetValue(key, out var a))
        {
            a = new Accumulator();
            _parts[key] = a;
            _order.Add(key);
        }
        a.Calls++;
        a.Milliseconds += ms;
        a.Launches += launches - _launches;
        a.Gemms += gemms - _gemms;
        a.Flops += flops;
        a.Bytes += bytes;
        _total += ms;
        // Read the clock again: the bookkeeping above is not charged to anyone.
        _last = Stopwatch.GetTimestamp();
        _launches = launches;
        _gemms = gemms;
    }

    /// <inheritdoc />
    public void ForwardDone(string op, IReadOnlyList<Tensor> inputs, IReadOnlyList<Tensor> outputs)
    {
        var cost = OpCosts.Of(op, inputs, outputs);
        Mark(op, "forward", cost.ForwardFlops, cost.ForwardBytes);
        // The op is recorded when an input needs a gradient; backward replays recorded ops in reverse order.
        if (inputs.Any(t => t.RequiresGrad)) _pendingBackward.Push((op, cost));
    }

    /// <inheritdoc />
    public void BackwardDone(string op)
    {
        var cost = _pendingBackward.Count > 0 && _pendingBackward.Peek().Op == op ? _pendingBackward.Pop().Cost : OpCost.None;
        Mark(op, "backward", cost.BackwardFlops, cost.BackwardBytes);
    }

    /// <summary>Per op and phase, averaged over the profiled steps, in the order first seen.</summary>
    public IReadOnlyList<OpTime> PerStep()
    {
        double steps = Math.Max(1, Steps);
        return _order.Select(key =>
        {
            var a = _parts[key];
            return new OpTime(key.Op, key.Phase, (int)Math.Round(a.Calls / steps), a.Milliseconds / steps, (long)Math.Round(a.Launches / steps),
                              (long)Math.Round(a.Gemms / steps), a.Flops / steps, a.Bytes / steps);
        }).ToList();
    }

    private sealed class Accumulator
    {
        public int Calls;
        public double Milliseconds, Flops, Bytes;
        public long Launches, Gemms;
    }
}
