#!/usr/bin/env bash
# Auto-tunes a model's kernels on the GPU and measures default against tuned, from the repository
# root, carrying .gpu (scripts/gpu-bundle.sh builds .gpu/bin/xlc-tune and the artifacts):
#
#   bash test/gpu/run_tune.sh [--model xlstm-125m] [--budget 300] [--prefill-batch 1,8]
#                             [--seq 2048] [--decode-batch 1,64]
#
# 1. random bf16 weights for the model; 2. xlc-tune compile (every valid variant into the kernel
# cache, timed); 3. xlc-tune run for prefill and decode_step at the batches given (each variant
# checked against the default's output, then timed; --budget seconds per function, resumable);
# 4. xlc-tune apply: the tuned artifact; 5. xlc-bench on the default and the tuned artifact, the
# same cases. The database, every JSON report and log go to $OUT/tune (else ./gpu-out/tune); the
# table of default against tuned is printed last.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="$here/.gpu/bin"
arts="$here/.gpu/artifacts"
model=xlstm-125m budget=300 prefill=1,8 seq=2048 decode=1,64
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --budget) budget="$2"; shift 2 ;;
    --prefill-batch) prefill="$2"; shift 2 ;;
    --seq) seq="$2"; shift 2 ;;
    --decode-batch) decode="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "run_tune.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
out="${OUT:-$here/gpu-out}/tune"
work="${TUNE_WORK:-/tmp/xlc-tune}"
mkdir -p "$work" "$out"
artifact="$arts/$model.xlca"
[ -f "$artifact" ] || { echo "run_tune.sh: no $artifact (scripts/gpu-bundle.sh)" >&2; exit 2; }
config="$here/models/$model/config.json"
[ -d "$work/w" ] || "$bin/xlc-random-weights" "$config" "$work/w" --seed 1 --dtype bf16 --fast \
  > "$out/weights.log"
db="$out/tuning.jsonl"

start=$(date +%s)
"$bin/xlc-tune" compile "$artifact" --json > "$out/compile.json" 2> "$out/compile.err"
compiled=$(date +%s)
"$bin/xlc-tune" run "$artifact" --weights "$work/w" --db "$db" --device cuda --function prefill \
  --batch "$prefill" --seq "$seq" --budget "$budget" --json > "$out/run-prefill.json" \
  2> "$out/run-prefill.err" || echo "prefill tuning exited $?" >> "$out/run-prefill.err"
"$bin/xlc-tune" run "$artifact" --weights "$work/w" --db "$db" --device cuda \
  --function decode_step --batch "$decode" --budget "$budget" --json > "$out/run-decode.json" \
  2> "$out/run-decode.err" || echo "decode tuning exited $?" >> "$out/run-decode.err"
tuned_at=$(date +%s)
"$bin/xlc-tune" apply "$artifact" --db "$db" -o "$work/tuned.xlca" > "$out/apply.txt"
"$bin/xlc-tune" check "$db" > "$out/check.txt" || true

first_prefill="${prefill%%,*}"
cases="prefill-b${first_prefill}-p${seq}"
for b in ${decode//,/ }; do cases="$cases,decode-b${b}-p128"; done
for which in default tuned; do
  a="$artifact"; [ "$which" = tuned ] && a="$work/tuned.xlca"
  "$bin/xlc-bench" --model "$a" --weights "$work/w" --device cuda --cases "$cases" --reps 5 \
    --warmup 1 --no-hf --output "$out/bench-$which.json" > "$out/bench-$which.txt" 2>&1 || true
done

python3 - "$out" "$((compiled - start))" "$((tuned_at - compiled))" <<'PY'
import json, sys
out, compile_s, tune_s = sys.argv[1], sys.argv[2], sys.argv[3]
def load(name):
    try:
        return json.load(open(f"{out}/{name}"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
c = load("compile.json")
if c:
    print(f"compile: {c['variants']} variants in {c['seconds']:.0f} s, "
          f"{sum(f['failed'] for f in c['families'].values())} failed")
print(f"tuning: {tune_s} s (compile {compile_s} s)")
for f in ("run-prefill.json", "run-decode.json"):
    rows = load(f) or []
    for r in rows:
        mark = "" if r["chosen"] == r["default"] else f"  -> {r['chosen']}"
        print(f"{r['family']:<22} B={r['batch']:<3} S={r['seq']:<5} {r['default_us']:9.1f} us "
              f"{r['chosen_us']:9.1f} us  {r['default_us'] / r['chosen_us']:5.2f}x{mark}")
d, t = load("bench-default.json"), load("bench-tuned.json")
if d and t:
    print(f"{'case':<24} {'figure':<28} {'default':>12} {'tuned':>12}")
    for a, b in zip(d.get("cases", []), t.get("cases", [])):
        def median(x):
            return x.get("figures", {}).get(x.get("primary_figure"), {}).get("median") or 0
        print(f"{a['name']:<24} {a.get('primary_figure', ''):<28} {median(a):12.2f} "
              f"{median(b):12.2f}")
PY
