#!/usr/bin/env python3
"""Make tiny random-weight Hugging Face xLSTM checkpoints and check that xlc reads them.

Run on the GPU machine (torch, transformers >= 5 with xLSTMConfig/xLSTMForCausalLM, safetensors):

    python3 test/parity/make_hf_checkpoints.py OUT_DIR [--xlc-dump build/tools/xlc-dump/xlc-dump]

For each variant below it builds an `xLSTMForCausalLM` from a config with `from_config`, perturbs
every parameter with seeded noise (so no weight is a constant: HF initialises gate weights to zero
and norms to one), saves it with `save_pretrained`, and then:

  1. prints config.json's size fields and every stored tensor (name, dtype, shape), read back with
     the `safetensors` package, so the key names transformers writes are on record;
  2. compares the stored names and shapes with the list xlc derives from config.json
     (runtime/weights/XlstmWeights.cpp, mirrored in `xlc_expected_tensors` below);
  3. if --xlc-dump is given, runs `xlc-dump --weights DIR --json --check-values` on the directory;
  4. for tied embeddings (odd-bf16): whether lm_head.weight is stored, whether it equals the
     embedding, and which of the two transformers uses as the LM head after from_pretrained. xlc
     reads a stored lm_head.weight as the head, the embedding only when there is none (issue 10:
     transformers 5 stores and uses it); a transformers that does otherwise is a PROBLEM.

Variants:
  fp32          hidden 128, 4 heads, 2 blocks, vocab 512, chunk 16, saved in float32
  bf16          the same weights saved in bfloat16
  sharded-fp32  the same weights in float32 with a small max_shard_size: shards + index json
  odd-bf16      hidden 160 (int(160*0.5) = 80 is not a multiple of 64, so the q/k width shows
                whether transformers rounds it up), tied embeddings, add_out_norm false

Exit status 0 when every check passed. A summary is also written to OUT_DIR/summary.json.
"""

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys

# The config.json fields the xlc side reads (runtime/weights/XlstmWeights.cpp).
XLC_CONFIG_FIELDS = [
    "model_type", "hidden_size", "embedding_dim", "num_hidden_layers", "num_blocks", "num_heads",
    "vocab_size", "qk_dim_factor", "v_dim_factor", "ffn_proj_factor",
    "ffn_round_up_to_multiple_of", "tie_word_embeddings", "add_out_norm", "use_bias", "weight_mode",
]

BASE = dict(hidden_size=128, num_heads=4, num_hidden_layers=2, vocab_size=512, chunk_size=16)
ODD = dict(hidden_size=160, num_heads=4, num_hidden_layers=2, vocab_size=512, chunk_size=16,
           tie_word_embeddings=True, add_out_norm=False)


def versions():
    import torch
    import transformers
    import safetensors
    out = {"python": platform.python_version(), "torch": torch.__version__,
           "transformers": transformers.__version__, "safetensors": safetensors.__version__}
    try:
        import numpy
        out["numpy"] = numpy.__version__
    except ImportError:
        pass
    return out


def round_up(x, multiple):
    """transformers' round_up_to_next_multiple_of (Python float semantics, as xlc mirrors)."""
    return int(((x + multiple - 1) // multiple) * multiple)


def xlc_expected_tensors(cfg):
    """{name: (shape, optional)} as runtime/weights/XlstmWeights.cpp computes it from config.json."""
    def pick(a, b, default):
        va, vb = cfg.get(a), cfg.get(b)
        return va if va is not None else (vb if vb is not None else default)

    d = pick("hidden_size", "embedding_dim", 4096)
    blocks = pick("num_hidden_layers", "num_blocks", 32)
    heads = cfg.get("num_heads", 8)
    vocab = cfg.get("vocab_size", 50304)
    qk = int(d * cfg.get("qk_dim_factor", 0.5))
    v = int(d * cfg.get("v_dim_factor", 1.0))
    ffn = round_up(d * cfg.get("ffn_proj_factor", 2.667), cfg.get("ffn_round_up_to_multiple_of", 64))
    bias = cfg.get("use_bias", False)
    fused = cfg.get("weight_mode", "single") == "fused"
    out = {}

    def add(name, shape, optional=False):
        out[name] = (list(shape), optional)

    def linear(prefix, o, i, with_bias):
        add(prefix + ".weight", [o, i])
        if with_bias:
            add(prefix + ".bias", [o])

    def norm(prefix, width):
        add(prefix + ".weight", [width])
        if bias:
            add(prefix + ".bias", [width])

    add("backbone.embeddings.weight", [vocab, d])
    for i in range(blocks):
        block = f"backbone.blocks.{i}."
        layer = block + "mlstm_layer."
        norm(block + "norm_mlstm", d)
        if not fused:
            linear(layer + "q", qk, d, bias)
            linear(layer + "k", qk, d, bias)
            linear(layer + "v", v, d, bias)
            linear(layer + "ogate_preact", v, d, bias)
            linear(layer + "igate_preact", heads, d, True)
            linear(layer + "fgate_preact", heads, d, True)
        else:
            linear(layer + "qkv_opreact", 2 * qk + 2 * v, d, bias)
            linear(layer + "ifgate_preact", 2 * heads, d, True)
        norm(layer + "multihead_norm", v)
        linear(layer + "out_proj", d, v, bias)
        norm(block + "norm_ffn", d)
        if not fused:
            linear(block + "ffn.proj_up_gate", ffn, d, bias)
            linear(block + "ffn.proj_up", ffn, d, bias)
        else:
            linear(block + "ffn.proj_up_gate_z", 2 * ffn, d, bias)
        linear(block + "ffn.proj_down", d, ffn, bias)
    add("backbone.out_norm.weight", [d], optional=not cfg.get("add_out_norm", True))
    add("lm_head.weight", [vocab, d], optional=cfg.get("tie_word_embeddings", False))
    return out


def stored_tensors(directory):
    """{name: (dtype, shape, file)} read with the safetensors package (independent of xlc)."""
    from safetensors import safe_open
    files = sorted(f for f in os.listdir(directory) if f.endswith(".safetensors"))
    out = {}
    for f in files:
        with safe_open(os.path.join(directory, f), framework="pt") as handle:
            for name in handle.keys():
                sl = handle.get_slice(name)
                if name in out:
                    raise RuntimeError(f"{name} appears in {out[name][2]} and {f}")
                out[name] = (str(sl.get_dtype()), list(sl.get_shape()), f)
    return out


def tied_head(directory):
    """For a checkpoint with tie_word_embeddings: what is stored, and which tensor transformers
    uses as the LM head once it has loaded the directory (issue 10)."""
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM
    stored = {}
    for f in sorted(os.listdir(directory)):
        if f.endswith(".safetensors"):
            with safe_open(os.path.join(directory, f), framework="pt") as handle:
                for key in ("lm_head.weight", "backbone.embeddings.weight"):
                    if key in handle.keys():
                        stored[key] = handle.get_tensor(key).float()
    head, emb = stored.get("lm_head.weight"), stored.get("backbone.embeddings.weight")
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    used = (getattr(model, "lm_head", None) or model.get_output_embeddings()).weight.detach().float()
    out = {"stored_lm_head": head is not None,
           "stored_lm_head_equals_embedding": None if head is None or emb is None
           else bool(torch.equal(head, emb)),
           "hf_head": "lm_head.weight" if head is not None and torch.equal(used, head)
           else "backbone.embeddings.weight" if emb is not None and torch.equal(used, emb)
           else "neither"}
    # xlc's rule (runtime/exec/WeightAssembly.h).
    out["xlc_head"] = "lm_head.weight" if head is not None else "backbone.embeddings.weight"
    return out


def build_model(config_kwargs, seed):
    import torch
    from transformers import AutoModelForCausalLM, xLSTMConfig
    torch.manual_seed(seed)
    config = xLSTMConfig(**config_kwargs)
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    model.eval()
    return model


def save(model, directory, dtype, max_shard_size=None):
    import torch
    if os.path.isdir(directory):
        shutil.rmtree(directory)
    os.makedirs(directory)
    model = model.to(dtype)
    kwargs = {}
    if max_shard_size is not None:
        kwargs["max_shard_size"] = max_shard_size
    model.save_pretrained(directory, **kwargs)
    model.to(torch.float32)


def check_variant(name, directory, xlc_dump, expect_index=False):
    print(f"\n=== {name}: {directory}")
    result = {"name": name, "directory": directory, "ok": True, "problems": []}
    if expect_index and not os.path.exists(os.path.join(directory, "model.safetensors.index.json")):
        result["problems"].append("no model.safetensors.index.json: the model was not sharded")
    print("files:", ", ".join(sorted(os.listdir(directory))))
    with open(os.path.join(directory, "config.json")) as f:
        cfg = json.load(f)
    print("config.json (fields xlc reads):")
    for key in XLC_CONFIG_FIELDS:
        print(f"  {key:30s} {json.dumps(cfg.get(key, '<absent>'))}")
    missing_fields = [k for k in ("model_type", "num_heads", "vocab_size") if k not in cfg]
    if missing_fields:
        result["problems"].append(f"config.json lacks {missing_fields}")
    index = os.path.join(directory, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            idx = json.load(f)
        print(f"index: metadata={json.dumps(idx.get('metadata'))}, {len(idx.get('weight_map', {}))} entries")

    stored = stored_tensors(directory)
    print(f"stored tensors ({len(stored)}):")
    for key in sorted(stored):
        dtype, shape, f = stored[key]
        print(f"  {key:55s} {dtype:16s} {str(shape):14s} {f}")
    result["keys"] = {k: {"dtype": v[0], "shape": v[1]} for k, v in sorted(stored.items())}

    expected = xlc_expected_tensors(cfg)
    for key, (shape, optional) in sorted(expected.items()):
        if key not in stored:
            if not optional:
                result["problems"].append(f"xlc expects {key} {shape}; transformers did not store it")
        elif stored[key][1] != shape:
            result["problems"].append(f"{key}: xlc expects {shape}, transformers stored {stored[key][1]}")
    for key in sorted(set(stored) - set(expected)):
        result["problems"].append(f"transformers stored {key} {stored[key][1]}, which xlc does not expect")
    absent_optional = [k for k, (_, opt) in expected.items() if opt and k not in stored]
    present_optional = [k for k, (_, opt) in expected.items() if opt and k in stored]
    if absent_optional or present_optional:
        print(f"optional tensors: stored {present_optional}, absent {absent_optional}")

    if cfg.get("tie_word_embeddings", False):
        tied = tied_head(directory)
        result["tied_head"] = tied
        print(f"tied embeddings: lm_head.weight stored: {tied['stored_lm_head']}, equal to the "
              f"embedding: {tied['stored_lm_head_equals_embedding']}; transformers' LM head: "
              f"{tied['hf_head']}; xlc's: {tied['xlc_head']}")
        if tied["hf_head"] != tied["xlc_head"]:
            result["problems"].append(f"tied embeddings: transformers uses {tied['hf_head']} as "
                                      f"the LM head, xlc reads {tied['xlc_head']}")

    if xlc_dump:
        cmd = [xlc_dump, "--weights", directory, "--json", "--check-values"]
        run = subprocess.run(cmd, capture_output=True, text=True)
        result["xlc_dump_exit"] = run.returncode
        summary = ""
        try:
            doc = json.loads(run.stdout)
            summary = f"{doc.get('totals')}, config matches: {(doc.get('config') or {}).get('matches')}"
        except json.JSONDecodeError:
            summary = "(no JSON on stdout)"
        status = "PASS" if run.returncode == 0 else "FAIL"
        print(f"xlc-dump: {status} (exit {run.returncode}) {summary}")
        if run.stderr.strip():
            print("xlc-dump stderr:\n" + run.stderr.rstrip())
        if run.returncode != 0:
            result["problems"].append(f"xlc-dump exited {run.returncode}: {run.stderr.strip()}")

    result["ok"] = not result["problems"]
    for p in result["problems"]:
        print("PROBLEM:", p)
    print(f"{name}: {'PASS' if result['ok'] else 'FAIL'}")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", help="directory to write the checkpoints into")
    parser.add_argument("--xlc-dump", help="path of a built xlc-dump binary to run on each checkpoint")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    info = versions()
    print("versions:", json.dumps(info))
    import torch

    if args.xlc_dump and not os.access(args.xlc_dump, os.X_OK):
        sys.exit(f"--xlc-dump {args.xlc_dump!r} is not an executable file")
    os.makedirs(args.out_dir, exist_ok=True)

    base = build_model(BASE, args.seed)
    fp32_bytes = sum(p.numel() * 4 for p in base.parameters())
    print(f"base model: {sum(p.numel() for p in base.parameters())} parameters, {fp32_bytes} bytes in fp32")
    variants = [
        ("fp32", lambda d: save(base, d, torch.float32)),
        ("bf16", lambda d: save(base, d, torch.bfloat16)),
        # About five shards; transformers takes "<n>KB" strings.
        ("sharded-fp32", lambda d: save(base, d, torch.float32,
                                        max_shard_size=f"{max(1, math.ceil(fp32_bytes / 5 / 1000))}KB")),
        ("odd-bf16", lambda d: save(build_model(ODD, args.seed + 1), d, torch.bfloat16)),
    ]
    results = []
    for name, make in variants:
        directory = os.path.join(args.out_dir, name)
        try:
            make(directory)
            results.append(check_variant(name, directory, args.xlc_dump,
                                         expect_index=name.startswith("sharded")))
        except Exception as e:  # report and go on with the other variants
            print(f"{name}: FAIL while building/saving: {type(e).__name__}: {e}")
            results.append({"name": name, "ok": False, "problems": [f"{type(e).__name__}: {e}"]})

    with open(os.path.join(args.out_dir, "summary.json"), "w") as f:
        json.dump({"versions": info, "results": results}, f, indent=2)
    print("\nsummary:")
    for r in results:
        print(f"  {r['name']:14s} {'PASS' if r['ok'] else 'FAIL'}")
    sys.exit(0 if all(r["ok"] for r in results) else 1)


if __name__ == "__main__":
    main()
