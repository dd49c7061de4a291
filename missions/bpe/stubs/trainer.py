"""Training a byte-level BPE vocabulary (brief.md, section 3; speed: section 7).

vocab: {id: bytes}, ids 0..255 the single bytes, 256 + i the i-th merge, then the special tokens.
merges: [(bytes, bytes), ...] in the order learned. Ties on the count: the pair whose bytes
(vocab[a], vocab[b]) compare greatest wins.
"""
from __future__ import annotations

from collections import Counter

from .pretokenize import pretokenize, split_special


def pretoken_counts(text: str, special_tokens: list[str] | tuple[str, ...] = ()) -> Counter:
    """How often each pre-token occurs, keyed by its UTF-8 bytes; special tokens are left out."""
    raise NotImplementedError("pretoken_counts: see brief.md, section 3 (Training)")


def merge_word(word: tuple[int, ...], pair: tuple[int, int], new_id: int) -> tuple[int, ...]:
    """Replace every non-overlapping occurrence of `pair` in `word`, left to right, by new_id."""
    raise NotImplementedError("merge_word: see brief.md, section 3 (Training)")


def train_bpe(text: str, vocab_size: int, special_tokens: list[str] | tuple[str, ...] = ()
              ) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """Train on `text` until the vocabulary has vocab_size entries (256 bytes + merges + specials).

    Returns (vocab, merges): vocab maps id -> bytes (specials last, as their UTF-8 bytes); merges
    lists the merged pairs as bytes in the order they were learned (rank 0 first). Stops early if no
    pair is left to merge. Raises ValueError if vocab_size < 256 + len(special_tokens).
    """
    raise NotImplementedError("train_bpe: see brief.md, section 3 (Training)")
