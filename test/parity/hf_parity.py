#!/usr/bin/env python3
"""Hugging Face parity check of the xlc runtime: xlc-run's logits against transformers' xLSTM.

    python3 test/parity/hf_parity.py --xlc-run build-parity/tools/xlc-run/xlc-run \\
        [--configs tiny,7b,125m] [--tiny-artifact .parity/xlstm-tiny.xlca] \\
        [--7b-artifact .parity/xlstm-7b.xlca] [--125m-artifact .parity/xlstm-125m.xlca] \\
        [--out $OUT/parity.json] [--work /tmp/xlc-parity]

Runs on the GPU machine (torch, transformers >= 5 with xLSTMForCausalLM, safetensors, numpy), from
the repository root. test/parity/run_parity.sh builds xlc-run and calls this script once per config.

Method
------
For each config (tiny = models/xlstm-tiny/config.json, 7b = models/xlstm-7b/config.json,
125m = models/xlstm-125m/config.json, the one with tied embeddings):

1. Checkpoint. An xLSTMForCausalLM is built from the config with from_config (on the GPU, in the
   dtype it is saved in), then EVERY parameter is overwritten with seeded noise (one generator per
   parameter, seeded from --seed and the parameter's name, so the values do not depend on the
   order of named_parameters()):
     matrices (embedding, q/k/v, o-gate, FFN up/gate)    N(0, 2/(5d))      d = hidden size (small
                                                          init of xLSTM 7B)
     out_proj, proj_down (what each block adds to the    N(0, (2/(L sqrt d))^2), L = blocks: the
     residual stream)                                     7B's "Wang" init. With N(0, 2/(5d))
                                                          here too, 32 blocks made the random 7B
                                                          chaotic: HF's own bf16 and fp32 runs
                                                          disagreed completely (rel. L2 ~1) and
                                                          even HF fp32 cached decode vs full
                                                          forward drifted by 1e-3 (H200,
                                                          2026-11-30), so no comparison meant
                                                          anything
     input/forget gate weights                            N(0, (3/sqrt d)^2): the gate
                                                          pre-activations vary by about +-3 from
                                                          token to token
     input gate biases                                    -10 + N(0, 1)     (7B init: -10)
     forget gate biases                                   linspace(3, 6, heads) + N(0, 0.1^2)
                                                          (7B init: linspace(3, 6))
     norm weights                                         1 + N(0, 0.1^2)
     lm_head                                              N(0, (4/sqrt d)^2): logits spread
                                                          like a trained LM's (std about 4),
                                                          so the 30*tanh(x/30) soft cap is
                                                          exercised at the top
   With these gates the max-stabiliser m starts at 0 and decays with log sigmoid(f) per token;
   the input gate takes over after some hundred tokens in the fast-forgetting heads and after
   thousands in the slow ones, so the short cases test the exp(-m) lower bound of the
   denominator and the long ones the regime where the input gate sets m. Nothing is constant.
   It is saved with save_pretrained (safetensors): tiny and 125m in float32, 7b in bfloat16
   (13.7 GB, in 5 GB shards with an index, as the hub checkpoint is laid out) under --work. A
   checkpoint that this script already wrote with the same config, seed and dtype is reused
   (--rebuild makes a new one).
   Tied embeddings (125m): transformers 5 stores lm_head.weight even when tie_word_embeddings is
   true, and uses it as the LM head (issue 10); the randomisation above gives it values of its
   own. The "tied head" row records what the checkpoint stores (lm_head.weight, equal to the
   embedding or not) and which tensor the loaded HF model multiplies by; it FAILs when HF's head
   is not the tensor xlc reads (lm_head.weight when stored, else the embedding), and the logit
   rows then show the consequence.
2. Oracle. The saved directory is loaded back with from_pretrained (and, when it was just built,
   compared tensor by tensor with the built model: the oracle and xlc read the same weights).
   The model is run with native PyTorch kernels only (mode="inference",
   chunkwise--native_autograd, native_sequence__native, native step; no Triton), which handles
   any sequence length: whole chunks chunkwise, the remainder token by token with fp32 state.
   The oracle is one full forward (no cache) over P + F[0:32] in FLOAT32 (weights upcast; TF32
   off): its logits at positions L-1 .. L+31 are rows 0..32 of xlc-run's dump. The same forward
   in BFLOAT16 (bf16 weights) gives what bf16 itself implies. A self-check (hf-cache) compares
   the full forward with HF's own prefill + 32 cached decode steps for L=17 (fp32).
3. Cases. Prompt lengths 1, 17, 64, 1000, 2048 (and 8192 for tiny), each followed by 33 forced
   tokens (seeded, drawn from [3, V) to avoid the special ids 0..2), so xlc-run produces 33
   logit rows: row 0 from the prefill, rows 1..32 from 32 decode steps. tiny runs each length
   alone (batch 1) and, in a second call, all lengths < 2048 together as ONE batch of different
   prompt lengths. 7b runs each length alone (--7b-batched: one batch of all lengths).
4. xlc. `xlc-run --model A.xlca --weights DIR --prompt-ids IDS --force-tokens F --max-tokens 33
   --temperature 0 --ignore-eos --device cuda|cpu --dump-logits OUT.npy --json` (cuda for both
   configs, cpu for tiny). Each row is compared with the fp32 oracle by the relative L2 error
   ||x - ref||_2 / ||ref||_2 over the vocabulary; NaN or inf fails. Reported per case: the
   prefill row (0), max and median over the decode rows (1..32), and how many rows have the same
   argmax as the oracle.
5. Greedy (tiny, prompt of length 17, 64 tokens): HF generate(do_sample=False) in fp32 against
   xlc-run greedy (no forcing) on cpu and cuda: the number of identical leading tokens; at the
   first divergence, the oracle's logit margin between its token and xlc's.

Bounds (max over the 33 rows of a case)
------
  cpu  (tiny)  <= 1e-4. xlc's CPU backend is fp32 throughout, as is the oracle: only the order of
               summation differs (float32 epsilon 6e-8 per operation, amplified modestly by the
               exp gates and the normalisations over 2 blocks and up to 8224 steps); 1e-4 leaves
               two orders of magnitude for that and still catches any real mistake (a wrong op,
               position or gate convention gives errors of 1e-2 .. 1).
  cuda         <= max(1.5 x E_bf16, 2e-2) for both configs, where E_bf16 is the max over the
               case's rows of HF's OWN bf16 forward against its fp32 forward: what running this
               model in bf16 implies, measured, not guessed. xlc keeps weights and activations in
               bf16 (unit roundoff 2^-9 = 2e-3) with fp32 state, gate pre-activations and
               accumulation, so it should be about as close to the fp32 truth as HF's bf16 run or
               closer; 1.5 allows a different but equally valid order of roundings, the 2e-2
               floor covers cases where HF's bf16 happens to be lucky. A fixed bound would not
               do: random-weight models have nearly flat logits, and the tiny model's bf16 error
               is 3e-2 .. 1.6e-1 in HF itself (measured on the H200, 2026-11-30), far above the
               naive estimate of ~10 roundings of 2e-3 per block. Structural errors (a wrong op,
               position or gate convention) are O(1), far above any of these bounds.
  hf-cache     <= 1e-4 (fp32 HF against itself; measured 6e-7 on a tiny model before).
  greedy       cpu must reproduce all 64 tokens (fp32; a flip needs a logit tie within ~1e-5);
               cuda is reported only (bf16 may diverge at a near-tie; the margin is printed).

Output: progress lines, then a compact table (printed last); full results in --out (JSON,
rewritten after every case, so a run cut short still leaves its results). Both carry the
provenance (the JSON's "provenance", the table's first line): the file $XLC_PROVENANCE written by
test/gpu/provenance.sh (git commit, clean or dirty, device-header hash of the binaries; set by
run_parity.sh and run_bundle.sh), else the git commit of this checkout; and each artifact's own
device_headers_hash. Exit status: 0 when
every bound holds, 1 when any case failed, 2 on a usage or setup error.
"""

import argparse
import copy
import gc
import hashlib
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
import zlib

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT_VERSION = 3

CONFIG_PATHS = {"tiny": "models/xlstm-tiny/config.json", "7b": "models/xlstm-7b/config.json",
                "125m": "models/xlstm-125m/config.json"}
DEFAULT_ARTIFACTS = {"tiny": ".parity/xlstm-tiny.xlca", "7b": ".parity/xlstm-7b.xlca",
                     "125m": ".parity/xlstm-125m.xlca"}
SPECS = {
    "tiny": {"lengths": [1, 17, 64, 1000, 2048, 8192], "save_dtype": "float32",
             "devices": ["cuda", "cpu"], "batch_below": 2048, "greedy": True, "shard": None},
    "7b": {"lengths": [1, 17, 64, 1000, 2048], "save_dtype": "bfloat16",
           "devices": ["cuda", "cpu"], "batch_below": None, "greedy": False, "shard": "5GB",
           # The fp32 CPU backend on the 7B: short prompts only (27 GB of fp32 weights, every
           # decode step reads them all), one batched call.
           "cpu_lengths": [1, 17, 64],
           # Gate weights at the 7B's small init: with 3/sqrt(d) the random 7B is chaotic (HF's
           # own bf16 vs fp32 differ by ~0.9 at every position; init_sensitivity.py, H200,
           # 2026-11-30), with sqrt(2/(5d)) by ~0.17.
           "gate_preact_std": math.sqrt(2.0 / 5.0)},
    # Tied embeddings, 12 blocks: the LM head read from the stored lm_head.weight (issue 10).
    "125m": {"lengths": [1, 17, 64, 1000], "save_dtype": "float32", "devices": ["cuda", "cpu"],
             "batch_below": 1000, "greedy": False, "shard": None, "cpu_lengths": [1, 17, 64]},
}

# The HF kernel choice: native PyTorch only (Triton crashes on the GPU machine, build-notes.md).
# mode="inference" runs whole chunks chunkwise and the remainder step by step (any length);
# "train" needs a multiple of chunk_size and "train_with_padding" cannot return states.
HF_KERNEL_FIELDS = {
    "mode": "inference",
    "chunkwise_kernel": "chunkwise--native_autograd",
    "sequence_kernel": "native_sequence__native",
    "step_kernel": "native",
    "return_last_states": True,
    "inference_state_dtype": "float32",
    "autocast_kernel_dtype": "float32",  # unused by the native kernels; no downcast either way
    "max_inference_chunksize": 16384,    # > the longest sequence (8192 + 32): one pass
}
# Keys of the original NX-AI config.json that are not xLSTMConfig fields (dropped, listed).
LEGACY_KEYS = {
    "_name_or_path", "model_type", "torch_dtype", "dtype", "transformers_version",
    "forward_backend_name", "step_backend_name", "add_embedding_dropout",
    "add_forward_backend_padding", "add_post_blocks_norm", "add_post_norm", "add_qk_norm",
    "cell_norm_eps", "force_bos_token_insert", "head_dim", "igate_bias_init_range",
    "mlstm_round_up_to_multiple_of",
}
REPORTED_HF_FIELDS = ["hidden_size", "num_hidden_layers", "num_heads", "vocab_size", "chunk_size",
                      "qk_dim_factor", "v_dim_factor", "ffn_proj_factor", "weight_mode",
                      "tie_word_embeddings", "gate_soft_cap", "output_logit_soft_cap", "eps",
                      "norm_eps"] + list(HF_KERNEL_FIELDS)

# Random weights (see the module docstring).
GATE_PREACT_STD = 3.0
LM_HEAD_LOGIT_STD = 4.0
IGATE_BIAS, IGATE_BIAS_NOISE = -10.0, 1.0
FGATE_BIAS_RANGE, FGATE_BIAS_NOISE = (3.0, 6.0), 0.1
NORM_WEIGHT_NOISE = 0.1
WANG_INIT = True  # out_proj/proj_down at 2/(L sqrt d); test/parity/init_sensitivity.py varies it
OTHER_BIAS_NOISE = 0.02

# Bounds on the relative L2 error of a row, max over the rows of a case.
BOUND_CPU = 1e-4
BOUND_CUDA_FACTOR, BOUND_CUDA_FLOOR = 1.5, 2e-2
BOUND_HF_SELF = 1e-4
BOUND_TEXT = {
    "cpu": "tiny on cpu (fp32 vs HF fp32): rel. L2 <= 1e-4 per row (summation order only)",
    "cuda": "cuda (bf16 weights/activations, fp32 state and gates): rel. L2 <= max(1.5 x E_bf16, "
            "2e-2) per case, E_bf16 = max over the case's rows of HF's own bf16 forward against "
            "its fp32 forward",
    "hf-cache": "HF fp32 prefill + cached decode vs HF fp32 full forward: <= 1e-4",
    "greedy": "tiny greedy 64 tokens from a 17-token prompt: cpu must match all 64; cuda reported",
}

T0 = time.time()


class Interrupted(Exception):
    """Raised by the SIGTERM handler (an outer `timeout`) so the results written so far survive."""


def log(msg):
    print(f"[hf_parity {time.time() - T0:7.1f}s] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# Small helpers (no torch)
# ---------------------------------------------------------------------------------------------

def finite_or_str(x):
    """JSON-safe float: non-finite values become strings."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else str(x)


def sanitize(obj):
    """A copy of obj that strict JSON accepts: numpy scalars as Python numbers, non-finite
    floats as strings."""
    if isinstance(obj, dict):
        return {str(k): sanitize(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [sanitize(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return finite_or_str(obj)
    return obj


def make_tokens(seed, kind, length, vocab):
    """Seeded token ids in [3, vocab): kind 1 = prompts, 2 = forced tokens."""
    rng = np.random.default_rng([seed, kind, length])
    return [int(t) for t in rng.integers(3, vocab, size=length)]


def rel_l2_rows(x, ref):
    """Per-row ||x - ref|| / ||ref|| in float64; a row with NaN/inf in x gets inf."""
    x64 = np.asarray(x, dtype=np.float64)
    r64 = np.asarray(ref, dtype=np.float64)
    if x64.shape != r64.shape:
        raise ValueError(f"shape {x64.shape} vs reference {r64.shape}")
    finite = np.isfinite(x64).all(axis=-1)
    diff = np.where(np.isfinite(x64), x64 - r64, 0.0)
    err = np.linalg.norm(diff, axis=-1) / np.maximum(np.linalg.norm(r64, axis=-1), 1e-30)
    err[~finite] = np.inf
    return err


def summarize_rows(err, x=None, ref=None):
    """prefill (row 0), decode max/median (rows 1..), overall max, argmax agreement."""
    out = {"rows": int(err.shape[0]), "prefill": float(err[0]),
           "decode_max": float(err[1:].max()) if err.shape[0] > 1 else None,
           "decode_median": float(np.median(err[1:])) if err.shape[0] > 1 else None,
           "max": float(err.max()), "per_row": [finite_or_str(e) for e in err]}
    if x is not None and ref is not None:
        out["top1_agree"] = int((np.argmax(np.nan_to_num(x, nan=-np.inf), axis=-1)
                                 == np.argmax(ref, axis=-1)).sum())
    return out


def parse_json_stdout(text):
    """The JSON object xlc-run printed: the whole stdout, else the first line starting with '{'
    from which a whole object parses (the outermost one: xlc-run pretty-prints, so inner objects
    also start lines, but later)."""
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    starts = [m.start() for m in re.finditer(r"(?m)^[ \t]*\{", text)]
    for start in starts:
        try:
            obj, _ = decoder.raw_decode(text[start:].lstrip())
            if isinstance(obj, dict):
                return obj
        except ValueError:
            continue
    return None


def _as_ids(value):
    if isinstance(value, list) and all(isinstance(t, int) for t in value):
        return value
    if isinstance(value, dict):
        for key in ("ids", "token_ids", "tokens"):
            if key in value:
                return _as_ids(value[key])
    return None


def find_generated(doc):
    """Per-sequence generated ids from xlc-run's JSON: every value under a "generated" key, in
    document order (a list of lists, or one list per sequence object). None if not found."""
    found = []

    def walk(obj):
        if isinstance(obj, dict):
            for key, value in obj.items():
                if key == "generated":
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(obj, list):
            for value in obj:
                walk(value)

    walk(doc)
    if len(found) == 1 and isinstance(found[0], list) and found[0] and \
            all(isinstance(v, (list, dict)) for v in found[0]):
        seqs = [_as_ids(v) for v in found[0]]
        return seqs if all(s is not None for s in seqs) else None
    seqs = [_as_ids(v) for v in found]
    if seqs and all(s is not None for s in seqs):
        return seqs
    # Fallback: {"sequences": [{"tokens": [...]}, ...]} or similar.
    for key in ("sequences", "results", "outputs"):
        entries = doc.get(key) if isinstance(doc, dict) else None
        if isinstance(entries, list) and entries:
            seqs = [_as_ids(e) for e in entries]
            if all(s is not None for s in seqs):
                return seqs
    return None


def leading_identical(a, b):
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def tail(path, lines=25):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def read_provenance():
    """The provenance block of this run as a dict (test/gpu/provenance.sh's "key: value" lines):
    from the file $XLC_PROVENANCE, which run_parity.sh and run_bundle.sh set (the git commit the
    binaries were built from, clean or dirty, the device-header hash they embed), else only the
    git commit of this checkout. Unknown values say so; nothing is left out."""
    out = {}
    path = os.environ.get("XLC_PROVENANCE")
    if path:
        try:
            with open(path) as f:
                for line in f:
                    key, sep, value = line.rstrip("\n").partition(": ")
                    if sep and key not in out:
                        out[key] = value
        except OSError as e:
            out["provenance_error"] = f"cannot read XLC_PROVENANCE={path}: {e}"
    if "commit" not in out:
        try:
            git = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True,
                                 text=True, timeout=30)
            commit = git.stdout.strip() if git.returncode == 0 else ""
        except (OSError, subprocess.SubprocessError):
            commit = ""
        out["commit"] = commit or "unknown (no XLC_PROVENANCE and no git checkout)"
        out["commit_source"] = "git" if commit else "none"
    out.setdefault("device_headers_hash", "unknown (no XLC_PROVENANCE)")
    return out


def artifact_headers_hash(path):
    """The device_headers_hash of an .xlca artifact (32-byte header, then the JSON payload), or
    None when the file cannot be read."""
    try:
        with open(path, "rb") as f:
            header = f.read(32)
            if len(header) != 32 or header[:8] != b"XLCARTF\0":
                return None
            length = int.from_bytes(header[16:24], "little")
            return json.loads(f.read(length)).get("device_headers_hash")
    except (OSError, ValueError):
        return None


def provenance_line(prov):
    return (f"provenance: commit {prov.get('commit')}; tree {prov.get('tree', 'unknown')}; "
            f"device headers {prov.get('device_headers_hash')}")


def write_ids(path, seqs):
    with open(path, "w") as f:
        for seq in seqs:
            f.write(" ".join(str(t) for t in seq) + "\n")


# ---------------------------------------------------------------------------------------------
# Results: the JSON document and the table
# ---------------------------------------------------------------------------------------------

class Results:
    def __init__(self, path, argv):
        self.path = path
        self.doc = {"script": "test/parity/hf_parity.py", "script_version": SCRIPT_VERSION,
                    "argv": argv, "provenance": read_provenance(), "bounds": BOUND_TEXT,
                    "versions": {}, "configs": {},
                    "cases": [], "greedy": [], "errors": [], "ok": None}

    def config(self, name):
        return self.doc["configs"].setdefault(name, {"timings_s": {}})

    def add_case(self, row):
        self.doc["cases"].append(row)
        self.write()

    def add_greedy(self, row):
        self.doc["greedy"].append(row)
        self.write()

    def error(self, config, what):
        log(f"ERROR ({config}): {what}")
        self.doc["errors"].append({"config": config, "error": what})
        self.write()

    def failed(self):
        bad = [c for c in self.doc["cases"] + self.doc["greedy"] if c["status"] == "FAIL"]
        return bool(bad or self.doc["errors"])

    def write(self):
        self.doc["ok"] = not self.failed()
        self.doc["elapsed_s"] = round(time.time() - T0, 1)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(sanitize(self.doc), f, indent=1)
        os.replace(tmp, self.path)

    def table(self):
        def e(x):
            return "-" if x is None else (f"{x:.1e}" if isinstance(x, float) else str(x))

        lines = ["==== parity summary (hf_parity.py) ====",
                 provenance_line(self.doc["provenance"]),
                 f"{'case':22s} {'device':8s} {'rows':>4s} {'prefill':>8s} {'dec.max':>8s} "
                 f"{'dec.med':>8s} {'top1':>6s} {'bound':>8s}  status"]
        for c in self.doc["cases"]:
            top1 = f"{c['top1_agree']}/{c['rows']}" if c.get("top1_agree") is not None else "-"
            lines.append(f"{c['case']:22s} {c['device']:8s} {c.get('rows') or '-':>4} "
                         f"{e(c.get('prefill')):>8s} {e(c.get('decode_max')):>8s} "
                         f"{e(c.get('decode_median')):>8s} {top1:>6s} {e(c.get('bound')):>8s}  "
                         f"{c['status']}" + (f"  ({c['note']})" if c.get("note") else ""))
        if self.doc["greedy"]:
            lines.append("")
            lines.append(f"{'greedy':22s} {'device':8s} {'identical leading tokens':26s} status")
            for g in self.doc["greedy"]:
                ident = (f"{g['identical']}/{g['tokens']}" if g.get("identical") is not None
                         else "-")
                lines.append(f"{g['case']:22s} {g['device']:8s} {ident:26s} {g['status']}"
                             + (f"  ({g['note']})" if g.get("note") else ""))
        for err in self.doc["errors"]:
            lines.append(f"ERROR {err['config']}: {err['error']}")
        lines.append("bounds: " + "; ".join(BOUND_TEXT[k] for k in ("cpu", "cuda")))
        lines.append(f"overall: {'PASS' if not self.failed() else 'FAIL'} "
                     f"({time.time() - T0:.0f} s); full results: {self.path}")
        lines.append("==== end of parity summary ====")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Hugging Face side (torch imported lazily so the helpers above load anywhere)
# ---------------------------------------------------------------------------------------------

def torch_setup():
    import torch
    # The oracle is IEEE fp32: no TF32 in its matmuls ("highest" is torch's default already;
    # set it anyway, through the one API that every torch 2.x has, so that nothing inherited
    # from the environment changes it). Recorded in the JSON (versions.float32_matmul_precision).
    try:
        torch.set_float32_matmul_precision("highest")
    except Exception:  # noqa: BLE001
        pass
    return torch


def versions():
    import torch
    import transformers
    out = {"python": platform.python_version(), "torch": torch.__version__,
           "torch_cuda": torch.version.cuda, "transformers": transformers.__version__,
           "numpy": np.__version__}
    try:
        import safetensors
        out["safetensors"] = safetensors.__version__
    except ImportError:
        out["safetensors"] = None
    try:
        out["float32_matmul_precision"] = torch.get_float32_matmul_precision()
    except Exception:  # noqa: BLE001
        pass
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
        free, total = torch.cuda.mem_get_info()
        out["gpu_memory_gib"] = round(total / 2**30, 1)
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
        if smi.returncode == 0 and smi.stdout.strip():
            out["nvidia_smi"] = smi.stdout.strip().splitlines()[0]
            out["driver"] = out["nvidia_smi"].split(",")[-1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        from transformers.models.xlstm import modeling_xlstm
        out["hf_external_xlstm_package"] = bool(getattr(modeling_xlstm, "external_xlstm", False))
    except Exception:  # noqa: BLE001
        pass
    try:
        git = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=30)
        if git.returncode == 0:
            out["repo_commit"] = git.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def config_kwargs(name):
    """xLSTMConfig keyword arguments from the repo's config.json plus the native kernel fields."""
    return config_kwargs_from_file(os.path.join(REPO, CONFIG_PATHS[name]))


def config_kwargs_from_file(path):
    """xLSTMConfig keyword arguments from any config.json (an NX-AI one as in models/, or one
    save_pretrained wrote) plus the native kernel fields; also the legacy keys dropped."""
    with open(path) as f:
        raw = json.load(f)
    dropped = sorted(k for k in raw if k in LEGACY_KEYS)
    kwargs = {k: v for k, v in raw.items() if k not in LEGACY_KEYS}
    # The NX-AI config names the sizes embedding_dim/num_blocks only; xLSTMConfig's hidden_size
    # and num_hidden_layers have defaults that would otherwise win.
    if "hidden_size" not in kwargs and "embedding_dim" in kwargs:
        kwargs["hidden_size"] = kwargs["embedding_dim"]
    if "num_hidden_layers" not in kwargs and "num_blocks" in kwargs:
        kwargs["num_hidden_layers"] = kwargs["num_blocks"]
    kwargs.update(HF_KERNEL_FIELDS)
    return kwargs, dropped


def hf_fields(config):
    return {k: getattr(config, k, None) for k in REPORTED_HF_FIELDS}


def param_seed(seed, name):
    return (seed * 1_000_003 + zlib.crc32(name.encode())) & 0x7FFF_FFFF_FFFF_FFFF


def randomize_parameters(model, config, seed, gate_preact_std=None, lm_head_logit_std=None,
                         igate_bias=None, igate_bias_noise=None):
    """Overwrites every parameter with seeded noise (module docstring, step 1). The keyword
    arguments replace the module's constants of the same names (hf_grad_parity.py draws a
    better-conditioned model with them)."""
    import torch
    gate_std = GATE_PREACT_STD if gate_preact_std is None else gate_preact_std
    head_std = LM_HEAD_LOGIT_STD if lm_head_logit_std is None else lm_head_logit_std
    ibias = IGATE_BIAS if igate_bias is None else igate_bias
    ibias_noise = IGATE_BIAS_NOISE if igate_bias_noise is None else igate_bias_noise
    d = int(config.hidden_size)
    heads = int(config.num_heads)
    small = math.sqrt(2.0 / (5.0 * d))
    blocks = int(getattr(config, "num_hidden_layers", None) or getattr(config, "num_blocks"))
    wang = 2.0 / (blocks * math.sqrt(d))
    names = []
    with torch.no_grad():
        for name, p in model.named_parameters():
            gen = torch.Generator(device=p.device)
            gen.manual_seed(param_seed(seed, name))
            z = torch.randn(tuple(p.shape), generator=gen, device=p.device, dtype=torch.float32)
            fbias = torch.linspace(FGATE_BIAS_RANGE[0], FGATE_BIAS_RANGE[1], heads,
                                   device=p.device, dtype=torch.float32)
            if name.endswith("ifgate_preact.bias"):  # weight_mode "fused": [i | f]
                value = torch.cat([ibias + ibias_noise * z[:heads],
                                   fbias + FGATE_BIAS_NOISE * z[heads:]])
            elif name.endswith("igate_preact.bias"):
                value = ibias + ibias_noise * z
            elif name.endswith("fgate_preact.bias"):
                value = fbias + FGATE_BIAS_NOISE * z
            elif name.endswith(("igate_preact.weight", "fgate_preact.weight")):
                value = z * (gate_std / math.sqrt(d))  # also matches ifgate_preact
            elif name == "lm_head.weight":
                value = z * (head_std / math.sqrt(d))
            elif WANG_INIT and name.endswith(("out_proj.weight", "proj_down.weight")):
                value = z * wang
            elif p.dim() == 1 and name.endswith(".weight"):
                value = 1.0 + NORM_WEIGHT_NOISE * z
            elif p.dim() == 1:
                value = OTHER_BIAS_NOISE * z
            else:
                value = z * small
            p.copy_(value.to(p.dtype))
            names.append(name)
            del z, value
    return names


def build_model(config, dtype, device):
    import torch
    from transformers import AutoModelForCausalLM
    with torch.device(device):  # allocate (and init) on the GPU: the 7b would take minutes on CPU
        try:
            model = AutoModelForCausalLM.from_config(config, dtype=dtype)
        except TypeError:
            try:
                model = AutoModelForCausalLM.from_config(config, torch_dtype=dtype)
            except TypeError:
                model = AutoModelForCausalLM.from_config(config)
    model.to(device=device, dtype=dtype)
    model.eval()
    return model


def save_checkpoint(model, directory, shard):
    if os.path.isdir(directory):
        shutil.rmtree(directory)
    os.makedirs(directory)
    kwargs = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(directory, **kwargs)  # safetensors: the only format of transformers 5
    files = sorted(f for f in os.listdir(directory) if f.endswith(".safetensors"))
    if not files:
        raise RuntimeError(f"save_pretrained wrote no .safetensors file into {directory}: "
                           f"{sorted(os.listdir(directory))}")
    return files


def load_checkpoint(directory, dtype, device, config=None):
    """from_pretrained onto the GPU (with |config| instead of the directory's, if given);
    returns (model, problems with the loading info)."""
    from transformers import AutoModelForCausalLM
    kwargs = {"dtype": dtype, "output_loading_info": True}
    if config is not None:
        kwargs["config"] = config
    try:
        loaded = AutoModelForCausalLM.from_pretrained(directory, device_map=device, **kwargs)
    except (TypeError, ValueError, ImportError) as e:
        log(f"from_pretrained(device_map={device!r}) failed ({type(e).__name__}: {e}); "
            "loading on the CPU and moving")
        loaded = AutoModelForCausalLM.from_pretrained(directory, **kwargs)
    model, info = (loaded if isinstance(loaded, tuple) else (loaded, {}))
    model.to(device=device, dtype=dtype)
    model.eval()
    problems = []
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        value = info.get(key) if isinstance(info, dict) else None
        if value:
            problems.append(f"{key}: {list(value)[:8]}")
    return model, problems


def compare_models(built, loaded):
    """Names of parameters whose loaded value differs from the built one (bit for bit)."""
    import torch
    loaded_params = dict(loaded.named_parameters())
    bad = []
    with torch.no_grad():
        for name, p in built.named_parameters():
            q = loaded_params.get(name)
            if q is None or q.shape != p.shape or not torch.equal(q.to(p.dtype), p):
                bad.append(name)
    return bad


def hf_rows(model, prompt, forced, n_rows, device):
    """Logits of one full forward (no cache) over prompt + forced[:n_rows-1] at positions
    L-1 .. L-2+n_rows, as float32 numpy [n_rows, V]."""
    import torch
    ids = list(prompt) + list(forced[: n_rows - 1])
    x = torch.tensor([ids], dtype=torch.long, device=device)
    with torch.inference_mode():
        logits = model(input_ids=x, use_cache=False).logits
        if tuple(logits.shape[:2]) != (1, len(ids)):
            raise RuntimeError(f"HF logits shape {tuple(logits.shape)} for {len(ids)} tokens")
        start = len(prompt) - 1
        rows = logits[0, start:start + n_rows].float().cpu().numpy()
    del logits
    return rows


def hf_cached_rows(model, prompt, forced, n_rows, device):
    """HF prefill of the prompt with a cache, then n_rows-1 single-token cached steps fed the
    forced tokens: the same structure as xlc-run's rows."""
    import torch
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([list(prompt)], device=device), use_cache=True)
        rows = [out.logits[0, -1].float().cpu().numpy()]
        cache = out.cache_params
        for i in range(n_rows - 1):
            out = model(input_ids=torch.tensor([[forced[i]]], device=device),
                        cache_params=cache, use_cache=True)
            cache = out.cache_params
            rows.append(out.logits[0, -1].float().cpu().numpy())
    return np.stack(rows)


def hf_greedy_generate(model, prompt, n, device):
    """HF generate(do_sample=False, max_new_tokens=n) with EOS stopping switched off."""
    import torch
    gen_config = model.generation_config
    saved = copy.deepcopy(gen_config)
    try:
        gen_config.eos_token_id = None
        for key in ("temperature", "top_p", "top_k"):
            if hasattr(gen_config, key):
                setattr(gen_config, key, None)
        x = torch.tensor([list(prompt)], device=device)
        with torch.inference_mode():
            out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), do_sample=False,
                                 max_new_tokens=n, pad_token_id=model.config.pad_token_id)
        return [int(t) for t in out[0, len(prompt):].tolist()]
    finally:
        model.generation_config = saved


def hf_greedy_forward(model, prompt, n, device):
    """Greedy decoding by repeated full forwards (argmax of the last position): the same
    model's argmax without generate()'s machinery."""
    import torch
    ids = list(prompt)
    out = []
    with torch.inference_mode():
        for _ in range(n):
            logits = model(input_ids=torch.tensor([ids], device=device), use_cache=False).logits
            tok = int(torch.argmax(logits[0, -1]).item())
            out.append(tok)
            ids.append(tok)
    return out


def release_cuda():
    """Returns cached GPU memory once the caller has dropped its last reference to a model."""
    import torch
    gc.collect()
    torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------
# xlc side
# ---------------------------------------------------------------------------------------------

def run_xlc(args, name, tag, device, artifact, weights, prompts, forced, n_tokens, xlc_log):
    """One xlc-run call. Returns a dict: ok, error, logits ([N, B, V] or None), generated,
    stats, seconds, cmd."""
    work = os.path.join(args.work, "xlc", name, f"{tag}-{device}")
    os.makedirs(work, exist_ok=True)
    ids_path = os.path.join(work, "prompt_ids.txt")
    write_ids(ids_path, prompts)
    cmd = [args.xlc_run, "--model", artifact, "--weights", weights, "--prompt-ids", ids_path]
    npy = None
    if forced is not None:
        forced_path = os.path.join(work, "forced.txt")
        write_ids(forced_path, forced)
        npy = os.path.join(work, "logits.npy")
        if os.path.exists(npy):
            os.remove(npy)
        cmd += ["--force-tokens", forced_path]
    cmd += ["--max-tokens", str(n_tokens), "--temperature", "0", "--ignore-eos",
            "--device", device, "--json"]
    if npy:
        cmd += ["--dump-logits", npy]
    if args.xlc_max_seq:
        cmd += ["--max-seq", str(args.xlc_max_seq)]
    cmd += args.xlc_arg
    out_path = os.path.join(work, "stdout.txt")
    err_path = os.path.join(work, "stderr.txt")
    result = {"cmd": " ".join(cmd), "ok": False, "error": None, "logits": None,
              "generated": None, "stats": None, "seconds": None}
    log(f"xlc-run {name} {tag} on {device}: {len(prompts)} sequence(s), lengths "
        f"{[len(p) for p in prompts]}, {n_tokens} tokens")
    t = time.time()
    rc = None
    try:
        with open(out_path, "w") as fo, open(err_path, "w") as fe:
            proc = subprocess.run(cmd, stdout=fo, stderr=fe, cwd=REPO, timeout=args.xlc_timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        result["error"] = f"timed out after {args.xlc_timeout} s"
    except OSError as e:
        result["error"] = f"could not start: {e}"
    result["seconds"] = round(time.time() - t, 2)
    result["rc"] = rc
    with open(out_path, errors="replace") as f:
        stdout = f.read()
    with open(xlc_log, "a") as f:
        f.write(f"\n==== {name} {tag} {device}: rc {rc}, {result['seconds']} s\n$ {result['cmd']}\n")
        f.write("---- stderr (last lines)\n" + tail(err_path, 40))
        f.write("---- stdout (first 4000 characters)\n" + stdout[:4000] + "\n")
    if result["error"] is None and rc != 0:
        last = [line for line in tail(err_path, 5).splitlines() if line.strip()]
        what = f"killed by signal {-rc}" if rc < 0 else f"exit {rc}"
        result["error"] = what + (f": {last[-1].strip()[:300]}" if last else "")
    if result["error"]:
        log(f"  xlc-run FAILED ({result['error']}); stderr tail:\n{tail(err_path, 15)}")
        return result
    doc = parse_json_stdout(stdout)
    if doc is None:
        result["error"] = "no JSON object on stdout"
        return result
    result["stats"] = doc.get("stats") if isinstance(doc, dict) else None
    result["generated"] = find_generated(doc)
    if npy:
        if not os.path.exists(npy):
            result["error"] = f"--dump-logits wrote no {npy}"
            return result
        try:
            arr = np.load(npy)
        except (OSError, ValueError) as e:
            result["error"] = f"cannot read {npy}: {e}"
            return result
        batch = len(prompts)
        if arr.ndim == 2 and batch == 1:
            arr = arr[:, None, :]
        if arr.ndim != 3 or arr.shape[0] != n_tokens or arr.shape[1] != batch:
            result["error"] = (f"logits dump has shape {arr.shape}, expected "
                               f"[{n_tokens}, {batch}, V]")
            return result
        result["logits"] = arr.astype(np.float32, copy=False)
    result["ok"] = True
    log(f"  ok in {result['seconds']} s; stats {json.dumps(result['stats'])[:300]}")
    return result


def xlc_case_rows(results, name, case, device, call, b, length, ref, bound, note=""):
    """Compares sequence b of an xlc-run call with the oracle rows and records the case."""
    row = {"config": name, "case": case, "device": device, "length": length, "bound": bound,
           "xlc": {k: call.get(k) for k in ("cmd", "seconds", "stats", "rc")}}
    if not call["ok"]:
        row.update({"status": "FAIL", "note": f"xlc-run: {call['error']}", "rows": None})
        results.add_case(row)
        return
    x = call["logits"][:, b, :]
    if x.shape[-1] != ref.shape[-1]:
        row.update({"status": "FAIL", "rows": None,
                    "note": f"vocab {x.shape[-1]} in the dump, {ref.shape[-1]} in HF"})
        results.add_case(row)
        return
    err = rel_l2_rows(x, ref)
    row.update(summarize_rows(err, x, ref))
    ok = bool(np.isfinite(err).all() and err.max() <= bound)
    row["status"] = "PASS" if ok else "FAIL"
    notes = [note] if note else []
    if device == "cuda" and bound > 5e-2:
        notes.append("loose bound: HF's own bf16 error is large here")
    if not np.isfinite(err).all():
        notes.append(f"non-finite logits in rows {np.nonzero(~np.isfinite(err))[0][:8].tolist()}")
    row["note"] = "; ".join(notes)
    results.add_case(row)
    log(f"  {case} {device}: prefill {row['prefill']:.2e}, decode max {row['decode_max']:.2e} "
        f"median {row['decode_median']:.2e}, top1 {row['top1_agree']}/{row['rows']}, "
        f"bound {bound:.1e}: {row['status']}")


def check_forced(call, forced):
    """True when xlc-run reports exactly the forced tokens as generated (None if unknown)."""
    gen = call.get("generated")
    if not call["ok"] or gen is None:
        return None
    return len(gen) == len(forced) and all(list(g) == list(f) for g, f in zip(gen, forced))


# ---------------------------------------------------------------------------------------------
# One config
# ---------------------------------------------------------------------------------------------

def tied_head_facts(ckpt, model):
    """For a config with tie_word_embeddings: what the checkpoint in |ckpt| stores and which
    tensor the loaded HF |model| uses as its LM head (issue 10), as a dict for the JSON."""
    import torch
    from safetensors import safe_open
    wanted = ("lm_head.weight", "backbone.embeddings.weight")
    stored = {}
    for f in sorted(os.listdir(ckpt)):
        if f.endswith(".safetensors"):
            with safe_open(os.path.join(ckpt, f), "pt") as st:
                for key in wanted:
                    if key in st.keys():
                        stored[key] = st.get_tensor(key)
    head, emb = stored.get(wanted[0]), stored.get(wanted[1])
    head_module = getattr(model, "lm_head", None) or model.get_output_embeddings()
    embedding_module = (getattr(getattr(model, "backbone", None), "embeddings", None)
                        or model.get_input_embeddings())
    used = head_module.weight.detach()
    facts = {"stored_lm_head": head is not None,
             "hf_head_shares_embedding_storage":
                 used.data_ptr() == embedding_module.weight.data_ptr()}
    if head is not None and emb is not None:
        facts["stored_lm_head_equals_embedding"] = bool(torch.equal(head, emb))
    if head is not None:
        facts["hf_head_is_stored_lm_head"] = bool(torch.equal(used.cpu().to(head.dtype), head))
    if emb is not None:
        facts["hf_head_is_embedding"] = bool(torch.equal(used.cpu().to(emb.dtype), emb))
    # xlc's rule (runtime/exec/WeightAssembly.h): a stored lm_head.weight, else the embedding.
    facts["xlc_head"] = wanted[0] if head is not None else wanted[1]
    facts["agree"] = bool(facts.get("hf_head_is_stored_lm_head") if head is not None
                          else facts.get("hf_head_is_embedding"))
    return facts


def run_config(args, results, name):
    torch = torch_setup()
    from transformers import xLSTMConfig
    spec = SPECS[name]
    cfg_record = results.config(name)
    timings = cfg_record["timings_s"]
    device = "cuda"
    lengths = args.lengths[name] or spec["lengths"]
    n_rows = args.decode_steps + 1
    artifact = os.path.abspath(args.artifact[name])
    if not args.hf_only and not os.path.isfile(artifact):
        results.error(name, f"artifact {artifact} missing: on the development machine run "
                            f"`build/tools/xlc-compile/xlc-compile {CONFIG_PATHS[name]} -o "
                            f"{args.artifact[name]}` and carry it (--hf-only runs the HF part "
                            "alone)")
        return

    # ---- 1. Checkpoint ---------------------------------------------------------------------
    kwargs, dropped = config_kwargs(name)
    config = xLSTMConfig(**kwargs)
    save_dtype = getattr(torch, spec["save_dtype"])
    ckpt = os.path.join(args.work, f"hf-{name}")
    meta = {"script_version": SCRIPT_VERSION, "seed": args.seed, "dtype": spec["save_dtype"],
            "config": kwargs, "shard": spec["shard"]}
    meta_hash = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()
    meta_path = os.path.join(ckpt, "xlc_parity_meta.json")
    cfg_record.update({"config_file": CONFIG_PATHS[name], "dropped_legacy_keys": dropped,
                       "checkpoint": ckpt, "checkpoint_dtype": spec["save_dtype"],
                       "artifact": artifact, "lengths": lengths, "rows_per_case": n_rows})
    if dropped:
        log(f"{name}: legacy config keys not passed to xLSTMConfig: {', '.join(dropped)}")
    reuse = False
    if not args.rebuild and os.path.isfile(meta_path):
        try:
            with open(meta_path) as f:
                reuse = json.load(f).get("hash") == meta_hash
        except (OSError, ValueError):
            reuse = False
    built = None
    if reuse:
        log(f"{name}: reusing the checkpoint in {ckpt} (same config, seed, dtype; --rebuild "
            "makes a new one)")
    else:
        t = time.time()
        log(f"{name}: building xLSTMForCausalLM from {CONFIG_PATHS[name]} on {device} in "
            f"{spec['save_dtype']}")
        built = build_model(config, save_dtype, device)
        global GATE_PREACT_STD
        GATE_PREACT_STD = spec.get("gate_preact_std", GATE_PREACT_STD)
        randomize_parameters(built, built.config, args.seed)
        torch.cuda.synchronize()
        n_params = sum(p.numel() for p in built.parameters())
        n_bytes = sum(p.numel() * p.element_size() for p in built.parameters())
        cfg_record.update({"parameters": n_params, "checkpoint_bytes": n_bytes})
        timings["build"] = round(time.time() - t, 1)
        log(f"{name}: {n_params:,} parameters ({n_bytes / 1e9:.2f} GB) built and randomised in "
            f"{timings['build']} s")
        os.makedirs(args.work, exist_ok=True)
        old = 0
        if os.path.isdir(ckpt):
            old = sum(os.path.getsize(os.path.join(ckpt, f)) for f in os.listdir(ckpt))
        free = shutil.disk_usage(args.work).free + old
        if free < n_bytes * 1.05 + 2e9:
            results.error(name, f"not enough disk under {args.work}: {free / 1e9:.1f} GB free, "
                                f"{n_bytes / 1e9:.1f} GB needed (set --work or PARITY_WORK)")
            return
        t = time.time()
        files = save_checkpoint(built, ckpt, spec["shard"])
        with open(meta_path, "w") as f:
            json.dump({"hash": meta_hash, **meta}, f, indent=1)
        timings["save_pretrained"] = round(time.time() - t, 1)
        log(f"{name}: save_pretrained -> {ckpt} ({len(files)} safetensors file(s)) in "
            f"{timings['save_pretrained']} s")

    # ---- 2. Oracle -------------------------------------------------------------------------
    t = time.time()
    model, problems = load_checkpoint(ckpt, save_dtype, device)
    timings["from_pretrained"] = round(time.time() - t, 1)
    log(f"{name}: from_pretrained in {timings['from_pretrained']} s")
    if problems:
        results.error(name, "from_pretrained: " + "; ".join(problems))
        return
    if built is not None:
        bad = compare_models(built, model)
        del built
        release_cuda()
        if bad:
            results.error(name, f"{len(bad)} tensors differ after save/load: {bad[:5]}")
            return
        log(f"{name}: the loaded weights equal the built ones bit for bit")
    fields = hf_fields(model.config)
    cfg_record["hf_config"] = fields
    log(f"{name}: HF config used: {json.dumps(fields)}")
    if getattr(model.config, "tie_word_embeddings", False):
        facts = tied_head_facts(ckpt, model)
        cfg_record["tied_head"] = facts
        log(f"{name}: tied embeddings: {json.dumps(facts)}")
        distinct = facts["stored_lm_head"] and not facts.get("stored_lm_head_equals_embedding")
        note = (("checkpoint stores lm_head.weight, " + ("distinct from" if distinct else "equal to")
                 + " the embedding" if facts["stored_lm_head"] else "no lm_head.weight stored")
                + "; HF's head is " + ("lm_head.weight" if facts.get("hf_head_is_stored_lm_head")
                                       else "the embedding" if facts.get("hf_head_is_embedding")
                                       else "neither")
                + f"; xlc reads {facts['xlc_head']}"
                + ("" if distinct else " (issue 10's case, a distinct head, is not exercised)"))
        results.add_case({"config": name, "case": f"{name} tied head", "device": "hf",
                          "status": "PASS" if facts["agree"] else "FAIL", "note": note})
    vocab = int(model.config.vocab_size)
    prompts = {L: make_tokens(args.seed, 1, L, vocab) for L in lengths}
    forced = {L: make_tokens(args.seed, 2, n_rows, vocab) for L in lengths}
    ref32, ref16, mode16 = {}, {}, {}

    def fp32_phase(model):
        t = time.time()
        for L in lengths:
            ref32[L] = hf_rows(model, prompts[L], forced[L], n_rows, device)
            r = ref32[L]
            log(f"  hf fp32 L={L}: logits std {r.std():.2f}, max |x| {np.abs(r).max():.2f}")
        timings["hf_fp32"] = round(time.time() - t, 1)
        # Self-check: HF's prefill + cached decode equals its full forward.
        L = 17 if 17 in lengths else lengths[0]
        row = {"config": name, "case": f"{name} L={L}", "device": "hf-cache",
               "length": L, "bound": BOUND_HF_SELF}
        try:
            cached = hf_cached_rows(model, prompts[L], forced[L], n_rows, device)
            err = rel_l2_rows(cached, ref32[L])
            row.update(summarize_rows(err, cached, ref32[L]))
            row["status"] = "PASS" if err.max() <= BOUND_HF_SELF else "FAIL"
            row["note"] = "HF fp32 prefill+cached steps vs full forward"
        except Exception as e:  # noqa: BLE001 - the cache API is not what is under test
            row.update({"status": "INFO", "note": f"cached decode unavailable: "
                                                  f"{type(e).__name__}: {str(e)[:200]}"})
        results.add_case(row)
        log(f"  hf self-check L={L}: {row['status']} ({row.get('max', '-')})")

    def bf16_phase(model):
        # HF's native chunkwise kernel mixes its fp32 initial state into bf16 products; should a
        # plain bf16 forward raise for that, the same forward under autocast is the measurement.
        # If neither runs, E_bf16 is unknown and the 7b bound falls back to its floor.
        t = time.time()
        for L in lengths:
            try:
                ref16[L] = hf_rows(model, prompts[L], forced[L], n_rows, device)
                mode16[L] = "bf16"
            except RuntimeError as e:
                log(f"  hf bf16 L={L} raised {type(e).__name__}: {str(e)[:200]}; retrying under "
                    "torch.autocast(bfloat16)")
                try:
                    with torch.autocast("cuda", dtype=torch.bfloat16):
                        ref16[L] = hf_rows(model, prompts[L], forced[L], n_rows, device)
                    mode16[L] = "bf16 under autocast"
                except RuntimeError as e2:
                    log(f"  hf bf16 L={L} under autocast raised too: {str(e2)[:200]}")
                    ref16[L], mode16[L] = None, f"unavailable: {str(e2)[:120]}"
        timings["hf_bf16"] = round(time.time() - t, 1)

    greedy_ref = None
    if save_dtype == torch.bfloat16:  # 7b: bf16 as saved first, then upcast (one copy in memory)
        bf16_phase(model)
        model.float()
        fp32_phase(model)
    else:                             # tiny: fp32 as saved (and the greedy oracle), then bf16
        model.float()
        fp32_phase(model)
        if spec["greedy"] and not args.no_greedy:
            greedy_ref = greedy_oracle(model, prompts, lengths, args, device, cfg_record)
        model.to(dtype=torch.bfloat16)
        bf16_phase(model)
    del model
    release_cuda()  # xlc-run needs the GPU memory

    e_bf16 = {}
    for L in lengths:
        row = {"config": name, "case": f"{name} L={L}", "device": "hf-bf16", "length": L,
               "bound": None, "status": "INFO", "note": f"HF {mode16[L]} vs HF fp32"}
        if ref16[L] is None:
            e_bf16[L] = None
            row["note"] = f"HF bf16 forward {mode16[L]}"
        else:
            err = rel_l2_rows(ref16[L], ref32[L])
            e_bf16[L] = float(err.max())
            row.update(summarize_rows(err, ref16[L], ref32[L]))
        results.add_case(row)
    log(f"{name}: HF bf16 vs fp32, max over rows per length: "
        + ", ".join(f"L={L}: " + ("n/a" if e_bf16[L] is None else f"{e_bf16[L]:.2e}")
                    for L in lengths))
    cfg_record["hf_bf16_max_err"] = {str(L): e_bf16[L] for L in lengths}
    cfg_record["hf_bf16_mode"] = {str(L): mode16[L] for L in lengths}
    if args.hf_only:
        return

    # ---- 3./4. xlc runs --------------------------------------------------------------------
    def bound_for(dev, L):
        if dev == "cpu":
            return BOUND_CPU
        if e_bf16[L] is None or not math.isfinite(e_bf16[L]):
            return BOUND_CUDA_FLOOR  # HF's bf16 run was unavailable (noted in its hf-bf16 row)
        return max(BOUND_CUDA_FACTOR * e_bf16[L], BOUND_CUDA_FLOOR)

    devices = [d for d in spec["devices"] if d in args.devices]
    t = time.time()
    all_lengths = lengths
    for dev in devices:
        lengths = [L for L in all_lengths if L in spec["cpu_lengths"]] \
            if dev == "cpu" and "cpu_lengths" in spec else all_lengths
        batched_only = name == "7b" and (args.b7_batched or dev == "cpu")
        if not batched_only:
            for L in lengths:
                call = run_xlc(args, name, f"L{L}", dev, artifact, ckpt, [prompts[L]],
                               [forced[L]], n_rows, args.xlc_log)
                note = "" if check_forced(call, [forced[L]]) is not False else \
                    "xlc reported generated tokens other than the forced ones"
                xlc_case_rows(results, name, f"{name} L={L}", dev, call, 0, L, ref32[L],
                              bound_for(dev, L), note)
        batch_lengths = lengths if batched_only else \
            [L for L in lengths if spec["batch_below"] and L < spec["batch_below"]]
        if batched_only or len(batch_lengths) > 1:
            tag = f"b{len(batch_lengths)}"
            call = run_xlc(args, name, tag, dev, artifact, ckpt,
                           [prompts[L] for L in batch_lengths],
                           [forced[L] for L in batch_lengths], n_rows, args.xlc_log)
            fl = [forced[L] for L in batch_lengths]
            note = "" if check_forced(call, fl) is not False else \
                "xlc reported generated tokens other than the forced ones"
            for b, L in enumerate(batch_lengths):
                xlc_case_rows(results, name, f"{name} {tag} L={L}", dev, call, b, L, ref32[L],
                              bound_for(dev, L), note)
        if greedy_ref is not None:
            greedy_xlc(args, results, name, dev, artifact, ckpt, greedy_ref)
    lengths = all_lengths
    timings["xlc"] = round(time.time() - t, 1)
    results.write()


def greedy_oracle(model, prompts, lengths, args, device, cfg_record):
    """HF greedy reference for the tiny model: generate() and a full-forward argmax loop, plus
    the oracle logits along the reference continuation (for margins at a divergence)."""
    L = 17 if 17 in lengths else lengths[0]
    n = args.greedy_tokens
    prompt = prompts[L]
    fwd = hf_greedy_forward(model, prompt, n, device)
    gen, gen_error = None, None
    try:
        gen = hf_greedy_generate(model, prompt, n, device)
    except Exception as e:  # noqa: BLE001 - fall back to the forward loop
        gen_error = f"{type(e).__name__}: {str(e)[:300]}"
    if gen is not None and len(gen) == n:
        ref, source = gen, "generate"
    else:
        ref, source = fwd, "forward-argmax"
    agree = leading_identical(gen or [], fwd)
    log(f"  hf greedy L={L}: reference from {source}; generate vs forward-argmax identical "
        f"leading tokens {agree}/{n}" + (f" (generate failed: {gen_error})" if gen_error else ""))
    # Oracle logits along the reference continuation: row k predicts token k.
    rows = hf_rows(model, prompt, ref, n, device)
    cfg_record["greedy_reference"] = {"length": L, "tokens": ref, "source": source,
                                      "generate_vs_forward_identical": agree,
                                      "generate_error": gen_error}
    return {"length": L, "prompt": prompt, "tokens": ref, "rows": rows, "source": source}


def greedy_xlc(args, results, name, dev, artifact, ckpt, greedy_ref):
    n = len(greedy_ref["tokens"])
    L = greedy_ref["length"]
    call = run_xlc(args, name, f"greedy-L{L}", dev, artifact, ckpt, [greedy_ref["prompt"]],
                   None, n, args.xlc_log)
    row = {"config": name, "case": f"{name} L={L}", "device": dev, "tokens": n,
           "reference": greedy_ref["source"],
           "xlc": {k: call.get(k) for k in ("cmd", "seconds", "stats", "rc")}}
    gen = (call.get("generated") or [None])[0] if call["ok"] else None
    if gen is None:
        row.update({"status": "FAIL", "identical": None,
                    "note": f"xlc-run: {call['error'] or 'no generated tokens in its JSON'}"})
        results.add_greedy(row)
        return
    gen = list(gen)
    if len(gen) == len(greedy_ref["prompt"]) + n and gen[:L] == greedy_ref["prompt"]:
        gen = gen[L:]  # tolerate an echo of the prompt
    ident = leading_identical(gen, greedy_ref["tokens"])
    row.update({"identical": ident, "xlc_tokens": gen})
    note = ""
    if ident < n:
        if ident < len(gen):
            logits = greedy_ref["rows"][ident]
            ref_tok, xlc_tok = greedy_ref["tokens"][ident], gen[ident]
            top2 = np.sort(logits)[-2:]
            row["divergence"] = {"step": ident, "hf_token": ref_tok, "xlc_token": xlc_tok,
                                 "hf_logit_margin": float(logits[ref_tok] - logits[xlc_tok]),
                                 "hf_top2_gap": float(top2[1] - top2[0])}
            note = (f"first divergence at step {ident}: HF fp32 logit margin "
                    f"{row['divergence']['hf_logit_margin']:.3g} between its token {ref_tok} "
                    f"and xlc's {xlc_tok}")
        else:
            note = f"xlc generated only {len(gen)} tokens"
    if dev == "cpu":
        row["status"] = "PASS" if ident == n else "FAIL"
    else:
        row["status"] = "INFO"
    row["note"] = note
    results.add_greedy(row)
    log(f"  greedy {dev}: {ident}/{n} identical leading tokens: {row['status']}"
        + (f" ({note})" if note else ""))


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------

def parse_lengths(text):
    if not text:
        return None
    return [int(x) for x in text.split(",") if x.strip()]


def main():
    out_default = os.path.join(os.environ.get("OUT", "."), "parity.json")
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="tiny,7b", help="comma list of tiny, 7b, 125m")
    parser.add_argument("--devices", default="cuda,cpu",
                        help="xlc-run devices to test (cpu: every length of tiny, the short "
                             "ones of 7b and 125m)")
    parser.add_argument("--xlc-run", default=os.environ.get(
        "XLC_RUN", os.path.join(REPO, "build-parity/tools/xlc-run/xlc-run")),
        help="the xlc-run binary (default $XLC_RUN or build-parity/tools/xlc-run/xlc-run)")
    parser.add_argument("--tiny-artifact", default=DEFAULT_ARTIFACTS["tiny"])
    parser.add_argument("--7b-artifact", dest="b7_artifact", default=DEFAULT_ARTIFACTS["7b"])
    parser.add_argument("--125m-artifact", dest="m125_artifact",
                        default=DEFAULT_ARTIFACTS["125m"])
    parser.add_argument("--work", default=os.environ.get("PARITY_WORK", "/tmp/xlc-parity"),
                        help="checkpoints and xlc-run inputs/outputs (default $PARITY_WORK or "
                             "/tmp/xlc-parity; the 7b needs ~14 GB)")
    parser.add_argument("--out", default=out_default,
                        help="results JSON (default $OUT/parity.json)")
    parser.add_argument("--xlc-log", default=None,
                        help="every xlc-run command with its stderr (default: xlc-run.log "
                             "next to --out)")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--decode-steps", type=int, default=32,
                        help="forced decode steps per case (rows = steps + 1)")
    parser.add_argument("--greedy-tokens", type=int, default=64)
    parser.add_argument("--no-greedy", action="store_true", help="skip the greedy comparison")
    parser.add_argument("--tiny-lengths", default=None,
                        help="override the tiny prompt lengths (comma list)")
    parser.add_argument("--7b-lengths", dest="b7_lengths", default=None,
                        help="override the 7b prompt lengths (comma list)")
    parser.add_argument("--125m-lengths", dest="m125_lengths", default=None,
                        help="override the 125m prompt lengths (comma list)")
    parser.add_argument("--7b-batched", dest="b7_batched", action="store_true",
                        help="run the 7b lengths as one batch in one xlc-run call instead of "
                             "one call per length")
    parser.add_argument("--xlc-timeout", type=int, default=300,
                        help="seconds per xlc-run call (default 300)")
    parser.add_argument("--xlc-max-seq", type=int, default=None,
                        help="pass --max-seq M to xlc-run (default: not passed; xlc-run splits "
                             "long prompts into pieces itself)")
    parser.add_argument("--xlc-arg", action="append", default=[],
                        help="extra argument for every xlc-run call (repeatable; write "
                             "--xlc-arg=--flag for arguments that start with a dash)")
    parser.add_argument("--hf-only", action="store_true",
                        help="build/load the checkpoints and run the HF oracle only (no xlc-run)")
    parser.add_argument("--rebuild", action="store_true",
                        help="make new checkpoints even if matching ones exist under --work")
    args = parser.parse_args()

    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for c in configs:
        if c not in SPECS:
            parser.error(f"unknown config {c!r} (tiny, 7b, 125m)")
    args.devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    args.artifact = {"tiny": args.tiny_artifact, "7b": args.b7_artifact,
                     "125m": args.m125_artifact}
    args.lengths = {"tiny": parse_lengths(args.tiny_lengths), "7b": parse_lengths(args.b7_lengths),
                    "125m": parse_lengths(args.m125_lengths)}
    args.work = os.path.abspath(args.work)
    args.out = os.path.abspath(args.out)
    args.xlc_log = os.path.abspath(args.xlc_log or os.path.join(os.path.dirname(args.out),
                                                               "xlc-run.log"))
    if not args.hf_only:
        args.xlc_run = os.path.abspath(args.xlc_run)
        if not (os.path.isfile(args.xlc_run) and os.access(args.xlc_run, os.X_OK)):
            print(f"hf_parity: xlc-run not found or not executable: {args.xlc_run} "
                  "(build it with test/parity/run_parity.sh, pass --xlc-run, or use --hf-only)",
                  file=sys.stderr)
            return 2
    if args.decode_steps < 1:
        parser.error("--decode-steps must be >= 1")

    results = Results(args.out, sys.argv[1:])
    # The artifacts' own device-header hash, next to the one of the binaries (the runtime
    # refuses an artifact whose hash differs from the headers it embeds).
    results.doc["provenance"]["artifact_device_headers_hash"] = {
        name: artifact_headers_hash(args.artifact[name]) for name in configs}
    log(provenance_line(results.doc["provenance"]))
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(os.path.dirname(args.xlc_log), exist_ok=True)
    with open(args.xlc_log, "w") as f:
        f.write(f"xlc-run calls of hf_parity.py ({time.strftime('%Y-%m-%d %H:%M:%S')})\n")
        f.write(provenance_line(results.doc["provenance"]) + "\n")

    def on_term(signum, frame):
        raise Interrupted(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    status = 0
    try:
        torch = torch_setup()
        if not torch.cuda.is_available():
            print("hf_parity: torch sees no CUDA device", file=sys.stderr)
            return 2
        results.doc["versions"] = versions()
        log("versions: " + json.dumps(results.doc["versions"]))
        for name in configs:
            t = time.time()
            log(f"==== {name}")
            try:
                run_config(args, results, name)
            except Interrupted:
                raise
            except Exception as e:  # noqa: BLE001 - record, go on with the next config
                import traceback
                traceback.print_exc()
                results.error(name, f"{type(e).__name__}: {str(e)[:500]}")
            release_cuda()  # after the except clause: its traceback no longer holds a model
            results.config(name)["timings_s"]["total"] = round(time.time() - t, 1)
            log(f"==== {name} done in {time.time() - t:.0f} s")
    except (Interrupted, KeyboardInterrupt) as e:
        results.error("all", f"interrupted ({e or 'keyboard'}): results are partial")
        status = 124
    finally:
        results.write()
        print("\n" + results.table(), flush=True)
    if status:
        return status
    return 1 if results.failed() else 0


if __name__ == "__main__":
    sys.exit(main())
