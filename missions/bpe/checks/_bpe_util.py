"""Shared helpers for the bpe checks (not a test file): corpora and deliberately wrong variants
of training and encoding, used only to name a learner's mistake precisely."""
from __future__ import annotations

from collections import Counter

import numpy as np

from engine.shared.data import text_path
from grader.checks import CheckFailure, expect_equal, fail

EOT = "<|endoftext|>"
# a few scripts and symbols, so merges inside multi-byte characters happen
UNICODE_WORDS = ["naïve", "café", "Straße", "Привет", "мир", "日本語", "東京", "😀", "👍🏽", "ﬁne",
                 "Ελληνικά", "עברית", "中文字", "١٢٣", "e\u0301", "ok\u200d", "ß", "→", "€100"]

_SHAKESPEARE: list[str] = []


def shakespeare() -> str:
    if not _SHAKESPEARE:
        _SHAKESPEARE.append(text_path("train").read_text(encoding="utf-8"))
    return _SHAKESPEARE[0]


def corpus(rng: np.random.Generator, n_chars: int, unicode_share: float = 0.15) -> str:
    """A random slice of Shakespeare with multilingual words sprinkled in."""
    text = shakespeare()
    start = int(rng.integers(0, len(text) - n_chars))
    words = text[start:start + n_chars].split(" ")
    for k in range(len(words)):
        if rng.random() < unicode_share:
            words[k] = str(rng.choice(UNICODE_WORDS)) + (words[k] if rng.random() < 0.3 else "")
    return " ".join(words)


def sample_texts(rng: np.random.Generator) -> list[str]:
    """Texts to encode: prose, odd whitespace, contractions, digits, every script above."""
    texts = [corpus(rng, 600) for _ in range(3)]
    texts += ["", " ", "\n\n\n", "  leading and trailing  ", "tab\tsep\r\nCRLF", "don't I'll we've they're 'tis",
              "123 4567 3.14159 1e-5", "a" * 50, "!!!???...", " ".join(UNICODE_WORDS), "日本語のテキストです。",
              "mixed: 日本 and English, 😀😀😀 emoji"]
    chars = [chr(int(c)) for c in rng.integers(0x20, 0x2FFF, size=200) if not 0xD800 <= int(c) < 0xE000]
    texts.append("".join(chars))
    return texts


# -- exact comparisons ----------------------------------------------------------------------------
def same(got, want) -> bool:
    """True when got equals want exactly, with the same plain types all the way down (through the
    grader's captured expect_equal, so a learner object cannot answer for itself)."""
    try:
        expect_equal(got, want, what="")
        return True
    except CheckFailure:
        return False


def check_ids(got, what: str) -> list:
    """got must be a plain list of Python ints (token ids); returns it."""
    if type(got) is not list:
        fail(f"{what}: expected a list of ints, got {type(got).__name__}")
    for k, t in enumerate(got):
        if type(t) is not int:
            fail(f"{what}: element {k} is {type(t).__name__} {t!r}; return a list of Python ints")
    return got


def merge_right_to_left(word, pair, new_id):
    """The classic slip: replace occurrences of `pair` scanning from the right (so (a, a, a) with
    pair (a, a) becomes (a, aa) instead of (aa, a))."""
    out, i = [], len(word) - 1
    while i >= 0:
        if i >= 1 and (word[i - 1], word[i]) == pair:
            out.append(new_id)
            i -= 2
        else:
            out.append(word[i])
            i -= 1
    return tuple(reversed(out))


# -- naive training, with switches for the classic mistakes ------------------------------------------
def naive_train(text, vocab_size, specials=(), *, tie="greatest", boundaries=True, skip_specials=True,
                first_id=256):
    import regex
    pat = regex.compile(r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
    if skip_specials and specials:
        alt = "|".join(regex.escape(s) for s in sorted(specials, key=len, reverse=True))
        chunks = [c for c in regex.split(alt, text) if c]
    else:
        chunks = [text] if text else []
    counts = Counter()
    for chunk in chunks:
        counts.update(pat.findall(chunk) if boundaries else [chunk])
    words = {tuple(bytes([b]) for b in w.encode("utf-8")): n for w, n in counts.items()}
    merges = []
    for _ in range(vocab_size - 256 - len(specials)):
        pairs = Counter()
        for w, n in words.items():
            for p in zip(w, w[1:]):
                pairs[p] += n
        if not pairs:
            break
        top = max(pairs.values())
        tied = [p for p, c in pairs.items() if c == top]
        best = max(tied) if tie == "greatest" else min(tied)
        merges.append(best)
        new_words = {}
        for w, n in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new_words[tuple(out)] = new_words.get(tuple(out), 0) + n
        words = new_words
    vocab = {i: bytes([i]) for i in range(256)}
    for k, (a, b) in enumerate(merges):
        vocab[first_id + k] = a + b
    for k, s in enumerate(specials):
        vocab[first_id + len(merges) + k] = s.encode("utf-8")
    return vocab, merges


# -- wrong ways to encode one pre-token --------------------------------------------------------------
def encode_pretoken_by(rule, piece: bytes, ids: dict, ranks: dict, vocab: dict) -> list[int]:
    """rule: 'highest_rank' (latest merge first), 'leftmost' (first mergeable pair from the left),
    'most_frequent' (the pair occurring most often in the piece), 'merge_order' (go through the merge
    list once in rank order, which is correct)."""
    seq = [ids[bytes([b])] for b in piece]

    def merge(seq, pair):
        out, i = [], 0
        new = ids[vocab[pair[0]] + vocab[pair[1]]]
        while i < len(seq):
            if i + 1 < len(seq) and (seq[i], seq[i + 1]) == pair:
                out.append(new)
                i += 2
            else:
                out.append(seq[i])
                i += 1
        return out

    if rule == "merge_order":
        for pair in sorted(ranks, key=ranks.get):
            seq = merge(seq, pair)
        return seq
    while True:
        pairs = [p for p in zip(seq, seq[1:]) if p in ranks]
        if not pairs:
            return seq
        if rule == "highest_rank":
            best = max(pairs, key=ranks.get)
        elif rule == "leftmost":
            best = pairs[0]
        else:
            c = Counter(pairs)
            best = max(pairs, key=lambda p: (c[p], -ranks[p]))
        seq = merge(seq, best)


# -- property tests: hypothesis when installed, else seeded random strings -----------------------------
def random_unicode(rng: np.random.Generator, max_size: int) -> str:
    """A random string mixing ASCII, whitespace, Latin-1, CJK, emoji and combining marks (no surrogates)."""
    pools = [(0x20, 0x7F), (0x09, 0x0E), (0xA0, 0x250), (0x300, 0x370), (0x400, 0x500), (0x3040, 0x30FF),
             (0x4E00, 0x9FFF), (0x1F300, 0x1FAFF), (0x10000, 0x10FFFF)]
    out = []
    for _ in range(int(rng.integers(0, max_size + 1))):
        lo, hi = pools[int(rng.integers(len(pools)))]
        c = int(rng.integers(lo, hi))
        out.append(chr(c if not 0xD800 <= c < 0xE000 else 0x20))
    return "".join(out)


def unicode_property(max_size: int, examples: int):
    """Decorator: run `check(text)` on arbitrary Unicode strings. With hypothesis installed: a fixed,
    derandomized profile (the same `examples` strings every run, no database, no deadline); without
    it: `examples` strings drawn from the grader's seeded rng."""
    def wrap(check):
        try:
            from hypothesis import HealthCheck, given, settings, strategies as st
        except ImportError:
            def run(rng):
                for text in [""] + [random_unicode(rng, max_size) for _ in range(examples)]:
                    check(text)
            run.__name__ = check.__name__
            return run
        profile = settings(derandomize=True, max_examples=examples, deadline=None, database=None,
                           suppress_health_check=list(HealthCheck))
        test = profile(given(st.text(max_size=max_size))(check))
        return test
    return wrap
