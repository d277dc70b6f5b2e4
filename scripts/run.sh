#!/usr/bin/env bash
# Sets everything up, builds, compiles a model and generates text with it (the main job): on the
# GPU when there is one, else on the CPU.
#
#   scripts/run.sh [--weights DIR] [--prompt TEXT] [--tokenizer FILE] [-- more xlc-run options]
#
# --weights DIR   a Hugging Face xLSTM checkpoint directory (config.json + model.safetensors or
#                 model.safetensors.index.json with shards), e.g. a download of NX-AI/xLSTM-7b.
#                 Its config.json is compiled. Also taken from $XLC_WEIGHTS.
#                 Without it: models/xlstm-shakespeare, a 10.8M-parameter xLSTM that xlc trained
#                 on Tiny Shakespeare (byte-level; its README says how), prompted with "ROMEO:"
#                 for 400 bytes.
# --tokenizer     tokenizer.json (default: DIR/tokenizer.json, else the GPT-NeoX-20B tokenizer in
#                 ../shared/data/).
# Artifacts go to build/run/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
weights="${XLC_WEIGHTS:-}"
prompt=""
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
echo "[run] building xlc-compile, xlc-run"
cmake --build "$here/build" --target xlc-compile xlc-run -j "$(nproc)"
tools="$here/build/tools"
work="$here/build/run"
mkdir -p "$work"

max_tokens=64
if [ -z "$weights" ]; then
  weights="$here/models/xlstm-shakespeare"
  echo "[run] no --weights given: models/xlstm-shakespeare, trained by xlc on Tiny Shakespeare" \
    "(one token per byte)"
  [ -n "$prompt" ] || prompt="ROMEO:"
  max_tokens=400
fi
[ -n "$prompt" ] || prompt="The meaning of life is"
[ -f "$weights/config.json" ] || { echo "run.sh: $weights/config.json not found" >&2; exit 1; }
config="$weights/config.json"
name="$(basename "$weights")"
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
  --prompt "$prompt" --max-tokens "$max_tokens" --temperature 0.8 --top-k 50 --seed 0 --device auto \
  "${extra[@]}"
