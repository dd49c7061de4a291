"""Checkpoint `speed`: train_bpe with vocab 500 on ~0.46 MB of Shakespeare, in a reasonable time."""
import time

from engine.bpe.trainer import train_bpe as ref_train
from engine.shared.data import text_path
from grader.checks import expect_between, expect_equal
from grader.seam import learner

VOCAB = 500
FACTOR = 10        # allowed slowdown against the reference, measured now on this machine
FLOOR_S = 5.0      # never demand less than this


def test_train_500_on_half_a_megabyte():
    text = text_path("val").read_text(encoding="utf-8")       # 456,506 characters
    t0 = time.perf_counter()
    want_vocab, want_merges = ref_train(text, VOCAB, ["<|endoftext|>"])
    ref_s = time.perf_counter() - t0
    train = learner("trainer").train_bpe
    t0 = time.perf_counter()
    vocab, merges = train(text, VOCAB, ["<|endoftext|>"])
    mine_s = time.perf_counter() - t0
    expect_equal(merges, want_merges, what=f"train_bpe(val text, {VOCAB}) merges (pass the `train` checkpoint first)")
    limit = max(FACTOR * ref_s, FLOOR_S)
    expect_between(mine_s, None, limit, what=f"seconds for train_bpe(val text: {len(text):,} chars, vocab {VOCAB})",
                   why=f"{mine_s / ref_s:.0f}x the reference ({ref_s:.2f} s here). Count each distinct pre-token "
                   "once, and after a merge update the pair counts of only the words that contain the merged pair "
                   "(brief.md, section 7)")
