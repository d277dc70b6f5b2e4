#!/usr/bin/env bash
# Trains models/xlstm-shakespeare on the GPU machine (scripts/train-shakespeare.sh, CUDA backend),
# generates from the weights of the lowest held-out loss on the GPU and on the CPU, returns those
# weights in parts small enough for the device tool (join them with cat; SHA256 printed), and
# with --hf trains the same configuration from the same initial weights on the same batches in
# transformers (test/parity/hf_train.py) for the second loss curve. From the repository root,
# carrying .gpu (scripts/gpu-bundle.sh, plus .gpu/data/shakespeare-bytes.tok: xlc-tokenize
# --tokenizer models/xlstm-shakespeare/tokenizer.json --token-file ... on the text):
#
#   bash test/gpu/run_shakespeare.sh [--steps N] [--init xlstm-7b|test] [--hf]
#
# $OUT (7 files): xlc.log.jsonl, hf.log.jsonl (--hf), samples-cuda.txt, samples-cpu.txt,
# model.safetensors.part-a?, trainer_state.json. The summary is printed last.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
steps=600
init=xlstm-7b
hf=0
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    --init) init="$2"; shift 2 ;;
    --hf) hf=1; shift ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "run_shakespeare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
out="${OUT:-$here/gpu-out}"
work="${SHAKESPEARE_WORK:-/tmp/xlc-shakespeare}"
data="$here/.gpu/data/shakespeare-bytes.tok"
rm -rf "$work" && mkdir -p "$work" "$out"
bash "$here/scripts/train-shakespeare.sh" --device cuda --steps "$steps" --init "$init" --out "$work" \
  --bin "$here/.gpu/bin" --artifact "$here/.gpu/artifacts/xlstm-shakespeare-train.xlca" \
  --data "$data" 2> "$work/train.err" || { tail -20 "$work/train.err"; exit 1; }
cp "$work/run/log.jsonl" "$out/xlc.log.jsonl"
best="$work/run/best"
for dev in cuda cpu; do
  "$here/.gpu/bin/xlc-run" --model "$here/.gpu/artifacts/xlstm-shakespeare.xlca" \
    --weights "$best" --tokenizer "$here/models/xlstm-shakespeare/tokenizer.json" \
    --prompt "ROMEO:" --max-tokens 400 --temperature 0.8 --top-k 50 --seed 0 --device "$dev" \
    > "$out/samples-$dev.txt" 2>&1
done
split -b 15M -a 2 "$best/model.safetensors" "$out/model.safetensors.part-"
cp "$best/trainer_state.json" "$out/"
sha256sum "$best/model.safetensors"
if [ "$hf" = 1 ]; then
  # The settings of scripts/train-shakespeare.sh, in hf_train.py's words.
  python3 "$here/test/parity/hf_train.py" --weights "$work/init" --data "$data" --out "$work/hf" \
    --batch 64 --seq 256 --steps "$steps" --lr 1e-3 --warmup 100 --end-factor 0.1 --clip 1 \
    --weight-decay 0.1 --seed 0 --val-fraction 0.1 --eval-every 50 --eval-batches 6 \
    2> "$work/hf.err" || { tail -20 "$work/hf.err"; exit 1; }
  cp "$work/hf/log.jsonl" "$out/hf.log.jsonl"
fi
python3 - "$out" <<'PY'
import json, os, statistics, sys
d = sys.argv[1]
for name in ("xlc", "hf"):
    path = f"{d}/{name}.log.jsonl"
    if not os.path.exists(path):
        continue
    L = [json.loads(l) for l in open(path)]
    steps = [l for l in L if "loss" in l]
    evals = [l for l in L if "eval_loss" in l]
    ms = statistics.median(l["ms"] for l in steps[len(steps) // 2:])
    best = min(evals, key=lambda l: l["eval_loss"])
    print(f"{name}: steps {len(steps)}  loss {steps[0]['loss']:.4f} -> {steps[-1]['loss']:.4f}  "
          f"median step {ms:.2f} ms ({steps[-1]['tokens'] / len(steps) / ms * 1e3:,.0f} tok/s)  "
          f"best held-out {best['eval_loss']:.4f} at step {best['step']}")
    print(f"{name} held-out: " + " ".join(f"{e['step']}:{e['eval_loss']:.3f}" for e in evals))
PY
head -c 500 "$out/samples-cuda.txt"; echo; head -c 300 "$out/samples-cpu.txt"; echo
