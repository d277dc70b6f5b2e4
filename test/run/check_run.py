#!/usr/bin/env python3
"""Checks of xlc-run's outputs for the lit tests (no third-party modules).

  check_run.py generated FILE.json               prints each sequence's generated ids, one line
                                                 per sequence (for diff and FileCheck)
  check_run.py npy FILE.npy ROWS BATCH VOCAB     checks the .npy header (version 1.0, '<f4',
                                                 C order, the shape), the file size and that
                                                 every value is finite; prints a summary line
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
    {"generated": generated, "npy": npy}[command](*args)
