"""Checkpoint `save`: save() then load() gives back the same tokenizer, from a text file."""
from _bpe_util import EOT, check_ids, corpus, same, sample_texts
from engine.bpe.trainer import train_bpe
from grader.checks import expect_equal, expect_type, fail
from grader.seam import learner


def test_save_load_round_trip(rng, tmp_path):
    specials = [EOT, "<|pad|>"]
    vocab, merges = train_bpe(corpus(rng, 15000, unicode_share=0.2), 256 + 100 + 2, specials)
    Tokenizer = learner("tokenizer").Tokenizer
    tok = Tokenizer(vocab, merges, specials)
    path = tmp_path / "tok.json"
    tok.save(path)
    if not path.is_file():
        fail(f"Tokenizer.save({path}) wrote no file at that path")
    raw = path.read_bytes()
    if raw[:1] == b"\x80":
        fail("Tokenizer.save wrote a pickle; write a text format (JSON): a pickle runs code when loaded")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        fail("Tokenizer.save wrote a file that is not UTF-8 text; bytes can be stored as lists of ints")
    loaded = Tokenizer.load(path)
    expect_type(loaded, Tokenizer, what="Tokenizer.load(path)")
    want_vocab = dict(vocab)        # what was saved: the trained vocab, specials included
    got_vocab = loaded.vocab
    expect_type(got_vocab, dict, what="Tokenizer.load(path).vocab")
    if not same(got_vocab, want_vocab) and same(sorted(map(str, dict.keys(got_vocab))), sorted(map(str, want_vocab))):
        fail("Tokenizer.load: the vocab ids changed type: JSON object keys are strings, convert them back "
             "with int()")
    expect_equal(got_vocab, want_vocab, what="Tokenizer.load(path).vocab (as saved)")
    expect_equal(loaded.merges, list(merges), what="Tokenizer.load(path).merges (order matters: it is the rank)")
    expect_equal(loaded.special_tokens, specials, what="Tokenizer.load(path).special_tokens")
    for text in sample_texts(rng) + [f"a{EOT}b<|pad|>c"]:
        want = check_ids(tok.encode(text), f"encode({text[:50]!r})")
        expect_equal(check_ids(loaded.encode(text), f"the loaded tokenizer's encode({text[:50]!r})"), want,
                     what=f"the loaded tokenizer's encode({text[:50]!r}) vs the saved one's")
