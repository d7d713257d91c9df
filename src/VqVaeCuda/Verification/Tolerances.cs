namespace VqVaeCuda.Verification;

/// <summary>The largest error a check accepts, and why that much.</summary>
/// <param name="Value">The bound on <see cref="DeviceVerifier.MaxRelativeError"/>.</param>
/// <param name="Why">The reason, shown in the JSON and in README's table.</param>
public sealed record Tolerance(double Value, string Why);

/// <summary>
/// The tolerances of <c>vqvae verify</c>, one per kind of computation. The device under test and the reference run the
/// same kernel source on the same inputs, so the only differences allowed are those of floating-point rounding: a GPU
/// build with FMA contraction (<c>CudaDeviceOptions.FusedMultiplyAdd</c>, off by default; the report states it) rounds
/// a·b+c once where the CPU build rounds twice (<c>-ffp-contract=off</c>), CUDA's and glibc's tanhf/expf differ by an ulp or two, sums run in another order on
/// another number of blocks, and the GEMM is cuBLAS on one side and OpenBLAS on the other. Each bound is the expected
/// worst case of those with about ten times room — far below what a wrong index, a missing barrier or a dropped term
/// gives (errors of order 1). An ulp of float is 6e-8 of the value.
/// </summary>
public static class Tolerances
{
    /// <summary>Copies, gathers, transposes, integer results.</summary>
    public static Tolerance Exact { get; } = new(0, "data movement and integer results: the same bits or it is wrong");

    /// <summary>One or two roundings per element.</summary>
    public static Tolerance Elementwise { get; } = new(1e-6,
        "elementwise arithmetic: the GPU may fuse a*b+c into one rounding (fmad) where the CPU rounds twice, a few ulp (6e-8) at most");

    /// <summary>tanh, sigmoid, exp and their derivatives.</summary>
    public static Tolerance Transcendental { get; } = new(1e-5,
        "tanh/exp/sigmoid: CUDA's tanhf and expf are within 2 ulp, glibc's within 1, and the difference passes through products and " +
        "derivatives (~10 ulp), plus fmad");

    /// <summary>Sums in another order.</summary>
    public static Tolerance Reduction { get; } = new(1e-5,
        "sums of up to ~1e5 terms in another order (other block counts, warp shuffles, atomics): tree-sum rounding ~log2(n) ulp ~1e-6, plus fmad");

    /// <summary>GEMM-shaped work: convolutions, code distances.</summary>
    public static Tolerance Gemm { get; } = new(1e-4,
        "GEMM of K up to ~600 products: cuBLAS and OpenBLAS block and order the sums differently (and the GPU fuses multiply-adds), " +
        "~sqrt(K) ulp of the largest output ~1e-5; FP32 on both sides (TF32 would show ~1e-3)");

    /// <summary>The chosen code's distance against the smallest, for near ties.</summary>
    public static Tolerance CodeDistance { get; } = new(1e-5,
        "a different code is accepted only as a near tie: its distance exceeds the smallest by at most 1e-5 of |z|^2+|e|^2, the size of " +
        "the terms whose cancellation forms the distance (fused: ||z-e||^2 tiles; unfused: |e|^2 - 2z.e after a GEMM)");

    /// <summary>Losses of a short training run.</summary>
    public static Tolerance Training { get; } = new(1e-2,
        "20 Adam steps amplify rounding differences (Adam divides by sqrt(v): tiny gradients of either sign become full steps) and a near-tie " +
        "code may flip; the reconstruction losses must still track within 1% at every step");

    /// <summary>A captured step replayed against the same step run launch by launch, on one device.</summary>
    public static Tolerance GraphReplay { get; } = new(0,
        "the same kernels with the same arguments on the same device in the same order (the step uses no float atomics, and cuBLAS has " +
        "one fixed workspace for eager and captured GEMMs), so a replay must give the eager step's bits, as it does on the cpu device");
}
