#!/usr/bin/env python3
"""How sensitive is a random-weight xLSTM to rounding, for a given random initialisation?

The parity check (hf_parity.py) judges xlc's bf16 GPU run against what bf16 implies for the model,
measured as Hugging Face's own bf16 forward against its fp32 forward. That yardstick only means
something when the random model is not chaotic: if a perturbation of 1e-3 grows to O(1) over the
blocks and tokens, every bf16 run disagrees with fp32 completely and no bound can tell a correct
runtime from a broken one. This script builds the model on the GPU for several initialisations
(no checkpoint is written) and prints, per variant, HF bf16-vs-fp32 relative L2 error of the
logits at the last prompt position and over 32 following positions.

    python3 test/parity/init_sensitivity.py [--config models/xlstm-7b/config.json] [--length 64]
"""
import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_parity as hp  # noqa: E402

VARIANTS = {
    # name: (gate weight std · sqrt(d), out_proj/proj_down "wang" init, lm_head std · sqrt(d))
    "A gates 3/sqrt(d), wang": (3.0, True, 4.0),
    "B gates small, wang": (math.sqrt(2.0 / 5.0), True, 4.0),
    "C gates small, wang, lm small": (math.sqrt(2.0 / 5.0), True, math.sqrt(2.0 / 5.0)),
    "D gates 1/sqrt(d), wang": (1.0, True, 4.0),
}


def main():
    import numpy as np
    import torch
    from transformers import xLSTMConfig
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="7b", help="tiny or 7b")
    p.add_argument("--length", type=int, default=64)
    args = p.parse_args()
    hp.torch_setup()
    kwargs, _ = hp.config_kwargs(args.config)
    cfg = xLSTMConfig(**kwargs)
    vocab = int(cfg.vocab_size)
    prompt = hp.make_tokens(20261122, 1, args.length, vocab)
    forced = hp.make_tokens(20261122, 2, 33, vocab)
    for name, (gate, wang, lm) in VARIANTS.items():
        t = time.time()
        hp.GATE_PREACT_STD, hp.LM_HEAD_LOGIT_STD = gate, lm
        hp.WANG_INIT = wang
        model = hp.build_model(cfg, torch.float32, "cuda")
        hp.randomize_parameters(model, cfg, 20261122)
        ref = hp.hf_rows(model, prompt, forced, 33, "cuda")
        with torch.autocast("cuda", dtype=torch.bfloat16):
            low = hp.hf_rows(model, prompt, forced, 33, "cuda")
        err = hp.rel_l2_rows(low, ref)
        print(f"{name:<32} prefill {err[0]:.2e}  decode max {err[1:].max():.2e} median "
              f"{np.median(err[1:]):.2e}  logits std {ref.std():.2f}  ({time.time() - t:.0f} s)",
              flush=True)
        del model
        hp.release_cuda()


if __name__ == "__main__":
    main()
