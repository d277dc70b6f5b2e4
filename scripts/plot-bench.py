#!/usr/bin/env python3
"""PNG plots of an xlc-bench JSON document (xlc-bench --plots DIR calls this; so can you).

    python3 scripts/plot-bench.py xlc-bench.json --out DIR

Writes into DIR, each only when the document has cases for it:

  prefill-tokens-per-s.png  prefill tokens/s against prompt length, a line per batch (median,
                            bars from p20 to p80), transformers dashed, the physical limit dotted
  decode-tokens-per-s.png   decode tokens/s against batch, a line per prompt length, the same
                            styles
  step-shares.png           the share of each kernel / GEMM shape in the step time of every
                            profile (a prefill call, a decode step), the largest 12 groups and
                            "other"

and prints each file it wrote. Needs matplotlib (Debian: python3-matplotlib). Exit status 0 on
success, 1 when the document cannot be read or has no case to plot, 3 when matplotlib is missing.
"""

import argparse
import json
import os
import sys


def ok_cases(doc, kind):
    return [c for c in doc.get("cases", []) if c.get("kind") == kind and c.get("status") == "ok"]


def figure(case, key, side=None):
    """(median, p20, p80) of figures[key] of the case, or of its transformers side."""
    source = case if side is None else (case.get("hf") or {})
    f = (source.get("figures") or {}).get(key)
    if not f or not source.get("repeats_s"):
        return None
    return f["median"], f["p20"], f["p80"]


def limit_rate(case, tokens):
    """Tokens per second at the case's physical limit: tokens of a repeat / the limit's time."""
    limit = case.get("limit")
    return tokens / limit["seconds"] if limit and limit.get("seconds") else None


def series_plot(plt, doc, kind, key, x_of, group_of, tokens_of, xlabel, group_label, title, path):
    cases = ok_cases(doc, kind)
    if not cases:
        return False
    groups = {}
    for c in cases:
        groups.setdefault(group_of(c), []).append(c)
    fig, ax = plt.subplots(figsize=(8, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for n, (group, members) in enumerate(sorted(groups.items())):
        members.sort(key=x_of)
        color = colors[n % len(colors)]
        xs = [x_of(c) for c in members]
        med = [figure(c, key)[0] for c in members]
        lo = [figure(c, key)[0] - figure(c, key)[1] for c in members]
        hi = [figure(c, key)[2] - figure(c, key)[0] for c in members]
        ax.errorbar(xs, med, yerr=[lo, hi], marker="o", color=color, capsize=3,
                    label=f"xlc, {group_label} {group}")
        for x, m in zip(xs, med):  # the log axis has few labels: print each median
            ax.annotate(f"{m:,.0f}", (x, m), textcoords="offset points", xytext=(5, 5),
                        fontsize=7, color=color)
        hf = [(x_of(c), figure(c, key, "hf")[0]) for c in members if figure(c, key, "hf")]
        if hf:
            ax.plot([x for x, _ in hf], [y for _, y in hf], marker="s", linestyle="--",
                    color=color, label=f"transformers, {group_label} {group}")
        lim = [(x_of(c), limit_rate(c, tokens_of(c))) for c in members if limit_rate(c, tokens_of(c))]
        if lim:
            ax.plot([x for x, _ in lim], [y for _, y in lim], linestyle=":", marker="x",
                    color=color, label=f"limit, {group_label} {group}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ticks = sorted({x_of(c) for c in cases})
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel("tokens/s")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def shares_plot(plt, doc, path):
    profiles = [c for c in doc.get("cases", []) if c.get("profile") and c.get("status") == "ok"]
    if not profiles:
        return False
    fig, axes = plt.subplots(len(profiles), 1, figsize=(9, 3.2 * len(profiles)), squeeze=False)
    for ax, case in zip(axes[:, 0], profiles):
        p = case["profile"]
        groups = p["groups"]
        top, rest = groups[:12], groups[12:]
        labels = [g["key"] for g in top]
        shares = [100 * g["share"] for g in top]
        if rest:
            labels.append(f"other ({len(rest)} groups)")
            shares.append(100 * sum(g["share"] for g in rest))
        ax.barh(range(len(labels))[::-1], shares, color="tab:blue")
        ax.set_yticks(range(len(labels))[::-1])
        ax.set_yticklabels(labels, fontsize=7)
        for y, s in zip(range(len(labels))[::-1], shares):
            ax.text(s, y, f" {s:.1f}%", va="center", fontsize=7)
        total = p["wall_ms"]["median"]
        steps = sum(g["ms"]["median"] for g in groups)
        ax.set_xlabel("share of the summed step time (%)")
        # Two lines: long GEMM labels push the axes right, and one line ran past the figure.
        ax.set_title(f"{case['name']}: {p['function']} B={p['batch']} S={p['seq']}\n"
                     f"steps {steps:.3f} ms, wall {total:.3f} ms ({p['clock']})", fontsize=9)
        ax.set_xlim(0, max(shares) * 1.25 if shares else 1)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("json", help="an xlc-bench JSON document (--output or --plots)")
    parser.add_argument("--out", required=True, help="directory for the PNG files")
    args = parser.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        print(f"plot-bench.py: matplotlib is not available to {sys.executable} ({e}); "
              "install it (Debian: apt-get install python3-matplotlib)", file=sys.stderr)
        return 3
    try:
        with open(args.json) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        print(f"plot-bench.py: cannot read {args.json}: {e}", file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    model = (doc.get("model") or {}).get("name", "?")
    device = (doc.get("device") or {}).get("name", "?")
    where = f"{model} on {device}"
    written = []
    path = os.path.join(args.out, "prefill-tokens-per-s.png")
    if series_plot(plt, doc, "prefill", "prefill_tokens_per_s", lambda c: c["prompt_tokens"],
                   lambda c: c["batch"], lambda c: c["batch"] * c["prompt_tokens"],
                   "prompt length (tokens per sequence)", "batch",
                   f"prefill tokens/s (to the first token) - {where}", path):
        written.append(path)
    path = os.path.join(args.out, "decode-tokens-per-s.png")
    if series_plot(plt, doc, "decode", "decode_tokens_per_s", lambda c: c["batch"],
                   lambda c: c["prompt_tokens"],
                   lambda c: c["batch"] * c["decode_steps_per_repeat"], "batch",
                   "after prompts of", f"decode tokens/s - {where}", path):
        written.append(path)
    path = os.path.join(args.out, "step-shares.png")
    if shares_plot(plt, doc, path):
        written.append(path)
    if not written:
        print(f"plot-bench.py: {args.json} has no successful case to plot", file=sys.stderr)
        return 1
    for w in written:
        print(w)
    return 0


if __name__ == "__main__":
    sys.exit(main())
