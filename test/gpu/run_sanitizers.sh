#!/usr/bin/env bash
# Runs compute-sanitizer's four tools (memcheck, initcheck, racecheck, synccheck) over
#   (a) xlc-run on the tiny model (random weights from xlc-random-weights): two prompts of
#       different lengths (12 and 5 tokens, so a batch of 2 and a prefill per group), 4 decode
#       steps each, on the GPU (NVRTC kernels, cuBLASLt GEMMs, the warm-up, CUDA graphs), the
#       tokens sampled with top-k and top-p (so the sampling kernel's searches run too);
#   (b) gpu_kernel_tests filtered to a few small cases (row kernels, tiny chunkwise and decode),
# and prints one summary line per tool: "errors found: N" (the sum over both targets of what the
# tool's "ERROR SUMMARY" line reports). Run on the GPU machine from the repository root with the
# bundle of scripts/gpu-bundle.sh carried along (carry [".gpu"]), or point it at binaries:
#
#   bash test/gpu/run_sanitizers.sh [--tools memcheck,initcheck,racecheck,synccheck]
#        [--targets xlc-run,kernels] [--bin DIR] [--artifacts DIR] [--model NAME]
#        [--gtest-filter PATTERN] [--sanitizer PATH]
#
#   --tools LIST        which tools (default: all four)
#   --targets LIST      xlc-run, kernels (gpu_kernel_tests) or both (default)
#   --bin DIR           xlc-run, xlc-random-weights, gpu_kernel_tests (default .gpu/bin)
#   --artifacts DIR     compiled models, <model>.xlca (default .gpu/artifacts)
#   --model NAME        the model of models/ that xlc-run runs (default xlstm-tiny)
#   --gtest-filter P    gpu_kernel_tests cases (default: the row kernels, Gpu.ChunkwiseTiny,
#                       Gpu.DecodeTiny)
#   --sanitizer PATH    compute-sanitizer (default: $COMPUTE_SANITIZER, then PATH, then
#                       /usr/local/cuda/bin and /usr/local/cuda/compute-sanitizer)
#
# Logs go to $OUT if set, else ./gpu-out/sanitizers/ (at most 8 files): <tool>.log for each tool
# (the provenance block, then per target the command, the program's output and the sanitizer's
# report), summary.txt (printed last), provenance.txt (run_bundle.sh adds console.log). Each run
# has a time limit of $XLC_SANITIZER_TIMEOUT seconds (default 240); weights and prompt files go
# to a temporary directory. gpu_kernel_tests runs with XLC_REQUIRE_GPU=1: a skip is a failure.
# test/gpu/run_bundle.sh --steps sanitizers calls this script.
#
# Exit status: 0 when every tool reports 0 errors and every run finished with status 0; 1 when a
# tool reported errors, a program failed or a run timed out; 2 on a usage or setup error
# (no compute-sanitizer, a binary or the artifact missing).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${OUT:-$here/gpu-out/sanitizers}"
tools="memcheck,initcheck,racecheck,synccheck"
targets="xlc-run,kernels"
bin="$here/.gpu/bin"
arts="$here/.gpu/artifacts"
model="xlstm-tiny"
filter="Gpu.RmsNorm:Gpu.NormGate:Gpu.Swiglu:Gpu.SoftCap:Gpu.ChunkwiseTiny:Gpu.DecodeTiny"
sanitizer="${COMPUTE_SANITIZER:-}"
limit="${XLC_SANITIZER_TIMEOUT:-240}"
usage() { sed -n '/^set -uo/q;2,$p' "$0"; }
setup_error() { echo "run_sanitizers.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --tools|--targets|--bin|--artifacts|--model|--gtest-filter|--sanitizer)
      [ $# -ge 2 ] || setup_error "$1 needs a value (see --help)" ;;
  esac
  case "$1" in
    --tools) tools="$2"; shift ;;
    --targets) targets="$2"; shift ;;
    --bin) bin="$2"; shift ;;
    --artifacts) arts="$2"; shift ;;
    --model) model="$2"; shift ;;
    --gtest-filter) filter="$2"; shift ;;
    --sanitizer) sanitizer="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) setup_error "unknown argument $1 (see --help)" ;;
  esac
  shift
done
for t in ${tools//,/ }; do
  case "$t" in
    memcheck|initcheck|racecheck|synccheck) ;;
    *) setup_error "unknown tool $t (memcheck, initcheck, racecheck, synccheck)" ;;
  esac
done
for t in ${targets//,/ }; do
  case "$t" in
    xlc-run|kernels) ;;
    *) setup_error "unknown target $t (xlc-run, kernels)" ;;
  esac
done
has_target() { [[ ",$targets," == *",$1,"* ]]; }

# ---- What the runs need: fail now, clearly. ------------------------------------------------
if [ -z "$sanitizer" ]; then
  for candidate in "$(command -v compute-sanitizer 2>/dev/null)" \
                   /usr/local/cuda/bin/compute-sanitizer \
                   /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then sanitizer="$candidate"; break; fi
  done
fi
[ -n "$sanitizer" ] && [ -x "$sanitizer" ] ||
  setup_error "no compute-sanitizer (not on PATH, not in /usr/local/cuda/bin); pass --sanitizer PATH"
need_bin() {
  [ -x "$bin/$1" ] || setup_error "no $bin/$1 (make the bundle with scripts/gpu-bundle.sh and carry" \
    ".gpu, or pass --bin DIR)"
}
artifact="$arts/$model.xlca"
config="$here/models/$model/config.json"
if has_target xlc-run; then
  need_bin xlc-run
  need_bin xlc-random-weights
  [ -f "$artifact" ] || setup_error "no artifact $artifact (pass --artifacts DIR)"
  [ -f "$config" ] || setup_error "no $config (--model names a directory of models/)"
fi
has_target kernels && need_bin gpu_kernel_tests

mkdir -p "$out"
work="$(mktemp -d "${TMPDIR:-/tmp}/xlc-sanitizers-XXXXXX")"
trap 'rm -rf "$work"' EXIT

# Provenance (test/gpu/provenance.sh): run_bundle.sh's, else the bundle's, else this checkout's.
provenance="$out/provenance.txt"
if [ -n "${XLC_PROVENANCE:-}" ] && [ -f "$XLC_PROVENANCE" ]; then
  cp "$XLC_PROVENANCE" "$provenance"
elif [ -f "$here/.gpu/PROVENANCE" ]; then
  bash "$here/test/gpu/provenance.sh" --bundle "$here/.gpu/PROVENANCE" > "$provenance"
else
  bash "$here/test/gpu/provenance.sh" > "$provenance"
fi
version="$("$sanitizer" --version 2>&1 | grep -i -m1 'version' || echo unknown)"

# ---- Inputs of the xlc-run target. ---------------------------------------------------------
if has_target xlc-run; then
  if ! "$bin/xlc-random-weights" "$config" "$work/weights" --seed 10 > "$work/weights.log" 2>&1
  then
    cat "$work/weights.log" >&2
    setup_error "xlc-random-weights failed for $config"
  fi
  # Token ids in [3, 1000): below every vocabulary here, clear of the special ids 0..2.
  printf '%s\n' "17 254 3 999 42 7 512 88 123 5 600 31" "9 400 77 250 64" > "$work/prompts.ids"
fi
export XLC_REQUIRE_GPU=1

# run_target TOOL TARGET LOG: one sanitizer run, appended to LOG; prints "ERRORS RC".
run_target() {
  local tool="$1" target="$2" log="$3" report="$work/$1-$2.report" rc errors
  local cmd=()
  case "$target" in
    xlc-run)
      cmd=("$bin/xlc-run" --model "$artifact" --weights "$work/weights"
           --prompt-ids "$work/prompts.ids" --max-tokens 4 --temperature 0.8 --top-k 20
           --top-p 0.9 --seed 3 --ignore-eos
           --device cuda --json --verbose) ;;
    kernels)
      cmd=("$bin/gpu_kernel_tests" "--gtest_filter=$filter") ;;
  esac
  {
    echo "== $target under $tool"
    echo "\$ $sanitizer --tool $tool ${cmd[*]}"
  } >> "$log"
  timeout "$limit" "$sanitizer" --tool "$tool" --print-limit 50 --log-file "$report" \
    "${cmd[@]}" >> "$log" 2>&1
  rc=$?
  { echo "-- $tool report"; cat "$report" 2>/dev/null; echo "-- exit status $rc"; } >> "$log"
  # "========= ERROR SUMMARY: 3 errors"; racecheck may print only its own
  # "RACECHECK SUMMARY: N hazards displayed (E errors, W warnings)" (E counts). No summary: the
  # tool did not finish.
  errors="$(sed -n 's/.*ERROR SUMMARY: \([0-9][0-9]*\) error.*/\1/p' "$report" 2>/dev/null |
            tail -n 1)"
  [ -n "$errors" ] ||
    errors="$(sed -n 's/.*RACECHECK SUMMARY: .*(\([0-9][0-9]*\) error.*/\1/p' "$report" \
                2>/dev/null | tail -n 1)"
  echo "${errors:--} $rc"
}

summary="$out/summary.txt"
: > "$summary"
status=0
for tool in ${tools//,/ }; do
  log="$out/$tool.log"
  { echo "== provenance"; cat "$provenance"; echo "== compute-sanitizer: $sanitizer ($version)";
    echo "=="; } > "$log"
  t=$SECONDS
  total=0
  parts=()
  problems=()
  for target in ${targets//,/ }; do
    name="$target"
    [ "$target" = kernels ] && name=gpu_kernel_tests
    echo "[sanitizers] $tool: $name" >&2
    read -r errors rc < <(run_target "$tool" "$target" "$log")
    if [ "$errors" = "-" ]; then
      parts+=("$name: no summary")
      problems+=("$name: no ERROR SUMMARY (the tool did not finish, rc $rc)")
    else
      total=$((total + errors))
      parts+=("$name: $errors")
    fi
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
      problems+=("$name timed out after $limit s")
    elif [ "$rc" -ne 0 ]; then
      problems+=("$name exited with status $rc")
    fi
  done
  verdict=ok
  if [ "$total" -ne 0 ] || [ ${#problems[@]} -ne 0 ]; then
    verdict=FAIL
    status=1
  fi
  detail="$(IFS=,; echo "${parts[*]}" | sed 's/,/, /g')"
  line="$(printf '%-10s %-5s errors found: %s (%s), %s s' "$tool" "$verdict" "$total" "$detail" \
          "$((SECONDS - t))")"
  [ ${#problems[@]} -ne 0 ] && line="$line; $(IFS=';'; echo "${problems[*]}" | sed 's/;/; /g')"
  echo "$line" >> "$summary"
  echo "[sanitizers] $line" >&2
done

{
  echo "================ run_sanitizers summary ================"
  cat "$provenance"
  echo "compute-sanitizer: $sanitizer ($version)"
  echo "targets: ${targets}; xlc-run: $model, 2 prompts (12 and 5 tokens), 4 decode steps;" \
       "gpu_kernel_tests: $filter"
  echo
  cat "$summary"
  echo "logs: $out"
} > "$summary.tmp"
mv "$summary.tmp" "$summary"
echo
cat "$summary"
exit "$status"
