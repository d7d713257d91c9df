#!/usr/bin/env bash
# Builds the GPU-check bundle: everything `tools/gpu-check.sh` needs on a linux-x64 machine with no .NET and no
# network (a GPU machine lent for minutes), in one git-ignored folder.
#   tools/gpu-bundle.sh [OUT_DIR]        (default artifacts/gpu-bundle; build files in artifacts/gpu-bundle-build)
# The folder holds:
#   vqvae              the CLI, self-contained single file (the .NET runtime inside, trimmed in partial mode and
#                      compressed; SkiaSharp's native libraries inside too, extracted at the first run). The kernel
#                      sources and the PyTorch peer are embedded resources of the library, so no kernels/ folder.
#   libvqvae_host.so   the cpu device's kernels, built portable (never -march=native: the bundle runs elsewhere),
#   libvqvae_host.isa.txt  (empty for a portable build) beside it, where HostRuntime looks.
#   syslibs.tar.xz     the shared libraries the cpu device and the runtime load by name that a GPU machine may lack:
#                      OpenBLAS (cblas_sgemm) with libgfortran/libquadmath, and OpenSSL (the kernel cache's SHA-256).
#                      36 MiB of OpenBLAS shrinks to ~4 MiB; gpu-check.sh unpacks them to a temporary folder on
#                      LD_LIBRARY_PATH.
#   torch_vqvae_step.py  the PyTorch peer (the same file as tools/peer/), run by gpu-check.sh on the GPU.
#   gpu-check.sh       a copy of tools/gpu-check.sh: the folder can be carried and run on its own.
#   BUNDLE.txt         what it was built from and what it assumes of the target machine.
# Needs: the .NET SDK, cmake and a C++ compiler (as `dotnet build`), libopenblas, xz (or python3), ldd.
# Prints `bundle: PATH (N MiB)` as its last line; exits non-zero (with the reason) when anything is missing or the
# folder exceeds VQVAE_BUNDLE_MAX_MIB (40).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$repo/artifacts/gpu-bundle}")
build="$repo/artifacts/gpu-bundle-build"
max_mib=${VQVAE_BUNDLE_MAX_MIB:-40}
started=$(date +%s)

die() { echo "gpu-bundle: $*" >&2; exit 1; }
command -v dotnet >/dev/null || die "the .NET SDK (dotnet) is not on PATH"
command -v ldd >/dev/null || die "ldd is not installed (Debian: libc-bin)"

# 1. The CLI. --artifacts-path and NativeHostBuildDir keep this build's obj/bin and CMake folder apart from
#    `dotnet build`'s, so a bundle build never disturbs (or races) the developer's build and tests.
#    VQVAE_NATIVE_ARCH=0: the bundle runs on another CPU.
mkdir -p "$build"
echo "gpu-bundle: dotnet publish (self-contained linux-x64, single file, trimmed, compressed)..." >&2
if ! VQVAE_NATIVE_ARCH=0 dotnet publish "$repo/src/VqVaeCuda.Cli/VqVaeCuda.Cli.csproj" -c Release -p:VqVaeBundle=true \
       --artifacts-path "$build/dotnet" -p:NativeHostBuildDir="$build/native/" -o "$build/publish" \
       -nologo -v:q >"$build/publish.log" 2>&1; then
  grep -E "error|Error" "$build/publish.log" | head -20 >&2
  die "dotnet publish failed; see $build/publish.log"
fi
publish="$build/publish"
[ ! -f "$publish/libvqvae_host.unavailable.txt" ] || die "the CPU kernel library was not built: $(cat "$publish/libvqvae_host.unavailable.txt")"
for f in vqvae libvqvae_host.so; do [ -f "$publish/$f" ] || die "dotnet publish left no $f in $publish"; done

# 2. The shared libraries loaded by name at run time (dlopen), with what they need in turn: the system's copies.
#    glibc, libm, libgcc_s and libstdc++ are assumed on the target (the .NET runtime itself needs them).
system_lib() {  # the file behind a soname, from the loader's cache
  ldconfig -p | awk -v n="$1" '$1 == n && /x86-64/ { print $NF; exit }'
}
assumed='^(linux-vdso|ld-linux-x86-64|libc|libm|libdl|libpthread|librt|libgcc_s|libstdc\+\+)\.so'
syslibs="$build/syslibs"
rm -rf "$syslibs" && mkdir -p "$syslibs"
for soname in libopenblas.so.0 libssl.so.3 libcrypto.so.3; do
  path=$(system_lib "$soname")
  [ -n "$path" ] || die "$soname is not installed here (Debian: libopenblas0 / libssl3): the bundle carries this machine's copy"
  cp -L "$path" "$syslibs/$soname"
  # What it needs beyond the assumed base, by soname, copied under that name.
  while read -r dep _ dep_path _; do
    [[ "$dep" =~ $assumed ]] && continue
    [ -f "$syslibs/$dep" ] || cp -L "$dep_path" "$syslibs/$dep"
  done < <(ldd "$path" | awk '$2 == "=>" && $3 ~ /^\//')
done

# 3. Nothing outside the assumed base may come from the system: ldd each binary with only the bundled folder added.
missing=""
outside=""
for f in "$publish/libvqvae_host.so" "$publish/vqvae" "$syslibs"/*; do
  deps=$(LD_LIBRARY_PATH="$syslibs" ldd "$f" 2>&1) || true
  if grep -q "not found" <<<"$deps"; then missing+="$(basename "$f"): $(grep "not found" <<<"$deps" | tr -s ' \t' ' ')"$'\n'; fi
  outside+=$(awk -v s="$syslibs/" '$2 == "=>" && index($3, s) != 1 { print $1 }' <<<"$deps" | grep -Ev "$assumed" || true)
done
[ -z "$missing" ] || die "unresolved libraries: $missing"
[ -z "$outside" ] || die "needed from the system beyond glibc/libm/libgcc_s/libstdc++: $(sort -u <<<"$outside" | tr '\n' ' ')"

# The newest symbol versions the bundle asks of the target's glibc and libstdc++ (objdump, when installed).
needs=""
if command -v objdump >/dev/null; then
  glibc=$(for f in "$publish/libvqvae_host.so" "$publish/vqvae" "$syslibs"/*; do objdump -T "$f" 2>/dev/null; done |
          grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
  glibcxx=$(for f in "$publish/libvqvae_host.so" "$publish/vqvae" "$syslibs"/*; do objdump -T "$f" 2>/dev/null; done |
            grep -o 'GLIBCXX_[0-9.]*' | sort -uV | tail -1)
  needs="glibc >= ${glibc#GLIBC_}, libstdc++ with ${glibcxx:-no GLIBCXX symbols}, libgcc_s"
fi

# 4. The folder, rebuilt from nothing.
rm -rf "$out" && mkdir -p "$out"
cp "$publish/vqvae" "$publish/libvqvae_host.so" "$out/"
if [ -f "$publish/libvqvae_host.isa.txt" ]; then cp "$publish/libvqvae_host.isa.txt" "$out/"; fi
cp "$repo/tools/peer/torch_vqvae_step.py" "$repo/tools/gpu-check.sh" "$out/"
if command -v xz >/dev/null; then
  tar -C "$syslibs" -cf - . | xz -9 -T2 >"$out/syslibs.tar.xz"
else
  python3 -c 'import sys, tarfile; t = tarfile.open(sys.argv[1], "w:xz", preset=9); t.add(sys.argv[2], arcname="."); t.close()' \
    "$out/syslibs.tar.xz" "$syslibs" || die "neither xz nor python3 can compress syslibs"
fi
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=""
[ -z "$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null)" ] || dirty=" (with uncommitted changes)"
{
  echo "VqVaeCuda GPU-check bundle, built $(date -u +%Y-%m-%dT%H:%M:%SZ) from commit $commit$dirty on $(uname -m) $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
  echo "run: bash gpu-check.sh OUT_DIR   (or, in the repository, bash tools/gpu-check.sh OUT_DIR)"
  echo "assumes on the target: linux-x64${needs:+, $needs}; for a GPU: the NVIDIA driver (libcuda.so.1), NVRTC and cuBLAS"
  echo "carried libraries (syslibs.tar.xz): $(cd "$syslibs" && ls | tr '\n' ' ')"
  echo "files:"
  (cd "$out" && ls -l | awk 'NR > 1 { printf "  %-24s %10d bytes\n", $NF, $5 }')
} >"$out/BUNDLE.txt"

bytes=$(du -sb "$out" | cut -f1)
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
echo "gpu-bundle: built in $(( $(date +%s) - started )) s; assumes ${needs:-glibc, libstdc++, libgcc_s}" >&2
awk -v b="$bytes" -v m="$max_mib" 'BEGIN { exit !(b <= m * 1048576) }' || die "the bundle is $mib MiB, over the limit of $max_mib MiB"
echo "bundle: $out ($mib MiB)"
