#!/usr/bin/env python3
"""The same training run as xlc-train, in Hugging Face transformers: a second loss curve.

Runs on the GPU machine (torch, transformers >= 5 with xLSTMForCausalLM, safetensors, numpy):

    python3 test/parity/hf_train.py --weights <hf-dir> --data <file.tok> --out <dir>
        --batch 8 --seq 512 --steps 400 --lr 1e-3 --warmup 40 [--eval-every 100 --eval-batches 8]

It reproduces what xlc-train does with the same arguments, so the two curves differ only by the
implementations' arithmetic:
  - the initial weights: the same Hugging Face directory (from_pretrained, kept in fp32 as the
    master weights; the forward and backward run under bf16 autocast, the native PyTorch
    chunkwise kernels in mode "train": Triton is not used);
  - the batches: the token file read as runtime/train/TokenFile.h lays it out, the training
    split's windows of seq + 1 tokens every seq tokens, shuffled per epoch by the same
    splitmix64 Fisher-Yates as runtime/train/SequenceStream.cpp (seed, epoch), the held-out
    split's in order;
  - the objective: mean cross-entropy over every target (the logit soft-cap inside the model);
  - AdamW (beta 0.9/0.95, eps 1e-8, weight decay 0.1 on the 2-D parameters but the embedding),
    global-norm clipping at 1.0, the learning rate of runtime/train/Schedule.h (linear warm-up
    from peak/W, then cosine to peak * end_factor).
Writes <out>/log.jsonl in xlc-train's format (a line per step, a line per evaluation), so
scripts/plot-train.py draws both runs in one plot.
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np

MASK = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def below(state, bound):
    limit = MASK - (MASK % bound)
    while True:
        state, x = splitmix64(state)
        if x < limit:
            return state, x % bound


def epoch_order(windows, seed, epoch):
    order = list(range(windows))
    state = (seed ^ ((0xD1B54A32D192ED03 * (epoch + 1)) & MASK)) & MASK
    for i in range(windows - 1, 0, -1):
        state, j = below(state, i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def read_token_file(path):
    with open(path, "rb") as f:
        header = f.read(64)
        if header[:8] != b"XLCTOKS\0":
            sys.exit(f"hf_train: {path}: not a token file (magic)")
        version, id_bytes, vocab, count, docs = struct.unpack_from("<IIQQQ", header, 8)
        if version != 1 or id_bytes not in (2, 4):
            sys.exit(f"hf_train: {path}: version {version}, id bytes {id_bytes} not supported")
        ids = np.frombuffer(f.read(count * id_bytes), dtype="<u2" if id_bytes == 2 else "<u4")
    return ids.astype(np.int64), vocab


class Stream:
    """runtime/train/SequenceStream.h over tokens[begin:end]."""

    def __init__(self, ids, begin, end, seq, seed, shuffle=True):
        self.ids, self.begin, self.seq, self.seed, self.shuffle = ids, begin, seq, seed, shuffle
        length = end - begin
        self.windows = (length - 1) // seq if length > seq else 0
        if self.windows == 0:
            sys.exit("hf_train: the split holds no window")
        self.epoch, self.index, self.order_epoch, self.order = 0, 0, None, None

    def next(self, batch):
        rows = []
        for _ in range(batch):
            if self.order_epoch != self.epoch:
                self.order = (epoch_order(self.windows, self.seed, self.epoch) if self.shuffle
                              else list(range(self.windows)))
                self.order_epoch = self.epoch
            first = self.begin + self.order[self.index] * self.seq
            rows.append(self.ids[first:first + self.seq + 1])
            self.index += 1
            if self.index == self.windows:
                self.epoch, self.index = self.epoch + 1, 0
        return np.stack(rows)


def lr_at(step, peak, total, warmup, end_factor):
    if step < warmup:
        return peak * (step + 1) / warmup
    floor = peak * end_factor
    p = (step - warmup) / (total - warmup)
    return floor + (peak - floor) * (1 + math.cos(math.pi * p)) / 2


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=40)
    ap.add_argument("--end-factor", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-fraction", type=float, default=0.05)
    ap.add_argument("--eval-every", type=int, default=0)
    ap.add_argument("--eval-batches", type=int, default=4)
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM

    ids, _ = read_token_file(args.data)
    held = math.ceil(args.val_fraction * len(ids))
    cut = len(ids) - min(held, len(ids))
    stream = Stream(ids, 0, cut, args.seq, args.seed)
    # The directory's config.json is NX-AI's (embedding_dim, num_blocks): mapped to xLSTMConfig's
    # fields as the parity script maps it, with the native kernels in training mode.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from hf_parity import config_kwargs_from_file
    from transformers import xLSTMConfig
    kwargs, _ = config_kwargs_from_file(os.path.join(args.weights, "config.json"))
    kwargs.update({"mode": "train"})
    model, info = AutoModelForCausalLM.from_pretrained(
        args.weights, config=xLSTMConfig(**kwargs), dtype=torch.float32,
        output_loading_info=True)
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        if info.get(key):
            sys.exit(f"hf_train: loading {args.weights}: {key} {list(info[key])[:8]}")
    # Tied embeddings: transformers 5 loads the stored lm_head.weight as a separate head (a copy
    # of the embedding in these checkpoints); xlc trains one tensor, so the two are tied here.
    if kwargs.get("tie_word_embeddings") and model.lm_head.weight is not model.get_input_embeddings().weight:
        model.lm_head.weight = model.get_input_embeddings().weight
    model.to("cuda").train()
    print(f"hf_train: {sum(p.numel() for p in model.parameters()):,} parameters; "
          f"{stream.windows} training windows", file=sys.stderr)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() == 2 and not name.endswith("embeddings.weight") else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    os.makedirs(args.out, exist_ok=True)
    log = open(os.path.join(args.out, "log.jsonl"), "w")

    def loss_of(rows):
        batch = torch.from_numpy(rows).to("cuda")
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=batch[:, :-1], use_cache=False).logits
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                               batch[:, 1:].reshape(-1))

    def evaluate(step):
        held_stream = Stream(ids, cut, len(ids), args.seq, 0, shuffle=False)
        model.eval()
        total = 0.0
        with torch.no_grad():
            for _ in range(args.eval_batches):
                total += loss_of(held_stream.next(args.batch)).item()
        model.train()
        loss = total / args.eval_batches
        log.write(json.dumps({"step": step, "eval_loss": loss}) + "\n")
        print(f"hf_train: step {step:>6}  held-out loss {loss:.4f}", file=sys.stderr)

    tokens = 0
    for step in range(args.steps):
        start = time.perf_counter()
        lr = lr_at(step, args.lr, args.steps, args.warmup, args.end_factor)
        for group in opt.param_groups:
            group["lr"] = lr
        loss = loss_of(stream.next(args.batch))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip).item()
        opt.step()
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        tokens += args.batch * args.seq
        log.write(json.dumps({"step": step + 1, "loss": loss.item(), "lr": lr, "grad_norm": norm,
                              "tokens": tokens, "tokens_per_s": args.batch * args.seq / seconds,
                              "ms": seconds * 1e3}) + "\n")
        log.flush()
        if (step + 1) % 25 == 0 or step == 0:
            print(f"hf_train: step {step + 1:>6}/{args.steps}  loss {loss.item():.4f}  "
                  f"lr {lr:.3e}  |g| {norm:.3f}  {args.batch * args.seq / seconds:.0f} tok/s",
                  file=sys.stderr)
        if args.eval_every and (step + 1) % args.eval_every == 0:
            evaluate(step + 1)


if __name__ == "__main__":
    main()
