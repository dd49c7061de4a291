"""Checkpoint `train`: merge_word, pretoken_counts and train_bpe, merge for merge against the
reference on a small real corpus."""
from collections import Counter

from _bpe_util import EOT, corpus, naive_train
from engine.bpe.trainer import merge_word as ref_merge_word, pretoken_counts as ref_counts, train_bpe as ref_train
from grader.checks import expect, expect_type, fail
from grader.seam import learner


def test_merge_word(rng):
    merge_word = learner("trainer").merge_word
    for _ in range(30):
        word = tuple(int(t) for t in rng.integers(0, 4, size=int(rng.integers(0, 12))))
        pair = (int(rng.integers(0, 4)), int(rng.integers(0, 4)))
        want = ref_merge_word(word, pair, 99)
        got = merge_word(word, pair, 99)
        what = f"merge_word({word}, {pair}, 99)"
        expect_type(got, tuple, what=what)
        if got != want and pair[0] == pair[1] and len(got) < len(want):
            fail(f"{what}: expected {want}, got {got}: occurrences of a pair (a, a) overlap in a run "
                 "like a a a; merge left to right and skip past each merged pair")
        expect(got == want, f"{what}: expected {want}, got {got}")


def test_pretoken_counts(rng):
    text = EOT.join(corpus(rng, 3000) for _ in range(3))
    want = ref_counts(text, [EOT])
    got = learner("trainer").pretoken_counts(text, [EOT])
    what = f"pretoken_counts(text of {len(text)} chars, ['{EOT}'])"
    expect(isinstance(got, dict), f"{what}: expected a Counter (or dict), got {type(got).__name__}")
    bad = [k for k in got if type(k) is not bytes]
    if bad:
        fail(f"{what}: keys must be the pre-tokens' UTF-8 bytes, got {type(bad[0]).__name__} {bad[0]!r}")
    if any(EOT.encode() in k or k in (b"<|", b"|>", b"endoftext") for k in got):
        fail(f"{what}: the special token was counted as text; leave specials out entirely")
    whole = Counter(c.encode() for c in text.split(EOT) if c)
    if dict(got) == dict(whole):
        fail(f"{what}: counted whole chunks of text, not pre-tokens; BPE would then merge across "
             "pre-token boundaries. Run pretokenize on each chunk and count its pieces")
    diff = sorted(set(got) ^ set(want) | {k for k in got if k in want and got[k] != want[k]})[:3]
    expect(dict(got) == dict(want), f"{what}: differs from the expected counts, e.g. for "
           + ", ".join(f"{k!r}: expected {want.get(k, 0)}, got {got.get(k, 0)}" for k in diff))


def _first_diff(a, b):
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def test_merges_match_reference(rng):
    text = EOT.join(corpus(rng, 6000) for _ in range(3))
    vocab_size = 256 + 90 + 1
    want_vocab, want_merges = ref_train(text, vocab_size, [EOT])
    got = learner("trainer").train_bpe(text, vocab_size, [EOT])
    what = f"train_bpe(text of {len(text)} chars, vocab_size={vocab_size}, ['{EOT}'])"
    if not (type(got) is tuple and len(got) == 2):
        fail(f"{what}: expected a tuple (vocab, merges)")
    vocab, merges = got
    expect_type(vocab, dict, what=what + " vocab")
    expect_type(merges, list, what=what + " merges")
    for k, m in enumerate(merges):
        if not (type(m) is tuple and len(m) == 2 and all(type(x) is bytes for x in m)):
            fail(f"{what}: merges[{k}] is {m!r}; each merge is a tuple (bytes, bytes)")
    if merges != want_merges:
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
            if naive_train(text, vocab_size, [EOT], **variant)[1] == merges:
                fail(f"{head}: looks like {cause}")
        if got_k is not None and not (len(text.encode()) and got_k[0] + got_k[1] in text.encode()):
            fail(f"{head}: {got_k[0] + got_k[1]!r} never occurs in the text: does merge_word update "
                 "every word, and do the pair counts drop when a pair disappears?")
        fail(head)
    if len(vocab) != vocab_size or set(vocab) != set(want_vocab):
        if sorted(vocab)[256:257] == [257]:
            fail(f"{what}: the first merge got id 257; ids 0..255 are the bytes, so merge i gets 256 + i")
        fail(f"{what}: vocab ids are {min(vocab)}..{max(vocab)} ({len(vocab)} entries); expected 0..{vocab_size - 1}: "
             "bytes 0..255, merge i at 256 + i, then the specials")
    for i in sorted(want_vocab):
        expect(type(vocab[i]) is bytes and vocab[i] == want_vocab[i],
               f"{what}: vocab[{i}] is {vocab[i]!r}, expected {want_vocab[i]!r}"
               + (" (merge ids are 256 + i; the special tokens come after all merges)" if i >= 256 else ""))


def test_vocab_size_edges(rng):
    train = learner("trainer").train_bpe
    vocab, merges = train("ab ab ab", 300)
    expect(merges == [(b"a", b"b"), (b" ", b"ab")] and len(vocab) == 258,
           f"train_bpe('ab ab ab', 300): expected merges [(b'a', b'b'), (b' ', b'ab')] and 258 vocab entries "
           f"(stop when no pair is left), got {merges} and {len(vocab)}")
    vocab, merges = train("hello", 256 + 1, [EOT])
    expect(merges == [] and vocab.get(256) == EOT.encode(),
           f"train_bpe('hello', 257, ['{EOT}']): the special takes the one slot after the bytes: expected "
           f"no merges and vocab[256] == {EOT.encode()!r}, got merges {merges}, vocab[256] = {vocab.get(256)!r}")
    try:
        train("hello", 200)
    except ValueError:
        pass
    else:
        fail("train_bpe('hello', 200) returned; a vocab_size below 256 (+ specials) must raise ValueError")
