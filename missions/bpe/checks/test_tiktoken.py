"""Checkpoint `tiktoken`: your ranks, loaded into tiktoken, give exactly your ids; your tokenizer
loaded with GPT-2's own merges gives exactly GPT-2's ids (only when the GPT-2 files can be fetched)."""
import socket
import threading

import numpy as np
import pytest
import tiktoken

from _bpe_util import EOT, corpus, sample_texts
from engine.bpe.pretokenize import GPT2_PATTERN
from grader.checks import expect, fail
from grader.seam import learner


def _compare(enc, tok, texts, what):
    for text in texts + [EOT.join(texts[:3])]:
        want = enc.encode(text, allowed_special="all")
        got = tok.encode(text)
        if got != want:
            k = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            fail(f"{what}: encode({text[:60]!r}...) differs from tiktoken at position {k}: got {got[k:k + 4]}, "
                 f"tiktoken {want[k:k + 4]} = {[enc.decode_single_token_bytes(t) for t in want[k:k + 4]]}")
        back = tok.decode(got)
        expect(back == enc.decode(want), f"{what}: decode differs from tiktoken for {text[:60]!r}")


def test_your_ranks_in_tiktoken(rng):
    text = EOT.join(corpus(rng, 8000, unicode_share=0.2) for _ in range(3))
    vocab_size = 256 + 150 + 1
    vocab, merges = learner("trainer").train_bpe(text, vocab_size, [EOT])
    tok = learner("tokenizer").Tokenizer(vocab, merges, [EOT])
    ranks = {b: i for i, b in vocab.items() if b != EOT.encode()}
    if len(ranks) != len(vocab) - 1:
        fail("your vocab holds the same bytes under two ids; tiktoken needs one id per byte string")
    enc = tiktoken.Encoding(name="yours", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                            special_tokens={EOT: tok.special_ids[EOT]})
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


def _gpt2():
    try:
        socket.create_connection(("openaipublic.blob.core.windows.net", 443), timeout=3).close()
    except OSError:
        return None
    box = []
    worker = threading.Thread(target=lambda: box.append(tiktoken.get_encoding("gpt2")), daemon=True)
    worker.start()
    worker.join(60)
    return box[0] if box else None


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
    enc = _gpt2()
    if enc is None:
        pytest.skip("needs network: tiktoken gpt2 files")
    ranks = enc._mergeable_ranks
    vocab = {r: b for b, r in ranks.items()} | {enc.eot_token: EOT.encode()}
    tok = learner("tokenizer").Tokenizer(vocab, _recover_merges(ranks), [EOT])
    _compare(enc, tok, sample_texts(rng), "your tokenizer with GPT-2's merges")
