"""Checkpoint `save`: save() then load() gives back the same tokenizer, from a text file."""
from _bpe_util import EOT, corpus, sample_texts
from engine.bpe.trainer import train_bpe
from grader.checks import expect, fail
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
    expect(type(loaded) is Tokenizer, f"Tokenizer.load returned {type(loaded).__name__}, expected a Tokenizer")
    expect(loaded.vocab == tok.vocab, "Tokenizer.load: vocab differs from the saved one"
           + ("" if set(loaded.vocab) == set(tok.vocab) else " (ids changed: JSON object keys are strings, "
              "convert them back with int())"))
    expect(loaded.merges == tok.merges, "Tokenizer.load: merges differ (order matters: it is the rank)")
    expect(loaded.special_tokens == tok.special_tokens, "Tokenizer.load: special tokens differ")
    for text in sample_texts(rng) + [f"a{EOT}b<|pad|>c"]:
        expect(loaded.encode(text) == tok.encode(text), f"the loaded tokenizer encodes {text[:50]!r} differently")
