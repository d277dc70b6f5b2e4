#!/usr/bin/env bash
# Sets everything up, builds, and runs every test.
#
#   scripts/test.sh [ctest args...]
#
# Two build trees:
#   build/          the full project (compiler + runtime): GoogleTest and lit suites through ctest.
#   build-runtime/  the runtime alone (-DXLC_BUILD_COMPILER=OFF) under AddressSanitizer and UBSan
#                   (-O1, asserts on, no GPU-only binaries): proves the runtime needs no MLIR and
#                   runs the runtime's tests (parsers' fuzz-style tests, CPU backend, emulated
#                   kernels) with the sanitizers watching.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="$(nproc)"

"$here/scripts/setup.sh" "$here/build"
echo "[test] building build/"
cmake --build "$here/build" -j "$jobs"
echo "[test] running the full suite"
ctest --test-dir "$here/build" --output-on-failure -j "$jobs" "$@"

if [ ! -f "$here/build-runtime/build.ninja" ]; then
  cmake -S "$here" -B "$here/build-runtime" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
        -DXLC_BUILD_COMPILER=OFF -DXLC_SANITIZE=ON -DXLC_BUILD_GPU_TESTS=OFF
fi
echo "[test] building build-runtime/ (compiler off, sanitizers on)"
cmake --build "$here/build-runtime" -j "$jobs"
echo "[test] running the runtime suite under sanitizers"
ctest --test-dir "$here/build-runtime" --output-on-failure -j "$jobs" "$@"
echo "[test] all suites passed"
