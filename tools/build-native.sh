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

# The native library is always optimised: a Debug .NET build still wants fast CPU kernels. It targets the
# baseline instruction set (portable: copy it anywhere) unless VQVAE_NATIVE_ARCH=1 asks for -march=native.
# Measured on the development machine (AVX-512, 2 cores; kernels/NOTES.md): a fashion-mnist training step
# took 2-6 % longer with -march=native (and the same with 256-bit vectors preferred): the step's time is in
# OpenBLAS (which picks its own kernels at run time) and in memory-bound index arithmetic, not in arithmetic
# the compiler could widen. So the default stays portable.
native_arch=OFF
[ "${VQVAE_NATIVE_ARCH:-0}" = "1" ] && native_arch=ON
log="$build_dir/build.log"
if ! { cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$cxx" -DVQH_NATIVE_ARCH=$native_arch >"$log" 2>&1 &&
       cmake --build "$build_dir" --parallel >>"$log" 2>&1; }; then
  tail -n 30 "$log" >&2
  unavailable "the CMake build of libvqvae_host failed; see $log"
fi
rm -f "$status"

# The instruction-set extensions the library was compiled to use, as /proc/cpuinfo names them: the cpu device
# refuses to load the library on a CPU that lacks one (a clear error instead of SIGILL in the middle of a kernel).
isa="$build_dir/libvqvae_host.isa.txt"
: > "$isa"   # empty for a portable build (and it replaces a native build's list next to the assembly)
if [ "$native_arch" = "ON" ] && [ "$(uname -m)" = "x86_64" ]; then
  "$cxx" -march=native -dM -E -x c++ /dev/null 2>/dev/null | awk '
    /#define __SSE4_1__ /{print "sse4_1"} /#define __SSE4_2__ /{print "sse4_2"} /#define __POPCNT__ /{print "popcnt"}
    /#define __AVX__ /{print "avx"} /#define __AVX2__ /{print "avx2"} /#define __FMA__ /{print "fma"} /#define __F16C__ /{print "f16c"}
    /#define __BMI__ /{print "bmi1"} /#define __BMI2__ /{print "bmi2"} /#define __AVX512F__ /{print "avx512f"}
    /#define __AVX512BW__ /{print "avx512bw"} /#define __AVX512DQ__ /{print "avx512dq"} /#define __AVX512VL__ /{print "avx512vl"}
    /#define __AVX512CD__ /{print "avx512cd"}' | sort -u > "$isa"
fi
