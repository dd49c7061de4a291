"""Pre-tokenization: cut text into pieces that BPE never merges across.

BPE runs inside each piece separately. GPT-2 cuts with one regular expression, tried left to right:

    '(?:[sdmt]|ll|ve|re)      English contractions: 's 'd 'm 't 'll 've 're
    | ?\\p{L}+                 a run of letters, with at most one space in front
    | ?\\p{N}+                 a run of digits, with at most one space in front
    | ?[^\\s\\p{L}\\p{N}]+        a run of punctuation/symbols, with at most one space in front
    |\\s+(?!\\S)               whitespace, leaving the last space for the word that follows
    |\\s+                      any remaining whitespace

So " the cat" becomes [" the", " cat"]: the space belongs to the word after it, and "dog." never
merges with its full stop. \\p{L} and \\p{N} are Unicode classes that Python's `re` does not have, so
this uses the `regex` package (a dependency of tiktoken, so it is always installed with the lab).

Special tokens such as "<|endoftext|>" are split out before the regex runs: they are never cut into
pieces, never merged with their neighbours, and never take part in training.

Not handled: GPT-4's cl100k pattern (case-insensitive contractions, digit groups of 1-3), text
normalisation (NFC), pieces longer than the text's own lines (no max length).
"""
from __future__ import annotations

import regex

GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_RE = regex.compile(GPT2_PATTERN)


def pretokenize(text: str) -> list[str]:
    """The GPT-2 pre-tokens of `text` (which contains no special tokens), in order.
    Joining them gives back `text` exactly."""
    return GPT2_RE.findall(text)


def split_special(text: str, special_tokens: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Cut `text` around every occurrence of a special token, keeping the specials as their own items.

    split_special("a<|endoftext|>b", ["<|endoftext|>"]) == ["a", "<|endoftext|>", "b"]
    Empty strings are dropped. Where one special is a prefix of another, the longer one wins.
    """
    if not special_tokens:
        return [text] if text else []
    longest_first = sorted(special_tokens, key=len, reverse=True)
    pattern = "(" + "|".join(regex.escape(s) for s in longest_first) + ")"
    return [part for part in regex.split(pattern, text) if part]
