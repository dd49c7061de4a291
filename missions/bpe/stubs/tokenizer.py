"""A byte-level BPE tokenizer: encode text to ids and decode ids back (brief.md, sections 4-6).

The constructor is complete: it builds the lookup tables you need.
    self.vocab           {id: bytes}
    self.ids             {bytes: id}          (the inverse of vocab)
    self.ranks           {(id_a, id_b): rank} (rank = position in merges; lower merges first)
    self.special_ids     {special string: id}
Every lookup goes through these tables: do not assume byte b has id b (GPT-2's vocabulary does not).
"""
from __future__ import annotations

import json
from pathlib import Path

from .pretokenize import GPT2_PATTERN, pretokenize, split_special


class Tokenizer:
    def __init__(self, vocab: dict[int, bytes], merges: list[tuple[bytes, bytes]],
                 special_tokens: list[str] | None = None):
        self.vocab = dict(vocab)
        self.merges = list(merges)
        self.special_tokens = list(special_tokens or [])
        self.ids = {b: i for i, b in self.vocab.items()}            # bytes -> id
        for special in self.special_tokens:                          # specials missing from vocab
            raw = special.encode("utf-8")
            if raw not in self.ids:
                new_id = max(self.vocab) + 1
                self.vocab[new_id], self.ids[raw] = raw, new_id
        self.special_ids = {s: self.ids[s.encode("utf-8")] for s in self.special_tokens}
        # rank of a merge, keyed by the pair of ids it joins
        self.ranks = {(self.ids[a], self.ids[b]): r for r, (a, b) in enumerate(self.merges)}
        self.cache: dict[str, list[int]] = {}                       # optional: pre-token -> ids

    def encode_pretoken(self, piece: bytes) -> list[int]:
        """The ids of one pre-token (its UTF-8 bytes): start from one id per byte, then merge the
        adjacent pair with the lowest rank, again and again, until no adjacent pair is a merge."""
        raise NotImplementedError("Tokenizer.encode_pretoken: see brief.md, section 4 (Encoding)")

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`; each special token becomes its single id."""
        raise NotImplementedError("Tokenizer.encode: see brief.md, section 4 (Encoding)")

    def decode(self, ids: list[int]) -> str:
        """Text of a list of ids (invalid UTF-8 becomes U+FFFD, the replacement character)."""
        raise NotImplementedError("Tokenizer.decode: see brief.md, section 4 (Decoding)")

    def save(self, path: str | Path) -> None:
        """Write everything load() needs to a text file (JSON is a good choice; bytes are not JSON,
        lists of ints are)."""
        raise NotImplementedError("Tokenizer.save: see brief.md, section 6 (Saving and loading)")

    @classmethod
    def load(cls, path: str | Path) -> "Tokenizer":
        """The Tokenizer that save() wrote to `path`."""
        raise NotImplementedError("Tokenizer.load: see brief.md, section 6 (Saving and loading)")
