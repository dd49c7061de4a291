"""Pre-tokenization: cut text into pieces that BPE never merges across (brief.md, section 2).

GPT2_PATTERN is GPT-2's regular expression (complete). It needs the `regex` package, not `re`:
`re` has no \\p{L} (any letter) or \\p{N} (any digit) classes. `regex` is installed with tiktoken.
"""
from __future__ import annotations

import regex

GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_RE = regex.compile(GPT2_PATTERN)


def pretokenize(text: str) -> list[str]:
    """The GPT-2 pre-tokens of `text` (which contains no special tokens), in order.
    Joining them gives back `text` exactly."""
    raise NotImplementedError("pretokenize: see brief.md, section 2 (Pre-tokenization)")


def split_special(text: str, special_tokens: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Cut `text` around every occurrence of a special token, keeping the specials as their own items.

    split_special("a<|endoftext|>b", ["<|endoftext|>"]) == ["a", "<|endoftext|>", "b"]
    Empty strings are dropped. Where one special is a prefix of another, the longer one wins.
    """
    raise NotImplementedError("split_special: see brief.md, section 5 (Special tokens)")
