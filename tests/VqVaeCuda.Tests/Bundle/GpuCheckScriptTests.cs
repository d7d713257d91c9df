namespace VqVaeCuda.Tests.Bundle;

/// <summary>
/// tools/gpu-check.sh's GPU path, which no development machine can take for real: the script runs against a stand-in
/// bundle whose `vqvae` reports a CUDA device and answers the commands the check calls, as the real one does. It
/// records every call, so these tests also pin the command lines the check sends to vqvae.
/// </summary>
[TestFixture, Category("Bundle")]
public class GpuCheckScriptTests
{
    private string _dir = "";
    private string _bundle = "";
    private string _out = "";

    // The stand-in: FAKE_NO_CUDA=1 reports no CUDA device; FAKE_BENCH_COMBINED=1 accepts --kernels --ops --step in one run (writing the three parts in one
    // object); otherwise it refuses them as the current bench does. FAKE_VERIFY_FAILED sets verify's failure count.
    private const string FakeVqvae = """
        #!/usr/bin/env bash
        here=$(cd "$(dirname "$0")" && pwd)
        echo "$*" >> "$here/calls.txt"
        has() { for a in "${args[@]}"; do [ "$a" = "$1" ] && return 0; done; return 1; }
        value() { local i; for ((i = 0; i < ${#args[@]}; i++)); do [ "${args[$i]}" = "$1" ] && echo "${args[$((i + 1))]}"; done; }
        args=("$@")
        case "$1" in
          --help) printf 'Commands:\n  info      devices\n  verify    every op\n  bench     benchmarks\n  kernels   the kernels\n' ;;
          info)
            if has --json && [ "${FAKE_NO_CUDA:-0}" = 1 ]; then
              printf '[\n{"component":"CUDA devices","available":false,"detail":"could not load any of [libcuda.so.1]: no driver"}\n]\n'
            elif has --json; then
              printf '[\n{"component":"cuda:0","available":true,"detail":"NVIDIA H200, sm_90, 132 SMs, 139.8 GiB"},\n{"component":"NVRTC","available":true,"detail":"13.0"}\n]\n'
            else echo "info table"; fi ;;
          verify)
            has --help && exit 0
            echo '{"ops": 120}' > "$(value --json)"
            echo "120 ops verified, ${FAKE_VERIFY_FAILED:-0} failed"
            [ "${FAKE_VERIFY_FAILED:-0}" = 0 ] ;;
          bench)
            if has --help; then echo "  --tf32  allow TF32"; exit 0; fi
            if has --step && has --kernels && [ "${FAKE_BENCH_COMBINED:-0}" != 1 ]; then
              echo "error: --step runs on its own: benchmark --kernels, --ops or --sampling in another run" >&2; exit 1
            fi
            ms=2.5; has --tf32 && ms=1.5
            step="{\"preset\":\"$(value --preset)\",\"batch\":$(value --batch),\"step_ms\":$ms,\"launches_per_step\":131}"
            if has --step && has --kernels; then echo "{\"kernels\":[],\"ops\":[],\"step\":$step}" > "$(value --json)"
            elif has --step; then echo "$step" > "$(value --json)"
            else echo '[{"group":"fill","variant":"fill_f32"}]' > "$(value --json)"; fi ;;
          kernels)
            echo '[{"kernel":"a","registers":32,"spillStoreBytes":0,"spillLoadBytes":0},{"kernel":"b","registers":40,"spillStoreBytes":8,"spillLoadBytes":8}]' ;;
          *) echo "error: unknown command $1" >&2; exit 1 ;;
        esac
        """;

    // The peer's stand-in (run by the real python3 with a stand-in torch module on PYTHONPATH): eager takes 5 ms, 4 with
    // TF32; graph falls back to eager as the real script does when capture fails; compile takes 3 ms.
    private const string FakePeer = """
        import argparse, json
        p = argparse.ArgumentParser()
        for a in ("--device", "--mode", "--batch", "--warmup", "--repetitions", "--json"):
            p.add_argument(a)
        p.add_argument("--tf32", action="store_true")
        a = p.parse_args()
        ran, notes = a.mode, []
        if a.mode == "graph":
            ran, notes = "eager", ["--mode graph: capture failed (RuntimeError: stand-in); ran eagerly"]
        ms = {"eager": 5.0, "compile": 3.0}[ran] - (1.0 if a.tf32 else 0.0)
        json.dump(dict(step_ms=ms, mode=ran, mode_requested=a.mode, tf32=a.tf32, device=a.device, batch=int(a.batch), notes=notes), open(a.json, "w"))
        """;

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "vqvae-gpu-check-" + Guid.NewGuid().ToString("N"));
        _bundle = Path.Combine(_dir, "bundle");
        _out = Path.Combine(_dir, "out");
        Directory.CreateDirectory(_bundle);
        var vqvae = Path.Combine(_bundle, "vqvae");
        File.WriteAllText(vqvae, FakeVqvae.Replace("\r\n", "\n") + "\n");
        if (OperatingSystem.IsWindows()) Assert.Ignore("the check is a bash script for Linux");
        else File.SetUnixFileMode(vqvae, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    private (int ExitCode, string Stdout, string Stderr) Check(Dictionary<string, string?>? environment = null, bool withPeer = false)
    {
        var env = environment ?? [];
        env["VQVAE_BUNDLE"] = _bundle;
        if (withPeer)
        {
            File.WriteAllText(Path.Combine(_bundle, "torch_vqvae_step.py"), FakePeer.Replace("\r\n", "\n") + "\n");
            var torch = Path.Combine(_dir, "pylib", "torch");
            Directory.CreateDirectory(torch);
            File.WriteAllText(Path.Combine(torch, "__init__.py"), "class cuda:\n    @staticmethod\n    def is_available():\n        return True\n");
            env["PYTHONPATH"] = Path.Combine(_dir, "pylib");
        }
        // Otherwise whatever python3 is here: none with a CUDA torch on a machine without a GPU, so the peer is skipped.
        return ScriptRun.Bash("tools/gpu-check.sh", [_out], env, TimeSpan.FromMinutes(2));
    }

    private string[] Calls() => File.ReadAllLines(Path.Combine(_bundle, "calls.txt"));

    private string Stages() => File.ReadAllText(Path.Combine(_out, "stages.tsv"));

    [Test]
    public void With_a_CUDA_device_it_verifies_benchmarks_with_TF32_off_and_on_and_reports_the_device_architecture()
    {
        var (code, stdout, stderr) = Check(new() { ["FAKE_BENCH_COMBINED"] = "1" }, withPeer: true);

        Assert.That(code, Is.Zero, stdout + stderr);
        var calls = Calls();
        Assert.That(calls, Does.Contain($"verify --device cuda --json {_out}/verify-cuda.json"));
        Assert.That(calls, Does.Contain($"bench --kernels --ops --step --device cuda --preset fashion-mnist --batch 64 --json {_out}/bench-tf32-off.json"));
        Assert.That(calls, Does.Contain($"bench --kernels --ops --step --device cuda --preset fashion-mnist --batch 64 --tf32 --json {_out}/bench-tf32-on.json"));
        Assert.That(calls, Does.Contain("kernels report --arch sm_90 --json"));
        // The summary comes last: our step with TF32 off and on, verify's counts, the kernel report.
        var summary = stdout[stdout.IndexOf("== gpu-check summary", StringComparison.Ordinal)..];
        Assert.That(summary, Does.Match(@"vqvae \(bench --step\)\s+2\.500\s+1\.500"));
        Assert.That(summary, Does.Match(@"torch eager\s+5\.000\s+4\.000"));
        Assert.That(summary, Does.Match(@"torch graph\s+5\.000\s+4\.000"));
        Assert.That(summary, Does.Match(@"torch compile\s+3\.000\s+-"));
        Assert.That(summary, Does.Contain("vqvae / torch eager, TF32 off: 0.50x"));
        Assert.That(summary, Does.Contain("torch graph tf32-off ran eager: --mode graph: capture failed (RuntimeError: stand-in); ran eagerly"));
        Assert.That(summary, Does.Contain("verify-cuda: 120 ops verified, 0 failed"));
        Assert.That(summary, Does.Contain("kernels-sm_90: 2 kernels, 1 spilling: b, registers up to 40"));
        Assert.That(stdout.TrimEnd().Split('\n')[^1], Does.Match(@"^total \d+ s of a 480 s budget; exit 0$"));
        Assert.That(File.ReadAllText(Path.Combine(_out, "summary.txt")), Is.EqualTo(summary));
    }

    [Test]
    public void A_bench_that_runs_the_step_only_on_its_own_gets_two_runs_for_each_TF32_setting()
    {
        var (code, stdout, stderr) = Check();

        Assert.That(code, Is.Zero, stdout + stderr);
        var calls = Calls();
        Assert.That(calls, Does.Contain($"bench --kernels --ops --device cuda --json {_out}/bench-tf32-off-kernels-ops.json"));
        Assert.That(calls, Does.Contain($"bench --step --device cuda --preset fashion-mnist --batch 64 --json {_out}/bench-tf32-off-step.json"));
        Assert.That(calls, Does.Contain($"bench --step --device cuda --preset fashion-mnist --batch 64 --tf32 --json {_out}/bench-tf32-on-step.json"));
        Assert.That(stdout, Does.Match(@"vqvae \(bench --step\)\s+2\.500\s+1\.500"));
    }

    [Test]
    public void Without_a_CUDA_device_it_verifies_on_the_cpu_and_exits_2_with_one_line_saying_so()
    {
        var (code, stdout, stderr) = Check(new() { ["FAKE_NO_CUDA"] = "1", ["PATH"] = "/usr/bin:/bin" });

        Assert.That(code, Is.EqualTo(2), stdout + stderr);
        Assert.That(stdout.TrimEnd(), Is.EqualTo("gpu-check: no CUDA device answered (could not load any of [libcuda.so.1]: no driver); " +
                                                 "verify ran on the cpu device from the bundle: 120 ops verified, 0 failed"));
        Assert.That(Calls(), Does.Contain($"verify --device cpu --json {_out}/verify-cpu.json"));
        Assert.That(Calls().Any(c => c.StartsWith("bench", StringComparison.Ordinal)), Is.False);
    }

    [Test]
    public void A_GPU_that_nvidia_smi_lists_but_vqvae_cannot_open_makes_the_check_exit_1()
    {
        var bin = Path.Combine(_dir, "fake-bin");
        Directory.CreateDirectory(bin);
        var smi = Path.Combine(bin, "nvidia-smi");
        File.WriteAllText(smi, "#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-0)'\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(smi, UnixFileMode.UserRead | UnixFileMode.UserExecute);

        var (code, stdout, stderr) = Check(new() { ["FAKE_NO_CUDA"] = "1", ["PATH"] = bin + ":/usr/bin:/bin" });

        Assert.That(code, Is.EqualTo(1), stdout + stderr);
        Assert.That(stdout, Does.StartWith("gpu-check: nvidia-smi lists 1 GPU(s) but vqvae found no CUDA device: could not load any of [libcuda.so.1]: no driver"));
    }

    [Test]
    public void Failures_reported_by_verify_make_the_check_exit_1()
    {
        var (code, stdout, _) = Check(new() { ["FAKE_VERIFY_FAILED"] = "3" });

        Assert.That(code, Is.EqualTo(1));
        Assert.That(stdout, Does.Contain("verify-cuda: 120 ops verified, 3 failed"));
        Assert.That(Stages(), Does.Match(@"verify cuda\tfailed\t[0-9.]+\texit 1: 120 ops verified, 3 failed"));
    }

    [Test]
    public void Stages_the_budget_cannot_hold_are_skipped_and_the_check_exits_1()
    {
        // 20 s, 10 kept for the summary: fewer than verify's minimum of 30.
        var (code, stdout, stderr) = Check(new() { ["VQVAE_CHECK_BUDGET_S"] = "20" });

        Assert.That(code, Is.EqualTo(1), stdout + stderr);
        Assert.That(Stages(), Does.Contain("verify cuda\tskipped\t0\tbudget:"));
        Assert.That(Calls().Any(c => c.StartsWith("verify --device", StringComparison.Ordinal)), Is.False);
    }
}
