#!/usr/bin/env bash
# Stages what the GPU machine needs into .gpu/ (git-ignored; carry it: carry [".gpu"]), so that
# device time goes to running, not to building:
#   .gpu/bin/        the runtime tools and GPU test binaries, built here in build-gpu-bundle/
#                    (runtime only, Release; Debian 12 binaries run on the GPU machine's Ubuntu
#                    24.04; the driver, NVRTC and cuBLASLt are dlopen'ed there)
#   .gpu/artifacts/  the models of models/ compiled by xlc-compile (the GPU machine has no MLIR)
#
#   scripts/gpu-bundle.sh [model ...]     (default: xlstm-tiny xlstm-sig-tied xlstm-125m xlstm-7b)
#
# Then, on the GPU machine: bash test/gpu/run_bundle.sh (see there).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="$(nproc)"
models=("$@")
[ ${#models[@]} -eq 0 ] && models=(xlstm-tiny xlstm-sig-tied xlstm-125m xlstm-7b)

"$here/scripts/setup.sh" "$here/build"
echo "[bundle] building xlc-compile"
cmake --build "$here/build" --target xlc-compile -j "$jobs"

bundle_build="$here/build-gpu-bundle"
if [ ! -f "$bundle_build/build.ninja" ]; then
  cmake -S "$here" -B "$bundle_build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DXLC_BUILD_COMPILER=OFF
fi
targets=(xlc-run xlc-dump xlc-random-weights cuda_runtime_tests gpu_kernel_tests gpu_backend_tests
         kernel_bench)
echo "[bundle] building ${targets[*]}"
cmake --build "$bundle_build" --target "${targets[@]}" -j "$jobs"

rm -rf "$here/.gpu"
mkdir -p "$here/.gpu/bin" "$here/.gpu/artifacts"
for t in "${targets[@]}"; do
  f="$(find "$bundle_build" -type f -name "$t" -perm -u+x | head -n 1)"
  [ -n "$f" ] || { echo "[bundle] $t was not built" >&2; exit 1; }
  cp "$f" "$here/.gpu/bin/"
  strip "$here/.gpu/bin/$t"
done
for m in "${models[@]}"; do
  "$here/build/tools/xlc-compile/xlc-compile" "$here/models/$m/config.json" \
    -o "$here/.gpu/artifacts/$m.xlca"
done
du -sh "$here/.gpu"/*
echo "[bundle] ready: carry [\".gpu\"] and run: bash test/gpu/run_bundle.sh"
