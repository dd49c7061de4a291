"""Checkpoint `encode`: encode_pretoken applies merges by rank, encode/decode agree with the
reference, decode joins bytes before UTF-8, and any Unicode text survives a round trip.

The vocabulary comes from the reference trainer, so this checkpoint does not depend on yours."""
from functools import lru_cache

import numpy as np

from _bpe_util import EOT, UNICODE_WORDS, check_ids, corpus, encode_pretoken_by, same, sample_texts, unicode_property
from engine.bpe.tokenizer import Tokenizer as RefTokenizer
from engine.bpe.trainer import train_bpe
from grader.checks import expect_equal, expect_type, fail
from grader.seam import learner

WRONG_RULES = (("highest_rank", "the latest merge (highest rank) is applied first"),
               ("most_frequent", "the pair that occurs most often in the piece is merged first"),
               ("leftmost", "the leftmost mergeable pair is merged first"))

@lru_cache(maxsize=4)
def _trained(seed: int):
    text = corpus(np.random.default_rng(seed), 25000, unicode_share=0.2)
    return train_bpe(text, 256 + 200 + 1, [EOT])


def _ref(seed):
    vocab, merges = _trained(seed)
    return RefTokenizer(vocab, merges, [EOT])


def _mine(seed):
    vocab, merges = _trained(seed)
    # copies: the cached tables also feed _ref(), and learner code must not be able to change them
    return learner("tokenizer").Tokenizer(dict(vocab), list(merges), [EOT])


def _name_the_rule(head, pieces, results, ref):
    """Fail naming the wrong merge order that explains every piece tested, if one does."""
    for rule, cause in WRONG_RULES:
        if all(same(results[p], encode_pretoken_by(rule, p, ref.ids, ref.ranks, ref.vocab)) for p in pieces):
            fail(f"{head}: looks like {cause}; always merge the pair with the lowest rank (learned "
                 "earliest), as training did")


def _small_vocab(merges):
    vocab = {i: bytes([i]) for i in range(256)}
    for k, (a, b) in enumerate(merges):
        vocab[256 + k] = a + b
    return vocab


# Hand-made merge lists where the three wrong orders give different tokens than the lowest rank:
# abc with (b, c) learned first: leftmost and highest-rank merge (a, b) first;
# abcbc with (a, b) first: most-frequent and highest-rank merge the twice-seen (b, c) first.
FIXED = [([(b"b", b"c"), (b"a", b"b")], [b"abc", b"xabcx", b"bcab"]),
         ([(b"a", b"b"), (b"b", b"c")], [b"abcbc", b"bcbcab", b"abcbcbc"])]


def test_encode_pretoken_fixed_cases():
    refs = [(RefTokenizer(_small_vocab(m), m, []), m, pieces) for m, pieces in FIXED]
    wants = [{p: ref.encode_pretoken(p) for p in pieces} for ref, _, pieces in refs]
    Tokenizer = learner("tokenizer").Tokenizer
    results = []
    for (ref, merges, pieces), want in zip(refs, wants):
        mine = Tokenizer(_small_vocab(merges), list(merges), [])
        results.append({p: check_ids(mine.encode_pretoken(p), f"encode_pretoken({p!r}) with merges {merges}")
                        for p in pieces})
    for (ref, merges, pieces), want, got in zip(refs, wants, results):
        for p in pieces:
            if not same(got[p], want[p]):
                head = (f"encode_pretoken({p!r}) with merges {merges} (rank 0 first): got {got[p]}, "
                        f"expected {want[p]} = {[ref.vocab[i] for i in want[p]]}")
                for rule, cause in WRONG_RULES:   # the rule that explains every fixed piece
                    if all(same(g[q], encode_pretoken_by(rule, q, r.ids, r.ranks, r.vocab))
                           for (r, _, qs), g in zip(refs, results) for q in qs):
                        fail(f"{head}: looks like {cause}; always merge the pair with the lowest rank "
                             "(learned earliest), as training did")
                fail(f"{head}; merge the adjacent pair with the lowest rank, repeatedly, until no adjacent "
                     "pair is a merge")


def test_encode_pretoken_by_rank(rng):
    which = int(rng.integers(3))
    ref = _ref(which)
    words = corpus(rng, 12000, unicode_share=0.3).split()
    # pieces with repeated pairs (" thethe", "ssess"), where the order of merges changes the result
    letters = list("etaoinshr ")
    words += [" " + "".join(rng.choice(letters, size=int(rng.integers(5, 14)))).replace(" ", "") for _ in range(400)]
    # and pieces x y z y z built from merges B = (x, y) and A = (y, z) with A learned after B: the
    # lowest-rank rule merges B first, a rule that prefers the repeated pair merges A first
    merges = ref.merges
    chained = [(b, a) for b in merges[:80] for a in merges if a[0] == b[1] and merges.index(a) > merges.index(b)]
    for k in rng.permutation(len(chained))[:60]:
        (x, y), (_, z) = chained[int(k)]
        words.append((x + y + z + y + z).decode("utf-8", errors="ignore"))
    pieces = sorted({w.encode() for w in words if w})
    expected = {p: ref.encode_pretoken(p) for p in pieces}
    mine = _mine(which)
    results = {}
    for piece in pieces:
        results[piece] = check_ids(mine.encode_pretoken(piece), f"encode_pretoken({piece!r})")
    wrong = [p for p in pieces if not same(results[p], expected[p])]
    if wrong:
        first = wrong[0]
        want = expected[first]
        head = f"encode_pretoken({first!r}): got {results[first]}, expected {want}"
        _name_the_rule(head, pieces, results, ref)   # the rule that explains every piece tested
        fail(f"{head} = {[ref.vocab[i] for i in want]} ({len(wrong)} of {len(pieces)} pieces differ); merge "
             "the adjacent pair with the lowest rank, repeatedly, until no adjacent pair is a merge")
    expect_equal(results, expected, what="encode_pretoken of every piece")


def test_encode_matches_reference(rng):
    which = int(rng.integers(3))
    ref = _ref(which)
    texts = sample_texts(rng)
    wants = [ref.encode(t) for t in texts]
    mine = _mine(which)
    for text, want in zip(texts, wants):
        what = f"encode({text[:60]!r}{'...' if len(text) > 60 else ''})"
        got = check_ids(mine.encode(text), what)
        if not same(got, want):
            k = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            fail(f"{what}: {len(got)} ids, expected {len(want)}; first difference at position {k}: got "
                 f"{got[k:k + 4]}, expected {want[k:k + 4]} ({[ref.vocab[i] for i in want[k:k + 4]]}). "
                 "Pre-tokenize first, then encode each piece on its own")
        expect_equal(got, want, what=what)


def test_decode_joins_bytes_first(rng):
    vocab = {i: bytes([i]) for i in range(256)}                  # bytes only: é is two tokens
    mine = learner("tokenizer").Tokenizer(vocab, [], [])
    words = [str(w) for w in rng.choice(UNICODE_WORDS, size=6)]
    text = " ".join(words)
    ids = list(text.encode("utf-8"))
    got = mine.decode(ids)
    expect_type(got, str, what=f"decode(ids of {text!r})")
    if same(got, "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)):
        fail(f"decode(ids of {text!r}) gave {got!r}: each token was decoded on its own, which breaks "
             "multi-byte characters split across tokens; join all the bytes, then decode once")
    expect_equal(got, text, what=f"decode(ids of {text!r})")
    half = list("é".encode("utf-8"))[:1]
    got = mine.decode(half)
    expect_equal(got, "\ufffd", what=f"decode({half}) (half of 'é', not valid UTF-8 alone: the replacement "
                 "character, with errors='replace')")


@unicode_property(max_size=80, examples=200)     # hypothesis, fixed derandomized profile
def test_round_trip_any_unicode(text):
    mine = _mine(0)
    ids = mine.encode(text)
    back = mine.decode(ids)
    expect_equal(back, text, what=f"decode(encode({text!r})) (the same text back)")
