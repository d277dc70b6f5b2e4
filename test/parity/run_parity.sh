#!/usr/bin/env bash
# Hugging Face parity check of xlc-run on the GPU machine: builds xlc-run in the runtime-only tree
# and runs test/parity/hf_parity.py (xlc-run's logits against transformers' xLSTM, random weights).
#
#   bash test/parity/run_parity.sh [--configs tiny,7b,125m] [--skip-build] [--xlc-run PATH]
#        [--tiny-artifact PATH] [--7b-artifact PATH] [--125m-artifact PATH]
#        [-- more hf_parity.py arguments]
#
# Run from anywhere; relative paths (artifacts, --xlc-run) are taken from the repository root.
# Needs:
#   - to build: what test/gpu/run_on_gpu.sh needs (cmake, ninja, g++, CUDA in /usr/local/cuda, and
#     .deps/ made by scripts/vendor-headers.sh on the development machine and carried along:
#     carry [".deps"]). Only the target xlc-run is built, with tests off, in its own build tree
#     ($XLC_PARITY_BUILD_DIR, default build-parity/), so GoogleTest is not needed and
#     run_on_gpu.sh's build-gpu/ is left alone.
#   - the artifacts, compiled on the development machine (the compiler needs MLIR, which the GPU
#     machine lacks); .parity/ is git-ignored: carry it (carry [".parity"]), or use the .gpu/ bundle of
#     scripts/gpu-bundle.sh and test/gpu/run_bundle.sh, which pass its artifacts here:
#       build/tools/xlc-compile/xlc-compile models/xlstm-tiny/config.json -o .parity/xlstm-tiny.xlca
#       build/tools/xlc-compile/xlc-compile models/xlstm-7b/config.json -o .parity/xlstm-7b.xlca
#       build/tools/xlc-compile/xlc-compile models/xlstm-125m/config.json -o .parity/xlstm-125m.xlca
#   - Python 3 ($PYTHON, default python3) with torch (CUDA), transformers (xLSTM), safetensors,
#     numpy; disk for the checkpoints under $PARITY_WORK (default /tmp/xlc-parity; 7b: 13.7 GB).
#
# Steps (each logged; logs go to $OUT if set, else ./parity-out/, at most 8 files):
#   1. versions, configure, build xlc-run           -> build.log
#   2. hf_parity.py --configs tiny                  -> parity-tiny.log, parity-tiny.json,
#                                                      xlc-run-tiny.log
#   3. hf_parity.py --configs 7b                    -> parity-7b.log, parity-7b.json,
#                                                      xlc-run-7b.log
#      hf_parity.py --configs 125m (tied embeddings, only when asked for: --configs 125m; a
#      stored lm_head.weight is the LM head, issue 10)
#                                                   -> parity-125m.log, parity-125m.json,
#                                                      xlc-run-125m.log (give it an OUT of its
#                                                      own to keep within 8 files)
#   4. a summary (steps, then the parity tables), printed last -> summary.txt
# Provenance: summary.txt, build.log and parity-<cfg>.log begin with the provenance block, and
# hf_parity.py puts it into parity-<cfg>.json ("provenance") and its table: the git commit, clean
# or dirty, and the device-header hash of xlc-run. It is the file $XLC_PROVENANCE when that is set
# (run_bundle.sh sets it to the bundle's), else made here by test/gpu/provenance.sh (commit from
# .git, else from .gpu/PROVENANCE; the hash from the build tree of xlc-run).
# Exit status: 0 if every check passed, 1 if a parity check failed or a step timed out, 2 if the
# build or the setup (artifact, xlc-run, Python packages) is missing.
# Time limits per step, seconds (env): XLC_BUILD_TIMEOUT (600), XLC_PARITY_TINY_TIMEOUT (480),
# XLC_PARITY_7B_TIMEOUT (540), XLC_PARITY_125M_TIMEOUT (480). On its limit hf_parity.py gets SIGTERM and still writes its JSON
# and table (partial).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${OUT:-$here/parity-out}"
build="${XLC_PARITY_BUILD_DIR:-$here/build-parity}"
deps="$here/.deps"
py="${PYTHON:-python3}"
jobs="$(nproc 2>/dev/null || echo 8)"
configs="tiny,7b"
skip_build=0
xlc_run=""
tiny_artifact=".parity/xlstm-tiny.xlca"
b7_artifact=".parity/xlstm-7b.xlca"
m125_artifact=".parity/xlstm-125m.xlca"
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --configs) configs="$2"; shift ;;
    --skip-build) skip_build=1 ;;
    --xlc-run) xlc_run="$2"; skip_build=1; shift ;;
    --tiny-artifact) tiny_artifact="$2"; shift ;;
    --7b-artifact) b7_artifact="$2"; shift ;;
    --125m-artifact) m125_artifact="$2"; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '/^set -euo/q;2,$p' "$0"; exit 0 ;;
    *) echo "run_parity.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
for c in ${configs//,/ }; do
  case "$c" in
    tiny|7b|125m) ;;
    *) echo "run_parity.sh: unknown config $c (tiny, 7b, 125m)" >&2; exit 2 ;;
  esac
done
export PYTHONUNBUFFERED=1
export PARITY_WORK="${PARITY_WORK:-/tmp/xlc-parity}"
cd "$here"
mkdir -p "$out"
summary="$out/summary.txt"
: > "$summary"
log() { echo "[run_parity] $*"; }
record() { printf '%-16s %-8s %s\n' "$1" "$2" "$3" >> "$summary"; }
start_all=$SECONDS
status=0

# The provenance block: the caller's ($XLC_PROVENANCE), else made here, in a temporary file ($OUT
# keeps to 8 files) that is refreshed once xlc-run is known (make_provenance BUILD_DIR).
own_provenance=0
if [ -z "${XLC_PROVENANCE:-}" ] || [ ! -f "$XLC_PROVENANCE" ]; then
  own_provenance=1
  XLC_PROVENANCE="$(mktemp "${TMPDIR:-/tmp}/xlc-parity-provenance.XXXXXX")"
  bash "$here/test/gpu/provenance.sh" > "$XLC_PROVENANCE"
fi
export XLC_PROVENANCE
make_provenance() {
  if [ "$own_provenance" -eq 1 ]; then
    bash "$here/test/gpu/provenance.sh" --build-dir "$1" > "$XLC_PROVENANCE"
  fi
}
provenance_block() { echo "== provenance"; cat "$XLC_PROVENANCE"; echo "=="; }

finish() {
  {
    echo
    echo "================ run_parity summary ($((SECONDS - start_all)) s) ================"
    cat "$XLC_PROVENANCE"
    echo
    printf '%-16s %-8s %s\n' step status detail
    cat "$summary"
    for c in ${configs//,/ }; do
      if [ -f "$out/parity-$c.log" ]; then
        echo
        sed -n '/^==== parity summary/,/^==== end of parity summary/p' "$out/parity-$c.log"
      fi
    done
    echo "logs: $out"
  } > "$summary.tmp"
  mv "$summary.tmp" "$summary"
  cat "$summary"
  if [ "$own_provenance" -eq 1 ]; then rm -f "$XLC_PROVENANCE"; fi
  exit "$1"
}

# ---- 1. Versions, configure, build ---------------------------------------------------------------
build_log="$out/build.log"
{
  provenance_block
  echo "== versions"
  date -u
  (nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
     || echo "nvidia-smi: not available") 2>&1
  (/usr/local/cuda/bin/nvcc --version | tail -2 || echo "nvcc: not found") 2>&1
  cmake --version 2>/dev/null | head -1 || echo "cmake: not found"
  g++ --version 2>/dev/null | head -1 || echo "g++: not found"
  echo "ninja $(ninja --version 2>/dev/null || echo 'not found')"
  "$py" -c 'import sys, torch, transformers, numpy; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__, "numpy", numpy.__version__)' 2>&1 \
    || echo "python packages: import failed"
  df -h "$(dirname "$PARITY_WORK")" 2>/dev/null | tail -1 | awk '{print "disk for PARITY_WORK: " $4 " free"}' || true
  if [ -f "$deps/VERSIONS" ]; then sed 's/^/vendored: /' "$deps/VERSIONS"; fi
} 2>&1 | tee "$build_log"

if [ -n "$xlc_run" ]; then
  if [ ! -x "$xlc_run" ]; then
    log "--xlc-run $xlc_run: not an executable file" | tee -a "$build_log"
    record xlc-run FAIL "not executable: $xlc_run"
    finish 2
  fi
  bin="$(cd "$(dirname "$xlc_run")" && pwd)/$(basename "$xlc_run")"
  record build skipped "using --xlc-run $bin"
elif [ "$skip_build" -eq 1 ]; then
  bin="$build/tools/xlc-run/xlc-run"
  record build skipped "--skip-build: $bin"
else
  if [ ! -f "$deps/lib/cmake/fmt/fmtConfig.cmake" ]; then
    log "missing $deps: run scripts/vendor-headers.sh on the development machine first and carry .deps" \
      | tee -a "$build_log"
    record build FAIL "no .deps/ (scripts/vendor-headers.sh)"
    finish 2
  fi
  t0=$SECONDS
  log "configuring $build (runtime only, tests off) and building xlc-run with $jobs jobs" \
    | tee -a "$build_log"
  set +e
  # shellcheck disable=SC2016  # the inner script reads its positional arguments
  timeout --signal=TERM --kill-after=10 "${XLC_BUILD_TIMEOUT:-600}" bash -c '
    set -e
    cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DXLC_BUILD_COMPILER=OFF -DXLC_BUILD_TESTS=OFF -DCMAKE_PREFIX_PATH="$3" \
      -Dnlohmann_json_DIR="$3/lib/cmake/nlohmann_json" -DCLI11_DIR="$3/lib/cmake/CLI11" \
      -Dfmt_DIR="$3/lib/cmake/fmt" -DCUDAToolkit_ROOT=/usr/local/cuda
    cmake --build "$2" --target xlc-run -j "$4"' _ "$here" "$build" "$deps" "$jobs" \
    >> "$build_log" 2>&1
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "$build_log"
    log "build failed (rc $rc; full log: $build_log)"
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
      record build TIMEOUT "$((SECONDS - t0)) s, see build.log"
    else
      record build FAIL "$((SECONDS - t0)) s, see build.log"
    fi
    finish 2
  fi
  record build ok "$((SECONDS - t0)) s"
  bin="$build/tools/xlc-run/xlc-run"
fi
if [ ! -x "$bin" ]; then
  log "no executable xlc-run at $bin" | tee -a "$build_log"
  record xlc-run FAIL "not found: $bin"
  finish 2
fi
# xlc-run's build tree (<build>/tools/xlc-run/xlc-run) has the device-header hash it embeds.
make_provenance "$(cd "$(dirname "$bin")/../.." && pwd)"
provenance_block >> "$build_log"

# ---- 2.-3. Parity, one hf_parity.py run per config ---------------------------------------------
# run_parity CONFIG ARTIFACT-OPTION ARTIFACT LIMIT
run_parity() {
  local c="$1" opt="$2" artifact="$3" limit="$4" t=$SECONDS rc=0
  local logfile="$out/parity-$c.log"
  if [ ! -f "$artifact" ]; then
    provenance_block > "$logfile"
    {
      log "artifact $artifact for $c is missing. Make it on the development machine with"
      log "  build/tools/xlc-compile/xlc-compile models/xlstm-$c/config.json -o $artifact"
      log "and carry it (carry [\".parity\"]), or pass $opt PATH."
    } | tee -a "$logfile"
    record "parity-$c" FAIL "no artifact $artifact"
    if [ "$status" -eq 0 ]; then status=2; fi
    return 0
  fi
  log "running hf_parity.py --configs $c (limit ${limit} s)"
  provenance_block > "$logfile"
  set +e
  timeout --signal=TERM --kill-after=30 "$limit" \
    "$py" "$here/test/parity/hf_parity.py" --configs "$c" --xlc-run "$bin" \
      "$opt" "$artifact" --out "$out/parity-$c.json" --xlc-log "$out/xlc-run-$c.log" \
      "${extra[@]}" 2>&1 | tee -a "$logfile"
  rc="${PIPESTATUS[0]}"
  set -e
  local detail="rc $rc, $((SECONDS - t)) s"
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    record "parity-$c" TIMEOUT "$detail (partial results in parity-$c.json)"
    status=1
  elif [ "$rc" -eq 2 ]; then
    record "parity-$c" ERROR "$detail (setup: see parity-$c.log)"
    if [ "$status" -eq 0 ]; then status=2; fi
  elif [ "$rc" -ne 0 ]; then
    record "parity-$c" FAIL "$detail"
    status=1
  else
    record "parity-$c" ok "$detail"
  fi
  return 0
}

for c in ${configs//,/ }; do
  case "$c" in
    tiny) run_parity tiny --tiny-artifact "$tiny_artifact" "${XLC_PARITY_TINY_TIMEOUT:-480}" ;;
    7b) run_parity 7b --7b-artifact "$b7_artifact" "${XLC_PARITY_7B_TIMEOUT:-540}" ;;
    125m) run_parity 125m --125m-artifact "$m125_artifact" "${XLC_PARITY_125M_TIMEOUT:-480}" ;;
  esac
done

# ---- 4. Summary -----------------------------------------------------------------------------------
finish "$status"
