using VqVaeCuda.Ops;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Benchmarks;

/// <summary>The work of one op: FLOPs (a multiply-add counts 2) and the fewest bytes it must move, forward and backward.</summary>
/// <param name="ForwardFlops">FLOPs of the forward.</param>
/// <param name="ForwardBytes">Fewest bytes the forward reads and writes.</param>
/// <param name="BackwardFlops">FLOPs of the backward, for the inputs that need gradients.</param>
/// <param name="BackwardBytes">Fewest bytes the backward reads and writes.</param>
public readonly record struct OpCost(double ForwardFlops, double ForwardBytes, double BackwardFlops, double BackwardBytes)
{
    /// <summary>No work counted (an op the table does not know).</summary>
    public static OpCost None => default;
}

/// <summary>
/// The work of each op, from its name and the shapes of its inputs and outputs as
/// <see cref="Autodiff.IOpObserver.ForwardDone"/> sees them; the step benchmark sums it into FLOPs and bytes per
/// step. "Fewest bytes" counts each input, weight and output once (float32): the floor's memory side. What an
/// implementation adds on top (the im2col copy, partial sums, layout changes) is overhead the floor leaves out.
/// The backward counts only the gradients the op computes: an input that does not need one (the images going
/// into the first convolution) costs nothing.
/// </summary>
public static class OpCosts
{
    /// <summary>The cost of <paramref name="op"/> with these inputs and outputs; <see cref="OpCost.None"/> for an op not in the table.</summary>
    public static OpCost Of(string op, IReadOnlyList<Tensor> inputs, IReadOnlyList<Tensor> outputs)
    {
        var needs = inputs.Select(t => t.RequiresGrad).ToArray();
        var shapes = inputs.Select(t => t.Shape).ToArray();
        return Of(op, shapes, needs, outputs.Select(t => t.Shape).ToArray());
    }

    /// <summary>
    /// <see cref="Of(string, IReadOnlyList{Tensor}, IReadOnlyList{Tensor})"/> from shapes: <paramref name="needsGradient"/>[i]
    /// says whether input i receives a gradient.
    /// </summary>
    public static OpCost Of(string op, Shape[] inputs, bool[] needsGradient, Shape[] outputs)
    {
        double Count(Shape s) => s.Count;
        switch (op)
        {
            case "conv2d+relu" or "conv_transpose2d+relu":
            {
                // The convolution, plus its ReLU applied in the output pass: a compare an element each way, and the backward
                // reads y for its mask. No bytes more in the forward: the output is written once either way.
                var conv = Of(op[..^"+relu".Length], inputs, needsGradient, outputs);
                double n = Count(outputs[0]);
                bool backward = needsGradient.Any(g => g);
                return new OpCost(conv.ForwardFlops + n, conv.ForwardBytes, conv.BackwardFlops + (backward ? n : 0),
                                  conv.BackwardBytes + (backward ? 4 * n : 0));
            }
            case "conv2d" or "masked_conv2d":
            {
                // x [N,Cin,H,W], weight [Cout,Cin,kh,kw], optional bias; y [N,Cout,Ho,Wo]. Each output sums Cin·kh·kw products.
                var (x, w, y) = (inputs[0], inputs[1], outputs[0]);
                double macs = Count(y) * w[1] * w[2] * w[3];
                return Convolution(macs, x, w, inputs.Length > 2 ? inputs[2] : (Shape?)null, y, needsGradient);
            }
            case "conv_transpose2d":
            {
                // x [N,Cin,H,W], weight [Cin,Cout,kh,kw]: every input value meets Cout·kh·kw weights.
                var (x, w, y) = (inputs[0], inputs[1], outputs[0]);
                double macs = Count(x) * w[1] * w[2] * w[3];
                return Convolution(macs, x, w, inputs.Length > 2 ? inputs[2] : (Shape?)null, y, needsGradient);
            }
            case "masked_conv2d (weight mask)":
            {
                double n = Count(inputs[0]);
                return new OpCost(n, 8 * n, needsGradient[0] ? 2 * n : 0, needsGradient[0] ? 12 * n : 0);
            }
            case "relu":
            {
                double n = Count(outputs[0]);
                return new OpCost(n, 8 * n, needsGradient[0] ? n : 0, needsGradient[0] ? 16 * n : 0);
            }
            case "add":
            {
                // Backward: dx += dy for each input that needs it (an axpy: read dy and dx, write dx).
                double n = Count(outputs[0]);
                int grads = needsGradient.Count(g => g);
                return new OpCost(n, 12 * n, grads * n, grads * 12 * n);
            }
            case "channel_bias":
            {
                double n = Count(outputs[0]), c = Count(inputs[1]);
                double bf = (needsGradient[0] ? n : 0) + (needsGradient[1] ? n : 0);
                double bb = (needsGradient[0] ? 12 * n : 0) + (needsGradient[1] ? 4 * n + 4 * c : 0);
                return new OpCost(n, 8 * n + 4 * c, bf, bb);
            }
            case "mse":
            {
                // (1/n) Σ (p − t)²: 3 FLOPs an element; backward 3 per element per input that needs a gradient.
                double n = Count(inputs[0]);
                int grads = needsGradient.Count(g => g);
                return new OpCost(3 * n, 8 * n + 4, grads * 3 * n, grads * 16 * n);
            }
            case "vector quantizer" or VectorQuantizer.RecordedNameWithEma:
            {
                // z_e [N,D,h,w] (M = N·h·w vectors), codebook [K,D]: distances are 2·M·K·D (the GEMM-shaped part); the
                // gather of z_q, the two loss terms (3 per element) and the histogram are memory passes. Backward: the
                // straight-through copy fused with the commitment gradient (4 per element); with the loss-based codebook
                // (not under EMA) also the per-code sums and the codebook gradient (M·D + 3·K·D).
                var (z, e) = (inputs[0], inputs[1]);
                double n = Count(z), k = e[0], d = e[1], m = n / d;
                double forwardFlops = 2 * m * k * d + 3 * n;
                double forwardBytes = 4 * (n + k * d + n + m + k);  // z_e, codebook, z_q, codes, counts
                bool codebookGradient = needsGradient[1] && op != VectorQuantizer.RecordedNameWithEma;
                double bf = (needsGradient[0] ? 4 * n : 0) + (codebookGradient ? n + 3 * k * d : 0);
                double bb = (needsGradient[0] ? 20 * n : 0) + (codebookGradient ? 4 * (n + m + 3 * k * d) : 0);
                return new OpCost(forwardFlops, forwardBytes, bf, bb);
            }
            case "gated_tanh_sigmoid":
            {
                double g = Count(outputs[0]);
                return new OpCost(5 * g, 12 * g, needsGradient[0] ? 12 * g : 0, needsGradient[0] ? 28 * g : 0);
            }
            case "softmax_cross_entropy":
            {
                double l = Count(inputs[0]), positions = l / inputs[0][1];
                return new OpCost(4 * l, 4 * l + 12 * positions, needsGradient[0] ? 5 * l : 0, needsGradient[0] ? 12 * l + 8 * positions : 0);
            }
            case "embedding" or "embedding_nchw" or "embedding_labels":
            {
                double o = Count(outputs[0]), t = Count(inputs[0]);
                return new OpCost(0, 4 * 2 * o, needsGradient[0] ? o : 0, needsGradient[0] ? 4 * (2 * o + t) : 0);
            }
            default:
                return OpCost.None;
        }
    }

    /// <summary>
    /// One Adam step over <paramref name="parameters"/> values: m and v updates, bias corrections and the update,
    /// ~12 FLOPs a parameter; reads value, gradient, m, v and writes value, m, v (28 bytes a parameter).
    /// </summary>
    public static (double Flops, double Bytes) AdamStep(long parameters) => (12.0 * parameters, 28.0 * parameters);

    /// <summary>
    /// The global gradient norm over <paramref name="parameters"/> gradients, which the trainer reads every step to stop
    /// on a non-finite one: a square and an add each, every gradient read once (4 bytes).
    /// </summary>
    public static (double Flops, double Bytes) GradientNorm(long parameters) => (2.0 * parameters, 4.0 * parameters);

    /// <summary>Zeroing <paramref name="parameters"/> gradients: 4 bytes written each.</summary>
    public static (double Flops, double Bytes) ZeroGradients(long parameters) => (0, 4.0 * parameters);

    /// <summary>
    /// The EMA codebook update for M vectors of D into K codes: the per-code sums (M·D adds), the decayed cluster
    /// sizes and sums (3·K·D + 3·K), the normalised codebook (K·D divides). Bytes: z_e and codes read once, the EMA
    /// state and codebook read and written.
    /// </summary>
    public static (double Flops, double Bytes) EmaUpdate(long m, int k, int d) =>
        ((double)m * d + 4.0 * k * d + 3.0 * k, 4.0 * ((double)m * d + m + 5.0 * k * d + 2.0 * k));

    private static OpCost Convolution(double macs, Shape x, Shape w, Shape? bias, Shape y, bool[] needs)
    {
        double b = bias?.Count ?? 0;
        double forwardFlops = 2 * macs + (bias is null ? 0 : y.Count);
        double forwardBytes = 4.0 * (x.Count + w.Count + b + y.Count);
        bool dx = needs[0], dw = needs[1], db = bias is not null && needs.Length > 2 && needs[2];
        // dx = Wᵀ·dy and dW = dy·xᵀ are one product each the size of the forward; db sums dy.
        double backwardFlops = (dx ? 2 * macs : 0) + (dw ? 2 * macs : 0) + (db ? y.Count : 0);
        double backwardBytes = 4.0 * (y.Count + (dw ? x.Count + w.Count : 0) + (dx ? w.Count + 2.0 * x.Count : 0) + (db ? b : 0));
        return new OpCost(forwardFlops, forwardBytes, backwardFlops, backwardBytes);
    }
}
