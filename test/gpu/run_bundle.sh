#!/usr/bin/env bash
# Runs the GPU checks and measurements from a bundle made on the development machine by
# scripts/gpu-bundle.sh (.gpu/bin: binaries, .gpu/artifacts: compiled models), so no device time
# goes to building. From the repository root, carrying .gpu:
#
#   bash test/gpu/run_bundle.sh [--steps tests,sampling,gemv,parity-tiny,parity-125m,parity-7b,bench-7b]
#   bash test/gpu/run_bundle.sh --steps sanitizers
#
# Steps (logs under $OUT, else ./gpu-out/; folders keep within the 8-file limit per folder):
#   tests        gpu_backend_tests: the CUDA backend against the CPU backend on whole models
#                (tiny, sigmoid/tied variant, 125M), graphs, errors, the kernel cache
#   cpu-vs-cuda-7b  gpu_backend_tests on xLSTM 7B itself (SevenB/*): the fp32 CPU backend as the
#                oracle of the CUDA backend, step by step under a bound derived from bf16 rounding
#                and end to end, and a 10 % error planted in each kernel in turn must fail the
#                step check (several minutes, ~30 GB of host memory; not in the default steps)
#   sampling     gpu_sampling_tests (the sampling kernel and the runtime's DeviceSampler against
#                the host sampler) and sampling_bench (per decode step: drawing on the GPU vs.
#                copying the logits and drawing on the host, batch 1-256, V = 50304); in sampling/
#   gemv         the decode GEMV (issue 10), in gemv/: gpu_kernel_tests GpuGemv.* (every epilogue,
#                m = 1..8, every runtime tiling and every 7B projection vs. the float64 reference),
#                kernel_bench --gemv-only (xlc's GEMV vs. cuBLASLt per 7B projection at m = 1, 2,
#                4, 8: us, GB/s, % of 3.35 TB/s), and gpu_backend_tests with XLC_GEMV=on (every
#                GEMM of at most 8 rows forced onto the GEMV kernel) and XLC_GEMV_PROLOGUES=on
#                (the row kernels absorbed into them; off by default); step gemv-on
#   chunkwise    the chunkwise kernels (issue 10), in chunkwise/: gpu_kernel_tests Gpu.ChunkFused and
#                GpuEmitted.MlstmKernels (every emitted mLSTM kernel vs. the float64 reference),
#                then kernel_bench --no-gemv for each of XLC_CHUNK_VARIANTS (default "fused L64;
#                fused L64 DV32": the compiler's fused form and its batch-1 variant) at B8 S8192
#                and B1 S2048, each checked on the timed shape first; one table in the summary.
#                Not in the default steps (~2 minutes)
#   parity-tiny  test/parity/run_parity.sh --configs tiny with the bundled xlc-run
#   parity-125m  the same for the 125M model, which has tied embeddings: transformers 5 stores
#                lm_head.weight anyway and uses it as the LM head, and so must xlc (issue 10)
#   parity-7b    the same for xLSTM 7B (writes and then reuses a 13.7 GB random checkpoint in
#                $PARITY_WORK, default /tmp/xlc-parity)
#   bench-7b     xlc-run on that 7B checkpoint: time to first token for 2048- and 16384-token
#                prompts, decode tokens/s at batch 1 and 64, prefill of 8 x 8192 tokens
#                (XLC_BENCH_CASES=b1-p2048,b1-p16384,b64-p128,b8-p8192 picks cases). Decode
#                after 128-token prompts at batch B in 1, 8, 64, 256: gB-p128 greedy, sB-p128
#                sampled (temperature 0.8, top-k 50, top-p 0.95), each also as gB-p128-host,
#                sB-p128-host with --host-sampling (logits copied, drawn on the host, as before);
#                XLC_BENCH_CASES=sampling runs all sixteen
#   load-7b      the 7B weight load (docs/weight-loading.md): xlc-run --verbose on that checkpoint
#                (or, without it, on $PARITY_WORK/xlc-random-7b, written once by
#                xlc-random-weights --dtype bf16), page cache warmed by a first run, then three
#                loads by the raw-bytes path and one by the host path (XLC_WEIGHT_UPLOAD=host),
#                each "... GiB of weights assembled and uploaded in X s (...)" line in the
#                summary; goal <= 3 s (not in the default steps; logs in load-7b/)
#   xlc-bench    xlc-bench on the same 7B checkpoint as load-7b (docs/xlc-bench.md): the cases of
#                XLC_BENCH_SET
#                (default all: issue 10's table, prefill from 1 x 512 to 2 x 32768 tokens, decode
#                at batch 1/8/64/256 after 128 and 8192 tokens, step profiles of a prefill and a
#                decode step), XLC_BENCH_REPS repeats (default 3) after one warm-up, every figure
#                with its ratio to the H100's limit and memory, transformers side by side on the
#                cases of XLC_BENCH_HF_CASES (default auto: those of issue 10's table; none:
#                no transformers) within
#                XLC_BENCH_HF_TIMEOUT s (default 240); table.txt, xlc-bench.json and the plots in
#                xlc-bench/, the table in the summary; the whole step within XLC_BENCH_TIMEOUT s
#                (default 570; the JSON is written after every backend, so a stopped run keeps
#                what it measured); the SM clock, power and temperature every 200 ms meanwhile in
#                xlc-bench-clocks.csv (their range in the summary). Not in the default steps:
#                6-9 minutes
#   ab           an A/B comparison on that 7B checkpoint in one lease: xlc-bench --no-hf on the
#                cases of XLC_AB_CASES (default decode-b1-p2048), once per value of XLC_AB_VALUES
#                (default "off on") of the backend option --XLC_AB_OPTION (default gemv-prologues;
#                also pdl, gemv, kept-counters), the values alternating for XLC_AB_ROUNDS rounds (default 2),
#                XLC_AB_REPS repeats each (default 3): each run's JSON and one table (value,
#                round, case, primary figure) in ab/ and in the summary. Not in the default steps
#   sanitizers   test/gpu/run_sanitizers.sh: compute-sanitizer memcheck, initcheck, racecheck and
#                synccheck over xlc-run on the tiny model and a few small gpu_kernel_tests cases
#                (not in the default steps: several minutes; logs in sanitizers/)
# A summary table is printed last, headed by the provenance of the bundle (.gpu/PROVENANCE: git
# commit, dirty or not, device-header hash; test/gpu/provenance.sh), which also heads every log
# and goes into every JSON record (key "provenance"; hf_parity.py reads $XLC_PROVENANCE).
# Exit status 1 if any step failed, 2 if the bundle is incomplete (checked before anything runs:
# the binaries, .gpu/PROVENANCE and the artifacts that the chosen steps need).
#
# A skipped test is a failure here: XLC_REQUIRE_GPU=1 is exported, so the GPU tests fail instead
# of skipping when there is no GPU, no libnvrtc or no artifact (test/gpu/harness/GpuSkip.h), and
# the tests step is FAIL if it still reports skipped tests or no test passed. The kernel cache is
# the default private per-user directory (~/.cache/xlc/kernels; $XLC_CACHE_DIR, if set, must be
# private too: see KernelCache.h).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${OUT:-$here/gpu-out}"
steps="tests,sampling,gemv,parity-tiny,parity-125m,parity-7b,bench-7b"
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps="$2"; shift ;;
    -h|--help) sed -n '/^set -uo/q;2,$p' "$0"; exit 0 ;;
    *) echo "run_bundle.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
has() { [[ ",$steps," == *",$1,"* ]]; }
for s in ${steps//,/ }; do
  case "$s" in
    tests|cpu-vs-cuda-7b|sampling|gemv|chunkwise|parity-tiny|parity-125m|parity-7b|bench-7b|load-7b|xlc-bench|ab|sanitizers) ;;
    *) echo "run_bundle.sh: unknown step $s (tests, cpu-vs-cuda-7b, sampling, gemv, chunkwise, parity-tiny," \
         "parity-125m, parity-7b, bench-7b, load-7b, xlc-bench, ab, sanitizers)" >&2; exit 2 ;;
  esac
done

# ---- The bundle must be complete: fail now, clearly, rather than skip or half-run later. -------
bin="$here/.gpu/bin"
arts="$here/.gpu/artifacts"
bundle_error() {
  echo "run_bundle.sh: $*" >&2
  echo "run_bundle.sh: make the bundle with scripts/gpu-bundle.sh on the development machine" \
    "and carry it (carry [\".gpu\"])" >&2
  exit 2
}
[ -d "$here/.gpu" ] || bundle_error "no .gpu/ here ($here)"
[ -x "$bin/xlc-run" ] || bundle_error "no $bin/xlc-run"
[ -f "$here/.gpu/PROVENANCE" ] ||
  bundle_error "no .gpu/PROVENANCE (a bundle from before provenance was recorded)"
[ -d "$arts" ] || bundle_error "no $arts"
needed=()
if has tests; then
  [ -x "$bin/gpu_backend_tests" ] || bundle_error "no $bin/gpu_backend_tests"
  needed+=(xlstm-tiny xlstm-sig-tied xlstm-125m xlstm-3heads xlstm-chunk128) # BackendTests.cpp's models
fi
if has gemv; then
  for b in gpu_kernel_tests kernel_bench gpu_backend_tests; do
    [ -x "$bin/$b" ] || bundle_error "no $bin/$b"
  done
  needed+=(xlstm-tiny xlstm-sig-tied xlstm-125m xlstm-3heads xlstm-chunk128)
fi
if has chunkwise; then
  for b in gpu_kernel_tests kernel_bench; do
    [ -x "$bin/$b" ] || bundle_error "no $bin/$b"
  done
fi
if has sampling; then
  for b in gpu_sampling_tests sampling_bench; do
    [ -x "$bin/$b" ] || bundle_error "no $bin/$b"
  done
fi
has parity-tiny && needed+=(xlstm-tiny)
has parity-125m && needed+=(xlstm-125m)
if has sanitizers; then
  for b in gpu_kernel_tests xlc-random-weights; do
    [ -x "$bin/$b" ] || bundle_error "no $bin/$b"
  done
  needed+=(xlstm-tiny)
fi
if has cpu-vs-cuda-7b; then
  [ -x "$bin/gpu_backend_tests" ] || bundle_error "no $bin/gpu_backend_tests"
  needed+=(xlstm-7b)
fi
if has xlc-bench || has ab; then
  [ -x "$bin/xlc-bench" ] || bundle_error "no $bin/xlc-bench"
fi
if has parity-7b || has bench-7b || has load-7b || has xlc-bench || has ab; then
  needed+=(xlstm-7b)
fi
if has load-7b || has xlc-bench || has ab; then
  [ -x "$bin/xlc-random-weights" ] || bundle_error "no $bin/xlc-random-weights"
fi
missing=()
for m in "${needed[@]}"; do
  [ -f "$arts/$m.xlca" ] || missing+=("$m.xlca")
done
[ ${#missing[@]} -eq 0 ] ||
  bundle_error "$arts lacks $(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')(needed by --steps $steps)"

export PARITY_WORK="${PARITY_WORK:-/tmp/xlc-parity}"
export PYTHONUNBUFFERED=1
export XLC_REQUIRE_GPU=1
mkdir -p "$out"
summary="$out/summary.txt"
: > "$summary"
status=0
record() { printf '%-12s %-8s %s\n' "$1" "$2" "$3" >> "$summary"; }

# Provenance: the bundle's (commit, tree, device-header hash) and this run's; heads every log.
provenance="$out/provenance.txt"
bash "$here/test/gpu/provenance.sh" --bundle "$here/.gpu/PROVENANCE" > "$provenance"
export XLC_PROVENANCE="$provenance"
# head_log FILE: starts FILE with the provenance block.
head_log() { { echo "== provenance"; cat "$provenance"; echo "=="; } > "$1"; }
# stamp_json FILE...: adds the provenance block to JSON records as "provenance": {key: value}.
stamp_json() { bash "$here/test/gpu/provenance.sh" --stamp "$provenance" "$@"; }
# checkpoint_7b LOG: prints the 7B checkpoint the 7B steps use: the parity step's
# ($PARITY_WORK/hf-7b) if there is one, else $PARITY_WORK/xlc-random-7b, written once by
# xlc-random-weights --dtype bf16 --fast (the counter-based generator on every core: seconds
# instead of minutes; its output appended to LOG).
checkpoint_7b() {
  local ckpt="$PARITY_WORK/hf-7b"
  if [ ! -d "$ckpt" ]; then
    ckpt="$PARITY_WORK/xlc-random-7b"
    [ -f "$ckpt/model.safetensors" ] ||
      "$bin/xlc-random-weights" "$here/models/xlstm-7b/config.json" "$ckpt" --seed 1 \
        --dtype bf16 --fast >> "$1" 2>&1
  fi
  echo "$ckpt"
}
# gtest_counts LOG: "P passed, F failed, S skipped" from the per-test result lines ("... (N ms)").
gtest_counts() {
  local p f s
  p="$(grep -cE '^\[       OK \] .* \([0-9]+ ms\)$' "$1")"
  f="$(grep -cE '^\[  FAILED  \] .* \([0-9]+ ms\)$' "$1")"
  s="$(grep -cE '^\[  SKIPPED \] .* \([0-9]+ ms\)$' "$1")"
  echo "$p passed, $f failed, $s skipped"
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$out/device.txt" 2>&1
cat "$provenance" "$out/device.txt"

# backend_tests STEP LOGNAME TIMEOUT FILTER: gpu_backend_tests with a gtest filter, as one step.
backend_tests() {
  local step="$1" name="$2" limit="$3" filter="$4" t=$SECONDS rc counts
  head_log "$out/$name.log"
  XLC_REPO_DIR="$here" XLC_GPU_ARTIFACTS="$arts" timeout "$limit" "$bin/gpu_backend_tests" \
    --gtest_filter="$filter" --gtest_output="json:$out/$name.json" 2>&1 | tee -a "$out/$name.log"
  rc=${PIPESTATUS[0]}
  stamp_json "$out/$name.json"
  counts="$(gtest_counts "$out/$name.log")"
  # A skip is a failure here (see the top): rc 0 with skipped tests, or with none passing, is
  # still FAIL.
  if [ "$rc" -eq 0 ] && [[ "$counts" == *", 0 skipped" ]] && [[ "$counts" != "0 passed,"* ]]; then
    record "$step" ok "$counts, $((SECONDS - t)) s"
  else
    record "$step" FAIL "$counts, rc $rc, $((SECONDS - t)) s"
    status=1
  fi
}
has tests && backend_tests tests gpu_backend_tests 300 '-SevenB/*'
has cpu-vs-cuda-7b && backend_tests cpu-vs-cuda-7b cpu_vs_cuda_7b 570 \
  'SevenB/*ScoreMatches*:SevenB/*DecodeSteps*:SevenB/*EveryKernel*:SevenB/*Planted*'

if has sampling; then
  t=$SECONDS
  mkdir -p "$out/sampling"
  head_log "$out/sampling/gpu_sampling_tests.log"
  timeout 300 "$bin/gpu_sampling_tests" --gtest_output="json:$out/sampling/gpu_sampling_tests.json" \
    >> "$out/sampling/gpu_sampling_tests.log" 2>&1
  rc=$?
  grep -E '^\[ *(OK|FAILED|SKIPPED) *\]' "$out/sampling/gpu_sampling_tests.log"
  stamp_json "$out/sampling/gpu_sampling_tests.json"
  counts="$(gtest_counts "$out/sampling/gpu_sampling_tests.log")"
  head_log "$out/sampling/sampling_bench.log"
  timeout 300 "$bin/sampling_bench" --json "$out/sampling/sampling_bench.json" 2>&1 |
    tee -a "$out/sampling/sampling_bench.log"
  brc=${PIPESTATUS[0]}
  stamp_json "$out/sampling/sampling_bench.json"
  if [ "$rc" -eq 0 ] && [ "$brc" -eq 0 ] && [[ "$counts" == *", 0 skipped" ]] &&
     [[ "$counts" != "0 passed,"* ]]; then
    record sampling ok "tests: $counts; sampling_bench rc $brc; $((SECONDS - t)) s"
  else
    record sampling FAIL "tests: $counts, rc $rc; sampling_bench rc $brc; $((SECONDS - t)) s"
    status=1
  fi
fi

if has gemv; then
  t=$SECONDS
  mkdir -p "$out/gemv"
  head_log "$out/gemv/gpu_gemv_tests.log"
  timeout 600 "$bin/gpu_kernel_tests" --gtest_filter='GpuGemv.*' \
    --gtest_output="json:$out/gemv/gpu_gemv_tests.json" >> "$out/gemv/gpu_gemv_tests.log" 2>&1
  rc=$?
  grep -E '^\[ *(OK|FAILED|SKIPPED) *\]|FAIL$' "$out/gemv/gpu_gemv_tests.log"
  stamp_json "$out/gemv/gpu_gemv_tests.json"
  counts="$(gtest_counts "$out/gemv/gpu_gemv_tests.log")"
  head_log "$out/gemv/kernel_bench_gemv.log"
  timeout 600 "$bin/kernel_bench" --gemv-only --json "$out/gemv/kernel_bench_gemv.json" 2>&1 |
    tee -a "$out/gemv/kernel_bench_gemv.log"
  brc=${PIPESTATUS[0]}
  stamp_json "$out/gemv/kernel_bench_gemv.json"
  if [ "$rc" -eq 0 ] && [ "$brc" -eq 0 ] && [[ "$counts" == *", 0 skipped" ]] &&
     [[ "$counts" != "0 passed,"* ]]; then
    record gemv ok "kernel tests: $counts; kernel_bench --gemv-only rc $brc; $((SECONDS - t)) s"
  else
    record gemv FAIL "kernel tests: $counts, rc $rc; kernel_bench --gemv-only rc $brc; $((SECONDS - t)) s"
    status=1
  fi
  # The prologues are off by default (slower at batch-1 decode): test them here, where every
  # small GEMM runs on the GEMV kernel.
  XLC_GEMV=on XLC_GEMV_PROLOGUES=on backend_tests gemv-on gemv/gpu_backend_tests_gemv_on 300 '-SevenB/*'
fi

if has chunkwise; then
  t=$SECONDS
  mkdir -p "$out/chunkwise"
  head_log "$out/chunkwise/gpu_chunk_tests.log"
  timeout 300 "$bin/gpu_kernel_tests" --gtest_filter='Gpu.ChunkFused:GpuEmitted.MlstmKernels' \
    --gtest_output="json:$out/chunkwise/gpu_chunk_tests.json" >> "$out/chunkwise/gpu_chunk_tests.log" 2>&1
  rc=$?
  grep -E '^\[ *(OK|FAILED|SKIPPED) *\]|FAIL$' "$out/chunkwise/gpu_chunk_tests.log"
  stamp_json "$out/chunkwise/gpu_chunk_tests.json"
  counts="$(gtest_counts "$out/chunkwise/gpu_chunk_tests.log")"
  brc=0
  i=0
  IFS=';' read -ra variants <<< "${XLC_CHUNK_VARIANTS:-fused L64;fused L64 DV32}"
  for v in "${variants[@]}"; do
    v="$(echo "$v" | sed 's/^ *//; s/ *$//')"
    i=$((i + 1))
    head_log "$out/chunkwise/kernel_bench_$i.log"
    echo "variant: $v" >> "$out/chunkwise/kernel_bench_$i.log"
    timeout 300 "$bin/kernel_bench" --no-gemv --only "$v" --reps 10 --warmup 2 \
      --json "$out/chunkwise/kernel_bench_$i.json" >> "$out/chunkwise/kernel_bench_$i.log" 2>&1 || brc=1
    stamp_json "$out/chunkwise/kernel_bench_$i.json"
  done
  if [ "$rc" -eq 0 ] && [ "$brc" -eq 0 ] && [[ "$counts" == *", 0 skipped" ]] &&
     [[ "$counts" != "0 passed,"* ]]; then
    record chunkwise ok "kernel tests: $counts; kernel_bench rc $brc; $((SECONDS - t)) s"
  else
    record chunkwise FAIL "kernel tests: $counts, rc $rc; kernel_bench rc $brc; $((SECONDS - t)) s"
    status=1
  fi
fi

for c in tiny 125m 7b; do
  has "parity-$c" || continue
  t=$SECONDS
  # The 7B lengths go into one xlc-run call (one weight load instead of five).
  extra=()
  [ "$c" = 7b ] && extra=(-- --7b-batched)
  head_log "$out/parity-$c.console.log"
  OUT="$out/parity-$c" bash "$here/test/parity/run_parity.sh" --configs "$c" \
    --xlc-run "$bin/xlc-run" --tiny-artifact "$arts/xlstm-tiny.xlca" \
    --7b-artifact "$arts/xlstm-7b.xlca" --125m-artifact "$arts/xlstm-125m.xlca" "${extra[@]}" \
    >> "$out/parity-$c.console.log" 2>&1
  rc=$?
  tail -n 40 "$out/parity-$c.console.log"
  record "parity-$c" "$([ "$rc" -eq 0 ] && echo ok || echo FAIL)" "rc $rc, $((SECONDS - t)) s"
  [ "$rc" -eq 0 ] || status=1
done

if has sanitizers; then
  t=$SECONDS
  # Its own folder (at most 8 files): a log per tool, summary.txt, provenance.txt, console.log.
  mkdir -p "$out/sanitizers"
  OUT="$out/sanitizers" bash "$here/test/gpu/run_sanitizers.sh" --bin "$bin" --artifacts "$arts" \
    > "$out/sanitizers/console.log" 2>&1
  rc=$?
  tail -n 12 "$out/sanitizers/console.log"
  errors="$(grep -h 'errors found' "$out/sanitizers/summary.txt" 2>/dev/null |
            awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $5}')"
  record sanitizers "$([ "$rc" -eq 0 ] && echo ok || echo FAIL)" \
    "errors found: ${errors:-none reported}; rc $rc, $((SECONDS - t)) s"
  [ "$rc" -eq 0 ] || status=1
fi

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
      local name="$1" count="$2" length="$3" tokens="$4" rep greedy=(--temperature 0)
      shift 4
      [[ " $* " == *" --temperature "* ]] && greedy=()
      ids "$bench/$name.ids" "$count" "$length" 1
      for rep in $(seq 1 "${XLC_BENCH_REPS:-1}"); do
      head_log "$bench/$name.err"
      timeout 300 "$bin/xlc-run" --model "$arts/xlstm-7b.xlca" --weights "$ckpt" \
        --prompt-ids "$bench/$name.ids" --max-tokens "$tokens" --ignore-eos "${greedy[@]}" \
        --device cuda --json --verbose "$@" > "$bench/$name.json" 2>> "$bench/$name.err"
      local rc=$?
      stamp_json "$bench/$name.json"
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
    # Decode with the tokens drawn on the GPU (the default) or on the host (-host), greedy (g)
    # or sampled (s), after 128-token prompts; "sampling" stands for all sixteen.
    for b in 1 8 64 256; do
      for kind in g s; do
        for where in "" -host; do
          name="$kind$b-p128$where"
          [[ ",$cases," == *",$name,"* || ",$cases," == *",sampling,"* ]] || continue
          args=()
          [ "$kind" = s ] && args+=(--temperature 0.8 --top-k 50 --top-p 0.95 --seed 1)
          [ "$where" = -host ] && args+=(--host-sampling)
          bench_case "$name" "$b" 128 64 "${args[@]}"
        done
      done
    done
    record bench-7b done "$((SECONDS - t)) s"
  fi
fi

if has load-7b; then
  load="$out/load-7b"
  mkdir -p "$load"
  t=$SECONDS
  ckpt="$(checkpoint_7b "$load/random-weights.log")"
  if [ ! -f "$ckpt/config.json" ]; then
    record load-7b FAIL "no checkpoint $ckpt (see load-7b/random-weights.log)"
    status=1
  else
    echo "3 5 7" > "$load/prompt.ids"
    # load NAME [VAR=VALUE...]: one xlc-run (one token), its weight-load line into the summary.
    load_run() {
      local name="$1"
      shift
      head_log "$load/$name.err"
      env "$@" timeout 300 "$bin/xlc-run" --model "$arts/xlstm-7b.xlca" --weights "$ckpt" \
        --prompt-ids "$load/prompt.ids" --max-tokens 1 --temperature 0 --device cuda \
        --verbose > /dev/null 2>> "$load/$name.err"
      local rc=$? line
      line="$(grep -h 'assembled and uploaded' "$load/$name.err" | tail -n 1)"
      if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
        echo "  $name FAIL rc $rc (see load-7b/$name.err)" | tee -a "$summary"
        status=1
      else
        echo "  $name: ${line#\[xlc\] }" | tee -a "$summary"
      fi
    }
    record load-7b run "xlc-run --verbose on $ckpt; details in load-7b/"
    load_run warm-up XLC_WEIGHT_UPLOAD=raw
    for rep in 1 2 3; do load_run "raw-$rep" XLC_WEIGHT_UPLOAD=raw; done
    load_run host XLC_WEIGHT_UPLOAD=host
    record load-7b done "$((SECONDS - t)) s"
  fi
fi

if has xlc-bench; then
  xb="$out/xlc-bench"
  mkdir -p "$xb"
  t=$SECONDS
  # At most 8 files: progress.log, table.txt, xlc-bench.json, hf-request.json,
  # hf-response.json and the three plots.
  head_log "$xb/progress.log"
  ckpt="$(checkpoint_7b "$xb/progress.log")"
  if [ ! -f "$ckpt/config.json" ]; then
    record xlc-bench FAIL "no checkpoint $ckpt (see xlc-bench/progress.log)"
    status=1
  else
    echo "checkpoint: $ckpt" >> "$xb/progress.log"
    # The SM clock and power while it runs (a kernel timed alone can run at a higher clock than
    # inside a prefill whose GEMMs hold the card at its power limit): xlc-bench-clocks.csv.
    clocks="$out/xlc-bench-clocks.csv"
    sampler=""
    if command -v nvidia-smi > /dev/null; then
      nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu \
        --format=csv,noheader,nounits -lms 200 > "$clocks" 2> /dev/null &
      sampler=$!
    fi
    hf_args=(--hf-cases "${XLC_BENCH_HF_CASES:-auto}")
    [ "${XLC_BENCH_HF_CASES:-auto}" = none ] && hf_args=(--no-hf)
    timeout "${XLC_BENCH_TIMEOUT:-570}" "$bin/xlc-bench" --model "$arts/xlstm-7b.xlca" \
      --weights "$ckpt" --device cuda --cases "${XLC_BENCH_SET:-all}" \
      --reps "${XLC_BENCH_REPS:-3}" "${hf_args[@]}" \
      --hf-timeout "${XLC_BENCH_HF_TIMEOUT:-240}" --scripts-dir "$here/scripts" \
      --provenance "$provenance" --output "$xb/xlc-bench.json" --plots "$xb" \
      > "$xb/table.txt" 2>> "$xb/progress.log"
    rc=$?
    if [ -n "$sampler" ]; then
      kill "$sampler" 2> /dev/null
      wait "$sampler" 2> /dev/null
      python3 - "$clocks" >> "$xb/progress.log" <<'PY'
import statistics, sys
sm, watts = [], []
for line in open(sys.argv[1]):
    f = [x.strip() for x in line.split(",")]
    try:
        sm.append(float(f[1])); watts.append(float(f[2]))
    except (IndexError, ValueError):
        pass
if sm:
    print(f"SM clock while xlc-bench ran: min {min(sm):.0f}, median {statistics.median(sm):.0f}, "
          f"max {max(sm):.0f} MHz; power median {statistics.median(watts):.0f} W, max "
          f"{max(watts):.0f} W ({len(sm)} samples, xlc-bench-clocks.csv)")
PY
    fi
    cat "$xb/table.txt"
    counts="$(python3 - "$xb/xlc-bench.json" <<'PY'
import json, sys
try:
    doc = json.load(open(sys.argv[1]))
    by = {}
    for c in doc["cases"]:
        by[c["status"]] = by.get(c["status"], 0) + 1
    print(", ".join(f"{n} {s}" for s, n in sorted(by.items())) +
          f"; transformers {doc['hf']['status']}; {len(doc['plots'])} plots" +
          ("" if doc.get("complete") else "; INCOMPLETE"))
except Exception as e:
    print(f"no JSON ({e})")
PY
)"
    record xlc-bench "$([ "$rc" -eq 0 ] && echo ok || echo FAIL)" \
      "rc $rc, cases: $counts, $((SECONDS - t)) s; details in xlc-bench/"
    [ "$rc" -eq 0 ] || status=1
  fi
fi

if has ab; then
  abd="$out/ab"
  mkdir -p "$abd"
  t=$SECONDS
  head_log "$abd/progress.log"
  ckpt="$(checkpoint_7b "$abd/progress.log")"
  option="${XLC_AB_OPTION:-gemv-prologues}"
  ab_rc=0
  for round in $(seq 1 "${XLC_AB_ROUNDS:-2}"); do
    for value in ${XLC_AB_VALUES:-off on}; do
      echo "== --$option $value, round $round" >> "$abd/progress.log"
      timeout 300 "$bin/xlc-bench" --model "$arts/xlstm-7b.xlca" --weights "$ckpt" --device cuda \
        --cases "${XLC_AB_CASES:-decode-b1-p2048}" --reps "${XLC_AB_REPS:-3}" --no-hf \
        "--$option" "$value" --provenance "$provenance" \
        --output "$abd/$option-$value-$round.json" >> "$abd/progress.log" 2>&1 || ab_rc=1
    done
  done
  python3 - "$abd" "$option" > "$abd/table.txt" <<'PY'
import glob, json, os, sys
rows = []
for path in sorted(glob.glob(os.path.join(sys.argv[1], sys.argv[2] + "-*.json"))):
    value, rnd = os.path.basename(path)[len(sys.argv[2]) + 1:-5].rsplit("-", 1)
    doc = json.load(open(path))
    for c in doc.get("cases", []):
        fig = c.get("figures", {}).get(c.get("primary_figure") or "", {})
        rows.append((c["name"], value, int(rnd), c.get("primary_figure"), fig.get("median"), fig.get("unit")))
print(f"{'case':24} {'--' + sys.argv[2]:>18} {'round':>5}  median")
for name, value, rnd, figure, median, unit in sorted(rows):
    print(f"{name:24} {value:>18} {rnd:>5}  {median:.4g} {unit} ({figure})" if median is not None
          else f"{name:24} {value:>18} {rnd:>5}  -")
PY
  record ab "$([ "$ab_rc" -eq 0 ] && echo ok || echo FAIL)" \
    "--$option ${XLC_AB_VALUES:-off on}, $((SECONDS - t)) s; ab/table.txt"
  [ "$ab_rc" -eq 0 ] || status=1
fi

{
  echo "================ run_bundle summary ================"
  cat "$provenance"
  echo "device: $(head -n 1 "$out/device.txt")"
  echo "XLC_REQUIRE_GPU=1: a skipped test counts as a failure"
  echo
  cat "$summary"
  if [ -f "$out/xlc-bench/table.txt" ]; then
    echo "-- xlc-bench (xlc-bench/table.txt, profiles there too):"
    sed -n '1,/^$/p;/^case /,/^$/p' "$out/xlc-bench/table.txt"
    grep -h "SM clock while xlc-bench ran" "$out/xlc-bench/progress.log" 2> /dev/null
  fi
  if [ -f "$out/ab/table.txt" ]; then
    echo "-- A/B (ab/table.txt):"
    cat "$out/ab/table.txt"
  fi
  for f in "$out"/chunkwise/kernel_bench_*.log; do
    [ -f "$f" ] || continue
    echo "-- chunkwise ($(sed -n 's/^variant: //p' "$f")):"
    sed -n '/^chunkwise forward /,/^  (goal/p' "$f"
  done
  if [ -f "$out/gemv/kernel_bench_gemv.log" ]; then
    echo "-- decode GEMMs (kernel_bench --gemv-only):"
    sed -n '/^decode GEMM /,/^  (%3.35/p' "$out/gemv/kernel_bench_gemv.log"
  fi
  echo "logs: $out"
} > "$summary.tmp"
mv "$summary.tmp" "$summary"
echo
cat "$summary"
exit "$status"
