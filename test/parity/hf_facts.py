#!/usr/bin/env python3
"""Prints the facts about Hugging Face's xLSTM implementation that xlc's importer relies on.

    python3 test/parity/hf_facts.py

Run on the GPU machine (it has transformers with xLSTM). Checks, for random tiny configs:
the state-dict key names (q/k/v vs query/key/value), how qk/v/FFN sizes are derived from the
factors (int() truncation vs rounding up to 64), whether add_out_norm=False removes out_norm,
and what tie_word_embeddings does to lm_head.weight in save_pretrained.
"""
import json
import tempfile

import torch
import transformers
from transformers import xLSTMConfig, xLSTMForCausalLM


def shapes(cfg_kwargs):
    cfg = xLSTMConfig(**cfg_kwargs)
    model = xLSTMForCausalLM(cfg)
    return {k: list(v.shape) for k, v in model.state_dict().items()}, cfg


def main():
    print("transformers", transformers.__version__, "torch", torch.__version__)
    base = dict(vocab_size=512, hidden_size=96, num_hidden_layers=1, num_heads=2,
                ffn_proj_factor=2.667, chunk_size=16)
    sd, cfg = shapes(base)
    print("keys (tiny, qk 0.5):")
    for k, v in sd.items():
        print("  ", k, v)
    print("config.qk_dim", cfg.qk_dim, "config.v_dim", cfg.v_dim)
    # A factor whose product is not a multiple of 64: does the layer truncate or round up?
    sd2, cfg2 = shapes(dict(base, qk_dim_factor=0.3, v_dim_factor=0.7))
    q = [v for k, v in sd2.items() if k.endswith("blocks.0.mlstm_layer.q.weight") or
         k.endswith("blocks.0.mlstm_layer.query.weight")]
    v = [v for k, v in sd2.items() if k.endswith("blocks.0.mlstm_layer.v.weight") or
         k.endswith("blocks.0.mlstm_layer.value.weight")]
    print("qk_dim_factor 0.3 on 96 -> q weight", q, "(int() gives", int(96 * 0.3), ")",
          "config.qk_dim", cfg2.qk_dim)
    print("v_dim_factor 0.7 on 96 -> v weight", v, "(int() gives", int(96 * 0.7), ")")
    sd3, _ = shapes(dict(base, add_out_norm=False))
    print("add_out_norm=False keeps out_norm:", any("out_norm" in k for k in sd3))
    with tempfile.TemporaryDirectory() as d:
        m = xLSTMForCausalLM(xLSTMConfig(**dict(base, tie_word_embeddings=True)))
        m.save_pretrained(d)
        from safetensors import safe_open
        with safe_open(d + "/model.safetensors", "pt") as f:
            keys = list(f.keys())
        print("tied save has lm_head.weight:", "lm_head.weight" in keys)
        print("saved config:", json.dumps(json.load(open(d + "/config.json")), sort_keys=True))


if __name__ == "__main__":
    main()
