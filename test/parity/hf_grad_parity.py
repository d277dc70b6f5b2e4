#!/usr/bin/env python3
"""Gradient parity of xlc's compiled train_step with torch autograd in transformers' xLSTM.

    python3 test/parity/hf_grad_parity.py --xlc-train .gpu/bin/xlc-train \\
        --artifacts .gpu/artifacts [--configs tiny,125m,shakespeare-init,shakespeare-trained] \\
        [--batch 2 --seq 128] [--out $OUT/grad-parity.json] [--work /tmp/xlc-grad-parity]

Runs on the GPU machine (torch with CUDA, transformers >= 5 with xLSTMForCausalLM, safetensors,
numpy), from the repository root. The artifacts are `<model>-train.xlca`, compiled on the
development machine with `xlc-compile --training` (scripts/gpu-bundle.sh makes the tiny one;
the others: xlc-compile <config> --training -o .gpu/artifacts/<model>-train.xlca).

Method, per config:
1. Weights, in float32: xlc-random-weights --init test (xLSTM 7B's initialisation in spirit,
   every tensor nonzero: input-gate biases near -10, so the denominator's exp(-m) bound is
   active and its gradient path is exercised) or --init xlstm-7b (exactly where training
   starts), or a trained checkpoint (the Shakespeare model run.sh ships: where training goes).
   transformers loads the same directory (from_pretrained, float32; mode "train": the native
   chunkwise kernel differentiated by autograd; a tied head tied to the embedding).
   Draws with open input gates (biases around 0, as hf_parity.py's forward check uses with
   gates of +-3) are ill-conditioned at depth: there transformers' own bf16 gradients differ
   from its fp32 ones by 60-100 % (median over tensors) and two fp32 implementations by up to
   6e-3 after 4 blocks (H100, 2026-12-07), so no comparison means anything.
2. Data: a token file (runtime/train/TokenFile.h) of seeded random ids; the batch is its first
   --batch windows of --seq + 1 tokens in file order, which `xlc-train --gradients-out` reads
   with --val-fraction 0.
3. xlc: `xlc-train --gradients-out` on the CPU backend (fp32 weights and arithmetic) and on the
   CUDA backend (the artifact's bf16 weights, bf16 GEMM operands, fp32 accumulation and state):
   the gradient of the mean next-token cross-entropy for every checkpoint tensor.
4. transformers: the same loss (cross-entropy of the soft-capped logits, mean over every target)
   and loss.backward() in float32 with TF32 off: the oracle. Once more under bf16 autocast (its
   own low-precision gradient), to say what bf16 costs in transformers itself.
5. Per checkpoint tensor: the relative L2 error ||g - g_ref|| / ||g_ref|| of xlc CPU, xlc CUDA
   and transformers bf16 against transformers fp32. Bounds: CPU <= 1e-4 (both fp32; only
   summation order differs); CUDA <= max(2 x transformers-bf16's error of that tensor, 3e-2).
   A tied model's head has no gradient of its own (it is the embedding's).

Prints a table per config and writes --out (JSON: versions, settings, every tensor's errors).
Exit status 0 if every bound holds, 1 if one does not, 2 on a setup error.
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_parity  # noqa: E402  (same directory: config mapping, random parameters, versions)

# Cases: (config, artifact model, weights). Weights "init:<scheme>" are drawn by
# xlc-random-weights --init <scheme>; "dir:<path>" is a checkpoint of the repository. Configs
# transformers can express (the test variants without soft caps it cannot: xLSTMConfig refuses
# gate_soft_cap null): the tiny model (untied, 4 heads of 8/16), the byte-level Shakespeare model
# (vocabulary 256, 6 blocks, heads of 48/96) and xLSTM 125M (tied, 12 blocks).
CASES = {
    "tiny": ("models/xlstm-tiny/config.json", "xlstm-tiny", "init:test"),
    "125m": ("models/xlstm-125m/config.json", "xlstm-125m", "init:test"),
    "shakespeare-init": ("models/xlstm-shakespeare/config.json", "xlstm-shakespeare",
                         "init:xlstm-7b"),
    "shakespeare-trained": ("models/xlstm-shakespeare/config.json", "xlstm-shakespeare",
                            "dir:models/xlstm-shakespeare"),
}
BOUND_CPU = 1e-4
BOUND_CUDA_FACTOR, BOUND_CUDA_FLOOR = 2.0, 3e-2


def log(msg):
    print(f"[grad-parity] {msg}", file=sys.stderr, flush=True)


def write_token_file(path, ids, vocab):
    """runtime/train/TokenFile.h, one document."""
    id_bytes = 2 if vocab <= 65536 else 4
    header = b"XLCTOKS\0" + struct.pack("<IIQQQ", 1, id_bytes, vocab, len(ids), 1)
    header += b"\0" * (64 - len(header))
    with open(path, "wb") as f:
        f.write(header)
        f.write(np.asarray(ids, dtype="<u2" if id_bytes == 2 else "<u4").tobytes())
        f.write(struct.pack("<Q", 0))


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise RuntimeError(f"{path}: {name} is {info['dtype']}, expected F32")
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(info["shape"])
    return out, meta


def rel_l2(x, ref):
    x = np.asarray(x, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    den = float(np.linalg.norm(ref))
    num = float(np.linalg.norm(x - ref))
    return num / den if den > 0 else (0.0 if num == 0 else math.inf)


def hf_gradients(model, rows, autocast):
    import torch
    import torch.nn.functional as F
    model.zero_grad(set_to_none=True)
    batch = torch.from_numpy(rows).to("cuda")
    if autocast:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=batch[:, :-1], use_cache=False).logits
    else:
        logits = model(input_ids=batch[:, :-1], use_cache=False).logits
    loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
    loss.backward()
    grads = {name: p.grad.detach().double().cpu().numpy()
             for name, p in model.named_parameters() if p.grad is not None}
    return float(loss.item()), grads


def run_xlc(args, device, artifact, ckpt, tokens, out_file, work):
    cmd = [args.xlc_train, "--model", artifact, "--weights", ckpt, "--data", tokens,
           "--out", os.path.join(work, f"run-{device}"), "--device", device,
           "--batch", str(args.batch), "--seq", str(args.seq), "--val-fraction", "0",
           "--gradients-out", out_file, "--json", "-q"]
    start = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    grads, meta = read_safetensors(out_file)
    return grads, float(meta["loss"]), time.perf_counter() - start


def run_config(args, name):
    import torch
    from transformers import xLSTMConfig
    config_path, model_name, weights = CASES[name]
    artifact = os.path.join(args.artifacts, f"{model_name}-train.xlca")
    if not os.path.isfile(artifact):
        raise FileNotFoundError(f"{artifact} not found: compile it with xlc-compile "
                                f"{config_path} --training -o {artifact}")
    work = os.path.join(args.work, name)
    os.makedirs(work, exist_ok=True)
    kwargs, _ = hf_parity.config_kwargs_from_file(os.path.join(hf_parity.REPO, config_path))
    kwargs["mode"] = "train"
    config = xLSTMConfig(**kwargs)
    if weights.startswith("init:"):
        ckpt = os.path.join(work, "ckpt")
        subprocess.run([args.xlc_random_weights, os.path.join(hf_parity.REPO, config_path), ckpt,
                        "--seed", str(args.seed), "--dtype", "f32", "--init", weights[5:]],
                       check=True, capture_output=True, timeout=args.timeout)
    else:
        ckpt = os.path.join(hf_parity.REPO, weights[4:])
    model, problems = hf_parity.load_checkpoint(ckpt, torch.float32, "cuda", config=config)
    if problems:
        raise RuntimeError(f"loading {ckpt} into transformers: {problems}")
    tied = bool(kwargs.get("tie_word_embeddings"))
    if tied and model.lm_head.weight is not model.get_input_embeddings().weight:
        model.lm_head.weight = model.get_input_embeddings().weight
    model.train()

    vocab = int(config.vocab_size)
    rng = np.random.default_rng(args.seed)
    count = args.batch * args.seq + 1
    ids = rng.integers(3, vocab, size=count)
    tokens = os.path.join(work, "tokens.tok")
    write_token_file(tokens, ids, vocab)
    rows = np.stack([ids[i * args.seq:i * args.seq + args.seq + 1] for i in range(args.batch)])
    rows = rows.astype(np.int64)

    loss_ref, ref = hf_gradients(model, rows, autocast=False)
    loss_bf16, hf_bf16 = hf_gradients(model, rows, autocast=True)
    del model
    hf_parity.release_cuda()
    runs = {"cpu": run_xlc(args, "cpu", artifact, ckpt, tokens, os.path.join(work, "g-cpu.st"),
                           work),
            "cuda": run_xlc(args, "cuda", artifact, ckpt, tokens,
                            os.path.join(work, "g-cuda.st"), work)}
    names = sorted(ref)
    for dev, (grads, _, _) in runs.items():
        missing = sorted(set(names) ^ set(grads))
        if missing:
            raise RuntimeError(f"{dev}: tensors differ from transformers' parameters: {missing[:8]}")
    tensors = []
    ok = True
    for t in names:
        e_bf16 = rel_l2(hf_bf16[t], ref[t])
        e_cpu = rel_l2(runs["cpu"][0][t], ref[t])
        e_cuda = rel_l2(runs["cuda"][0][t], ref[t])
        bound_cuda = max(BOUND_CUDA_FACTOR * e_bf16, BOUND_CUDA_FLOOR)
        row_ok = e_cpu <= BOUND_CPU and e_cuda <= bound_cuda
        ok &= row_ok
        tensors.append({"tensor": t, "shape": list(ref[t].shape),
                        "norm": float(np.linalg.norm(ref[t])), "hf_bf16": e_bf16,
                        "xlc_cpu": e_cpu, "xlc_cuda": e_cuda, "bound_cuda": bound_cuda,
                        "ok": row_ok})
    losses = {"hf_fp32": loss_ref, "hf_bf16": loss_bf16, "xlc_cpu": runs["cpu"][1],
              "xlc_cuda": runs["cuda"][1]}
    loss_ok = (abs(losses["xlc_cpu"] - loss_ref) <= 1e-5 * max(1.0, loss_ref)
               and abs(losses["xlc_cuda"] - loss_ref) <= 1e-2 * max(1.0, loss_ref))
    ok &= loss_ok
    return {"config": name, "config_path": config_path, "weights": weights, "artifact": artifact,
            "tied": tied,
            "parameters": int(sum(ref[t].size for t in names)), "losses": losses,
            "loss_ok": loss_ok, "seconds": {d: r[2] for d, r in runs.items()},
            "worst": {k: max(tensors, key=lambda r: r[k])["tensor"]
                      for k in ("hf_bf16", "xlc_cpu", "xlc_cuda")},
            "max": {k: max(r[k] for r in tensors) for k in ("hf_bf16", "xlc_cpu", "xlc_cuda")},
            "tensors": tensors, "ok": ok}


def table(results):
    lines = ["| config | tensors | loss fp32 (HF) | loss xlc cpu / cuda | max rel. L2: xlc cpu "
             "| xlc cuda | HF bf16 | ok |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['config']} | error: {r['error'][:80]} |||||||")
            continue
        L, M = r["losses"], r["max"]
        lines.append(f"| {r['config']} | {len(r['tensors'])} | {L['hf_fp32']:.6f} | "
                     f"{L['xlc_cpu']:.6f} / {L['xlc_cuda']:.6f} | {M['xlc_cpu']:.2e} | "
                     f"{M['xlc_cuda']:.2e} | {M['hf_bf16']:.2e} | {'yes' if r['ok'] else 'NO'} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--xlc-train", required=True)
    ap.add_argument("--artifacts", required=True, help="folder of <model>-train.xlca")
    ap.add_argument("--xlc-random-weights", default=None,
                    help="default: xlc-random-weights beside --xlc-train")
    ap.add_argument("--configs", default=",".join(CASES), help="cases (CASES)")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=128,
                    help="tokens per sequence (a multiple of every config's chunk size: "
                         "transformers' native training kernel needs it)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--timeout", type=int, default=300, help="seconds per xlc-train call")
    ap.add_argument("--work", default="/tmp/xlc-grad-parity")
    ap.add_argument("--out", default=None, help="JSON report")
    args = ap.parse_args()
    for name in args.configs.split(","):
        if name not in CASES:
            sys.exit(f"hf_grad_parity: unknown case {name!r} (known: {', '.join(CASES)})")
    if not os.path.isfile(args.xlc_train):
        sys.exit(f"hf_grad_parity: --xlc-train {args.xlc_train} not found")
    if args.xlc_random_weights is None:
        args.xlc_random_weights = os.path.join(os.path.dirname(args.xlc_train),
                                               "xlc-random-weights")
    try:
        hf_parity.torch_setup()
    except ImportError as e:
        print(f"hf_grad_parity: {e}", file=sys.stderr)
        return 2
    results = []
    for name in args.configs.split(","):
        log(f"{name}: start")
        try:
            r = run_config(args, name)
        except Exception as e:  # noqa: BLE001  (reported per config, the others still run)
            r = {"config": name, "error": f"{type(e).__name__}: {e}", "ok": False}
        log(f"{name}: {'ok' if r['ok'] else 'FAILED'} {r.get('max', r.get('error'))}")
        results.append(r)
    report = {"versions": hf_parity.versions(), "settings": vars(args),
              "bounds": {"cpu": BOUND_CPU, "cuda_factor": BOUND_CUDA_FACTOR,
                         "cuda_floor": BOUND_CUDA_FLOOR},
              "results": results, "ok": all(r["ok"] for r in results)}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(hf_parity.sanitize(report), f, indent=1)
    print(table(results))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
