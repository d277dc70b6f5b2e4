#!/usr/bin/env python3
"""Checks of xlc-run's outputs for the lit tests (no third-party modules).

  check_run.py generated FILE.json               prints each sequence's generated ids, one line
                                                 per sequence (for diff and FileCheck)
  check_run.py npy FILE.npy ROWS BATCH VOCAB     checks the .npy header (version 1.0, '<f4',
                                                 C order, the shape), the file size and that
                                                 every value is finite; prints a summary line
  check_run.py rows GEN.npy SCORE.npy LENGTHS TOL
                                                 generation's logits ([rows, sequences, V],
                                                 --dump-logits) against --score's ([sequences,
                                                 longest, V]) of each prompt followed by its
                                                 forced tokens: row i of sequence b is position
                                                 LENGTHS[b] - 1 + i; every relative L2 error
                                                 must be <= TOL; prints the largest
  check_run.py logprobs SCORE.json SCORE.npy     --score's token_logprobs against the log-softmax
                                                 of the dumped logits (to 1e-9)
"""
import json
import math
import struct
import sys


def generated(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    for seq in doc["sequences"]:
        print(" ".join(str(t) for t in seq["generated"]))


def read_npy(path):
    """(shape, values) of a float32 .npy file."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:6] == b"\x93NUMPY", "bad magic"
    (header_len,) = struct.unpack("<H", data[8:10])
    meta = eval(data[10:10 + header_len].decode("latin1"), {}, {})
    assert meta["descr"] == "<f4" and not meta["fortran_order"], meta
    shape = meta["shape"]
    count = 1
    for d in shape:
        count *= d
    return shape, struct.unpack(f"<{count}f", data[10 + header_len:])


def row_of(shape, values, i, j):
    """The last-axis row [i, j, :] of a 3-D array."""
    v = shape[2]
    start = (i * shape[1] + j) * v
    return values[start:start + v]


def rows(gen_path, score_path, lengths, tol):
    gshape, gen = read_npy(gen_path)
    sshape, score = read_npy(score_path)
    lengths = [int(x) for x in lengths.split(",")]
    assert gshape[1] == sshape[0] == len(lengths) and gshape[2] == sshape[2], (gshape, sshape)
    worst, compared = 0.0, 0
    for b, length in enumerate(lengths):
        for i in range(gshape[0]):
            position = length - 1 + i
            if position >= sshape[1]:
                break
            g, s = row_of(gshape, gen, i, b), row_of(sshape, score, b, position)
            diff = math.sqrt(sum((x - y) ** 2 for x, y in zip(g, s)))
            norm = math.sqrt(sum(y * y for y in s))
            err = diff / norm if math.isfinite(diff) else math.inf
            assert err <= float(tol), f"sequence {b}, row {i}: relative L2 error {err:.3g} > {tol}"
            worst, compared = max(worst, err), compared + 1
    print(f"rows ok: {compared} rows, largest relative L2 error {worst:.2e} <= {tol}")


def logprobs(json_path, npy_path):
    with open(json_path, encoding="utf-8") as f:
        doc = json.load(f)
    shape, values = read_npy(npy_path)
    checked = 0
    for b, seq in enumerate(doc["sequences"]):
        ids, got = seq["prompt_ids"], seq["token_logprobs"]
        assert len(got) == len(ids) - 1, (len(got), len(ids))
        for p in range(len(ids) - 1):
            row = row_of(shape, values, b, p)
            top = max(row)
            lse = top + math.log(sum(math.exp(x - top) for x in row))
            assert abs(got[p] - (row[ids[p + 1]] - lse)) <= 1e-9, (b, p, got[p])
            checked += 1
        assert abs(seq["log_likelihood"] - sum(got)) <= 1e-9 * max(1.0, abs(sum(got)))
    print(f"logprobs ok: {checked} tokens")


def npy(path, rows, batch, vocab):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:6] == b"\x93NUMPY", "bad magic"
    assert data[6:8] == b"\x01\x00", "not version 1.0"
    (header_len,) = struct.unpack("<H", data[8:10])
    header = data[10:10 + header_len].decode("latin1")
    assert (10 + header_len) % 64 == 0, "header not padded to 64 bytes"
    assert header.endswith("\n"), "header does not end in a newline"
    meta = eval(header, {}, {})  # a Python literal, as numpy writes it
    shape = (int(rows), int(batch), int(vocab))
    assert meta == {"descr": "<f4", "fortran_order": False, "shape": shape}, meta
    body = data[10 + header_len:]
    count = shape[0] * shape[1] * shape[2]
    assert len(body) == 4 * count, f"{len(body)} data bytes, expected {4 * count}"
    values = struct.unpack(f"<{count}f", body)
    bad = sum(1 for v in values if not math.isfinite(v))
    assert bad == 0, f"{bad} values are not finite"
    spread = max(values) - min(values)
    assert spread > 0, "all values are equal"
    print(f"npy ok: shape {list(shape)}, {count} finite values")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"generated": generated, "npy": npy, "rows": rows, "logprobs": logprobs}[command](*args)
