#!/usr/bin/env bash
# One-time machine set-up for VqVaeCuda on Debian/Ubuntu (run as root or with sudo):
#   cmake + g++        build the CPU kernel library (dotnet build runs CMake)
#   libopenblas-dev    GEMM on the CPU device
#   libnvrtc11.2       NVRTC, from Debian's non-free component: compiles the kernels for GPUs and
#                      produces the ptxas report; needs no GPU
#   dataset-fashion-mnist  the real Fashion-MNIST under /usr/share/datasets/fashion-mnist
#   xz-utils           tools/gpu-bundle.sh compresses the libraries it carries (OpenBLAS: 36 MiB -> 4 MiB)
# Idempotent: safe to run again. The .NET 10 SDK is assumed to be installed.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  exec sudo "$0" "$@"
fi

enable_non_free() {
  local changed=0
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    # deb822 format: add non-free to every Components: line that lacks it.
    if grep -qE '^Components:' /etc/apt/sources.list.d/debian.sources &&
       grep -E '^Components:' /etc/apt/sources.list.d/debian.sources | grep -vq 'non-free\b'; then
      sed -i -E '/^Components:/{/non-free( |$)/! s/$/ non-free/}' /etc/apt/sources.list.d/debian.sources
      changed=1
    fi
  fi
  if [ -f /etc/apt/sources.list ] && grep -qE '^deb .* main' /etc/apt/sources.list &&
     grep -E '^deb .* main' /etc/apt/sources.list | grep -vq 'non-free\b'; then
    sed -i -E '/^deb .* main/{/non-free( |$)/! s/$/ non-free/}' /etc/apt/sources.list
    changed=1
  fi
  return 0
}

enable_non_free
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# fonts-dejavu-core: the plots' text (SkiaSharp finds no typeface on a machine without fonts).
apt-get install -y -qq --no-install-recommends cmake g++ make libopenblas-dev libnvrtc11.2 fonts-dejavu-core fontconfig xz-utils >/dev/null
# The data set is optional for the tests (they make their own data), so its absence is not fatal.
apt-get install -y -qq --no-install-recommends dataset-fashion-mnist >/dev/null ||
  echo "setup: dataset-fashion-mnist not installed (training on Fashion-MNIST will need it)" >&2
echo "setup: done (cmake $(cmake --version | head -1 | awk '{print $3}'), $(g++ --version | head -1), NVRTC $(ls /usr/lib/*/libnvrtc.so.* 2>/dev/null | head -1))"
