#!/usr/bin/env bash
# Trains models/xlstm-shakespeare on the GPU machine (scripts/train-shakespeare.sh, CUDA backend),
# then generates from the weights of the lowest held-out loss on the GPU and on the CPU, and
# returns those weights in parts small enough for the device tool (join them with cat). From the
# repository root, carrying .gpu (scripts/gpu-bundle.sh, plus .gpu/data/shakespeare-bytes.tok:
# xlc-tokenize --tokenizer models/xlstm-shakespeare/tokenizer.json --token-file ... on the text):
#
#   bash test/gpu/run_shakespeare.sh [--steps N]
#
# $OUT/shakespeare/: summary.json, log.jsonl, train.err, samples-cuda.txt, samples-cpu.txt
# $OUT/shakespeare-model/: model.safetensors.part-a?, config.json, trainer_state.json
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
steps=2000
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "run_shakespeare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
out="${OUT:-$here/gpu-out}"
work="${SHAKESPEARE_WORK:-/tmp/xlc-shakespeare}"
rm -rf "$work" && mkdir -p "$work" "$out/shakespeare" "$out/shakespeare-model"
bash "$here/scripts/train-shakespeare.sh" --device cuda --steps "$steps" --out "$work" \
  --bin "$here/.gpu/bin" --artifact "$here/.gpu/artifacts/xlstm-shakespeare-train.xlca" \
  --data "$here/.gpu/data/shakespeare-bytes.tok" 2> "$out/shakespeare/train.err"
cp "$work/summary.json" "$work/run/log.jsonl" "$out/shakespeare/"
best="$work/run/best"
for dev in cuda cpu; do
  "$here/.gpu/bin/xlc-run" --model "$here/.gpu/artifacts/xlstm-shakespeare.xlca" \
    --weights "$best" --tokenizer "$here/models/xlstm-shakespeare/tokenizer.json" \
    --prompt "ROMEO:" --max-tokens 400 --temperature 0.8 --top-k 50 --seed 0 --device "$dev" \
    > "$out/shakespeare/samples-$dev.txt" 2>&1
done
split -b 15M -a 2 "$best/model.safetensors" "$out/shakespeare-model/model.safetensors.part-"
cp "$best/config.json" "$best/trainer_state.json" "$out/shakespeare-model/"
sha256sum "$best/model.safetensors" | tee "$out/shakespeare-model/SHA256"
python3 - "$out/shakespeare" <<'PY'
import json, statistics, sys
d = sys.argv[1]
L = [json.loads(l) for l in open(f"{d}/log.jsonl")]
steps = [l for l in L if "loss" in l]
evals = [l for l in L if "eval_loss" in l]
ms = statistics.median(l["ms"] for l in steps[len(steps) // 2:])
best = min(evals, key=lambda l: l["eval_loss"])
print(f"steps {len(steps)}  first loss {steps[0]['loss']:.4f}  last loss {steps[-1]['loss']:.4f}  "
      f"median step {ms:.2f} ms ({steps[-1]['tokens'] / len(steps) / ms * 1e3:,.0f} tok/s)")
print("held-out: " + "  ".join(f"{e['step']}:{e['eval_loss']:.4f}" for e in evals))
print(f"best held-out {best['eval_loss']:.4f} at step {best['step']}")
PY
head -c 600 "$out/shakespeare/samples-cuda.txt"; echo; head -c 600 "$out/shakespeare/samples-cpu.txt"
