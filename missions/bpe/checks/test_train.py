"""Checkpoint `train`: merge_word, pretoken_counts and train_bpe, merge for merge against the
reference: fixed cases for each classic mistake first (odd runs, ties, boundaries), then a small
real corpus."""
from collections import Counter

from _bpe_util import EOT, corpus, merge_right_to_left, naive_train, same
from engine.bpe.trainer import merge_word as ref_merge_word, pretoken_counts as ref_counts, train_bpe as ref_train
from grader.checks import as_int, expect_equal, expect_type, fail
from grader.seam import learner

# Words and pairs where the classic slips of merge_word differ from the rule (left to right,
# non-overlapping): odd and even runs of a pair (a, a), a pair at either end, absent pairs, edges.
MERGE_CASES = [((1, 1, 1), (1, 1)), ((1, 1, 1, 1, 1), (1, 1)), ((2, 1, 1, 1, 3), (1, 1)), ((1, 1, 1, 1), (1, 1)),
               ((3, 1, 2, 1, 2, 1), (1, 2)), ((2, 2, 1, 2), (2, 1)), ((1, 2, 1), (2, 1)), ((0, 1, 0), (1, 2)),
               ((1, 2), (1, 2)), ((1,), (1, 2)), ((), (1, 2))]


def test_merge_word(rng):
    merge_word = learner("trainer").merge_word
    cases = list(MERGE_CASES)
    for _ in range(30):
        word = tuple(int(t) for t in rng.integers(0, 4, size=int(rng.integers(0, 12))))
        cases.append((word, (int(rng.integers(0, 4)), int(rng.integers(0, 4)))))
    for word, pair in cases:
        want = ref_merge_word(word, pair, 99)
        got = merge_word(word, pair, 99)
        what = f"merge_word({word}, {pair}, 99)"
        expect_type(got, tuple, what=what)
        if not same(got, want):
            if same(got, merge_right_to_left(word, pair, 99)):
                fail(f"{what}: expected {want}, got {got}: looks like it scans right to left; in a run like "
                     "a a a the pair (a, a) is merged from the left: (aa, a), then the scan moves past it")
            if pair[0] == pair[1] and len(got) < len(want):
                fail(f"{what}: expected {want}, got {got}: occurrences of a pair (a, a) overlap in a run "
                     "like a a a; merge left to right and skip past each merged pair")
        expect_equal(got, want, what=what)


def test_pretoken_counts(rng):
    text = EOT.join(corpus(rng, 3000) for _ in range(3))
    want = dict(ref_counts(text, [EOT]))
    got = learner("trainer").pretoken_counts(text, [EOT])
    what = f"pretoken_counts(text of {len(text)} chars, ['{EOT}'])"
    expect_type(got, (Counter, dict), what=what)
    counts = {}
    for k, v in dict.items(got):
        if type(k) is not bytes:
            fail(f"{what}: keys must be the pre-tokens' UTF-8 bytes, got {type(k).__name__} {k!r}")
        counts[k] = as_int(v, what=f"{what}[{k!r}]")
    if any(EOT.encode() in k or k in (b"<|", b"|>", b"endoftext") for k in counts):
        fail(f"{what}: the special token was counted as text; leave specials out entirely")
    if same(counts, dict(Counter(c.encode() for c in text.split(EOT) if c))):
        fail(f"{what}: counted whole chunks of text, not pre-tokens; BPE would then merge across "
             "pre-token boundaries. Run pretokenize on each chunk and count its pieces")
    if not same(counts, want):
        diff = sorted(set(counts) ^ set(want) | {k for k in counts if k in want and counts[k] != want[k]})[:3]
        fail(f"{what}: differs from the expected counts, e.g. for "
             + ", ".join(f"{k!r}: expected {want.get(k, 0)}, got {counts.get(k, 0)}" for k in diff))
    expect_equal(counts, want, what=what)


def _first_diff(a, b):
    return next((i for i in range(min(len(a), len(b))) if not same(a[i], b[i])), min(len(a), len(b)))


def _check_types(got, what):
    if not (type(got) is tuple and len(got) == 2):
        fail(f"{what}: expected a tuple (vocab, merges)")
    vocab, merges = got
    expect_type(vocab, dict, what=what + " vocab")
    expect_type(merges, list, what=what + " merges")
    for k, m in enumerate(merges):
        if not (type(m) is tuple and len(m) == 2 and all(type(x) is bytes for x in m)):
            fail(f"{what}: merges[{k}] is {m!r}; each merge is a tuple (bytes, bytes)")
    for i, b in dict.items(vocab):
        if type(i) is not int or type(b) is not bytes:
            fail(f"{what}: vocab maps int ids to bytes; found {i!r}: {b!r}")
    return vocab, merges


def _expect_merges(text, vocab_size, specials, merges, want_merges, what):
    """merges must equal want_merges; on a difference, name the classic mistake it matches."""
    if same(merges, want_merges):
        return
    k = _first_diff(merges, want_merges)
    got_k = merges[k] if k < len(merges) else None
    want_k = want_merges[k] if k < len(want_merges) else None
    head = f"{what}: merge #{k} is {got_k!r}, expected {want_k!r}"
    for variant, cause in ((dict(boundaries=False), "pairs are counted across pre-token boundaries "
                            "(e.g. a word's last letter with the space of the next word); count pairs "
                            "inside each pre-token only"),
                           (dict(tie="smallest"), "ties are broken toward the smallest pair; among "
                            "pairs with the top count take the greatest (vocab[a], vocab[b])"),
                           (dict(skip_specials=False), "the special token was trained on as text")):
        if same(merges, naive_train(text, vocab_size, specials, **variant)[1]):
            fail(f"{head}: looks like {cause}")
    if got_k is not None and got_k[0] + got_k[1] not in text.encode():
        fail(f"{head}: {got_k[0] + got_k[1]!r} never occurs in the text: does merge_word update "
             "every word, and do the pair counts drop when a pair disappears?")
    fail(f"{head} (merges so far: {merges[max(0, k - 3):k + 1]!r})")


# Tiny texts where one rule decides the first merges: (text, vocab_size, what it shows)
FIXED = [("xy zw", 256 + 1, "a tie between (x, y), ( , z) and (z, w): the greatest pair wins"),
         ("ab ab cd cd", 256 + 2, "a tie between (a, b) and (c, d), twice each: (c, d) wins"),
         ("aa aa aa", 256 + 3, "pairs inside pre-tokens only: (aa, ' ') is never a candidate"),
         ("the cat. the hat.", 256 + 6, "words and their full stops are separate pre-tokens")]


def test_fixed_cases():
    train = learner("trainer").train_bpe
    for text, vocab_size, why in FIXED:
        _, want_merges = ref_train(text, vocab_size)
        what = f"train_bpe({text!r}, {vocab_size}) ({why})"
        _, merges = _check_types(train(text, vocab_size), what)
        _expect_merges(text, vocab_size, [], merges, want_merges, what)


def test_merges_match_reference(rng):
    text = EOT.join(corpus(rng, 6000) for _ in range(3))
    vocab_size = 256 + 90 + 1
    want_vocab, want_merges = ref_train(text, vocab_size, [EOT])
    what = f"train_bpe(text of {len(text)} chars, vocab_size={vocab_size}, ['{EOT}'])"
    vocab, merges = _check_types(learner("trainer").train_bpe(text, vocab_size, [EOT]), what)
    _expect_merges(text, vocab_size, [EOT], merges, want_merges, what)
    ids = sorted(vocab)
    if not same(ids, sorted(want_vocab)):
        if ids[256:257] == [257]:
            fail(f"{what}: the first merge got id 257; ids 0..255 are the bytes, so merge i gets 256 + i")
        fail(f"{what}: vocab ids are {min(ids, default=None)}..{max(ids, default=None)} ({len(ids)} entries); "
             f"expected 0..{vocab_size - 1}: bytes 0..255, merge i at 256 + i, then the specials")
    for i in sorted(want_vocab):
        expect_equal(vocab[i], want_vocab[i], what=f"{what}: vocab[{i}]"
                     + (" (merge ids are 256 + i; the special tokens come after all merges)" if i >= 256 else ""))


def test_vocab_size_edges():
    train = learner("trainer").train_bpe
    what = "train_bpe('ab ab ab', 300) (stop when no pair is left)"
    vocab, merges = _check_types(train("ab ab ab", 300), what)
    expect_equal(merges, [(b"a", b"b"), (b" ", b"ab")], what=what + ": merges")
    expect_equal(len(vocab), 258, what=what + ": len(vocab)")
    what = f"train_bpe('hello', 257, ['{EOT}']) (the special takes the one slot after the bytes)"
    vocab, merges = _check_types(train("hello", 256 + 1, [EOT]), what)
    expect_equal(merges, [], what=what + ": merges")
    expect_equal(vocab.get(256), EOT.encode(), what=what + ": vocab[256]")
    try:
        train("hello", 200)
    except ValueError:
        pass
    else:
        fail("train_bpe('hello', 200) returned; a vocab_size below 256 (+ specials) must raise ValueError")
