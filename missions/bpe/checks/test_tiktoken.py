"""Checkpoint `tiktoken`: your ranks, loaded into tiktoken, give exactly your ids; your tokenizer
loaded with GPT-2's own merges gives exactly GPT-2's ids (GPT-2's ranks ship in assets/, offline)."""
import numpy as np
import tiktoken

from _bpe_util import EOT, corpus, sample_texts
from engine.bpe.pretokenize import GPT2_PATTERN
from engine.shared.corpora import gpt2_encoding, gpt2_ranks
from grader.checks import CheckFailure, as_int, expect_equal, expect_type, fail, to_numpy
from grader.seam import learner


def _ids(got, what):
    """The learner's ids as a plain list of exact ints (anything else fails here, by name)."""
    expect_type(got, list, what=what)
    for k, t in enumerate(got):
        if type(t) is not int:
            fail(f"{what}: element {k} is {type(t).__name__} {t!r}; return a list of Python ints")
    return got


def _plain_vocab(vocab, what):
    """The learner's vocab as a plain {int: bytes} dict of exact types (checked, then copied)."""
    expect_type(vocab, dict, what=what)
    for i, b in dict.items(vocab):
        if type(i) is not int or type(b) is not bytes:
            fail(f"{what}: entry {i!r}: {b!r} is {type(i).__name__} -> {type(b).__name__}; "
                 "the vocab maps int ids to bytes")
    return dict(dict.items(vocab))


def _first_difference(got, want) -> int:
    """Index of the first id that differs (diagnosis only, after expect_equal has failed)."""
    g, w = to_numpy(got, what="ids"), to_numpy(want, what="ids")
    m = min(len(g), len(w))
    differ = np.flatnonzero(g[:m] != w[:m])
    return int(differ[0]) if differ.size else m


def _compare(enc, tok, texts, what):
    cases = texts + [EOT.join(texts[:3])]
    # tiktoken's answers first, before any learner code runs
    wanted = [(enc.encode(text, allowed_special="all"), None) for text in cases]
    wanted = [(ids, enc.decode(ids)) for ids, _ in wanted]
    for text, (want, want_text) in zip(cases, wanted):
        label = f"{what}: encode({text[:60]!r}...)"
        got = _ids(tok.encode(text), label)
        try:
            expect_equal(got, want, what=label)
        except CheckFailure:
            k = _first_difference(got, want)
            fail(f"{label} differs from tiktoken at position {k}: got {got[k:k + 4]}, "
                 f"tiktoken {want[k:k + 4]} = {[enc.decode_single_token_bytes(t) for t in want[k:k + 4]]}")
        expect_equal(tok.decode(got), want_text, what=f"{what}: decode of the ids of {text[:60]!r}")


def test_your_ranks_in_tiktoken(rng):
    text = EOT.join(corpus(rng, 8000, unicode_share=0.2) for _ in range(3))
    vocab_size = 256 + 150 + 1
    vocab, merges = learner("trainer").train_bpe(text, vocab_size, [EOT])
    tok = learner("tokenizer").Tokenizer(vocab, merges, [EOT])
    vocab = _plain_vocab(vocab, "train_bpe's vocab")
    ranks = {b: i for i, b in vocab.items()}
    expect_equal(len(ranks), len(vocab), what="distinct byte strings in your vocab vs its ids (the same "
                 "bytes under two ids? tiktoken needs one id per byte string)")
    ranks.pop(EOT.encode(), None)
    eot_id = as_int(tok.special_ids[EOT], what="Tokenizer.special_ids['<|endoftext|>']")
    enc = tiktoken.Encoding(name="yours", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                            special_tokens={EOT: eot_id})
    _compare(enc, tok, sample_texts(rng), f"your tokenizer (vocab {vocab_size}, trained by you)")


def test_permuted_byte_ids(rng):
    """GPT-2 does not give byte b the id b. Shuffle the 256 byte ids of a vocabulary (merges keep
    their ranks) and compare with tiktoken: this catches code that assumes ids 0..255 are bytes."""
    from engine.bpe.trainer import train_bpe
    vocab, merges = train_bpe(corpus(rng, 20000, unicode_share=0.2), 256 + 120)
    perm = rng.permutation(256)
    shuffled = {int(perm[i]): vocab[i] for i in range(256)} | {i: b for i, b in vocab.items() if i >= 256}
    eot_id = len(shuffled)
    tok = learner("tokenizer").Tokenizer(shuffled, merges, [EOT])
    enc = tiktoken.Encoding(name="shuffled", pat_str=GPT2_PATTERN,
                            mergeable_ranks={b: i for i, b in shuffled.items()}, special_tokens={EOT: eot_id})
    _compare(enc, tok, sample_texts(rng), "a vocabulary whose byte ids are shuffled (as in GPT-2); look ids up "
             "in self.ids, never assume byte b has id b")


def _recover_merges(ranks):
    """GPT-2 ships ranks {bytes: rank}; rebuild the merge list: each token of rank r is the pair
    that BPE, using only ranks below r, leaves when it has merged the token's bytes down to two."""
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) < 2:
            continue
        parts = [bytes([b]) for b in token]
        while len(parts) > 2:
            found = [(ranks[parts[i] + parts[i + 1]], i) for i in range(len(parts) - 1)
                     if ranks.get(parts[i] + parts[i + 1], rank) < rank]
            _, i = min(found)
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        merges.append((parts[0], parts[1]))
    return merges


def test_gpt2_merges_match_tiktoken(rng):
    """GPT-2's real vocabulary: 50,256 byte strings whose ids are GPT-2's (bytes not in byte order) and
    50,000 merges. Your Tokenizer loaded with them must give GPT-2's own ids, as tiktoken does."""
    enc = gpt2_encoding()                       # from assets/gpt2_tokenizer, no network
    # the grader's own data first: GPT-2 encodes "Hello world" as [15496, 995]
    expect_equal(enc.encode("Hello world"), [15496, 995], what="GPT-2's tokenizer shipped in assets/ "
                 "(the grader's data, not your code: reinstall llm-lab)")
    ranks = gpt2_ranks()
    vocab = {r: b for b, r in ranks.items()} | {enc.eot_token: EOT.encode()}
    merges = _recover_merges(ranks)
    texts = sample_texts(rng) + ["Hello world", " Hello world", "GPT-2's merges, loaded into your Tokenizer.",
                                 "  indented\n\tcode = {'a': 1}  # comment\n"]
    tok = learner("tokenizer").Tokenizer(vocab, merges, [EOT])
    _compare(enc, tok, texts, "your tokenizer with GPT-2's merges")
