using System.Text.Json;
using VqVaeCuda.Cli.Commands;
using VqVaeCuda.Device;
using VqVaeCuda.Device.Cuda;
using VqVaeCuda.Device.Host;
using VqVaeCuda.Kernels;
using VqVaeCuda.Tests.Support;
using VqVaeCuda.Verification;

namespace VqVaeCuda.Tests.Verification;

/// <summary><c>vqvae verify</c>: it passes on a correct device, reaches every kernel, and fails on a broken one.</summary>
[TestFixture, Category("Cpu"), NonParallelizable]
public class DeviceVerifierTests
{
    [Test]
    public void The_cpu_device_in_shuffled_thread_order_verifies_against_ascending_and_every_kernel_is_reached()
    {
        using var tested = TestDevices.Cpu(ThreadOrder.Shuffled, seed: 0xC0FFEE);
        using var reference = TestDevices.Cpu();
        var report = DeviceVerifier.Run(tested, reference);

        Assert.Multiple(() =>
        {
            Assert.That(report.Checks.Where(c => !c.Ok).Select(c => $"{c.Group}: {c.Op} {c.Shape}: {c.Note}"), Is.Empty);
            Assert.That(report.KernelsNotReached, Is.Empty, "every kernel of the source set is launched by some check");
            Assert.That(report.Checks.Select(c => c.Group).Distinct(), Is.EqualTo(DeviceVerifier.Groups));
            Assert.That(report.Summary, Is.EqualTo($"{report.Checks.Count} ops verified, 0 failed"));
            Assert.That(report.Passed);
        });
    }

    [Test]
    public void The_exempt_kernels_exist_and_are_all_that_is_left_out()
    {
        var names = KernelSourceSet.Embedded.Kernels.Select(k => k.Name).ToHashSet();
        Assert.That(DeviceVerifier.ExemptKernels.Select(e => e.Kernel), Is.SubsetOf(names));
        Assert.That(DeviceVerifier.ExemptKernels.Select(e => e.Kernel), Is.EquivalentTo(new[] { "test_write_past_end", "test_barrier_in_no_sync" }));
    }

    /// <summary>Leaves out every launch of one kernel: its outputs keep whatever the memory held.</summary>
    private sealed class SkippingDevice(IDevice inner, string kernel) : KernelRecordingDevice(inner)
    {
        public override void Launch(Kernel k, Dim3 grid, Dim3 block, int dynamicSharedBytes, params ReadOnlySpan<KernelArg> args)
        {
            if (k.Name != kernel) base.Launch(k, grid, block, dynamicSharedBytes, args);
        }
    }

    /// <summary>A GEMM 0.1% off: the size of the error a TF32 GEMM makes, ten times the GEMM tolerance.</summary>
    private sealed class SloppyGemmDevice(IDevice inner) : KernelRecordingDevice(inner)
    {
        public override void Gemm(GemmOp transA, GemmOp transB, int m, int n, int k, float alpha, DevicePointer a, int lda, DevicePointer b, int ldb,
                                  float beta, DevicePointer c, int ldc) =>
            base.Gemm(transA, transB, m, n, k, alpha * 1.001f, a, lda, b, ldb, beta, c, ldc);
    }

    [TestCase("relu_forward_chunks_f32", "ops", "relu")]        // the cpu device's forms of the op's kernels
    // The ReLU's backward is also the masking pass of the fused convolutions whose backward cannot mask dy in its transpose.
    [TestCase("relu_backward_chunks_f32", "ops",
              "relu|conv2d+relu 3x3, fewer output channels|conv2d+relu 1x1, fewer output channels|conv_transpose2d+relu 4x4, stride 2")]
    [TestCase("relu_forward_f32", "kernels", "relu forward and backward (GPU form)")]  // the GPU's, reached on cpu only here
    [TestCase("vq_nearest_merge_f32", "nearest codes", "nearest codes, fused, 3 code splits + merge")]
    [TestCase("adam_step_f32", "kernels", "adam_step_f32")]
    public void A_broken_kernel_fails_its_checks_and_the_exit_code(string kernel, string group, string failingOps)
    {
        var ops = failingOps.Split('|');
        using var inner = TestDevices.Cpu();
        using var reference = TestDevices.Cpu();
        var broken = new SkippingDevice(inner, kernel);
        var options = new VerificationOptions { OnlyGroups = [group] };

        var report = DeviceVerifier.Run(broken, reference, options);
        Assert.That(report.Checks.Where(c => !c.Ok).Select(c => c.Op).Distinct(), Is.EquivalentTo(ops));
        Assert.That(report.Summary, Does.EndWith($", {report.Failed} failed").And.Not.EndWith(" 0 failed"));

        var json = Path.Combine(Path.GetTempPath(), $"vqvae-verify-{Guid.NewGuid():N}.json");
        try
        {
            Assert.That(VerifyCommand.Run(new SkippingDevice(inner, kernel), reference, options, new FileInfo(json)), Is.EqualTo(1));
            using var doc = JsonDocument.Parse(File.ReadAllText(json));
            var failed = doc.RootElement.GetProperty("checks").EnumerateArray().Where(c => !c.GetProperty("ok").GetBoolean()).ToList();
            Assert.That(failed.Select(c => c.GetProperty("op").GetString()).Distinct(), Is.EquivalentTo(ops));
            Assert.That(doc.RootElement.GetProperty("passed").GetBoolean(), Is.False);
        }
        finally
        {
            File.Delete(json);
        }
    }

    [Test]
    public void A_gemm_off_by_a_tenth_of_a_percent_fails_the_convolutions()
    {
        using var inner = TestDevices.Cpu();
        using var reference = TestDevices.Cpu();
        var report = DeviceVerifier.Run(new SloppyGemmDevice(inner), reference, new VerificationOptions { OnlyGroups = ["ops"] });
        var failed = report.Checks.Where(c => !c.Ok).ToList();
        Assert.That(failed.Select(c => c.Op), Has.Some.Contains("conv"));
        Assert.That(failed, Has.All.Matches<VerificationCheck>(c => c!.ForwardMaxRelError > c.Tolerance || (c.BackwardMaxRelError ?? 0) > c.Tolerance));
    }

    [Test]
    public void A_code_that_is_not_a_near_tie_fails_the_nearest_code_check()
    {
        // The argmin of the unfused search skipped: its codes are whatever the arena held (NaN bits, read as integers).
        using var inner = TestDevices.Cpu();
        using var reference = TestDevices.Cpu();
        var report = DeviceVerifier.Run(new SkippingDevice(inner, "vq_argmin_rows_f32"), reference,
                                        new VerificationOptions { OnlyGroups = ["nearest codes"] });
        Assert.That(report.Checks.Where(c => !c.Ok).Select(c => c.Op).Distinct(), Is.EqualTo(new[] { "nearest codes, unfused (GEMM then argmin)" }));
    }

    [Test]
    public void The_error_is_the_largest_difference_over_the_largest_reference_value()
    {
        Assert.Multiple(() =>
        {
            Assert.That(DeviceVerifier.MaxRelativeError([1f, 2f, -4f], [1f, 2f, -4f]), Is.Zero);
            Assert.That(DeviceVerifier.MaxRelativeError([1f, 2.5f, -4f], [1f, 2f, -4f]), Is.EqualTo(0.125).Within(1e-12));
            Assert.That(DeviceVerifier.MaxRelativeError([0f, 0f], [0f, 0f]), Is.Zero);
            Assert.That(DeviceVerifier.MaxRelativeError([1e-9f], [0f]), Is.EqualTo(double.PositiveInfinity));
            Assert.That(DeviceVerifier.MaxRelativeError([float.NaN], [1f]), Is.EqualTo(double.PositiveInfinity));
            Assert.That(DeviceVerifier.MaxRelativeError([1f], [1f, 2f]), Is.EqualTo(double.PositiveInfinity));
        });
    }

    [Test]
    public void Verify_from_the_command_line_on_the_cpu_device_exits_zero_and_writes_json()
    {
        TestDevices.Cpu().Dispose();
        var json = Path.Combine(Path.GetTempPath(), $"vqvae-verify-{Guid.NewGuid():N}.json");
        try
        {
            Assert.That(VqVaeCuda.Cli.Program.Main(["verify", "--device", "cpu", "--thread-order", "descending", "--json", json]), Is.Zero);
            using var doc = JsonDocument.Parse(File.ReadAllText(json));
            var root = doc.RootElement;
            int checks = root.GetProperty("checks").GetArrayLength();
            Assert.That(root.GetProperty("summary").GetString(), Is.EqualTo($"{checks} ops verified, 0 failed"));
            Assert.That(root.GetProperty("kernels_not_reached").GetArrayLength(), Is.Zero);
            Assert.That(root.GetProperty("checks")[0].GetProperty("tolerance_reason").GetString(), Is.Not.Empty);
        }
        finally
        {
            File.Delete(json);
        }
    }

    [Test]
    public void Verify_on_cuda_without_a_gpu_is_one_error_and_a_non_zero_exit()
    {
        if (CudaDevice.DeviceCount(out _) > 0) Assert.Ignore("a GPU is present here");
        TestDevices.Cpu().Dispose();
        Assert.That(VqVaeCuda.Cli.Program.Main(["verify", "--device", "cuda"]), Is.EqualTo(1));
    }
}
