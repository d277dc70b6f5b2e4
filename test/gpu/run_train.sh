#!/usr/bin/env bash
# Trains the tiny model with xlc-train on the CPU backend (fp32, the oracle) and on the CUDA
# backend (bf16 activations, f32 gradients and master weights) from the same random weights, the
# same token file and the same settings, and compares the two loss curves step by step: they
# agree to what bf16 rounding implies while the models are close, and both fall. Then a longer
# CUDA run for the tokens/s of a training step. From the repository root, carrying .gpu
# (scripts/gpu-bundle.sh):
#
#   bash test/gpu/run_train.sh --data <file.tok> [--steps 30] [--batch 8] [--seq 128]
#
# Logs and the run directories' log.jsonl under $OUT/train (else ./gpu-out/train); the table is
# printed last.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="$here/.gpu/bin"
arts="$here/.gpu/artifacts"
data="" steps=30 batch=8 seq=128
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --seq) seq="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "run_train.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$data" ] || { echo "run_train.sh: --data <file.tok> is required" >&2; exit 2; }
out="${OUT:-$here/gpu-out}/train"
work="${TRAIN_WORK:-/tmp/xlc-train}"
rm -rf "$work" && mkdir -p "$work" "$out"
"$bin/xlc-random-weights" "$here/models/xlstm-tiny/config.json" "$work/w" --seed 5 --dtype bf16 \
  > "$out/weights.log"
common=(--model "$arts/xlstm-tiny-train.xlca" --weights "$work/w" --data "$data" --batch "$batch"
        --seq "$seq" --lr 3e-3 --warmup 5 --schedule cosine --json)
"$bin/xlc-train" "${common[@]}" --steps "$steps" --out "$work/cpu" --device cpu \
  > "$out/cpu.json" 2> "$out/cpu.err"
"$bin/xlc-train" "${common[@]}" --steps "$steps" --out "$work/cuda" --device cuda \
  > "$out/cuda.json" 2> "$out/cuda.err"
cp "$work/cpu/log.jsonl" "$out/cpu.log.jsonl"
cp "$work/cuda/log.jsonl" "$out/cuda.log.jsonl"
# Throughput: a longer CUDA run (steps 4x), its last steps' median.
"$bin/xlc-train" "${common[@]}" --out "$work/cuda-long" --device cuda \
  --steps $((steps * 4)) --quiet > "$out/cuda-long.json" 2> "$out/cuda-long.err" || true
cp "$work/cuda-long/log.jsonl" "$out/cuda-long.log.jsonl" 2>/dev/null || true
python3 - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
def load(name):
    try:
        return [json.loads(l) for l in open(f"{out}/{name}.log.jsonl") if '"loss"' in l]
    except FileNotFoundError:
        return []
cpu, cuda, long = load("cpu"), load("cuda"), load("cuda-long")
print(f"{'step':>5} {'cpu loss':>10} {'cuda loss':>10} {'|diff|':>8} {'cpu |g|':>9} {'cuda |g|':>9}")
worst = 0.0
for a, b in zip(cpu, cuda):
    d = abs(a["loss"] - b["loss"])
    worst = max(worst, d)
    if a["step"] <= 5 or a["step"] % 5 == 0:
        print(f"{a['step']:>5} {a['loss']:>10.4f} {b['loss']:>10.4f} {d:>8.4f} "
              f"{a['grad_norm']:>9.4f} {b['grad_norm']:>9.4f}")
print(f"max |loss cpu - loss cuda| over {min(len(cpu), len(cuda))} steps: {worst:.4f}")
if cpu and cuda:
    print(f"loss first -> last: cpu {cpu[0]['loss']:.4f} -> {cpu[-1]['loss']:.4f}, "
          f"cuda {cuda[0]['loss']:.4f} -> {cuda[-1]['loss']:.4f}")
    print(f"tokens/s (median): cpu {statistics.median(l['tokens_per_s'] for l in cpu):.0f}, "
          f"cuda {statistics.median(l['tokens_per_s'] for l in cuda):.0f}")
if long:
    tail = long[len(long) // 2:]
    print(f"cuda long run: {len(long)} steps, loss {long[0]['loss']:.4f} -> {long[-1]['loss']:.4f}, "
          f"median {statistics.median(l['tokens_per_s'] for l in tail):.0f} tokens/s, "
          f"{statistics.median(l['ms'] for l in tail):.2f} ms per step (second half)")
PY
