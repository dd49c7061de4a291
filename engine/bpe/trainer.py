"""Training a byte-level BPE vocabulary (Sennrich et al. 2016, as used by GPT-2).

    1. Split the text around special tokens, cut each chunk into pre-tokens, and count how often
       each distinct pre-token occurs. Training only ever looks at these counts, so the work grows
       with the number of *distinct* pre-tokens, not with the length of the text.
    2. Write each pre-token as a sequence of byte ids (0..255).
    3. Repeat until the vocabulary is full:
         count every adjacent pair of ids inside each pre-token (weighted by the pre-token's count),
         take the most frequent pair (a, b), give it the next id, 256 + i,
         and replace every occurrence of a, b by that id.

Ties: when several pairs share the top count, the pair whose bytes (vocab[a], vocab[b]) compare
greatest wins (Python's tuple-of-bytes order), as in Stanford CS336. Any fixed rule works; this one
makes training deterministic.

Speed: after a merge, only the pre-tokens that contain the merged pair change. We keep, for every
pair, its count and the set of pre-tokens where it occurs, and update both for the changed pre-tokens
only, instead of recounting everything.

Not handled: a pair that would create bytes already in the vocabulary is merged anyway (a second id
for the same bytes; it does not happen on ordinary text), frequency thresholds, dropout (BPE-dropout).
"""
from __future__ import annotations

from collections import Counter, defaultdict

from .pretokenize import pretokenize, split_special


def pretoken_counts(text: str, special_tokens: list[str] | tuple[str, ...] = ()) -> Counter:
    """How often each pre-token occurs, as bytes; special tokens are left out entirely."""
    counts: Counter = Counter()
    specials = set(special_tokens)
    for chunk in split_special(text, special_tokens):
        if chunk in specials:
            continue
        counts.update(pretokenize(chunk))
    return Counter({piece.encode("utf-8"): n for piece, n in counts.items()})


def merge_word(word: tuple[int, ...], pair: tuple[int, int], new_id: int) -> tuple[int, ...]:
    """Replace every non-overlapping occurrence of `pair` in `word`, left to right, by new_id."""
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == pair[0] and word[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def train_bpe(text: str, vocab_size: int, special_tokens: list[str] | tuple[str, ...] = ()
              ) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """Train on `text` until the vocabulary has vocab_size entries (256 bytes + merges + specials).

    Returns (vocab, merges): vocab maps id -> bytes (specials last, as their UTF-8 bytes); merges
    lists the merged pairs as bytes in the order they were learned (rank 0 first). Stops early if no
    pair is left to merge.
    """
    n_merges = vocab_size - 256 - len(special_tokens)
    if n_merges < 0:
        raise ValueError(f"vocab_size {vocab_size} < 256 bytes + {len(special_tokens)} special tokens")
    vocab: dict[int, bytes] = {i: bytes([i]) for i in range(256)}
    counted = pretoken_counts(text, special_tokens)
    words: list[tuple[int, ...]] = [tuple(piece) for piece in counted]   # bytes -> tuple of ints
    freqs: list[int] = list(counted.values())

    pair_counts: Counter = Counter()
    where: defaultdict = defaultdict(set)     # pair -> indices of the words that contain it
    for w, (word, freq) in enumerate(zip(words, freqs)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += freq
            where[pair].add(w)

    merges: list[tuple[bytes, bytes]] = []
    for i in range(n_merges):
        if not pair_counts:
            break
        best = max(pair_counts, key=lambda p: (pair_counts[p], vocab[p[0]], vocab[p[1]]))
        new_id = 256 + i
        vocab[new_id] = vocab[best[0]] + vocab[best[1]]
        merges.append((vocab[best[0]], vocab[best[1]]))
        for w in list(where[best]):
            old, freq = words[w], freqs[w]
            new = merge_word(old, best, new_id)
            for pair in zip(old, old[1:]):          # forget the old word's pairs ...
                pair_counts[pair] -= freq
                if pair_counts[pair] == 0:
                    del pair_counts[pair]
                where[pair].discard(w)
            for pair in zip(new, new[1:]):          # ... and count the new word's
                pair_counts[pair] += freq
                where[pair].add(w)
            words[w] = new
        where.pop(best, None)

    for k, special in enumerate(special_tokens):
        vocab[256 + len(merges) + k] = special.encode("utf-8")
    return vocab, merges
