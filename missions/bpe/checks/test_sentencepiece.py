"""Bonus checkpoint `sentencepiece`: your tokenizer compresses about as well as a SentencePiece BPE
model of the same size, trained here on the same text.

SentencePiece (Kudo & Richardson, 2018) is the library behind Llama's and T5's tokenizers. It does
not pre-tokenize with a regex: it treats the text as one stream, marks spaces as '▁', and (with
byte_fallback) keeps 256 byte pieces for anything unseen, so a 500-piece model is comparable with
256 bytes + 244 merges."""
import io

from _bpe_util import check_ids
from engine.shared.data import text_path
from grader.checks import expect_between
from grader.seam import learner

VOCAB = 500
MIN_RATIO = 0.8    # your bytes per token must be at least 80% of SentencePiece's (reference: ~1.0)


def test_compression_close_to_sentencepiece(rng):
    import sentencepiece as spm   # a dependency of llm-lab
    val = text_path("val").read_text(encoding="utf-8")
    train_text = val[:200_000]
    full = text_path("train").read_text(encoding="utf-8")
    start = int(rng.integers(0, len(full) - 100_000))
    held_out = full[start:start + 100_000]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(train_text.splitlines()), model_writer=model,
                                   vocab_size=VOCAB, model_type="bpe", character_coverage=1.0,
                                   byte_fallback=True, minloglevel=2, num_threads=1)
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    n_bytes = len(held_out.encode("utf-8"))
    sp_ratio = n_bytes / sum(len(sp.encode(line)) for line in held_out.splitlines())

    vocab, merges = learner("trainer").train_bpe(train_text, VOCAB)
    ids = check_ids(learner("tokenizer").Tokenizer(vocab, merges).encode(held_out), "encode(held-out text)")
    ratio = n_bytes / max(1, len(ids))
    expect_between(ratio, MIN_RATIO * sp_ratio, None, what=f"bytes per token of your vocab-{VOCAB} tokenizer on "
                   "100,000 held-out characters", why=f"SentencePiece BPE averages {sp_ratio:.2f}; the bar is "
                   f"{MIN_RATIO:.0%} of it")
    print(f"bytes per token: yours {ratio:.3f}, SentencePiece {sp_ratio:.3f}")
