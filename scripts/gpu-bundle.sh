#!/usr/bin/env bash
# Stages what the GPU machine needs into .gpu/ (git-ignored; carry it: carry [".gpu"]), so that
# device time goes to running, not to building:
#   .gpu/bin/        the runtime tools and GPU test binaries, built here in build-gpu-bundle/
#                    (runtime only, Release; Debian 12 binaries run on the GPU machine's Ubuntu
#                    24.04; the driver, NVRTC and cuBLASLt are dlopen'ed there)
#   .gpu/artifacts/  the models of models/ compiled by xlc-compile (the GPU machine has no MLIR),
#                    and <model>-train.xlca with the training functions (xlc-compile --training)
#                    for the models training is run or checked on: tiny, shakespeare, 125m,
#                    and xlstm-tiny-train-lowmem.xlca (--training-precision low-memory)
#   .gpu/PROVENANCE  what the bundle was made from, "key: value" lines (test/gpu/provenance.sh):
#                    the git commit, whether the tree was dirty (changed paths, a hash of the
#                    diff), the device-header hash embedded in the binaries (checked equal to
#                    every artifact's device_headers_hash), when and where it was made. The GPU
#                    machine has no .git; run_bundle.sh heads every record with these lines.
#
#   scripts/gpu-bundle.sh [model ...]     (default: xlstm-tiny xlstm-sig-tied xlstm-125m xlstm-7b
#                                          xlstm-3heads xlstm-chunk128 xlstm-shakespeare)
# A model is models/<model>/config.json or a test variant, test/runtime/exec/variants/<model>.json.
#
# Then, on the GPU machine: bash test/gpu/run_bundle.sh (see there).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="$(nproc)"
models=("$@")
[ ${#models[@]} -eq 0 ] && models=(xlstm-tiny xlstm-sig-tied xlstm-125m xlstm-7b xlstm-3heads xlstm-chunk128
                                   xlstm-shakespeare)
config_of() {
  if [ -f "$here/models/$1/config.json" ]; then echo "$here/models/$1/config.json"
  else echo "$here/test/runtime/exec/variants/$1.json"; fi
}

"$here/scripts/setup.sh" "$here/build"
echo "[bundle] building xlc-compile"
cmake --build "$here/build" --target xlc-compile -j "$jobs"

bundle_build="$here/build-gpu-bundle"
if [ ! -f "$bundle_build/build.ninja" ]; then
  cmake -S "$here" -B "$bundle_build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DXLC_BUILD_COMPILER=OFF
fi
targets=(xlc-run xlc-train xlc-tokenize xlc-dump xlc-random-weights cuda_runtime_tests gpu_kernel_tests gpu_backend_tests
         kernel_bench gpu_sampling_tests sampling_bench xlc-bench xlc-tune)
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
  "$here/build/tools/xlc-compile/xlc-compile" "$(config_of "$m")" \
    -o "$here/.gpu/artifacts/$m.xlca"
done
# Models with their training functions (xlc-compile --training), for xlc-train,
# test/gpu/run_train.sh and test/parity/hf_grad_parity.py.
for m in xlstm-tiny xlstm-shakespeare xlstm-125m; do
  "$here/build/tools/xlc-compile/xlc-compile" "$(config_of "$m")" --training \
    -o "$here/.gpu/artifacts/$m-train.xlca"
  models+=("$m-train")
done
"$here/build/tools/xlc-compile/xlc-compile" "$(config_of xlstm-tiny)" --training \
  --training-precision low-memory -o "$here/.gpu/artifacts/xlstm-tiny-train-lowmem.xlca"
models+=(xlstm-tiny-train-lowmem)

# Provenance: the runtime's device-header hash (generated into the bundle build) must be every
# artifact's, or the CUDA backend would refuse the artifacts on the GPU machine.
headers="$(sed -n 's/.*headerHash() { return "\([0-9a-f]*\)"; }.*/\1/p' \
  "$bundle_build/runtime/device/EmbeddedDeviceHeaders.cpp" | head -n 1)"
[ -n "$headers" ] || { echo "[bundle] no device-header hash in $bundle_build" >&2; exit 1; }
for m in "${models[@]}"; do
  a="$("$here/.gpu/bin/xlc-dump" --json "$here/.gpu/artifacts/$m.xlca" |
       python3 -c 'import json, sys; print(json.load(sys.stdin)["artifact"]["device_headers_hash"])')"
  if [ "$a" != "$headers" ]; then
    echo "[bundle] $m.xlca has device_headers_hash $a, the bundled runtime embeds $headers" \
      "(is build/ older than the sources? rebuild xlc-compile)" >&2
    exit 1
  fi
done
bash "$here/test/gpu/provenance.sh" --headers-hash "$headers" |
  sed -e 's/^recorded:/bundle_made:/' -e 's/^host:/bundle_host:/' > "$here/.gpu/PROVENANCE"
{
  echo "headers_hash_source: the bundle build's EmbeddedDeviceHeaders.cpp; equal in every artifact"
  echo "bundle_artifacts: ${models[*]}"
} >> "$here/.gpu/PROVENANCE"
sed 's/^/[bundle] /' "$here/.gpu/PROVENANCE"
du -sh "$here/.gpu"/*
echo "[bundle] ready: carry [\".gpu\"] and run: bash test/gpu/run_bundle.sh"
