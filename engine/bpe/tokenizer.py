"""A byte-level BPE tokenizer: encode text to ids and decode ids back, given a vocabulary and merges.

Encoding one pre-token (its UTF-8 bytes, one id per byte to start with):
    look at every adjacent pair; among those that are a learned merge, take the one with the
    lowest rank (learned earliest) and merge it; repeat until no adjacent pair is a merge.
Merges are applied by rank, the order they were learned, not by how often they occur and not left
to right: that is what makes encoding reproduce what training did.

Decoding: join the bytes of every id, then decode the whole byte string once as UTF-8 with
errors="replace". A single token can hold half of a multi-byte character (é is two bytes, C3 A9),
so decoding token by token would turn valid text into replacement characters.

Special tokens are split out of the text first and map to their single id; ordinary text can never
produce them. The vocabulary need not number the bytes 0..255 in order: every lookup goes through
the bytes -> id table, so GPT-2's own merges load too.

Not handled: allowed/disallowed special-token policies (every listed special is always recognised),
streaming encode of huge files, normalisation.
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
        self.cache: dict[str, list[int]] = {}

    def encode_pretoken(self, piece: bytes) -> list[int]:
        """The ids of one pre-token, merging the lowest-rank pair first until none is left."""
        ids = [self.ids[bytes([b])] for b in piece]
        while len(ids) >= 2:
            pairs = set(zip(ids, ids[1:]))
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged = self.ids[self.vocab[best[0]] + self.vocab[best[1]]]
            out, i = [], 0
            while i < len(ids):
                if i + 1 < len(ids) and (ids[i], ids[i + 1]) == best:
                    out.append(merged)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            ids = out
        return ids

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`; special tokens become their single id."""
        out: list[int] = []
        for part in split_special(text, self.special_tokens):
            if part in self.special_ids:
                out.append(self.special_ids[part])
                continue
            for piece in pretokenize(part):
                if piece not in self.cache:
                    self.cache[piece] = self.encode_pretoken(piece.encode("utf-8"))
                out.extend(self.cache[piece])
        return out

    def decode(self, ids: list[int]) -> str:
        """Text of a list of ids: all bytes joined first, then one UTF-8 decode (errors="replace")."""
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")

    # -- files ---------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write vocab, merges and special tokens as JSON (bytes as lists of ints: no pickle)."""
        data = {"version": 1, "pattern": GPT2_PATTERN, "special_tokens": self.special_tokens,
                "vocab": {str(i): list(b) for i, b in sorted(self.vocab.items())},
                "merges": [[list(a), list(b)] for a, b in self.merges]}
        Path(path).write_text(json.dumps(data), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "Tokenizer":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        vocab = {int(i): bytes(b) for i, b in data["vocab"].items()}
        merges = [(bytes(a), bytes(b)) for a, b in data["merges"]]
        return cls(vocab, merges, data["special_tokens"])
