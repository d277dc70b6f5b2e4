#!/usr/bin/env python3
"""A stand-in for scripts/hf-bench.py in xlc-bench's lit tests (CI has no torch): it speaks the
same protocol (tools/xlc-bench/HfBench.h), checks the request xlc-bench wrote, and answers every
case with repeats of exactly FAKE_SECONDS, so that the test can check what xlc-bench derives
from them (figures, ratios to the limit, speed-ups). XLC_FAKE_HF picks a failure: "crash" exits 1
without a response; "unavailable" answers as the real script does without torch; "oom" fails the
first case as an out-of-memory error would; "slow" writes the first case, as the real script does
after each case, and then hangs (for --hf-timeout)."""
import argparse
import json
import os
import sys
import time

FAKE_SECONDS = 0.25

parser = argparse.ArgumentParser()
parser.add_argument("--request", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()
mode = os.environ.get("XLC_FAKE_HF", "")
if mode == "crash":
    print("fake-hf-bench: crashing on purpose", file=sys.stderr)
    sys.exit(1)
with open(args.request) as f:
    req = json.load(f)
for key in ("protocol", "weights", "device", "dtype", "seed", "vocab", "reps", "warmup",
            "decode_steps", "cases"):
    if key not in req:
        print(f"fake-hf-bench: the request has no '{key}'", file=sys.stderr)
        sys.exit(1)
if not os.path.isfile(os.path.join(req["weights"], "config.json")):
    print(f"fake-hf-bench: {req['weights']} is not a checkpoint directory", file=sys.stderr)
    sys.exit(1)
response = {"protocol": 1, "status": "ok", "reason": None, "versions": {"fake": True},
            "device": req["device"], "load_seconds": 0.0, "config": None, "cases": []}
if mode == "unavailable":
    response.update(status="unavailable", reason="fake: no torch here")
else:
    for n, case in enumerate(req["cases"]):
        if case["kind"] not in ("prefill", "decode"):
            print(f"fake-hf-bench: case {case['name']} of kind {case['kind']}", file=sys.stderr)
            sys.exit(1)
        if mode == "oom" and n == 0:
            response["cases"].append({"name": case["name"], "repeats_s": [], "warmup_s": [],
                                      "error": "OutOfMemoryError: fake"})
            continue
        response["cases"].append({"name": case["name"],
                                  "repeats_s": [FAKE_SECONDS] * req["reps"],
                                  "warmup_s": [FAKE_SECONDS] * req["warmup"],
                                  "ttft_s": FAKE_SECONDS, "peak_allocated_bytes": 1.0,
                                  "device_used_bytes": 1.0, "error": None})
        if mode == "slow":
            response["status"] = "running"
            with open(args.out, "w") as f:
                json.dump(response, f)
            time.sleep(60)
with open(args.out, "w") as f:
    json.dump(response, f)
