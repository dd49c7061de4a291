"""Checkpoint `special`: special tokens are one id when encoding, never split, never merged in
training, and decode back to their text."""
from _bpe_util import EOT, corpus
from engine.bpe.tokenizer import Tokenizer as RefTokenizer
from engine.bpe.trainer import train_bpe
from grader.checks import expect, fail
from grader.seam import learner
import numpy as np

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
        got = mine.encode(text)
        what = f"encode({text[:80]!r})"
        n_special = text.count(EOT) + text.count(PAD)
        n_got = sum(1 for t in got if t in (eot, pad))
        if n_got < n_special:
            fail(f"{what}: the text holds {n_special} special token(s) but the ids hold {n_got} special id(s) "
                 f"({EOT!r} is id {eot}): the special token was split into ordinary tokens; cut the text "
                 "around specials with split_special before pre-tokenizing")
        expect(got == want, f"{what}: expected {want}, got {got}")
        back = mine.decode(got)
        expect(back == text, f"decode(encode({text[:80]!r})) gave {back[:80]!r}")


def test_partial_special_is_ordinary_text(rng):
    vocab, merges, ref = _vocab(rng)
    texts = ["<|endoftext", "endoftext|>", "<|endoftext |>", "<|PAD|>"]
    wants = [ref.encode(t) for t in texts]
    mine = _mine(vocab, merges)
    for text, want in zip(texts, wants):
        got = mine.encode(text)
        expect(got == want, f"encode({text!r}): not a special token (only exact matches are), expected "
               f"ordinary ids {want}, got {got}")


def test_training_never_merges_specials(rng):
    # a corpus without <, | or > outside the specials: any merge containing them crossed into a special
    docs = [corpus(rng, 2500).replace("<", "").replace("|", "").replace(">", "") for _ in range(6)]
    text = EOT.join(docs) + EOT * 400 + PAD.join(docs[:2]) + PAD * 200   # specials are frequent
    vocab_size = 256 + 80 + 2
    vocab, merges = learner("trainer").train_bpe(text, vocab_size, [EOT, PAD])
    what = f"train_bpe(documents joined by {EOT!r}, {vocab_size}, [{EOT!r}, {PAD!r}])"
    for a, b in merges:
        if any(c in a + b for c in b"<|>"):
            fail(f"{what}: learned the merge {(a, b)!r}, which comes from a special token: split the text "
                 "around specials and leave them out of the pair counts")
    n = len(merges)
    expect(vocab.get(256 + n) == EOT.encode() and vocab.get(257 + n) == PAD.encode(),
           f"{what}: the specials must follow the {n} merges, in the order given: expected vocab[{256 + n}] = "
           f"{EOT.encode()!r} and vocab[{257 + n}] = {PAD.encode()!r}, got {vocab.get(256 + n)!r} and "
           f"{vocab.get(257 + n)!r}")
