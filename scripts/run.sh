#!/usr/bin/env bash
# Sets everything up, builds, and runs the main job: import a model and print its summary.
#
#   scripts/run.sh [config.json]        (default: models/xlstm-7b/config.json)
#
# Later milestones make this compile the model and generate text.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
config="${1:-$here/models/xlstm-7b/config.json}"

"$here/scripts/setup.sh" "$here/build"
echo "[run] building the importer"
cmake --build "$here/build" --target xlc-import -j "$(nproc)"
echo "[run] importing $config"
"$here/build/tools/xlc-import/xlc-import" "$config" --stats
