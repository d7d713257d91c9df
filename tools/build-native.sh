#!/usr/bin/env bash
# Builds libvqvae_host (the `cpu` device's kernels) with CMake. Called by `dotnet build`
# (src/VqVaeCuda/NativeHost.targets); safe to run by hand:  tools/build-native.sh artifacts/native/Release Release
# Never fails the .NET build: when CMake or a C++ compiler is missing, or the native build fails,
# it writes libvqvae_host.unavailable.txt saying why, and the `cpu` device reports that text.
set -u
build_dir=${1:?usage: build-native.sh BUILD_DIR [Debug|Release]}
config=${2:-Release}
repo=$(cd "$(dirname "$0")/.." && pwd)
status="$build_dir/libvqvae_host.unavailable.txt"
mkdir -p "$build_dir"

unavailable() {
  rm -f "$build_dir/libvqvae_host.so"
  printf '%s\n' "$1" > "$status"
  echo "vqvae: CPU kernel library not built: $1" >&2
  exit 0
}

command -v cmake >/dev/null 2>&1 || unavailable "cmake is not installed (Debian/Ubuntu: apt-get install cmake g++)"
cxx=${CXX:-}
if [ -z "$cxx" ]; then
  for c in c++ g++ clang++; do command -v "$c" >/dev/null 2>&1 && { cxx=$c; break; }; done
fi
[ -n "$cxx" ] || unavailable "no C++17 compiler found (Debian/Ubuntu: apt-get install g++)"

# The native library is always optimised: a Debug .NET build still wants fast CPU kernels.
log="$build_dir/build.log"
if ! { cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$cxx" >"$log" 2>&1 &&
       cmake --build "$build_dir" --parallel >>"$log" 2>&1; }; then
  tail -n 30 "$log" >&2
  unavailable "the CMake build of libvqvae_host failed; see $log"
fi
rm -f "$status"
