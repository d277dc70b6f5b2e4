#!/usr/bin/env bash
# Installs what xlc needs to build on Debian 12 (bookworm) and configures a build tree.
#
#   scripts/setup.sh [build-dir] [extra cmake args...]
#
# Packages: MLIR/LLVM 19 (compiler, mlir-tblgen, FileCheck, lit), GoogleTest, nlohmann-json,
# CLI11, fmt, ccache, ninja; matplotlib for xlc-bench's plots (scripts/plot-bench.py, tested by
# test/run/bench-plots.test). The CUDA 13 toolkit is expected at /usr/local/cuda (it comes with the
# machine image); it is optional: without it the NVRTC checks are skipped and the runtime uses its
# CPU backend only.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$here/build}"
shift || true

packages=(cmake ninja-build ccache g++ python3
          libmlir-19-dev mlir-19-tools llvm-19-dev llvm-19-tools libzstd-dev
          libgtest-dev libgmock-dev nlohmann-json3-dev libcli11-dev libfmt-dev
          python3-matplotlib)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -f "$build/build.ninja" ]; then
  echo "[setup] configuring $build"
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DMLIR_DIR=/usr/lib/llvm-19/lib/cmake/mlir "$@"
fi
