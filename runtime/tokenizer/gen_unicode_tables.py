#!/usr/bin/env python3
"""Generates runtime/tokenizer/UnicodeTables.inc: the Unicode data the tokenizer needs.

Run from the repository root:

    python3 runtime/tokenizer/gen_unicode_tables.py \
        [--derived-age /usr/share/unicode/DerivedAge.txt]

The committed tables were made with Python 3.11.7 (unicodedata = Unicode 14.0.0) and
DerivedAge.txt 15.0.0 from Debian's unicode-data package (apt-get install unicode-data). Another
Python gives another Unicode version for the character classes: keep 3.11 unless deliberately
moving (see below).

What it writes, and why each table matches Hugging Face `tokenizers` (Rust):

* Character classes for the GPT-2 pre-tokenizer regex, which HF runs with Oniguruma:
  \\p{L} = General_Category L*, \\p{N} = N*, \\s = White_Space (Oniguruma's CR_Space is the
  White_Space property: U+0009..U+000D, U+0085 and the Zs/Zl/Zp characters). A fourth flag
  approximates the Rust `regex` crate's \\w (Alphabetic | M | Nd | Pc | Join_Control, taken as
  L | Nl | M | Nd | Pc | U+200C/U+200D: Other_Alphabetic symbols such as circled letters are
  missed), used only by added tokens with single_word=true. All assigned characters of this
  Python's Unicode version. Oniguruma is Unicode 14.0 in onig_sys 69.8 (HF releases built with the
  onig crate 6.4) and Unicode 16.0 in onig_sys 69.9 (onig 6.5, e.g. tokenizers 0.23); the classes
  differ only for characters new in Unicode 15.0..16.0 (checked against tokenizers 0.23.2 on every
  code point).

* NFC data (canonical combining classes, full canonical decompositions, primary composites).
  HF normalizes with the `unicode-normalization-alignments` crate, a fork of unicode-normalization
  0.1.8 whose tables are Unicode 9.0: a combining mark added in Unicode 10 or later is a starter
  (class 0) there, and compositions of later characters (e.g. Dives Akuru U+11938) do not happen.
  Since decompositions and combining classes of assigned characters never change (Unicode
  stability policy), "Unicode 9.0 NFC" is exactly "today's NFC data with every character newer
  than 9.0 treated as unassigned"; DerivedAge.txt gives each character's version.
"""
import argparse
import os
import sys
import unicodedata

FLAG_LETTER = 1
FLAG_NUMBER = 2
FLAG_SPACE = 4
FLAG_WORD = 8

HANGUL_S_BASE, HANGUL_S_COUNT = 0xAC00, 11172


def parse_derived_age(path):
    """Returns a list of (first, last, (major, minor)) from DerivedAge.txt."""
    ranges = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            cps, age = (part.strip() for part in line.split(";"))
            if ".." in cps:
                first, last = (int(x, 16) for x in cps.split(".."))
            else:
                first = last = int(cps, 16)
            major, minor = (int(x) for x in age.split("."))
            ranges.append((first, last, (major, minor)))
    return ranges


def char_flags(cp):
    c = chr(cp)
    cat = unicodedata.category(c)
    flags = 0
    if cat[0] == "L":
        flags |= FLAG_LETTER | FLAG_WORD
    if cat[0] == "N":
        flags |= FLAG_NUMBER
    if cat in ("Nd", "Nl", "Pc") or cat[0] == "M" or cp in (0x200C, 0x200D):
        flags |= FLAG_WORD
    if (0x09 <= cp <= 0x0D) or cp == 0x85 or cat in ("Zs", "Zl", "Zp"):
        flags |= FLAG_SPACE
    return flags


def runs(values):
    """Collapses a dict cp -> value into sorted [first, last, value] runs of equal values."""
    out = []
    for cp in sorted(values):
        v = values[cp]
        if out and out[-1][1] == cp - 1 and out[-1][2] == v:
            out[-1][1] = cp
        else:
            out.append([cp, cp, v])
    return out


def canonical_decomposition(c, in_scope):
    """Full (recursive) canonical decomposition of one character, or None if it has none."""
    d = unicodedata.decomposition(c)
    if not d or d.startswith("<"):
        return None
    parts = [chr(int(x, 16)) for x in d.split()]
    assert all(in_scope(ord(p)) for p in parts), hex(ord(c))
    out = []
    for p in parts:
        sub = canonical_decomposition(p, in_scope)
        out.extend(sub if sub else [p])
    return out


def fmt_table(items, per_line):
    lines = []
    for i in range(0, len(items), per_line):
        lines.append("    " + " ".join(items[i:i + per_line]))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--derived-age", default="/usr/share/unicode/DerivedAge.txt",
                    help="DerivedAge.txt of a Unicode version >= the normalization version "
                         "(Debian package unicode-data)")
    ap.add_argument("--normalization-version", default="9.0",
                    help="Unicode version of the NFC tables of HF's normalization crate")
    ap.add_argument("--output", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                     "UnicodeTables.inc"))
    args = ap.parse_args()

    if not os.path.exists(args.derived_age):
        sys.exit(f"error: {args.derived_age} not found (apt-get install unicode-data, or pass "
                 "--derived-age)")
    norm_version = tuple(int(x) for x in args.normalization_version.split("."))
    ages = parse_derived_age(args.derived_age)
    in_norm = set()
    for first, last, age in ages:
        if age <= norm_version:
            in_norm.update(range(first, last + 1))

    def in_scope(cp):
        return cp in in_norm

    # --- Character classes (all of this Python's Unicode version) -------------------------------
    flags = {}
    for cp in range(0x110000):
        f = char_flags(cp)
        if f:
            flags[cp] = f
    class_runs = runs(flags)

    # --- NFC data, restricted to characters assigned in the normalization version -------------
    ccc = {}
    decomp = {}
    for cp in range(0x110000):
        if not in_scope(cp) or HANGUL_S_BASE <= cp < HANGUL_S_BASE + HANGUL_S_COUNT:
            continue
        c = chr(cp)
        k = unicodedata.combining(c)
        if k:
            ccc[cp] = k
        d = canonical_decomposition(c, in_scope)
        if d:
            decomp[cp] = [ord(x) for x in d]
    # Primary composites: characters with a two-character canonical decomposition that NFC keeps
    # composed (this excludes singletons, non-starter decompositions and the composition
    # exclusions). Checked with this Python's NFC, which agrees for characters in scope.
    compositions = {}
    for cp in range(0x110000):
        if not in_scope(cp) or HANGUL_S_BASE <= cp < HANGUL_S_BASE + HANGUL_S_COUNT:
            continue
        d = unicodedata.decomposition(chr(cp))
        if not d or d.startswith("<"):
            continue
        parts = [int(x, 16) for x in d.split()]
        if len(parts) == 2 and unicodedata.normalize("NFC", chr(cp)) == chr(cp):
            key = (parts[0] << 21) | parts[1]
            assert key not in compositions
            compositions[key] = cp
    seconds = {k & 0x1FFFFF for k in compositions}
    # Characters that may make a string change under NFC: anything with a decomposition, a
    # non-zero combining class, or that composes with a preceding character (incl. Hangul V/T).
    sensitive = {}
    for cp in set(ccc) | set(decomp) | seconds:
        sensitive[cp] = 1
    for cp in list(range(0x1161, 0x1176)) + list(range(0x11A8, 0x11C3)):
        sensitive[cp] = 1
    for cp in range(HANGUL_S_BASE, HANGUL_S_BASE + HANGUL_S_COUNT):
        sensitive[cp] = 1
    assert all(cp >= 0xC0 for cp in sensitive)

    pool = []
    decomp_entries = []
    for cp in sorted(decomp):
        d = decomp[cp]
        assert len(d) < 256 and len(pool) + len(d) < 65536
        decomp_entries.append(f"{{0x{cp:X}, {len(pool)}, {len(d)}}},")
        pool.extend(d)

    out = []
    out.append("// Generated by runtime/tokenizer/gen_unicode_tables.py: do not edit.\n")
    out.append(f"// Character classes: Python {sys.version.split()[0]} unicodedata, "
               f"Unicode {unicodedata.unidata_version}.")
    with open(args.derived_age, encoding="utf-8") as f:
        age_source = f.readline().strip("# \n")
    out.append(f"// NFC data: the same, restricted to characters of Unicode "
               f"{args.normalization_version} (character ages from {age_source}).")
    out.append("// Included by UnicodeData.cpp only.\n")
    out.append(f'#define XLC_UNICODE_CLASSES_VERSION "{unicodedata.unidata_version}"')
    out.append(f'#define XLC_UNICODE_NFC_VERSION "{args.normalization_version}"\n')
    out.append(f"// {{first, last, flags}}: 1 letter (L), 2 number (N), 4 White_Space, 8 \\w.")
    out.append(f"static constexpr ClassRange kClassRanges[{len(class_runs)}] = {{")
    out.append(fmt_table([f"{{0x{a:X}, 0x{b:X}, {v}}}," for a, b, v in class_runs], 5))
    out.append("};\n")
    ccc_runs = runs(ccc)
    out.append("// {first, last, canonical combining class}, non-zero classes only.")
    out.append(f"static constexpr CccRange kCccRanges[{len(ccc_runs)}] = {{")
    out.append(fmt_table([f"{{0x{a:X}, 0x{b:X}, {v}}}," for a, b, v in ccc_runs], 5))
    out.append("};\n")
    out.append("// {code point, offset, length} into kDecompositionPool: full canonical"
               " decomposition (Hangul is algorithmic).")
    out.append(f"static constexpr DecompositionEntry kDecompositions[{len(decomp_entries)}] = {{")
    out.append(fmt_table(decomp_entries, 5))
    out.append("};\n")
    out.append(f"static constexpr char32_t kDecompositionPool[{len(pool)}] = {{")
    out.append(fmt_table([f"0x{x:X}," for x in pool], 10))
    out.append("};\n")
    out.append("// {(first << 21) | second, composite}, sorted by key: primary composites"
               " (Hangul is algorithmic).")
    out.append(f"static constexpr CompositionEntry kCompositions[{len(compositions)}] = {{")
    out.append(fmt_table([f"{{0x{k:X}, 0x{compositions[k]:X}}}," for k in sorted(compositions)], 5))
    out.append("};\n")
    sens_runs = runs(sensitive)
    out.append("// {first, last, 1}: characters that can make a string change under NFC.")
    out.append(f"static constexpr CccRange kNfcSensitiveRanges[{len(sens_runs)}] = {{")
    out.append(fmt_table([f"{{0x{a:X}, 0x{b:X}, 1}}," for a, b, _ in sens_runs], 5))
    out.append("};")
    with open(args.output, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {args.output}: {len(class_runs)} class ranges, {len(ccc_runs)} ccc ranges, "
          f"{len(decomp_entries)} decompositions ({len(pool)} code points), "
          f"{len(compositions)} compositions, {len(sens_runs)} NFC-sensitive ranges")


if __name__ == "__main__":
    main()
