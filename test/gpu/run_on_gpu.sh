#!/usr/bin/env bash
# Builds the runtime-only tree on the GPU machine and runs the kernel tests and benchmark there.
#
#   test/gpu/run_on_gpu.sh [--tests-only | --bench-only | --build-only] [--quick] [--reps N]
#
# --build-only stops after the build (for profiling the binaries it leaves in the build tree).
#
# Needs: cmake, ninja, g++, the CUDA toolkit at /usr/local/cuda (NVRTC, headers) and a driver;
# the header-only libraries the GPU machine lacks come from .deps/ (scripts/vendor-headers.sh,
# run beforehand on the development machine; .deps/ is git-ignored, so carry it: carry [".deps"]).
# GoogleTest: the machine's own CMake package if it has one, else built from .deps/googletest-src
# (XLC_FORCE_VENDORED_GTEST=1 forces the latter).
#
# Steps (each logged; logs go to $OUT if set, else ./gpu-out/, at most 8 files):
#   1. versions, configure, build            -> build.log
#   2. cuda_runtime_tests (driver, NVRTC)     -> cuda_runtime_tests.log
#   3. gpu_kernel_tests (every family vs. the float64 reference)
#                                             -> gpu_kernel_tests.log, gpu_kernel_tests.json
#      gpu_sampling_tests (the sampling kernel and DeviceSampler vs. the host sampler)
#                                             -> gpu_sampling_tests.log
#   4. kernel_bench (7B chunkwise forward, decode step, decode GEMMs: GEMV vs. cuBLASLt)
#                                             -> kernel_bench.log, kernel_bench.json
#   5. a summary table, printed last          -> summary.txt
# Every log and summary.txt begin with the provenance block (test/gpu/provenance.sh: the git
# commit and whether the tree was dirty, from .git or else from a carried .gpu/PROVENANCE, and the
# device-header hash of this build); the JSON records get it as "provenance".
# A skipped test is a failure here: XLC_REQUIRE_GPU=1 is exported, so the GPU tests fail instead
# of skipping when there is no GPU or no libnvrtc (test/gpu/harness/GpuSkip.h), and a test step
# that still reports skipped tests, or in which no test passed, is FAIL.
# Exit status: 0 if everything that ran passed, 1 if a test or a correctness check failed (or
# was skipped), 2 if the build could not be made. Each step has a time limit (env XLC_TESTS_TIMEOUT,
# XLC_BENCH_TIMEOUT, seconds) so that logs are written before an outer limit kills the run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${OUT:-$here/gpu-out}"
build="${XLC_GPU_BUILD_DIR:-$here/build-gpu}"
deps="$here/.deps"
jobs="$(nproc 2>/dev/null || echo 8)"
run_tests=1
run_bench=1
bench_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tests-only) run_bench=0 ;;
    --bench-only) run_tests=0 ;;
    --build-only) run_tests=0; run_bench=0 ;;
    --quick) bench_args+=(--quick --reps 5) ;;
    --reps) bench_args+=(--reps "$2"); shift ;;
    -h|--help) sed -n '/^set -euo/q;2,$p' "$0"; exit 0 ;;
    *) echo "run_on_gpu.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
export XLC_REQUIRE_GPU=1
mkdir -p "$out" "$build"
summary="$out/summary.txt"
: > "$summary"
log() { echo "[run_on_gpu] $*"; }
record() { printf '%-22s %-8s %s\n' "$1" "$2" "$3" >> "$summary"; }
start_all=$SECONDS
status=0
# The provenance block; kept in the build tree ($OUT holds at most 8 files). Rewritten with the
# device-header hash once the build exists.
provenance="$build/provenance.txt"
bash "$here/test/gpu/provenance.sh" > "$provenance"
# finish_summary: heads summary.txt with the provenance block (early exits).
finish_summary() {
  { echo "== provenance"; cat "$provenance"; echo "=="; cat "$summary"; } > "$summary.tmp"
  mv "$summary.tmp" "$summary"
  cat "$summary"
}

# ---- 1. Versions, configure, build -------------------------------------------------------------
build_log="$out/build.log"
{
  echo "== versions"
  date -u
  (nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader \
     || echo "nvidia-smi: not available") 2>&1
  (/usr/local/cuda/bin/nvcc --version | tail -2 || echo "nvcc: not found") 2>&1
  cmake --version | head -1
  g++ --version | head -1
  echo "ninja $(ninja --version)"
  if [ -f "$deps/VERSIONS" ]; then sed 's/^/vendored: /' "$deps/VERSIONS"; fi
} 2>&1 | tee "$build_log"

if [ ! -f "$deps/lib/cmake/fmt/fmtConfig.cmake" ]; then
  log "missing $deps: run scripts/vendor-headers.sh on the development machine first" \
    | tee -a "$build_log"
  record build FAIL "no .deps/ (scripts/vendor-headers.sh)"
  finish_summary
  exit 2
fi
prefix="$deps"

# GoogleTest: probe for a CMake package; otherwise build the vendored sources once.
probe="$build/gtest-probe"
mkdir -p "$probe/src"
cat > "$probe/src/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.20)
project(probe CXX)
find_package(GTest CONFIG REQUIRED)
CMAKE
if [ "${XLC_FORCE_VENDORED_GTEST:-0}" != 1 ] &&
   cmake -S "$probe/src" -B "$probe/build" -G Ninja >> "$build_log" 2>&1; then
  log "GoogleTest: the machine's CMake package" | tee -a "$build_log"
else
  gtest_prefix="$build/gtest-install"
  if [ ! -f "$gtest_prefix/lib/cmake/GTest/GTestConfig.cmake" ]; then
    log "GoogleTest: no CMake package here; building $deps/googletest-src" | tee -a "$build_log"
    if ! { cmake -S "$deps/googletest-src" -B "$build/gtest-build" -G Ninja \
             -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$gtest_prefix" \
             -DCMAKE_CXX_FLAGS=-w -DBUILD_GMOCK=ON -DINSTALL_GTEST=ON &&
           cmake --build "$build/gtest-build" -j "$jobs" &&
           cmake --install "$build/gtest-build"; } >> "$build_log" 2>&1; then
      log "GoogleTest build failed (see build.log)"
      record build FAIL "GoogleTest fallback build"
      finish_summary
      exit 2
    fi
  fi
  prefix="$deps;$gtest_prefix"
fi

t0=$SECONDS
targets=(cuda_runtime_tests gpu_kernel_tests gpu_sampling_tests kernel_bench)
log "configuring $build (runtime only) and building ${targets[*]} with $jobs jobs"
if ! { cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
         -DXLC_BUILD_COMPILER=OFF -DCMAKE_PREFIX_PATH="$prefix" \
         -Dnlohmann_json_DIR="$deps/lib/cmake/nlohmann_json" -DCLI11_DIR="$deps/lib/cmake/CLI11" \
         -Dfmt_DIR="$deps/lib/cmake/fmt" -DCUDAToolkit_ROOT=/usr/local/cuda &&
       cmake --build "$build" --target "${targets[@]}" -j "$jobs"; } >> "$build_log" 2>&1; then
  tail -n 40 "$build_log"
  log "build failed (full log: $build_log)"
  record build FAIL "$((SECONDS - t0)) s, see build.log"
  finish_summary
  exit 2
fi
record build ok "$((SECONDS - t0)) s"
bin="$build/test"
bash "$here/test/gpu/provenance.sh" --build-dir "$build" > "$provenance"
{ echo "== provenance"; cat "$provenance"; } | tee -a "$build_log"

# ---- 2.-3. Tests --------------------------------------------------------------------------------
# gtest_counts LOG: "P passed, F failed, S skipped", from the per-test result lines, which end
# in "(N ms)" (the summary's lists at the end do not, so nothing is counted twice).
gtest_counts() {
  local passed failed skipped
  passed="$(grep -cE '^\[       OK \] .* \([0-9]+ ms\)$' "$1" || true)"
  failed="$(grep -cE '^\[  FAILED  \] .* \([0-9]+ ms\)$' "$1" || true)"
  skipped="$(grep -cE '^\[  SKIPPED \] .* \([0-9]+ ms\)$' "$1" || true)"
  echo "$passed passed, $failed failed, $skipped skipped"
}

# run_step NAME TIMEOUT LOG CMD...: runs with a time limit, tees the log, records the outcome.
run_step() {
  local name="$1" limit="$2" logfile="$3"
  shift 3
  local t=$SECONDS rc=0
  log "running $name (limit ${limit} s)"
  { echo "== provenance"; cat "$provenance"; echo "=="; } > "$logfile"
  set +e
  timeout --signal=TERM --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$logfile"
  rc="${PIPESTATUS[0]}"
  set -e
  local detail="rc $rc, $((SECONDS - t)) s" skipped=0
  case "$name" in
    *tests)
      detail="$(gtest_counts "$logfile"), $detail"
      # A skip, or a run in which no test passed at all, is not a pass.
      if [[ "$detail" != *", 0 skipped,"* ]] || [[ "$detail" == "0 passed,"* ]]; then
        skipped=1
      fi ;;
  esac
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    record "$name" TIMEOUT "$detail"
    status=1
  elif [ "$rc" -ne 0 ]; then
    record "$name" FAIL "$detail"
    status=1
  elif [ "$skipped" -eq 1 ]; then
    record "$name" FAIL "$detail (a skipped test, or none passing, is a failure here)"
    status=1
  else
    record "$name" ok "$detail"
  fi
}

if [ "$run_tests" -eq 1 ]; then
  run_step cuda_runtime_tests "${XLC_TESTS_TIMEOUT:-240}" "$out/cuda_runtime_tests.log" \
    "$bin/runtime/cuda/cuda_runtime_tests"
  run_step gpu_kernel_tests "${XLC_TESTS_TIMEOUT:-240}" "$out/gpu_kernel_tests.log" \
    "$bin/gpu/gpu_kernel_tests" --gtest_output="json:$out/gpu_kernel_tests.json"
  bash "$here/test/gpu/provenance.sh" --stamp "$provenance" "$out/gpu_kernel_tests.json"
  run_step gpu_sampling_tests "${XLC_TESTS_TIMEOUT:-240}" "$out/gpu_sampling_tests.log" \
    "$bin/gpu/gpu_sampling_tests"
fi

# ---- 4. Benchmark --------------------------------------------------------------------------------
if [ "$run_bench" -eq 1 ]; then
  run_step kernel_bench "${XLC_BENCH_TIMEOUT:-300}" "$out/kernel_bench.log" \
    "$bin/gpu/kernel_bench" --json "$out/kernel_bench.json" "${bench_args[@]}"
  bash "$here/test/gpu/provenance.sh" --stamp "$provenance" "$out/kernel_bench.json"
fi

# ---- 5. Summary -----------------------------------------------------------------------------------
{
  echo
  echo "================ run_on_gpu summary ($((SECONDS - start_all)) s) ================"
  cat "$provenance"
  echo "XLC_REQUIRE_GPU=1: a skipped test counts as a failure"
  echo
  printf '%-22s %-8s %s\n' step status detail
  cat "$summary"
  if [ -f "$out/gpu_kernel_tests.log" ] && grep -q 'FAIL$' "$out/gpu_kernel_tests.log"; then
    echo "-- failing metrics (gpu_kernel_tests):"
    grep -B3 'FAIL$' "$out/gpu_kernel_tests.log" | grep -E '^\[gpu\]|FAIL$' | awk '!seen[$0]++' | head -n 30
  fi
  if [ -f "$out/kernel_bench.log" ]; then
    echo "-- kernel_bench:"
    sed -n '/^chunkwise forward/,/^  (state GB\/s/p' "$out/kernel_bench.log"
    sed -n '/^decode GEMM /,/^  (%3.35/p' "$out/kernel_bench.log"
  fi
  echo "logs: $out"
} > "$summary.tmp"
mv "$summary.tmp" "$summary"
cat "$summary"
exit "$status"
