#!/usr/bin/env python3
"""Writes tokenizer.json for models/xlstm-shakespeare: byte-level, one token per byte.

The model reads Tiny Shakespeare (1.1 M characters, all ASCII) one byte at a time, as
character-level language models of that corpus do (nanoGPT's shakespeare_char): with the
GPT-NeoX-20B tokenizer the corpus is only ~340 k tokens for a 50 k-row vocabulary, the embedding
alone would hold most of a 10-30 M parameter budget, and a model that small overfits it within a
few hundred steps. Here the vocabulary is the 256 bytes, so every parameter but 0.2 M sits in the
blocks and the corpus is 1.1 M tokens.

The file is an ordinary Hugging Face tokenizer: the GPT-NeoX tokenizer's byte-level BPE (NFC
normaliser, ByteLevel pre-tokenizer and decoder) with the 256 byte symbols as its vocabulary, in
byte order (token id = byte value), and no merges. Id 0 (the NUL byte, absent from text) serves
as beginning/end of text and padding in config.json.

    python3 models/xlstm-shakespeare/make_tokenizer.py > models/xlstm-shakespeare/tokenizer.json
"""
import json
import sys


def bytes_to_unicode():
    """GPT-2's printable stand-ins for the 256 bytes (what ByteLevel maps each byte to)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    symbols = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in symbols:
            symbols[b] = chr(256 + extra)
            extra += 1
    return symbols


def main():
    symbols = bytes_to_unicode()
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True}
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": byte_level,
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "vocab": {symbols[b]: b for b in range(256)},
            "merges": [],
        },
    }
    json.dump(tokenizer, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
