#!/usr/bin/env bash
# Sets everything up, builds, compiles a model and generates text with it (the main job): on the
# GPU when there is one, else on the CPU.
#
#   scripts/run.sh [--weights DIR] [--prompt TEXT] [--tokenizer FILE] [-- more xlc-run options]
#
# --weights DIR   a Hugging Face xLSTM checkpoint directory (config.json + model.safetensors or
#                 model.safetensors.index.json with shards), e.g. a download of NX-AI/xLSTM-7b.
#                 Its config.json is compiled. Also taken from $XLC_WEIGHTS.
#                 Without it: the tiny test model (models/xlstm-tiny) with random weights made by
#                 xlc-random-weights -- the whole pipeline runs, but the text is noise.
# --tokenizer     tokenizer.json (default: DIR/tokenizer.json, else the GPT-NeoX-20B tokenizer in
#                 ../shared/data/).
# Artifacts and demo weights go to build/run/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
weights="${XLC_WEIGHTS:-}"
prompt="The meaning of life is"
tokenizer=""
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --weights) weights="$2"; shift ;;
    --prompt) prompt="$2"; shift ;;
    --tokenizer) tokenizer="$2"; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

"$here/scripts/setup.sh" "$here/build"
echo "[run] building xlc-compile, xlc-run, xlc-random-weights"
cmake --build "$here/build" --target xlc-compile xlc-run xlc-random-weights -j "$(nproc)"
tools="$here/build/tools"
work="$here/build/run"
mkdir -p "$work"

if [ -n "$weights" ]; then
  [ -f "$weights/config.json" ] || { echo "run.sh: $weights/config.json not found" >&2; exit 1; }
  config="$weights/config.json"
  name="$(basename "$weights")"
else
  config="$here/models/xlstm-tiny/config.json"
  name="xlstm-tiny-random"
  weights="$work/$name"
  if [ ! -f "$weights/model.safetensors" ]; then
    echo "[run] no --weights given: writing random weights for models/xlstm-tiny to $weights"
    "$tools/xlc-random-weights/xlc-random-weights" "$config" "$weights" --seed 1 --dtype bf16
  fi
  echo "[run] (random weights: the generated text is noise; pass --weights for a real checkpoint)"
fi
if [ -z "$tokenizer" ]; then
  tokenizer="$weights/tokenizer.json"
  [ -f "$tokenizer" ] || tokenizer="$here/../shared/data/gpt-neox-20b-tokenizer.json"
fi
[ -f "$tokenizer" ] || { echo "run.sh: no tokenizer.json (pass --tokenizer FILE)" >&2; exit 1; }

artifact="$work/$name.xlca"
echo "[run] compiling $config -> $artifact"
"$tools/xlc-compile/xlc-compile" "$config" -o "$artifact"
echo "[run] generating (device auto: the GPU if there is one, else the CPU)"
"$tools/xlc-run/xlc-run" --model "$artifact" --weights "$weights" --tokenizer "$tokenizer" \
  --prompt "$prompt" --max-tokens 64 --temperature 0.8 --top-k 50 --seed 0 --device auto \
  "${extra[@]}"
