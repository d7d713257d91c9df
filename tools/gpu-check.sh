#!/usr/bin/env bash
# gpu-check.sh OUT_DIR: proves and times the whole CUDA path in one command, from the bundle of tools/gpu-bundle.sh,
# on a machine with no .NET and no network (a GPU machine lent for minutes: build the bundle first, carry it there).
#
# With a CUDA device: vqvae info; vqvae verify --device cuda (every kernel and op against the cpu device); vqvae bench
# --kernels --ops --step, TF32 off then on; vqvae kernels report for the device's architecture; the PyTorch peer
# (tools/peer/torch_vqvae_step.py) on the GPU, eager, CUDA-graphed and torch.compile'd, when python3 imports torch.
# Without one: vqvae verify --device cpu from the bundle, then one line saying no CUDA device answered.
# Every stage runs under `timeout` within one budget (VQVAE_CHECK_BUDGET_S, 480 s): a hung stage costs its own share,
# and stages are skipped, most important first kept, when the budget runs short. OUT_DIR receives each stage's log
# and JSON and summary.txt; the summary table is printed last.
#
# Exit codes:
#   0  a CUDA device answered; verify ran and found no failure; every vqvae stage ran to the end
#   1  a CUDA device answered but verify reported failures, or a vqvae stage failed, timed out or was skipped for lack
#      of time; or nvidia-smi lists a GPU that vqvae could not open (the reason is printed). PyTorch peer failures are
#      reported in the summary and do not change the exit code: the peer is a comparison, not a check of ours.
#   2  no CUDA device answered (no driver, or no GPU): verify ran on the cpu device from the bundle instead
#   3  usage error, or the bundle is missing or its vqvae does not start
#
# The bundle: $VQVAE_BUNDLE, else this script's folder when it holds vqvae (a carried bundle), else
# artifacts/gpu-bundle in the repository.
set -uo pipefail

usage() { echo "usage: gpu-check.sh OUT_DIR   (exit codes at the top of the script)" >&2; exit 3; }
[ $# -eq 1 ] || usage
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${VQVAE_BUNDLE:-}" ]; then bundle=$VQVAE_BUNDLE
elif [ -x "$here/vqvae" ]; then bundle=$here
else bundle="$here/../artifacts/gpu-bundle"
fi
bundle=$(realpath -m "$bundle")
[ -x "$bundle/vqvae" ] || { echo "gpu-check: no bundle at $bundle (build it with tools/gpu-bundle.sh)" >&2; exit 3; }
mkdir -p "$1" || usage
out=$(realpath "$1")

budget=${VQVAE_CHECK_BUDGET_S:-480}
started=$(date +%s)
deadline=$((started + budget))
reserve=10   # kept back for the summary
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vqvae-gpu-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
stages="$out/stages.tsv"
printf 'stage\tstatus\tseconds\tnote\n' >"$stages"
say() { echo "[gpu-check $(( $(date +%s) - started ))s] $*" >&2; }

# ---- the bundle's libraries: unpacked to a private folder, first on the loader's path for vqvae only (PyTorch keeps its own)
mkdir -p "$tmp/lib" "$tmp/extract"
if [ -f "$bundle/syslibs.tar.xz" ]; then
  if command -v xz >/dev/null; then tar -C "$tmp/lib" -xJf "$bundle/syslibs.tar.xz"
  else python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$bundle/syslibs.tar.xz" "$tmp/lib"
  fi || { echo "gpu-check: cannot unpack $bundle/syslibs.tar.xz (needs xz or python3)" >&2; exit 3; }
fi
# NVRTC and cuBLAS where the loader's cache does not list them: the CUDA toolkit's folders, or the nvidia-* wheels
# that come with PyTorch (the driver's libcuda.so.1 is always in the cache).
cuda_dirs=""
# (Never `producer | grep -q` here: with pipefail, grep's early exit can fail the producer with SIGPIPE.)
cache=$(ldconfig -p 2>/dev/null)
if ! grep -q 'libnvrtc\.so\.' <<<"$cache" || ! grep -q 'libcublas\.so\.' <<<"$cache"; then
  candidates=(/usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-*/lib64 /usr/local/cuda-*/targets/x86_64-linux/lib)
  if command -v python3 >/dev/null; then
    while IFS= read -r d; do candidates+=("$d"); done < <(timeout 20 python3 -c '
import glob, os, site
for p in site.getsitepackages() + [site.getusersitepackages()]:
    for d in sorted(glob.glob(os.path.join(p, "nvidia", "*", "lib")) + glob.glob(os.path.join(p, "nvidia", "cu*", "lib"))):
        print(d)' 2>/dev/null)
  fi
  for d in "${candidates[@]}"; do
    if [ -d "$d" ] && grep -qE '^lib(nvrtc|cublas)\.so\.' <<<"$(ls "$d" 2>/dev/null)"; then cuda_dirs+="$d:"; fi
  done
fi
vq_env=(env -u DOTNET_ROOT "LD_LIBRARY_PATH=$tmp/lib:$cuda_dirs${LD_LIBRARY_PATH:-}" "DOTNET_BUNDLE_EXTRACT_BASE_DIR=$tmp/extract"
        "VQVAE_KERNEL_CACHE=$tmp/kernel-cache")
[ -n "$cuda_dirs" ] && say "CUDA libraries from ${cuda_dirs%:}"

# ---- stages
# stage NAME CAP_S MIN_S LOG COMMAND...: runs COMMAND (stdout and stderr to OUT/LOG; for a LOG.json, stderr to
# LOG.stderr.log) under timeout, at most CAP_S and at most what the budget has left; skipped when fewer than MIN_S
# are left. Records the outcome in stages.tsv.
last_status=""
stage() {
  local name=$1 cap=$2 min=$3 log=$4; shift 4
  local left=$((deadline - $(date +%s) - reserve))
  if [ "$left" -lt "$min" ]; then
    last_status=skipped
    printf '%s\tskipped\t0\tbudget: %ss left, needs %ss\n' "$name" "$left" "$min" >>"$stages"
    say "$name: skipped ($left s of the budget left)"
    return 125
  fi
  local limit=$(( cap < left ? cap : left ))
  local t0 rc seconds
  t0=$(date +%s.%N)
  if [[ "$log" == *.json ]]; then timeout -k 5 "$limit" "$@" >"$out/$log" 2>"$out/${log%.json}.stderr.log"
  else timeout -k 5 "$limit" "$@" >"$out/$log" 2>&1
  fi
  rc=$?
  seconds=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  if [ "$rc" -eq 0 ]; then last_status=ok
  elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then last_status=timeout
  else last_status="failed"
  fi
  local note=""
  [ "$last_status" = timeout ] && note="stopped after ${limit}s"
  if [ "$last_status" = failed ]; then
    local text="$out/$log"
    [[ "$log" == *.json ]] && text="$out/${log%.json}.stderr.log"
    note="exit $rc: $(grep -v '^\s*$' "$text" | tail -1 | cut -c1-160)"
  fi
  printf '%s\t%s\t%s\t%s\n' "$name" "$last_status" "$seconds" "$note" >>"$stages"
  say "$name: $last_status (${seconds}s)${note:+ $note}"
  return "$rc"
}
record() { printf '%s\t%s\t0\t%s\n' "$1" "$2" "$3" >>"$stages"; say "$1: $2 ($3)"; }

has_command() { grep -qE "^\s+$1(\s|,|$)" <<<"$(timeout 30 "${vq_env[@]}" "$bundle/vqvae" --help 2>/dev/null)"; }
has_option() { grep -q -- "$2" <<<"$(timeout 30 "${vq_env[@]}" "$bundle/vqvae" "$1" --help 2>/dev/null)"; }
left_s() { echo $((deadline - $(date +%s) - reserve)); }
# What the target's loader says of the bundle's libraries (a missing GLIBC_/GLIBCXX_ version shows here by name,
# where the cpu device would only say it could not load the library).
if command -v ldd >/dev/null; then
  for f in "$bundle/libvqvae_host.so" "$bundle/vqvae" "$tmp/lib"/*; do
    [ -f "$f" ] || continue
    echo "== $(basename "$f")"
    LD_LIBRARY_PATH="$tmp/lib" timeout 20 ldd "$f" 2>&1
  done >"$out/ldd.txt"
  unresolved=$(grep -E "not found" "$out/ldd.txt" | sort -u | tr -s ' \t' ' ' | head -5 | tr '\n' ';')
  [ -z "$unresolved" ] || say "the loader cannot resolve, for the bundle: $unresolved (see $out/ldd.txt)"
fi

verify_summary() { grep -oE '[0-9]+ ops verified, [0-9]+ failed' "$out/$1" 2>/dev/null | tail -1; }

# ---- does the bundle start, and is there a CUDA device?
stage info 60 5 info.json "${vq_env[@]}" "$bundle/vqvae" info --json
if [ "$last_status" != ok ]; then
  echo "gpu-check: the bundle's vqvae did not start: $(tail -3 "$out/info.stderr.log" "$out/info.json" 2>/dev/null)" >&2
  exit 3
fi
timeout 60 "${vq_env[@]}" "$bundle/vqvae" info >"$out/info.txt" 2>&1
cuda_line=$(grep -E '"component":"cuda:0","available":true' "$out/info.json" | head -1)

if [ -z "$cuda_line" ]; then
  why=$(grep -E '"component":"(CUDA devices|cuda:0)"' "$out/info.json" | head -1 | sed -E 's/.*"detail":"(.*)"\}.*/\1/')
  if has_command verify; then
    stage "verify cpu" 300 30 verify-cpu.log "${vq_env[@]}" "$bundle/vqvae" verify --device cpu --json "$out/verify-cpu.json"
    result=$(verify_summary verify-cpu.log)
    verified="verify ran on the cpu device from the bundle: ${result:-$last_status, see $out/verify-cpu.log}"
  else
    record "verify cpu" skipped "this bundle's vqvae has no verify command"
    verified="the bundle's vqvae has no verify command; nothing was verified"
  fi
  if command -v nvidia-smi >/dev/null && grep -q '^GPU' <<<"$(timeout 20 nvidia-smi -L 2>/dev/null)"; then
    timeout 20 nvidia-smi -L >"$out/nvidia-smi.txt" 2>&1
    echo "gpu-check: nvidia-smi lists $(grep -c '^GPU' "$out/nvidia-smi.txt") GPU(s) but vqvae found no CUDA device: $why; $verified"
    exit 1
  fi
  echo "gpu-check: no CUDA device answered ($why); $verified"
  exit 2
fi

# ---- the GPU path
arch=$(grep -oE 'sm_[0-9]+' <<<"$cuda_line" | head -1)
say "device: $(sed -E 's/.*"detail":"(.*)"\}.*/\1/' <<<"$cuda_line")"
command -v nvidia-smi >/dev/null && timeout 20 nvidia-smi >"$out/nvidia-smi.txt" 2>&1
fatal=0

# verify first: correctness before speed.
if has_command verify; then
  stage "verify cuda" 240 30 verify-cuda.log "${vq_env[@]}" "$bundle/vqvae" verify --device cuda --json "$out/verify-cuda.json"
  [ "$last_status" = ok ] || fatal=1
else
  record "verify cuda" failed "this bundle's vqvae has no verify command"
  fatal=1
fi

# bench: kernels, ops and the training step (the fashion-mnist preset at batch 64, which the PyTorch peer builds by
# default). A vqvae that benchmarks --step only on its own gets the two halves as two runs.
tf32_flag=""
has_option bench --tf32 && tf32_flag=--tf32
bench() {  # bench LABEL TF32_FLAG
  local label=$1 flag=$2 common=(--device cuda --preset fashion-mnist --batch 64)
  stage "bench $label" 150 30 "bench-$label.log" "${vq_env[@]}" "$bundle/vqvae" bench --kernels --ops --step "${common[@]}" $flag \
        --json "$out/bench-$label.json"
  if [ "$last_status" = failed ] && grep -q "runs on its own" "$out/bench-$label.log"; then
    say "bench $label: --step runs on its own in this build: two runs"
    stage "bench $label: kernels, ops" 120 30 "bench-$label-kernels-ops.log" "${vq_env[@]}" "$bundle/vqvae" bench --kernels --ops --device cuda $flag \
          --json "$out/bench-$label-kernels-ops.json" || fatal=1
    stage "bench $label: step" 90 20 "bench-$label-step.log" "${vq_env[@]}" "$bundle/vqvae" bench --step "${common[@]}" $flag \
          --json "$out/bench-$label-step.json" || fatal=1
  elif [ "$last_status" != ok ]; then
    fatal=1
  fi
}
bench tf32-off ""
if [ -n "$tf32_flag" ]; then bench tf32-on --tf32
else record "bench tf32-on" skipped "this bundle's vqvae bench has no --tf32"
fi

# The PyTorch peer: each mode in its own process, so one failure (a capture error, a compiler crash) spoils nothing else.
peer() {  # peer MODE TF32(on|off) CAP
  local mode=$1 tf32=$2 cap=$3 extra=()
  [ "$tf32" = on ] && extra=(--tf32)
  stage "torch $mode tf32-$tf32" "$cap" 20 "peer-$mode-tf32-$tf32.log" python3 "$bundle/torch_vqvae_step.py" --device cuda --mode "$mode" \
        "${extra[@]}" --batch 64 --warmup 5 --repetitions 20 --json "$out/peer-$mode-tf32-$tf32.json"
}
torch_ok=0
if ! command -v python3 >/dev/null; then record "torch" skipped "no python3"
elif [ "$(left_s)" -lt 30 ]; then record "torch" skipped "budget: $(left_s)s left"
elif ! timeout "$(( $(left_s) < 90 ? $(left_s) : 90 ))" python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)' >"$out/torch-import.log" 2>&1; then
  record "torch" skipped "python3 cannot import torch or sees no CUDA device: $(tail -1 "$out/torch-import.log" | cut -c1-160)"
else
  torch_ok=1
fi
if [ "$torch_ok" = 1 ]; then peer eager off 60; peer graph off 60; fi

if [ -n "$arch" ]; then
  stage "kernels report $arch" 90 20 "kernels-$arch.json" "${vq_env[@]}" "$bundle/vqvae" kernels report --arch "$arch" --json || fatal=1
else
  record "kernels report" failed "no sm_XY architecture in the device line of info.json"
  fatal=1
fi

if [ "$torch_ok" = 1 ]; then peer eager on 45; peer graph on 45; peer compile off 180; fi
grep -qE $'^(verify|bench|kernels)[^\t]*\tskipped\tbudget' "$stages" && fatal=1

# ---- the summary (python3 reads the JSON; without it, the stage table alone)
{
  echo "== gpu-check summary: $(sed -E 's/.*"detail":"(.*)"\}.*/\1/' <<<"$cuda_line") =="
  column -t -s $'\t' "$stages" 2>/dev/null || cat "$stages"
  if command -v python3 >/dev/null; then
    python3 - "$out" <<'PY'
import glob, json, os, re, sys
out = sys.argv[1]

def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except Exception:
        return None

def ours_step(doc):
    """Our step's median from a bench JSON, whatever its nesting: the object with launches_per_step (not the peer's)."""
    if isinstance(doc, dict):
        if "step_ms" in doc and "launches_per_step" in doc:
            return doc["step_ms"]
        for v in doc.values():
            r = ours_step(v)
            if r is not None:
                return r
    elif isinstance(doc, list):
        for v in doc:
            r = ours_step(v)
            if r is not None:
                return r
    return None

def ours_field(doc, field):
    """A field of our step result (the object with launches_per_step), wherever the bench JSON nests it."""
    if isinstance(doc, dict):
        if "launches_per_step" in doc:
            return doc.get(field)
        for v in doc.values():
            r = ours_field(v, field)
            if r is not None:
                return r
    elif isinstance(doc, list):
        for v in doc:
            r = ours_field(v, field)
            if r is not None:
                return r
    return None

def cell(v):
    return "-" if v is None else f"{v:.3f}"

rows = []
ours = {t: ours_step(load(f"bench-tf32-{t}.json")) or ours_step(load(f"bench-tf32-{t}-step.json")) for t in ("off", "on")}
rows.append(("vqvae (bench --step)", ours["off"], ours["on"]))
graph = {t: ours_field(load(f"bench-tf32-{t}.json"), "graph_step_ms") or ours_field(load(f"bench-tf32-{t}-step.json"), "graph_step_ms")
         for t in ("off", "on")}
how = ours_field(load("bench-tf32-off.json"), "graph_step_execution") or ours_field(load("bench-tf32-off-step.json"), "graph_step_execution")
peer_notes = []
for mode in ("eager", "graph", "compile"):
    vals = {}
    for t in ("off", "on"):
        d = load(f"peer-{mode}-tf32-{t}.json")
        vals[t] = d["step_ms"] if d else None
        if d and d.get("mode") != mode:
            peer_notes.append(f"torch {mode} tf32-{t} ran {d.get('mode')}: {'; '.join(d.get('notes', []))}")
    rows.append((f"torch {mode}", vals["off"], vals["on"]))
print()
print("step ms (fashion-mnist, batch 64, median)   TF32 off    TF32 on")
for name, off, on in rows:
    print(f"  {name:<42}{cell(off):>9}  {cell(on):>9}")
print(f"  {'vqvae graph-shaped step':<42}{cell(graph['off']):>9}  {cell(graph['on']):>9}" + (f"   ({how})" if how else ""))
eager = rows[1]
for t, i in (("off", 1), ("on", 2)):
    if rows[0][i] and eager[i]:
        print(f"  vqvae / torch eager, TF32 {t}: {rows[0][i] / eager[i]:.2f}x")
for n in peer_notes:
    print("  " + n)
for name in ("verify-cuda.log", "verify-cpu.log"):
    p = os.path.join(out, name)
    if os.path.exists(p):
        m = re.findall(r"(\d+) ops verified, (\d+) failed", open(p, errors="replace").read())
        print(f"{name[:-4]}: " + (f"{m[-1][0]} ops verified, {m[-1][1]} failed" if m else f"no summary line (see {p})"))
for p in sorted(glob.glob(os.path.join(out, "kernels-sm_*.json"))):
    k = load(os.path.basename(p))
    if isinstance(k, list) and k:
        spills = [r["kernel"] for r in k if r.get("spillStoreBytes", 0) + r.get("spillLoadBytes", 0) > 0]
        print(f"{os.path.basename(p)[:-5]}: {len(k)} kernels, {len(spills)} spilling{': ' + ', '.join(spills) if spills else ''}, "
              f"registers up to {max(r.get('registers', 0) for r in k)}")
PY
  fi
  echo "total $(( $(date +%s) - started )) s of a $budget s budget; exit $fatal"
} | tee "$out/summary.txt"
exit "$fatal"
