#!/usr/bin/env python3
"""Writes a tuning database for lit tests of xlc-compile --tuning-db.

    make_tuning_db.py SPACES.json DUMP.json OUT.jsonl --family F --pick first|last
                      [--batches 1,8] [--headers HASH]

SPACES.json is `xlc-tune list --variants --json` of an artifact, DUMP.json its `xlc-dump --json`
(the device-header hash and xlc version of the header line). For every problem of family F the
database gets one record of `prefill` per batch: the default timed at 10 us and the picked variant (the
first or last non-default valid one; with several batches, alternately the last and the first)
at 8 us. The timings are test inputs, not measurements: measuring needs a GPU (xlc-tune)."""
import argparse
import json


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spaces")
    ap.add_argument("dump")
    ap.add_argument("out")
    ap.add_argument("--family", required=True)
    ap.add_argument("--pick", choices=["first", "last"], default="last")
    ap.add_argument("--batches", default="1")
    ap.add_argument("--headers", help="device-header hash to claim (default: the artifact's)")
    args = ap.parse_args()

    spaces = json.load(open(args.spaces))
    artifact = json.load(open(args.dump))["artifact"]
    header = {"xlc_tuning_db": 1, "environment": {
        "gpu": "NVIDIA H100 80GB HBM3", "sms": 132, "arch": artifact["target"]["arch"],
        "driver": 13000, "nvrtc": "13.0", "cublaslt": 130100,
        "headers": args.headers or artifact["device_headers_hash"],
        "xlc": artifact["compiler"]["version"]}}
    lines = [json.dumps(header)]
    for problem in spaces:
        if problem["family"] != args.family:
            continue
        variants = problem["variants"]
        default = variants[0]
        for i, batch in enumerate(int(b) for b in args.batches.split(",")):
            pick_last = (args.pick == "last") == (i % 2 == 0)
            picked = variants[-1] if pick_last else variants[1]

            def candidate(v, us):
                return {"tile": v["tile"], "knobs": v["knobs"], "status": "ok",
                        "median_us": us, "p20_us": us, "p80_us": us, "repeats": 10,
                        "error": 0.001}
            lines.append(json.dumps({
                "function": "prefill", "family": problem["family"], "problem": problem["problem"], "batch": batch,
                "seq": 1024, "default": default["tile"], "chosen": picked["tile"],
                "candidates": [candidate(default, 10.0), candidate(picked, 8.0)],
                "measured": "2026-12-08T00:00:00Z"}))
    open(args.out, "w").write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
