#!/usr/bin/env bash
# Runs the GPU checks and measurements from a bundle made on the development machine by
# scripts/gpu-bundle.sh (.gpu/bin: binaries, .gpu/artifacts: compiled models), so no device time
# goes to building. From the repository root, carrying .gpu:
#
#   bash test/gpu/run_bundle.sh [--steps tests,parity-tiny,parity-7b,bench-7b]
#
# Steps (logs under $OUT, else ./gpu-out/; folders keep within the 8-file limit per folder):
#   tests        gpu_backend_tests: the CUDA backend against the CPU backend on whole models
#                (tiny, sigmoid/tied variant, 125M), graphs, errors, the kernel cache
#   parity-tiny  test/parity/run_parity.sh --configs tiny with the bundled xlc-run
#   parity-7b    the same for xLSTM 7B (writes and then reuses a 13.7 GB random checkpoint in
#                $PARITY_WORK, default /tmp/xlc-parity)
#   bench-7b     xlc-run on that 7B checkpoint: time to first token for 2048- and 16384-token
#                prompts, decode tokens/s at batch 1 and 64, prefill of 8 x 8192 tokens
#                (XLC_BENCH_CASES=b1-p2048,b1-p16384,b64-p128,b8-p8192 picks cases)
# A summary table is printed last. Exit status 1 if any step failed.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${OUT:-$here/gpu-out}"
steps="tests,parity-tiny,parity-7b,bench-7b"
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps="$2"; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "run_bundle.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
bin="$here/.gpu/bin"
arts="$here/.gpu/artifacts"
[ -x "$bin/xlc-run" ] || { echo "no bundle in .gpu/: run scripts/gpu-bundle.sh here first" >&2; exit 2; }
export PARITY_WORK="${PARITY_WORK:-/tmp/xlc-parity}"
export XLC_CACHE_DIR="${XLC_CACHE_DIR:-/tmp/xlc-kernel-cache}"
export PYTHONUNBUFFERED=1
mkdir -p "$out"
summary="$out/summary.txt"
: > "$summary"
status=0
record() { printf '%-12s %-8s %s\n' "$1" "$2" "$3" >> "$summary"; }
has() { [[ ",$steps," == *",$1,"* ]]; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee "$out/device.txt"

if has tests; then
  t=$SECONDS
  XLC_REPO_DIR="$here" XLC_GPU_ARTIFACTS="$arts" timeout 300 "$bin/gpu_backend_tests" \
    --gtest_output="json:$out/gpu_backend_tests.json" 2>&1 | tee "$out/gpu_backend_tests.log"
  rc=${PIPESTATUS[0]}
  counts="$(grep -c '^\[       OK \]' "$out/gpu_backend_tests.log") passed, $(grep -c '^\[  FAILED  \] .*(' "$out/gpu_backend_tests.log") failed, $(grep -c '^\[  SKIPPED \] .*(' "$out/gpu_backend_tests.log") skipped"
  record tests "$([ "$rc" -eq 0 ] && echo ok || echo FAIL)" "$counts, $((SECONDS - t)) s"
  [ "$rc" -eq 0 ] || status=1
fi

for c in tiny 7b; do
  has "parity-$c" || continue
  t=$SECONDS
  # The 7B lengths go into one xlc-run call (one weight load instead of five).
  extra=()
  [ "$c" = 7b ] && extra=(-- --7b-batched)
  OUT="$out/parity-$c" bash "$here/test/parity/run_parity.sh" --configs "$c" \
    --xlc-run "$bin/xlc-run" --tiny-artifact "$arts/xlstm-tiny.xlca" \
    --7b-artifact "$arts/xlstm-7b.xlca" "${extra[@]}" > "$out/parity-$c.console.log" 2>&1
  rc=$?
  tail -n 40 "$out/parity-$c.console.log"
  record "parity-$c" "$([ "$rc" -eq 0 ] && echo ok || echo FAIL)" "rc $rc, $((SECONDS - t)) s"
  [ "$rc" -eq 0 ] || status=1
done

if has bench-7b; then
  ckpt="$PARITY_WORK/hf-7b"
  bench="$out/bench-7b"
  mkdir -p "$bench"
  if [ ! -d "$ckpt" ]; then
    record bench-7b FAIL "no checkpoint $ckpt (run the parity-7b step first)"
    status=1
  else
    # ids FILE COUNT LENGTH SEED: COUNT lines of LENGTH random token ids in [3, 50000).
    ids() { python3 -c "import random,sys; r=random.Random(int(sys.argv[3])); print('\n'.join(' '.join(str(r.randrange(3,50000)) for _ in range(int(sys.argv[2]))) for _ in range(int(sys.argv[1]))))" "$2" "$3" "$4" > "$1"; }
    # case NAME COUNT LENGTH MAXTOKENS [xlc-run args]
    # Each case runs XLC_BENCH_REPS times (default 1), each time a fresh process with a warm
    # kernel cache; the table lists every run (take the median).
    bench_case() {
      local name="$1" count="$2" length="$3" tokens="$4" rep
      shift 4
      ids "$bench/$name.ids" "$count" "$length" 1
      for rep in $(seq 1 "${XLC_BENCH_REPS:-1}"); do
      timeout 300 "$bin/xlc-run" --model "$arts/xlstm-7b.xlca" --weights "$ckpt" \
        --prompt-ids "$bench/$name.ids" --max-tokens "$tokens" --ignore-eos --temperature 0 \
        --device cuda --json --verbose "$@" > "$bench/$name.json" 2> "$bench/$name.err"
      local rc=$?
      python3 - "$bench/$name.json" "$name" "$rc" <<'PY' | tee -a "$summary"
import json, sys
path, name, rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    s = json.load(open(path))["stats"]
    print(f"  {name:<12} ttft {s['time_to_first_token_ms']:8.1f} ms  decode "
          f"{s['decode_tokens_per_s']:9.1f} tok/s  prompt {s['prompt_tokens']} tokens, "
          f"generated {s['generated_tokens']}")
except Exception as e:
    print(f"  {name:<22} FAIL rc {rc}: {e}")
PY
      [ "$rc" -eq 0 ] || status=1
      done
    }
    t=$SECONDS
    record bench-7b run "xlc-run --json; details in bench-7b/"
    cases="${XLC_BENCH_CASES:-b1-p2048,b1-p16384,b64-p128,b8-p8192}"
    [[ ",$cases," == *",b1-p2048,"* ]] && bench_case b1-p2048 1 2048 256
    [[ ",$cases," == *",b1-p16384,"* ]] && bench_case b1-p16384 1 16384 32 --max-seq 16384
    [[ ",$cases," == *",b64-p128,"* ]] && bench_case b64-p128 64 128 64
    [[ ",$cases," == *",b8-p8192,"* ]] && bench_case b8-p8192 8 8192 2 --max-seq 8192
    record bench-7b done "$((SECONDS - t)) s"
  fi
fi

echo
echo "================ run_bundle summary ================"
cat "$out/device.txt"
cat "$summary"
exit "$status"
