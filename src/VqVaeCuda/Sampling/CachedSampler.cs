using VqVaeCuda.Autodiff;
using VqVaeCuda.Device;
using VqVaeCuda.Models;
using VqVaeCuda.Modules;
using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;
using EmbeddingOps = VqVaeCuda.Ops.Embedding;

namespace VqVaeCuda.Sampling;

/// <summary>
/// Fast generation for the Gated PixelCNN (Ramachandran et al. 2017, <i>Fast Generation for Convolutional
/// Autoregressive Models</i>): every layer's outputs are computed once, when the codes they see are known, and
/// kept in per-layer caches of the full map size.
/// <code>
///   x, v_l, h_l     [N, C, H, W] caches: the embedded codes (= v_0 = h_0), each layer's vertical and horizontal input
///   link_l          [N, 2C, 1, W]: the 1×1 link of layer l's vertical pre-activation, for the current row
///   at row r        for each layer l: v_pre = vertical(v_l rows r−k/2 … r+k/2)   (one output row, all columns)
///                                     link_l = vertical_to_horizontal(v_pre);  v_{l+1}[row r] = gate(v_pre)
///   at (r, c)       for each layer l: h_pre = horizontal(h_l[r, c−k/2 … c+k/2]) + link_l[c]
///                                     h_{l+1}[r, c] = horizontal_out(gate(h_pre)) (+ h_l[r, c])
///                   logits = head(h_L[r, c]); draw the codes; x[r, c] = embedding(codes)
/// </code>
/// Why a row at a time is right: the vertical stack at row r sees only input rows &lt; r (ConvMasks), so once row
/// r − 1 is drawn row r of every vertical layer is final; the horizontal stack at (r, c) sees only columns ≤ c of
/// row r of the layer below, all final once (r, c − 1) is drawn. Each output is computed from a crop of its
/// inputs with the convolution's zero padding written in (copy_window_f32), by the same ops as the full
/// forward (masked convolution, 1×1 convolutions, gates, adds), so with the same values. Inputs a mask hides
/// (rows below, columns right, codes not drawn yet) hold zeros or stale finite values: they are multiplied
/// by exact zeros. Per position this costs one position of the horizontal stacks and the head and 1/W of a
/// row of the vertical stacks, against H·W positions of everything for the naive method.
/// </summary>
internal sealed class CachedSampler : IDisposable
{
    private readonly GatedPixelCnn _prior;
    private readonly SamplingOptions _o;
    private readonly IDevice _device;
    private readonly int _n, _h, _w, _c, _k, _layers;
    private readonly Arena _state, _scratch;
    private readonly PriorSampler.RunState _run;
    private readonly Tensor _x;                   // embedded codes [N, C, H, W]: v_0 = h_0
    private readonly Tensor[] _vertical;          // v_l for l ≥ 1: layer l's vertical input
    private readonly Tensor[] _horizontal;        // h_l for l ≥ 1
    private readonly Tensor[] _link;              // [N, 2C, 1, W] per layer, the current row
    private readonly Tensor?[] _verticalBias, _horizontalBias;  // the class's gate biases [N, 2C] per layer

    private CachedSampler(GatedPixelCnn prior, SamplingOptions o, float[] uniforms)
    {
        _prior = prior;
        _o = o;
        _device = prior.Device;
        var config = prior.Config;
        (_n, _h, _w, _c, _k, _layers) = (o.Count, o.Height, o.Width, config.Width, config.CodebookSize, config.Layers);
        long map = (long)_n * _c * _h * _w, linkRow = 2L * _n * _c * _w, bias = 2L * _n * _c;
        long stateBytes = PriorSampler.RunState.Bytes(o) + 4 * (map * (2L * _layers - 1) + linkRow * _layers + 2 * bias * _layers)
                          + Arena.Alignment * (6L * _layers + 8);
        _state = new Arena(_device, stateBytes);
        try
        {
            _scratch = new Arena(_device, ScratchBytes(config));
            _run = PriorSampler.RunState.Create(_state, o, uniforms);
            var ctx = new OpContext(_state);
            _x = prior.EmbeddingLayer.ForwardNchw(ctx, _run.Codes);
            _vertical = new Tensor[_layers];
            _horizontal = new Tensor[_layers];
            _link = new Tensor[_layers];
            _verticalBias = new Tensor?[_layers];
            _horizontalBias = new Tensor?[_layers];
            for (int l = 0; l < _layers; l++)
            {
                _vertical[l] = l == 0 ? _x : ctx.Zeros(_x.Shape, purpose: $"layer {l} vertical input");
                _horizontal[l] = l == 0 ? _x : ctx.Zeros(_x.Shape, purpose: $"layer {l} horizontal input");
                _link[l] = ctx.Zeros(new Shape(_n, 2 * _c, 1, _w), purpose: $"layer {l} link row");
                var layer = prior.Layers[l];
                if (_run.Labels is { } labels)
                {
                    _verticalBias[l] = EmbeddingOps.LookupLabels(ctx, layer.VerticalCondition!.Weight.Value, labels);
                    _horizontalBias[l] = EmbeddingOps.LookupLabels(ctx, layer.HorizontalCondition!.Weight.Value, labels);
                }
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Samples the whole maps; returns the codes [N·H·W].</summary>
    public static int[] Run(GatedPixelCnn prior, SamplingOptions o, float[] uniforms, IProgress<int>? progress, Action<int, float[]>? observer)
    {
        using var sampler = new CachedSampler(prior, o, uniforms);
        for (int r = 0; r < o.Height; r++)
        {
            sampler.Row(r);
            for (int c = 0; c < o.Width; c++)
            {
                sampler.Position(r, c, observer);
                progress?.Report(r * o.Width + c + 1);
            }
        }
        return sampler._run.Codes.ToIntArray();
    }

    /// <summary>Row r of every layer's vertical stack: v_pre, the link row, and the gated output into the next layer's cache.</summary>
    private void Row(int r)
    {
        for (int l = 0; l < _layers; l++)
        {
            _scratch.Reset();
            var ctx = new OpContext(_scratch);
            var layer = _prior.Layers[l];
            var conv = layer.Vertical;
            int kh = conv.Mask.Height, kw = conv.Mask.Width, ph = conv.PadH, pw = conv.PadW;
            // The rows r − ph … r − ph + kh − 1 and columns −pw … W − 1 + pw, padding as zeros: one output row.
            var strip = Window(ctx, _vertical[l], r - ph, -pw, kh, _w + 2 * pw);
            var vPre = Convolution.MaskedConv2d(ctx, strip, conv.Weight.Value, conv.Bias.Value, conv.MaskTensor, 0, 0);
            var link = layer.VerticalToHorizontal.Forward(ctx, vPre);
            _device.Copy(link.Pointer, _link[l].Pointer, link.Bytes);
            if (l + 1 < _layers)
            {
                var vOut = Gate(ctx, vPre, _verticalBias[l]);
                Place(vOut, _vertical[l + 1], r, 0);
            }
        }
    }

    /// <summary>Position (r, c): every layer's horizontal stack there, the head, the draw, the new codes' embedding.</summary>
    private void Position(int r, int c, Action<int, float[]>? observer)
    {
        int q = r * _w + c, positions = _h * _w;
        Tensor? hOut = null;
        OpContext ctx = new(_scratch);
        for (int l = 0; l < _layers; l++)
        {
            _scratch.Reset();
            ctx = new OpContext(_scratch);
            var layer = _prior.Layers[l];
            var conv = layer.Horizontal;
            int kw = conv.Mask.Width, pw = conv.PadW;
            var strip = Window(ctx, _horizontal[l], r, c - pw, 1, kw);
            var hConv = Convolution.MaskedConv2d(ctx, strip, conv.Weight.Value, conv.Bias.Value, conv.MaskTensor, 0, 0);
            var link = Window(ctx, _link[l], 0, c, 1, 1);
            var hPre = Elementwise.Add(ctx, hConv, link);
            hOut = layer.HorizontalOut.Forward(ctx, Gate(ctx, hPre, _horizontalBias[l]));
            if (layer.Residual) hOut = Elementwise.Add(ctx, hOut, Window(ctx, _horizontal[l], r, c, 1, 1));
            if (l + 1 < _layers) Place(hOut, _horizontal[l + 1], r, c);
        }
        var logits = _prior.Head(ctx, hOut!);
        SamplingKernels.SamplePosition(_device, logits.Pointer, _k, 1, 0, _run.Uniforms.Pointer, positions, q, _o.Temperature,
                                       _run.Codes.Pointer, positions, q, _run.Chosen.Pointer, _n);
        observer?.Invoke(q, logits.ToArray());
        Place(_prior.EmbeddingLayer.ForwardNchw(ctx, _run.Chosen), _x, r, c);
    }

    /// <summary>A new [N, C, h, w] tensor: the window of <paramref name="source"/> at (row, col), zeros outside it.</summary>
    private static Tensor Window(OpContext ctx, Tensor source, int row, int col, int h, int w)
    {
        int n = source.Shape[0], c = source.Shape[1];
        var window = ctx.NewTensor(new Shape(n, c, h, w), purpose: "sampling window");
        SamplingKernels.CopyWindow(ctx.Device, source.Pointer, source.Shape[2], source.Shape[3], row, col, window.Pointer, h, w, 0, 0, n * c, h, w);
        return window;
    }

    /// <summary>Writes <paramref name="part"/> [N, C, h, w] into <paramref name="target"/> [N, C, H, W] at (row, col).</summary>
    private void Place(Tensor part, Tensor target, int row, int col)
    {
        int n = part.Shape[0], c = part.Shape[1], h = part.Shape[2], w = part.Shape[3];
        SamplingKernels.CopyWindow(_device, part.Pointer, h, w, 0, 0, target.Pointer, target.Shape[2], target.Shape[3], row, col, n * c, h, w);
    }

    // GatedLayer's gate, with the class's bias looked up once per run instead of once per call.
    private static Tensor Gate(OpContext ctx, Tensor x, Tensor? classBias) =>
        classBias is null ? Gating.GatedTanhSigmoid(ctx, x) : Gating.GatedTanhSigmoid(ctx, x, classBias);

    /// <summary>
    /// The most one layer's row or one position needs at once: the first layer's vertical row (its strip, masked
    /// weight, column matrix, outputs) or a position's horizontal step and head; half again for alignment.
    /// </summary>
    private long ScratchBytes(GatedPixelCnnConfig config)
    {
        long n = _n, c = _c, w = _w;
        long row = 0;
        foreach (int k in new[] { config.FirstKernel, config.Kernel })
            row = Math.Max(row, n * c * k * (w + k) + 2 * c * c * k * k + c * k * k * n * w + 2 * c * n * w + 8 * n * c * w);
        long k2 = Math.Max(config.FirstKernel, config.Kernel);
        long position = n * c * k2 + 2 * c * c * k2 + c * k2 * n + 16 * n * c
                        + n * (c + 3L * config.HeadHidden + 2L * config.CodebookSize) + n * c;
        return 4 * Math.Max(row, position) * 3 / 2 + (1L << 20);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _scratch?.Dispose();
        _state.Dispose();
    }
}
