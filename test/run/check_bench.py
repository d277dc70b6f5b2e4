#!/usr/bin/env python3
"""Checks of xlc-bench's JSON document for the lit tests (no third-party modules).

  check_bench.py structure FILE.json REPS WARMUP DECODE_STEPS
      every case ran; the repeats are REPS positive times after WARMUP warm-up ones; every
      figure is what its definition gives from the repeats (tokens/s = tokens / seconds, ...),
      with p20 <= median <= p80; the ratio to the limit is the limit's time over the median; the
      work model is exact where it can be checked by hand (a decode step reads every weight but
      the embedding table, of which it gathers B rows); memory readings are positive; every
      profile accounts for every step of its function once, its shares sum to 1 and its groups'
      times to its step sums; prompt_sample ids are xlc-bench's formula, and also what
      scripts/hf-bench.py's prompt_ids computes (transformers must see the same prompts).
      Prints one line per case.
  check_bench.py hf FILE.json HF_SECONDS
      the transformers side as the stand-in script (Inputs/fake-hf-bench.py) answered: every
      compared case has its HF repeats (all HF_SECONDS), its HF figures, the ratio of its HF
      median to the limit, and xlc_speedup_vs_hf = HF median / xlc median.
  check_bench.py plots FILE.json DIR
      the document lists the three PNG files, and each is a PNG of plausible size.
"""
import importlib.util
import json
import math
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MASK = (1 << 64) - 1


def fail(msg):
    print(f"check_bench.py: {msg}", file=sys.stderr)
    sys.exit(1)


def close(a, b, rel=1e-9):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def quantile(values, q):
    v = sorted(values)
    pos = q * (len(v) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def prompt_token(seed, i, t, vocab):
    """Measure.h's promptToken, written again here from its definition."""
    x = (seed ^ ((i << 32) | t)) & MASK
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    x ^= x >> 31
    return 3 + x % (vocab - 3)


def hf_bench_module():
    path = os.path.join(REPO, "scripts", "hf-bench.py")
    spec = importlib.util.spec_from_file_location("hf_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def figure_check(case, figures, repeats, name, fn):
    f = figures[name]
    values = [fn(t) for t in repeats]
    if not close(f["median"], median(values), 1e-9):
        fail(f"{case['name']}: {name} median {f['median']} != {median(values)}")
    for q, key in ((0.2, "p20"), (0.8, "p80")):
        if not close(f[key], quantile(values, q), 1e-9):
            fail(f"{case['name']}: {name} {key} {f[key]} != {quantile(values, q)}")
    if not f["p20"] <= f["median"] <= f["p80"] or f["median"] <= 0:
        fail(f"{case['name']}: {name} is not ordered and positive: {f}")


def structure(path, reps, warmup, steps):
    with open(path) as f:
        doc = json.load(f)
    if doc.get("tool") != "xlc-bench" or doc.get("schema_version") != 1:
        fail("not an xlc-bench document of schema 1")
    for key in ("command", "started_utc", "versions", "device", "limits", "model", "settings",
                "cases", "hf", "plots"):
        if key not in doc:
            fail(f"no '{key}'")
    limits = doc["limits"]
    if not (limits["bandwidth_bytes_per_s"] > 0 and limits["flops_per_s"] > 0 and limits["source"]):
        fail(f"limits: {limits}")
    model = doc["model"]
    if not (model["weight_bytes"] > 0 and model["state_bytes_per_sequence"] > 0):
        fail(f"model facts: {model}")
    seed, vocab, d = doc["settings"]["seed"], model["vocab_size"], model["embedding_dim"]
    float_bytes = 4 if doc["device"]["kind"] == "cpu" else 2
    hf_bench = hf_bench_module()
    for case in doc["cases"]:
        name, kind, batch, prompt = case["name"], case["kind"], case["batch"], case["prompt_tokens"]
        if case["status"] != "ok" or case["error"] is not None:
            fail(f"{name}: {case['status']}: {case['error']}")
        repeats = case["repeats_s"]
        if len(repeats) != reps or not all(t > 0 for t in repeats):
            fail(f"{name}: repeats {repeats}, expected {reps} positive")
        if kind in ("prefill", "decode") and len(case["warmup_s"]) != warmup:
            fail(f"{name}: warm-up repeats {case['warmup_s']}, expected {warmup}")
        figures = case["figures"]
        if case["primary_figure"] not in figures:
            fail(f"{name}: primary figure {case['primary_figure']} missing")
        if kind == "prefill":
            figure_check(case, figures, repeats, "prefill_tokens_per_s", lambda t: batch * prompt / t)
            figure_check(case, figures, repeats, "time_to_first_token_ms", lambda t: t * 1e3)
        elif kind == "decode":
            if case["decode_steps_per_repeat"] != steps:
                fail(f"{name}: {case['decode_steps_per_repeat']} steps per repeat, not {steps}")
            figure_check(case, figures, repeats, "decode_tokens_per_s", lambda t: batch * steps / t)
            figure_check(case, figures, repeats, "step_ms", lambda t: t / steps * 1e3)
            # A decode step reads every weight once, except the embedding table: B rows of it.
            expected = (model["weight_elements"] - vocab * d + batch * d) * float_bytes * steps
            if not close(case["work"]["weight_bytes"], expected, 1e-12):
                fail(f"{name}: weight bytes {case['work']['weight_bytes']}, expected {expected}")
            state = 2 * batch * model["state_bytes_per_sequence"] * steps  # read + write, fp32
            if not close(case["work"]["state_bytes"], state, 1e-12):
                fail(f"{name}: state bytes {case['work']['state_bytes']}, expected {state}")
            if case["prefill_time_to_first_token_ms"] <= 0:
                fail(f"{name}: no prefill time")
        elif kind == "train":
            # One optimizer step per repeat; model FLOPs at 6 per updated parameter and token.
            flops = doc["settings"]["train_flops_per_token"]
            if not (flops > 0 and flops % 6 == 0) or case["sequence_tokens"] != prompt:
                fail(f"{name}: train_flops_per_token {flops}, sequence {case.get('sequence_tokens')}")
            if len(case["warmup_s"]) != warmup:
                fail(f"{name}: warm-up repeats {case['warmup_s']}, expected {warmup}")
            figure_check(case, figures, repeats, "train_tokens_per_s", lambda t: batch * prompt / t)
            figure_check(case, figures, repeats, "optimizer_step_ms", lambda t: t * 1e3)
            figure_check(case, figures, repeats, "model_tflops",
                         lambda t: flops * batch * prompt / t / 1e12)
            calls = case["calls_ms"]
            if list(calls) != ["train_step", "grad_norm", "optimizer_step"] or any(
                    c["count"] != reps or c["min"] <= 0 for c in calls.values()):
                fail(f"{name}: calls_ms {calls}")
            # A repeat is the sum of its three calls: the medians cannot exceed the largest one.
            if sum(c["min"] for c in calls.values()) > max(repeats) * 1e3 * (1 + 1e-9):
                fail(f"{name}: the calls' times exceed the repeats'")
        else:
            figure_check(case, figures, repeats, "step_sum_ms", lambda t: t * 1e3)
        work = case["work"]
        if not (work["flops"] > 0 and work["compulsory_bytes"] > 0):
            fail(f"{name}: work {work}")
        lim = case["limit"]
        if lim is None or lim["bound"] not in ("bandwidth", "compute") or lim["seconds"] <= 0:
            fail(f"{name}: limit {lim}")
        if not close(case["ratio_to_limit"], lim["seconds"] / median(repeats), 1e-9):
            fail(f"{name}: ratio_to_limit {case['ratio_to_limit']}")
        mem = case["memory"]
        if not (mem["before_bytes"] > 0 and mem["after_bytes"] > 0 and mem["method"]):
            fail(f"{name}: memory {mem}")
        if case["backend_limits"]["max_batch"] != batch:
            fail(f"{name}: backend limits {case['backend_limits']}")
        sample = case["prompt_sample"]
        ids = hf_bench.prompt_ids(seed, batch, max(prompt, 1), vocab)
        for i, t, token in sample:
            if token != prompt_token(seed, i, t, vocab) or token != ids[i][t]:
                fail(f"{name}: prompt id ({i}, {t}) = {token}, the formula gives "
                     f"{prompt_token(seed, i, t, vocab)}, hf-bench.py {ids[i][t]}")
        profile = case["profile"]
        if kind.startswith("profile"):
            check_profile(name, profile, reps)
        elif profile is not None:
            fail(f"{name}: a profile in a {kind} case")
        print(f"{name}: ok ({kind}, {case['primary_figure']} "
              f"{figures[case['primary_figure']]['median']:.6g})")


def check_profile(name, p, reps):
    if p["clock"] not in ("host-clock", "cuda-events") or not p["reliable"]:
        fail(f"{name}: clock {p['clock']}, reliable {p['reliable']}")
    if len(p["step_sum_s"]) != reps or len(p["wall_s"]) != reps:
        fail(f"{name}: {len(p['step_sum_s'])} timed calls, not {reps}")
    indices = [s["index"] for s in p["steps"]]
    if indices != list(range(len(indices))) or not indices:
        fail(f"{name}: steps {indices}")
    groups = p["groups"]
    if sum(g["steps"] for g in groups) != len(indices):
        fail(f"{name}: the groups hold {sum(g['steps'] for g in groups)} steps of {len(indices)}")
    keys = {g["key"] for g in groups}
    if len(keys) != len(groups) or any(s["group"] not in keys for s in p["steps"]):
        fail(f"{name}: group keys")
    if not close(sum(g["share"] for g in groups), 1.0, 1e-9):
        fail(f"{name}: shares sum to {sum(g['share'] for g in groups)}")
    times = [g["ms"]["median"] for g in groups]
    if times != sorted(times, reverse=True) or times[0] <= 0:
        fail(f"{name}: group times {times}")
    if not any(g["kind"] == "gemm" for g in groups) or not any(g["kind"] == "launch" for g in groups):
        fail(f"{name}: no GEMM or no launch group")
    for g in groups:
        if g["ratio_to_limit"] is None or g["ratio_to_limit"] <= 0 or g["work"]["compulsory_bytes"] < 0:
            fail(f"{name}: group {g['key']}: {g}")


def hf(path, seconds):
    with open(path) as f:
        doc = json.load(f)
    if doc["hf"]["status"] != "ok" or not doc["hf"]["requested"]:
        fail(f"hf: {doc['hf']['status']}: {doc['hf']['reason']}")
    compared = 0
    for case in doc["cases"]:
        h = case["hf"]
        if case["name"] not in doc["hf"]["cases_requested"]:
            if h is not None:
                fail(f"{case['name']}: an HF entry for a case not requested")
            continue
        if h is None or h["status"] != "ok":
            fail(f"{case['name']}: HF {h}")
        if not h["repeats_s"] or any(t != seconds for t in h["repeats_s"]):
            fail(f"{case['name']}: HF repeats {h['repeats_s']}")
        if case["primary_figure"] not in h["figures"]:
            fail(f"{case['name']}: HF figures {h['figures']}")
        if not close(h["ratio_to_limit"], case["limit"]["seconds"] / seconds, 1e-9):
            fail(f"{case['name']}: HF ratio to the limit {h['ratio_to_limit']}")
        speedup = seconds / median(case["repeats_s"])
        if not close(case["xlc_speedup_vs_hf"], speedup, 1e-9):
            fail(f"{case['name']}: speed-up {case['xlc_speedup_vs_hf']}, expected {speedup}")
        compared += 1
        print(f"{case['name']}: xlc/HF {case['xlc_speedup_vs_hf']:.4g}")
    if compared == 0:
        fail("no case was compared")


def plots(path, directory):
    with open(path) as f:
        doc = json.load(f)
    names = sorted(os.path.basename(p) for p in doc["plots"])
    expected = ["decode-tokens-per-s.png", "prefill-tokens-per-s.png", "step-shares.png"]
    if names != expected:
        fail(f"plots listed: {names}")
    for n in expected:
        with open(os.path.join(directory, n), "rb") as f:
            data = f.read()
        if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 10000:
            fail(f"{n}: not a PNG of a plot ({len(data)} bytes)")
        print(f"{n}: PNG")


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "structure" and len(sys.argv) == 6:
        structure(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "hf" and len(sys.argv) == 4:
        hf(sys.argv[2], float(sys.argv[3]))
    elif mode == "plots" and len(sys.argv) == 4:
        plots(sys.argv[2], sys.argv[3])
    else:
        fail("usage: see the module docstring")


if __name__ == "__main__":
    main()
