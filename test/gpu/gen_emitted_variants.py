#!/usr/bin/env python3
"""Writes test/gpu/harness/EmittedVariants.h: one kernel-harness variant per distinct kernel that
xlc-compile emits for the models in models/, and X-macro lists of test cases over them, so that
gpu_kernel_tests checks exactly the configurations the compiler emits against the float64
reference (GpuKernelTests.cpp, TEST(GpuEmitted, ...)).

    gen_emitted_variants.py OUT.h ARTIFACT.xlca...

The artifact container is a 32-byte header and a JSON payload (docs/artifact.md). Each kernel's
`source` holds `using Config = <type>;` -- the very text the variant pastes into NVRTC. Case
parameters the configuration does not hold come from the plan: the vocabulary for the embedding,
the gate soft-cap of the mLSTM launches, the width for the logit soft-cap. The ctest
gpu_emitted_variants_current (full build) regenerates the header and fails when the committed
one differs.
"""
import json
import os
import re
import struct
import sys


def payload(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"XLCARTF\0":
        sys.exit(f"{path}: not an xlc artifact")
    (length,) = struct.unpack_from("<Q", data, 16)
    return json.loads(data[32:32 + length])


def ident(text):
    return re.sub(r"[^A-Za-z0-9]", "_", text)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, artifacts = sys.argv[1], sys.argv[2:]
    variants = {}  # config text -> variant name (identical kernels of several models test once)
    cases = {k: [] for k in ("RMS_NORM", "NORM_GATE", "SWIGLU", "SOFT_CAP", "EMBEDDING",
                             "CHUNKWISE", "CHUNK_FUSED", "DECODE")}
    seen = set()

    def variant(model, kernel):
        text = re.search(r"using Config = (.*);", kernel["source"]).group(1)
        if text not in variants:
            variants[text] = f"Emitted_{ident(model)}_{ident(kernel['name'])}"
        return variants[text]

    for path in sorted(artifacts):
        a = payload(path)
        model = a["model"]["name"]
        kernels = a["kernels"]
        for fn in a["functions"]:
            steps = fn["steps"]
            for i, step in enumerate(steps):
                if step["kind"] != "launch":
                    continue
                # The step's kernel and its batch variants (by_batch): each is emitted code.
                for index in [step["kernel"]] + [v["kernel"] for v in step.get("by_batch", [])]:
                    k = kernels[index]
                    fam, cfg = k["family"], k["config"]
                    if fam == "mlstm_chunk_scores":
                        # Tested with the state pass, the next launch of the same op: the harness
                        # derives this config from that pass's (KernelSource.h scoresConfigOf).
                        fused = kernels[steps[i + 1]["kernel"]]
                        ftext = re.search(r"using Config = (.*);", fused["source"]).group(1)
                        m = re.fullmatch(r"xlc::device::MlstmChunkFusedConfig<(.*>), (\d+), \d+, \d+>", ftext)
                        stext = re.search(r"using Config = (.*);", k["source"]).group(1)
                        if fused["family"] != "mlstm_chunk_fused" or not m or \
                                stext != f"xlc::device::MlstmChunkScoresConfig<{m.group(1)}, {m.group(2)}>":
                            sys.exit(f"{path}: {k['name']} is not the scores kernel of the next launch's state pass")
                        continue
                    name = variant(model, k)
                    label = f"{model} {k['name']}"
                    if fam == "mlstm_chunk_states":
                        # The outputs kernel is the next launch of the same op.
                        out_k = kernels[steps[i + 1]["kernel"]]
                        key = ("CHUNKWISE", name, variant(model, out_k))
                        cap = step["attrs"].get("gate_soft_cap", 0.0)
                        seq = 2 * cfg["chunk"] + 5
                        entry = f'X({name}, {variant(model, out_k)}, "{label} + {out_k["name"]}", {cap}, {seq})'
                    elif fam == "mlstm_chunk_outputs":
                        continue
                    elif fam == "mlstm_chunk_fused":
                        key = ("CHUNK_FUSED", name)
                        cap = step["attrs"].get("gate_soft_cap", 0.0)
                        entry = f'X({name}, "{label}", {cap}, {2 * cfg["chunk"] + 5})'

                    elif fam == "mlstm_decode_step":
                        key = ("DECODE", name)
                        entry = f'X({name}, "{label}", {step["attrs"].get("gate_soft_cap", 0.0)})'
                    elif fam == "rms_norm":
                        key = ("RMS_NORM", name)
                        entry = f'X({name}, "{label}", {"true" if cfg["has_weight"] else "false"})'
                    elif fam == "norm_gate":
                        key = ("NORM_GATE", name)
                        entry = f'X({name}, "{label}")'
                    elif fam == "swiglu":
                        key = ("SWIGLU", name)
                        entry = f'X({name}, "{label}")'
                    elif fam == "soft_cap":
                        key = ("SOFT_CAP", name)
                        entry = f'X({name}, "{label}", {3 * cfg["width"] + 5}, {step["attrs"]["cap"]})'
                    elif fam == "embedding":
                        key = ("EMBEDDING", name)
                        entry = f'X({name}, "{label}", {a["model"]["vocab_size"]})'
                    else:
                        sys.exit(f"{path}: kernel family {fam} has no test case here; add one")
                    if key in seen:
                        continue
                    seen.add(key)
                    cases[key[0]].append(entry)

    lines = [
        "//===- EmittedVariants.h - The kernels xlc-compile emits, as test variants -*- C++ -*-===//",
        "//",
        "// GENERATED by test/gpu/gen_emitted_variants.py from the artifacts of: " +
        ", ".join(os.path.basename(p) for p in sorted(artifacts)) + ".",
        "// Do not edit; the ctest gpu_emitted_variants_current fails when this file is stale.",
        "//",
        "//===----------------------------------------------------------------------===//",
        "#ifndef XLC_TEST_GPU_HARNESS_EMITTEDVARIANTS_H",
        "#define XLC_TEST_GPU_HARNESS_EMITTEDVARIANTS_H",
        "",
        '#include "KernelHarness.h"',
        "",
        "namespace xlc::test::emitted {",
        "",
    ]
    for text, name in sorted(variants.items(), key=lambda kv: kv[1]):
        lines.append(f"XLC_VARIANT({name},\n            {text});")
    lines += ["", "} // namespace xlc::test::emitted", ""]
    for kind in cases:
        body = " \\\n  ".join(cases[kind]) if cases[kind] else ""
        lines.append(f"#define XLC_EMITTED_{kind}(X) \\\n  {body}" if body else f"#define XLC_EMITTED_{kind}(X)")
        lines.append("")
    lines += ["#endif // XLC_TEST_GPU_HARNESS_EMITTEDVARIANTS_H", ""]
    text = "\n".join(lines)
    if os.path.exists(out) and open(out).read() == text:
        return
    with open(out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
