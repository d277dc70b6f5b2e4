#!/usr/bin/env python3
"""Hugging Face transformers' xLSTM on xlc-bench's cases (the side-by-side half of xlc-bench).

xlc-bench runs this script as its child process after its own cases (tools/xlc-bench/HfBench.h):

    python3 scripts/hf-bench.py --request REQUEST.json --out RESPONSE.json

The request names the checkpoint directory (the one xlc-bench measured), the device and dtype
(cuda: bfloat16, cpu: float32), the prompts' seed and vocabulary, repeats, warm-up repeats, the
decode block size and the cases ({"name", "kind": "prefill"|"decode", "batch", "prompt"}). The
model is loaded with from_pretrained from that directory, with the configuration that
test/parity/hf_parity.py uses for its oracle (the directory's config.json made into an
xLSTMConfig, native PyTorch kernels in inference mode: transformers' Triton path crashes on the
GPU machine). Per case, with the very token ids xlc-bench fed (prompt_ids below is xlc-bench's
promptToken):

  prefill  a repeat = model(input_ids [B, P], use_cache=True) and the argmax of the last
           position's logits, synchronised: transformers' time to first token (its forward
           computes the logits of every position, as generate() does)
  decode   prefill once (its time is reported as ttft_s), then blocks of decode_steps cached
           steps model(input_ids=[B, 1], cache_params=..., use_cache=True), each step's
           argmax copied to the host as generate() does for its stopping check; a repeat =
           one block

Times are time.perf_counter() around synchronised calls (the definition xlc-bench uses). Memory:
torch.cuda.max_memory_allocated() over the case (weights included) and the device's use
(mem_get_info) at its end. A case that fails (out of memory, say) gets an "error" and the next
one runs. The response is rewritten after every case (status "running" until the end), so a
run stopped by xlc-bench's --hf-timeout keeps what it measured.

Response: {"protocol": 1, "status": "ok"|"unavailable"|"failed"|"running", "reason",
"versions", "device", "load_seconds", "config", "cases": [{"name", "repeats_s", "warmup_s",
"ttft_s", "peak_allocated_bytes", "device_used_bytes", "error"}]}. Exit status 0 when the
response was written (whatever it says), 2 on usage errors.
"""

import argparse
import json
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PROTOCOL = 1
T0 = time.time()

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB


def log(msg):
    print(f"[hf-bench {time.time() - T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def splitmix64(x):
    x = (x + GOLDEN) & MASK64
    x = ((x ^ (x >> 30)) * MIX1) & MASK64
    x = ((x ^ (x >> 27)) * MIX2) & MASK64
    return x ^ (x >> 31)


def prompt_ids(seed, batch, length, vocab):
    """xlc-bench's prompts (tools/xlc-bench/Measure.h): token t of sequence i is
    3 + splitmix64(seed ^ (i * 2^32 + t)) mod (vocab - 3). A list of B lists of P ints."""
    if vocab <= 3:
        raise ValueError(f"vocabulary of {vocab} tokens: the prompts need more than 3")
    try:
        import numpy as np
    except ImportError:
        np = None
    if np is None or batch * length < 4096:
        return [[3 + splitmix64((seed ^ ((i << 32) | t)) & MASK64) % (vocab - 3)
                 for t in range(length)] for i in range(batch)]
    with np.errstate(over="ignore"):
        i = np.arange(batch, dtype=np.uint64)[:, None]
        t = np.arange(length, dtype=np.uint64)[None, :]
        x = np.uint64(seed & MASK64) ^ ((i << np.uint64(32)) | t)
        x = x + np.uint64(GOLDEN)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(MIX1)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(MIX2)
        x = x ^ (x >> np.uint64(31))
        return (np.uint64(3) + x % np.uint64(vocab - 3)).astype(np.int64).tolist()


class Response:
    def __init__(self, path):
        self.path = path
        self.doc = {"protocol": PROTOCOL, "status": "running", "reason": None, "versions": None,
                    "device": None, "load_seconds": None, "config": None, "cases": []}

    def write(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.doc, f, indent=1)
        os.replace(tmp, self.path)

    def finish(self, status, reason=None):
        self.doc["status"] = status
        self.doc["reason"] = reason
        self.write()


def measure_case(torch, model, case, req, device):
    """One case: its repeats (seconds), warm-up repeats, prefill time and memory."""
    cuda = device == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    batch, prompt, kind = int(case["batch"]), int(case["prompt"]), case["kind"]
    ids = torch.tensor(prompt_ids(int(req["seed"]), batch, prompt, int(req["vocab"])),
                       dtype=torch.long, device=device)
    reps, warmup, steps = int(req["reps"]), int(req["warmup"]), int(req["decode_steps"])
    out = {"name": case["name"], "repeats_s": [], "warmup_s": [], "ttft_s": None,
           "peak_allocated_bytes": None, "device_used_bytes": None, "error": None}
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()

    def prefill():
        sync()
        start = time.perf_counter()
        result = model(input_ids=ids, use_cache=True)
        token = result.logits[:, -1].argmax(-1)
        sync()
        return time.perf_counter() - start, result, token

    with torch.inference_mode():
        if kind == "prefill":
            for rep in range(warmup + reps):
                seconds, result, _ = prefill()
                del result
                (out["warmup_s"] if rep < warmup else out["repeats_s"]).append(seconds)
                log(f"{case['name']} {'warm-up' if rep < warmup else 'repeat'} {rep + 1}: "
                    f"{seconds * 1e3:.2f} ms")
            out["ttft_s"] = sorted(out["repeats_s"])[len(out["repeats_s"]) // 2]
        elif kind == "decode":
            seconds, result, token = prefill()
            out["ttft_s"] = seconds
            cache = result.cache_params
            del result
            for block in range(warmup + reps):
                sync()
                start = time.perf_counter()
                for _ in range(steps):
                    result = model(input_ids=token[:, None], cache_params=cache, use_cache=True)
                    cache = result.cache_params
                    token = result.logits[:, -1].argmax(-1)
                    token.cpu()  # generate() reads the ids on the host every step
                sync()
                seconds = time.perf_counter() - start
                (out["warmup_s"] if block < warmup else out["repeats_s"]).append(seconds)
                log(f"{case['name']} {'warm-up block' if block < warmup else 'block'} "
                    f"{block + 1}: {steps} steps in {seconds * 1e3:.1f} ms, "
                    f"{batch * steps / seconds:.1f} tokens/s")
            del cache
        else:
            raise ValueError(f"case {case['name']}: unknown kind {kind!r}")
    if cuda:
        sync()
        out["peak_allocated_bytes"] = float(torch.cuda.max_memory_allocated())
        free, total = torch.cuda.mem_get_info()
        out["device_used_bytes"] = float(total - free)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--request", required=True, help="the request JSON xlc-bench wrote")
    parser.add_argument("--out", required=True, help="where the response JSON goes")
    args = parser.parse_args()
    response = Response(args.out)
    try:
        with open(args.request) as f:
            req = json.load(f)
    except (OSError, ValueError) as e:
        response.finish("failed", f"cannot read the request {args.request}: {e}")
        return 0
    if req.get("protocol") != PROTOCOL:
        response.finish("failed", f"request protocol {req.get('protocol')!r}, this script "
                                  f"speaks {PROTOCOL}")
        return 0
    response.write()

    sys.path.insert(0, os.path.join(REPO, "test", "parity"))
    try:
        import torch
        import transformers  # noqa: F401
        from transformers import xLSTMConfig
        import hf_parity as hp
    except ImportError as e:
        response.finish("unavailable", f"cannot import torch/transformers/hf_parity with "
                                       f"{sys.executable}: {e}")
        return 0
    device = req["device"]
    if device == "cuda" and not torch.cuda.is_available():
        response.finish("unavailable", "torch sees no CUDA device")
        return 0
    response.doc["versions"] = hp.versions()
    response.doc["device"] = (torch.cuda.get_device_name(0) if device == "cuda" else "cpu")
    torch.set_grad_enabled(False)

    weights = req["weights"]
    try:
        kwargs, dropped = hp.config_kwargs_from_file(os.path.join(weights, "config.json"))
        config = xLSTMConfig(**kwargs)
        start = time.time()
        model, problems = hp.load_checkpoint(weights, getattr(torch, req["dtype"]), device,
                                             config=config)
        response.doc["load_seconds"] = time.time() - start
        response.doc["config"] = {"fields": hp.hf_fields(model.config),
                                  "dropped_legacy_keys": dropped}
        log(f"loaded {weights} in {response.doc['load_seconds']:.1f} s "
            f"({req['dtype']} on {device})")
        if problems:
            response.finish("failed", "from_pretrained: " + "; ".join(problems))
            return 0
        if int(model.config.vocab_size) != int(req["vocab"]):
            response.finish("failed", f"transformers' vocabulary is {model.config.vocab_size}, "
                                      f"the artifact's {req['vocab']}")
            return 0
    except Exception as e:  # noqa: BLE001 -- reported, not hidden
        traceback.print_exc()
        response.finish("failed", f"loading {weights}: {type(e).__name__}: {e}")
        return 0

    for case in req["cases"]:
        log(f"{case['name']}: {case['kind']}, batch {case['batch']}, {case['prompt']} tokens")
        try:
            result = measure_case(torch, model, case, req, device)
        except Exception as e:  # noqa: BLE001 -- out of memory and the like: this case only
            traceback.print_exc()
            result = {"name": case["name"], "repeats_s": [], "warmup_s": [],
                      "error": f"{type(e).__name__}: {e}"}
            if device == "cuda":
                torch.cuda.empty_cache()
        response.doc["cases"].append(result)
        response.write()
    response.finish("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
