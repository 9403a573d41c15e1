#!/usr/bin/env python3
# Corpus and tokenizer of models/tiny-kjv.
#
# Corpus: the King James Version of the Bible as Debian's `bible-kjv-text` package ships it
# (/usr/lib/bible.data), read out through the `bible` program of `bible-kjv`. The text is in the
# public domain: the package's copyright file (/usr/share/doc/bible-kjv-text/copyright) says its
# copyright "is expired since the translation was done in 1611", and the data file "is provided for
# unrestricted use provided that this legend is included ... Users may copy, modify or distribute
# this file at will" (the legend is quoted in models/tiny-kjv/README.md). A model trained on it can
# ship under this project's MIT licence.
#
# Split: whole chapters, every 20th (index % 20 == 10, 5% of the 1,189) held out for evaluation.
# Tokenizer: a byte-level BPE trained here on the training chapters (no tokenizer library is
# installable from Debian), written as a Hugging Face tokenizer.json in DeepSeek's shape (Split +
# ByteLevel pre-tokenizers, ByteLevel decoder, BPE model with merges) and tokenizer_config.json with
# BOS/EOS and a chat template shaped like DeepSeek-V3's.
#
# Needs (Debian 12, as root): apt-get install -y bible-kjv bible-kjv-text python3-regex
# Usage: /usr/bin/python3 scripts/train/kjv_bpe.py [MODEL_DIR] [CASES_JSON]
#   writes MODEL_DIR/tokenizer.json and tokenizer_config.json (default models/tiny-kjv) and
#   CASES_JSON (default tests/fixtures/tiny-kjv-tokens.json): texts with this encoder's ids, which
#   the runtime's tokenizer must reproduce.
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict

import regex

VOCAB_SIZE = 1024
BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
SPECIALS = [BOS, EOS, USER, ASSISTANT]
# The Split pre-tokenizer: a space sticks to the word, number or punctuation run after it.
SPLIT = r" ?\p{L}+| ?\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
PRETOKENIZE = regex.compile(SPLIT)
# DeepSeek-V3's template without tool calls: system prompt after BOS, User/Assistant turns, EOS after each answer.
CHAT_TEMPLATE = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{% set ns = namespace(system_prompt='') %}"
    "{%- for message in messages %}{%- if message['role'] == 'system' %}{% set ns.system_prompt = message['content'] %}{%- endif %}{%- endfor %}"
    "{{ bos_token }}{{ ns.system_prompt }}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}{{ '" + USER + "' + message['content'] }}{%- endif %}"
    "{%- if message['role'] == 'assistant' %}{{ '" + ASSISTANT + "' + message['content'] + '" + EOS + "' }}{%- endif %}"
    "{%- endfor %}"
    "{% if add_generation_prompt %}{{ '" + ASSISTANT + "' }}{% endif %}"
)


def chapters():
    """[(name, [verse text, ...])] for the 1,189 chapters, Genesis 1 to Revelation 22."""
    out = subprocess.run(["bible", "-l0", "Genesis 1:1-Revelation 22:21"], check=True, capture_output=True, text=True).stdout
    chs = []
    for line in out.split("\n"):
        if not line.strip():
            continue
        if line.startswith("  "):
            number, text = line.strip().split(" ", 1)
            assert number.isdigit(), line
            chs[-1][1].append(text)
        else:
            chs.append((line, []))
    assert len(chs) == 1189 and sum(len(v) for _, v in chs) == 31102, (len(chs), sum(len(v) for _, v in chs))
    return chs


def split_chapters(chs):
    """(training chapters, held-out chapters): every 20th chapter is held out."""
    return [c for i, c in enumerate(chs) if i % 20 != 10], [c for i, c in enumerate(chs) if i % 20 == 10]


def chapter_text(verses):
    return "\n".join(verses)


def bytes_to_unicode():
    """GPT-2's byte -> printable character map (the ByteLevel pre-tokenizer's)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


BYTE_CHAR = bytes_to_unicode()
CHAR_BYTE = {c: b for b, c in BYTE_CHAR.items()}


def byte_level(piece):
    return "".join(BYTE_CHAR[b] for b in piece.encode("utf-8"))


def train_bpe(texts, n_merges):
    """Merges [(a, b)] by repeated most-frequent pair within pre-tokens (ties: the smaller pair)."""
    words = Counter()
    for t in texts:
        words.update(byte_level(p) for p in PRETOKENIZE.findall(t))
    syms = [list(w) for w in words]
    counts = list(words.values())
    pairs = Counter()
    where = defaultdict(set)
    for i, s in enumerate(syms):
        for p in zip(s, s[1:]):
            pairs[p] += counts[i]
            where[p].add(i)
    merges = []
    while len(merges) < n_merges and pairs:
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merges.append(best)
        a, b = best
        for i in list(where[best]):
            s, c = syms[i], counts[i]
            for p in zip(s, s[1:]):
                pairs[p] -= c
                if pairs[p] == 0:
                    del pairs[p]
            merged, j = [], 0
            while j < len(s):
                if j + 1 < len(s) and s[j] == a and s[j + 1] == b:
                    merged.append(a + b)
                    j += 2
                else:
                    merged.append(s[j])
                    j += 1
            syms[i] = merged
            for p in zip(merged, merged[1:]):
                pairs[p] += c
                where[p].add(i)
        del where[best]
    return merges


class Bpe:
    """Encodes as Hugging Face's BPE model does: added tokens first, then per pre-token the
    lowest-ranked adjacent pair merged (the leftmost among equals) until no merge applies."""

    def __init__(self, merges):
        self.merges = merges
        self.rank = {m: r for r, m in enumerate(merges)}
        self.vocab = {BYTE_CHAR[b]: b for b in range(256)}
        for a, b in merges:
            self.vocab[a + b] = len(self.vocab)
        for s in SPECIALS:
            self.vocab[s] = len(self.vocab)
        self.token = {i: t for t, i in self.vocab.items()}
        self.special_split = regex.compile("(" + "|".join(regex.escape(s) for s in SPECIALS) + ")")
        self.cache = {}

    def word(self, w):
        if w not in self.cache:
            s = list(w)
            while len(s) > 1:
                ranked = [(self.rank.get(p, len(self.rank)), j) for j, p in enumerate(zip(s, s[1:]))]
                r, j = min(ranked)
                if r == len(self.rank):
                    break
                s[j : j + 2] = [s[j] + s[j + 1]]
            self.cache[w] = [self.vocab[t] for t in s]
        return self.cache[w]

    def encode(self, text):
        ids = []
        for part in self.special_split.split(text):
            if part in SPECIALS:
                ids.append(self.vocab[part])
            else:
                for p in PRETOKENIZE.findall(part):
                    ids.extend(self.word(byte_level(p)))
        return ids

    def decode(self, ids):
        out, buf = [], bytearray()
        for i in ids:
            t = self.token[i]
            if t in SPECIALS:
                out.append(buf.decode("utf-8", errors="replace") + t)
                buf = bytearray()
            else:
                buf.extend(CHAR_BYTE[c] for c in t)
        return "".join(out) + buf.decode("utf-8", errors="replace")

    @property
    def bos(self):
        return self.vocab[BOS]

    @property
    def eos(self):
        return self.vocab[EOS]


def added(content, id_, special):
    return {"id": id_, "content": content, "single_word": False, "lstrip": False, "rstrip": False, "normalized": True, "special": special}


def write_tokenizer(d, bpe):
    # DeepSeek-V3 marks BOS/EOS special and the chat role markers not (decoding keeps them).
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [added(s, bpe.vocab[s], s in (BOS, EOS)) for s in SPECIALS],
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": SPLIT}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
            ],
        },
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": {t: i for t, i in bpe.vocab.items() if t not in SPECIALS},
            "merges": [f"{a} {b}" for a, b in bpe.merges],
        },
    }
    special = lambda s: {"__type": "AddedToken", "content": s, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}
    config = {
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": special(BOS),
        "eos_token": special(EOS),
        "clean_up_tokenization_spaces": False,
        "legacy": True,
        "model_max_length": 2048,
        "pad_token": None,
        "unk_token": None,
        "tokenizer_class": "LlamaTokenizerFast",
        "chat_template": CHAT_TEMPLATE,
    }
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)
    with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=1)


def load_tokenizer(d):
    """The Bpe of a tokenizer.json this script wrote."""
    with open(os.path.join(d, "tokenizer.json"), encoding="utf-8") as f:
        m = json.load(f)["model"]
    bpe = Bpe([tuple(s.split(" ")) for s in m["merges"]])
    assert all(bpe.vocab[t] == i for t, i in m["vocab"].items())
    return bpe


def test_cases(bpe, held):
    """Texts for the runtime's tokenizer to reproduce: held-out verses, the chat format, and text
    the corpus never has (digits, other scripts, tabs, runs of spaces, emoji)."""
    texts = [chapter_text(held[0][1][:3]), held[7][1][4], held[-1][1][0], " ".join(v[0] for _, v in held[10:14])]
    texts.append(BOS + USER + "Who made the heaven and the earth?" + ASSISTANT + "In the beginning God created the heaven and the earth." + EOS)
    texts.append("Numbers 3:16, 2024-12-26\tx  y   z \n\n café naïve Ελληνικά 日本語 🙂 <｜User｜ BOS")
    return [{"text": t, "ids": bpe.encode(t)} for t in texts]


def main():
    model_dir = sys.argv[1] if len(sys.argv) > 1 else "models/tiny-kjv"
    cases_path = sys.argv[2] if len(sys.argv) > 2 else "tests/fixtures/tiny-kjv-tokens.json"
    train, held = split_chapters(chapters())
    bpe = Bpe(train_bpe([chapter_text(v) for _, v in train], VOCAB_SIZE - 256 - len(SPECIALS)))
    assert len(bpe.vocab) == VOCAB_SIZE
    write_tokenizer(model_dir, bpe)
    cases = test_cases(bpe, held)
    for c in cases:
        assert bpe.decode(c["ids"]) == c["text"], c["text"]
    with open(cases_path, "w", encoding="utf-8") as f:
        json.dump({"tokenizer": os.path.join(model_dir, "tokenizer.json"), "cases": cases}, f, ensure_ascii=False)
    n_chars = sum(len(chapter_text(v)) for _, v in train)
    n_tokens = sum(len(bpe.encode(chapter_text(v))) for _, v in train)
    print(f"vocab {len(bpe.vocab)}; training text {n_chars} chars -> {n_tokens} tokens ({n_chars / n_tokens:.2f} chars/token)")


if __name__ == "__main__":
    main()
