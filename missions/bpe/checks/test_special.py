"""Checkpoint `special`: special tokens are one id when encoding, never split, never merged in
training, and decode back to their text."""
from _bpe_util import EOT, check_ids, corpus
from engine.bpe.tokenizer import Tokenizer as RefTokenizer
from engine.bpe.trainer import train_bpe
from grader.checks import expect_equal, expect_type, fail
from grader.seam import learner

PAD = "<|pad|>"


def _vocab(rng):
    text = EOT.join(corpus(rng, 4000) for _ in range(4))
    vocab, merges = train_bpe(text, 256 + 120 + 2, [EOT, PAD])
    return vocab, merges, RefTokenizer(vocab, merges, [EOT, PAD])


def _mine(vocab, merges):
    return learner("tokenizer").Tokenizer(vocab, merges, [EOT, PAD])


def test_specials_encode_as_single_ids(rng):
    vocab, merges, ref = _vocab(rng)
    eot, pad = ref.special_ids[EOT], ref.special_ids[PAD]
    docs = [corpus(rng, int(rng.integers(5, 60))) for _ in range(4)]
    texts = [EOT, EOT + EOT, docs[0] + EOT + docs[1], EOT + docs[2] + PAD, PAD + EOT + PAD,
             docs[3] + " " + EOT + " " + docs[0]]
    wants = [ref.encode(t) for t in texts]
    mine = _mine(vocab, merges)
    for text, want in zip(texts, wants):
        what = f"encode({text[:80]!r})"
        got = check_ids(mine.encode(text), what)
        n_special = text.count(EOT) + text.count(PAD)
        n_got = sum(1 for t in got if t in (eot, pad))
        if n_got < n_special:
            fail(f"{what}: the text holds {n_special} special token(s) but the ids hold {n_got} special id(s) "
                 f"({EOT!r} is id {eot}): the special token was split into ordinary tokens; cut the text "
                 "around specials with split_special before pre-tokenizing")
        expect_equal(got, want, what=what)
        expect_equal(mine.decode(got), text, what=f"decode(encode({text[:80]!r}))")


def test_partial_special_is_ordinary_text(rng):
    vocab, merges, ref = _vocab(rng)
    texts = ["<|endoftext", "endoftext|>", "<|endoftext |>", "<|PAD|>"]
    wants = [ref.encode(t) for t in texts]
    mine = _mine(vocab, merges)
    for text, want in zip(texts, wants):
        expect_equal(mine.encode(text), want, what=f"encode({text!r}) (not a special token: only exact matches "
                     "are; ordinary ids)")


def test_training_never_merges_specials(rng):
    # a corpus without <, | or > outside the specials: any merge containing them crossed into a special
    docs = [corpus(rng, 2500).replace("<", "").replace("|", "").replace(">", "") for _ in range(6)]
    text = EOT.join(docs) + EOT * 400 + PAD.join(docs[:2]) + PAD * 200   # specials are frequent
    vocab_size = 256 + 80 + 2
    what = f"train_bpe(documents joined by {EOT!r}, {vocab_size}, [{EOT!r}, {PAD!r}])"
    got = learner("trainer").train_bpe(text, vocab_size, [EOT, PAD])
    expect_type(got, tuple, what=what + " (a tuple (vocab, merges))")
    vocab, merges = got
    expect_type(vocab, dict, what=what + " vocab")
    expect_type(merges, list, what=what + " merges")
    for k, m in enumerate(merges):
        expect_type(m, tuple, what=f"{what} merges[{k}]")
        expect_type(m[0], bytes, what=f"{what} merges[{k}][0]")
        expect_type(m[1], bytes, what=f"{what} merges[{k}][1]")
    for a, b in merges:
        if any(c in a + b for c in b"<|>"):
            fail(f"{what}: learned the merge {(a, b)!r}, which comes from a special token: split the text "
                 "around specials and leave them out of the pair counts")
    n = len(merges)
    expect_equal([vocab.get(256 + n), vocab.get(257 + n)], [EOT.encode(), PAD.encode()],
                 what=f"{what}: [vocab[{256 + n}], vocab[{257 + n}]] (the specials follow the {n} merges, in the "
                 "order given)")
