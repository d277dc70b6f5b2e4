#!/usr/bin/env python3
"""Writes the tokenizer parity fixtures: what Hugging Face `tokenizers` makes of our test texts.

    python3 test/parity/make_tokenizer_fixtures.py test/runtime/tokenizer/fixtures

run from the repository root on a machine with `pip install tokenizers`. It loads
../shared/data/gpt-neox-20b-tokenizer.json with tokenizers.Tokenizer.from_file and writes into the
output directory:

  tokenizer_fixtures.json      versions and checksums of the inputs, then
      "cases":        text -> ids with encode(text, add_special_tokens=False); "ids" with HF's
                      default (special-token strings in the text become special ids; xlc's
                      EncodeOptions::parseSpecial) and "ids_special_as_text" with
                      encode_special_tokens=True (xlc's default; null when this tokenizers
                      version lacks the switch). The texts: all of hard_cases.txt, each of its
                      non-empty lines, and the EXTRA_CASES below.
      "invalid_utf8": bytes (hex) -> ids, the bytes turned into text by
                      bytes.decode("utf-8", errors="replace") first: the rule xlc applies itself.
      "decode":       ids -> decode(ids, skip_special_tokens=...) for the DECODE_CASES below.
  tinyshakespeare.ids.u32le    the ids of all of tinyshakespeare.txt, little-endian uint32
                               (its size and sha256 are in tokenizer_fixtures.json).

For machines without the Python package, the same work can be split: --write-plan PLAN writes the
inputs (no `tokenizers` needed), something else runs the same Rust library on them (e.g. the
`tokenizers` Node binding) and writes a results JSON of the same shape as run_hf() returns, and
--from-results RESULTS writes the fixtures from it.
"""
import argparse
import hashlib
import json
import os
import struct
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(REPO), "shared", "data")

# Cases that are awkward to keep in a text file (NUL, controls) or that are programmatic.
EXTRA_CASES = {
    "empty": "",
    "one space": " ",
    "spaces only (30)": " " * 30,
    "newlines only": "\n\n\n",
    "space newline space": " \n ",
    "CRLF pair": "a\r\nb\r\n",
    "CR only": "\r",
    "controls": "null\x00 bell\x07 escape\x1b[0m delete\x7f unit\x1f sep\x1c",
    "repeated letter (500)": "a" * 500,
    "repeated space-word (100)": " the" * 100,
    "long spaces then word": " " * 57 + "word" + " " * 25 + "\tx",
    "mixed whitespace run": " \t \u00a0 \u3000 \n x",
    "hangul jamo (compose under NFC)": "\u1100\u1161\u11a8 \u1100\u1161 \u110b\u1175\u11bc",
    "marks reordered by NFC": "e\u0301\u0323 q\u0307\u0323 \u1e0b\u0323",
    "special token alone": "<|endoftext|>",
    "special tokens adjacent to spaces": "  <|endoftext|>  <|padding|>\n<|endoftext|>",
    "special token inside a word": "foo<|endoftext|>bar",
    "apostrophe at end": "it'",
    "digits glued to letters": "abc123def 4x4 x86_64",
    "emoji modifiers alone": "\U0001f3fd\u200d\ufe0f",
    "replacement character": "a\ufffdb",
}

# Invalid UTF-8 inputs; each becomes text with errors="replace" before encoding.
INVALID_UTF8 = {
    "latin-1 e acute": b"caf\xe9 au lait",
    "lone continuation bytes": b"\x80\x81 x \xbf",
    "bytes that never occur": b"\xc0\xc1\xf5\xf8\xfc\xfe\xff",
    "overlong slash": b"\xc0\xaf and \xe0\x80\xaf",
    "surrogate": b"\xed\xa0\x80\xed\xbf\xbf",
    "above U+10FFFF": b"\xf4\x90\x80\x80",
    "truncated 2/3/4-byte": b"\xc3 \xe2\x82 \xf0\x9f\x98",
    "truncated at end": b"end \xf0\x9f\x98",
    "valid emoji then truncated": b"\xf0\x9f\x98\x80\xf0\x9f",
    "invalid in special token": b"<|endof\xfftext|>",
    "invalid between spaces": b"a  \xff  b",
}


def bytes_to_unicode():
    """GPT-2's byte -> stand-in character map (the byte-level alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def decode_cases(tokenizer_json):
    """Id lists for decode, built from the vocabulary (no `tokenizers` needed)."""
    with open(tokenizer_json, encoding="utf-8") as f:
        tj = json.load(f)
    vocab = dict(tj["model"]["vocab"])
    for t in tj.get("added_tokens") or []:
        vocab[t["content"]] = t["id"]
    b2u = bytes_to_unicode()

    def ids_of_bytes(data):
        # GPT-NeoX's vocabulary has all bytes but 0xC0, 0xC1 and 0xF5..0xFF (never in UTF-8).
        return [vocab[b2u[b]] for b in data]

    def ids(*tokens):
        return [vocab[t] for t in tokens]

    smile = "\U0001f600".encode()
    cases = [
        ("hello world", ids("Hello", "\u0120world")),
        ("specials around text", ids("<|endoftext|>", "Hello", "<|padding|>", "\u0120world",
                                     "<|endoftext|>")),
        ("whitespace added tokens", ids("   ", "\u0120world", "  ", "x")),
        ("emoji byte by byte", ids_of_bytes(smile)),
        ("emoji cut after two bytes", ids_of_bytes(smile[:2])),
        ("emoji cut then text", ids_of_bytes(smile[:3]) + ids("Hello")),
        ("lone continuation byte", ids_of_bytes(b"a\x80b")),
        ("overlong, surrogate, too large",
         ids_of_bytes(b"\xe0\x80\xaf|\xed\xa0\x80|\xf4\x90\x80\x80")),
        ("truncated sequences", ids_of_bytes(b"\xc3|\xe2\x82|\xf0\x9f\x98|")),
        ("ids beyond the vocabulary", ids("Hello") + [50277, 50303, 60000] + ids("\u0120world")),
        ("empty", []),
    ]
    out = []
    for name, id_list in cases:
        for skip in (False, True):
            out.append({"name": name, "ids": id_list, "skip_special": skip})
    # Round trips of encoded text, resolved once the encodings exist.
    for case in ("hard_cases.txt", "special tokens adjacent to spaces"):
        for skip in (False, True):
            out.append({"name": f"encoding of {case}", "ids_of_case": case, "skip_special": skip})
    return out


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def make_plan(args):
    with open(args.hard_cases, "rb") as f:
        hard = f.read().decode("utf-8")
    cases = [{"name": "hard_cases.txt", "text": hard}]
    for i, line in enumerate(hard.split("\n")):
        if line:
            cases.append({"name": f"hard_cases.txt line {i + 1}", "text": line})
    cases += [{"name": name, "text": text} for name, text in EXTRA_CASES.items()]
    return {
        "tokenizer_json": os.path.abspath(args.tokenizer),
        "tinyshakespeare": os.path.abspath(args.tinyshakespeare),
        "cases": cases,
        "invalid_utf8": [{"name": n, "bytes_hex": b.hex()} for n, b in INVALID_UTF8.items()],
        "decode": decode_cases(args.tokenizer),
    }


def run_hf(plan):
    """Runs HF tokenizers on the plan; returns the results."""
    import tokenizers
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(plan["tokenizer_json"])

    def encode_all(texts):
        return [tok.encode(t, add_special_tokens=False).ids for t in texts]

    texts = [c["text"] for c in plan["cases"]]
    results = {"tokenizers_version": tokenizers.__version__, "binding": "python"}
    results["cases"] = encode_all(texts)
    if hasattr(tok, "encode_special_tokens"):
        tok.encode_special_tokens = True
        results["cases_special_as_text"] = encode_all(texts)
        tok.encode_special_tokens = False
    else:
        results["cases_special_as_text"] = None
    results["invalid_utf8"] = encode_all(
        bytes.fromhex(c["bytes_hex"]).decode("utf-8", errors="replace")
        for c in plan["invalid_utf8"])
    with open(plan["tinyshakespeare"], "rb") as f:
        results["tinyshakespeare"] = tok.encode(f.read().decode("utf-8"),
                                                add_special_tokens=False).ids
    by_name = {c["name"]: ids for c, ids in zip(plan["cases"], results["cases"])}
    results["decode"] = []
    for d in plan["decode"]:
        ids = by_name[d["ids_of_case"]] if "ids_of_case" in d else d["ids"]
        results["decode"].append(tok.decode(ids, skip_special_tokens=d["skip_special"]))
    return results


def dumps_list(items):
    """A JSON array with one element per line: readable diffs, no id-per-line bloat."""
    return "[\n" + ",\n".join("  " + json.dumps(x, ensure_ascii=True) for x in items) + "\n]"


def write_fixtures(plan, results, out_dir, args):
    os.makedirs(out_dir, exist_ok=True)
    by_name = {c["name"]: ids for c, ids in zip(plan["cases"], results["cases"])}
    special_as_text = results.get("cases_special_as_text")
    cases = []
    for i, c in enumerate(plan["cases"]):
        cases.append({"name": c["name"], "text": c["text"], "ids": results["cases"][i],
                      "ids_special_as_text": special_as_text[i] if special_as_text else None})
    invalid = [{"name": c["name"], "bytes_hex": c["bytes_hex"], "ids": ids}
               for c, ids in zip(plan["invalid_utf8"], results["invalid_utf8"])]
    decode = []
    for d, text in zip(plan["decode"], results["decode"]):
        ids = by_name[d["ids_of_case"]] if "ids_of_case" in d else d["ids"]
        decode.append({"name": d["name"], "ids": ids, "skip_special": d["skip_special"],
                       "text": text})

    ts_ids = results["tinyshakespeare"]
    ts_file = "tinyshakespeare.ids.u32le"
    with open(os.path.join(out_dir, ts_file), "wb") as f:
        f.write(struct.pack(f"<{len(ts_ids)}I", *ts_ids))

    header = {
        "format": 1,
        "generator": "test/parity/make_tokenizer_fixtures.py",
        "tokenizers_version": results["tokenizers_version"],
        "binding": results.get("binding", "python"),
        "tokenizer_json_sha256": sha256(plan["tokenizer_json"]),
        "hard_cases_sha256": sha256(args.hard_cases),
        "tinyshakespeare": {"ids_file": ts_file, "count": len(ts_ids),
                            "source_bytes": os.path.getsize(plan["tinyshakespeare"]),
                            "source_sha256": sha256(plan["tinyshakespeare"])},
    }
    parts = ["{"]
    for k, v in header.items():
        parts.append(f"  {json.dumps(k)}: {json.dumps(v)},")
    parts.append(f'  "cases": {dumps_list(cases)},')
    parts.append(f'  "invalid_utf8": {dumps_list(invalid)},')
    parts.append(f'  "decode": {dumps_list(decode)}')
    parts.append("}")
    with open(os.path.join(out_dir, "tokenizer_fixtures.json"), "w", encoding="ascii",
              newline="\n") as f:
        f.write("\n".join(parts) + "\n")
    print(f"wrote {out_dir}/tokenizer_fixtures.json ({len(cases)} cases, {len(invalid)} invalid "
          f"UTF-8, {len(decode)} decodes) and {ts_file} ({len(ts_ids)} ids), tokenizers "
          f"{results['tokenizers_version']} ({header['binding']})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir", nargs="?", help="directory for the fixtures, e.g. "
                    "test/runtime/tokenizer/fixtures")
    ap.add_argument("--tokenizer", default=os.path.join(SHARED, "gpt-neox-20b-tokenizer.json"))
    ap.add_argument("--tinyshakespeare", default=os.path.join(SHARED, "tinyshakespeare.txt"))
    ap.add_argument("--hard-cases",
                    default=os.path.join(REPO, "test", "runtime", "tokenizer", "hard_cases.txt"))
    ap.add_argument("--write-plan", metavar="PLAN", help="only write the inputs as JSON and stop")
    ap.add_argument("--from-results", metavar="RESULTS",
                    help="take HF's outputs from this JSON instead of running tokenizers")
    args = ap.parse_args()

    plan = make_plan(args)
    if args.write_plan:
        with open(args.write_plan, "w", encoding="utf-8") as f:
            json.dump(plan, f, ensure_ascii=True)
        print(f"wrote {args.write_plan}")
        return
    if not args.out_dir:
        ap.error("out_dir is required (unless --write-plan)")
    if args.from_results:
        with open(args.from_results, encoding="utf-8") as f:
            results = json.load(f)
    else:
        results = run_hf(plan)
    write_fixtures(plan, results, args.out_dir, args)


if __name__ == "__main__":
    sys.exit(main())
