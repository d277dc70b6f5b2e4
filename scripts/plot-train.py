#!/usr/bin/env python3
"""Plots xlc-train runs: the training loss per step (and the held-out loss where a run evaluated)
of one or more log.jsonl files, one line per run, into a PNG.

    scripts/plot-train.py out.png run-a/log.jsonl[=label] [run-b/log.jsonl[=label] ...]
        [--title TEXT]

Needs matplotlib (Debian: python3-matplotlib).
"""
import argparse
import json
import sys


def load(path):
    steps, losses, eval_steps, eval_losses = [], [], [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"plot-train: {path}:{n}: not JSON ({e})")
            if "loss" in record:
                steps.append(record["step"])
                losses.append(record["loss"])
            elif "eval_loss" in record:
                eval_steps.append(record["step"])
                eval_losses.append(record["eval_loss"])
    if not steps:
        sys.exit(f"plot-train: {path}: no training steps (is it an xlc-train log.jsonl?)")
    return steps, losses, eval_steps, eval_losses


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="the PNG to write")
    parser.add_argument("runs", nargs="+", help="log.jsonl[=label]")
    parser.add_argument("--title", default="xlc-train")
    args = parser.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot-train: matplotlib is missing (Debian: apt-get install python3-matplotlib)")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for run in args.runs:
        path, _, label = run.partition("=")
        steps, losses, eval_steps, eval_losses = load(path)
        line, = ax.plot(steps, losses, label=f"{label or path} (train)", linewidth=1)
        if eval_steps:
            ax.plot(eval_steps, eval_losses, "o--", color=line.get_color(),
                    label=f"{label or path} (held out)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats per token)")
    ax.set_title(args.title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"plot-train: wrote {args.output}")


if __name__ == "__main__":
    main()
