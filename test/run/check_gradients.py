"""Checks an xlc-train --gradients-out file against the checkpoint it was computed on.

    python3 check_gradients.py grads.safetensors model.safetensors summary.json

Every tensor of the checkpoint has a gradient of its shape in fp32 (a tied model's head is its
embedding: no separate gradient), every value is finite, the gradients are not all zero, and
the loss in the file's metadata equals the --json summary's and lies within 1 of ln(vocabulary)
(random weights predict about uniformly).
"""
import array
import json
import math
import struct
import sys


def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)), 8 + n


def main():
    grads_path, model_path, summary_path = sys.argv[1:4]
    grads, offset = header(grads_path)
    model, _ = header(model_path)
    meta = grads.pop("__metadata__")
    model.pop("__metadata__", None)
    if "lm_head.weight" in model and "lm_head.weight" not in grads:
        model.pop("lm_head.weight")  # tied: one tensor, its gradient under the embedding's name
    assert sorted(grads) == sorted(model), (sorted(set(grads) ^ set(model)))
    data = open(grads_path, "rb").read()[offset:]
    total = 0.0
    for name, info in grads.items():
        assert info["dtype"] == "F32", (name, info["dtype"])
        assert info["shape"] == model[name]["shape"], (name, info["shape"], model[name]["shape"])
        begin, end = info["data_offsets"]
        values = array.array("f", data[begin:end])  # little-endian hosts only, like xlc
        assert len(values) == math.prod(info["shape"]), name
        assert all(math.isfinite(v) for v in values), f"{name} has a non-finite gradient"
        total += sum(v * v for v in values)
    assert total > 0.0, "every gradient is zero"
    summary = json.load(open(summary_path))
    loss = float(meta["loss"])
    assert abs(loss - summary["loss"]) < 1e-6 * max(1.0, loss), (loss, summary["loss"])
    vocab = next(info["shape"][0] for n, info in model.items() if "embedding" in n)
    assert abs(loss - math.log(vocab)) < 1.0, (loss, math.log(vocab))
    print(f"ok: {len(grads)} gradients, |g| = {math.sqrt(total):.4g}, loss {loss:.4f}")


if __name__ == "__main__":
    main()
