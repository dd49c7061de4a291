"""Tokenizers for the GPT: one id per character by default, or a BPE tokenizer from the bpe mission.

Any object with encode(str) -> list[int], decode(list[int]) -> str and a vocab size works. The
character tokenizer's vocabulary is every distinct character of the training text, sorted, so ids
are stable for a given corpus.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np


class CharTokenizer:
    def __init__(self, text: str):
        self.chars = sorted(set(text))
        self.stoi = {ch: i for i, ch in enumerate(self.chars)}
        self.vocab_size = len(self.chars)

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def encode_array(self, text: str) -> np.ndarray:
        """Fast path for a whole corpus: ids as an int64 array."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        uniq, inverse = np.unique(codes, return_inverse=True)
        try:
            table = np.array([self.stoi[chr(c)] for c in uniq], dtype=np.int64)
        except KeyError as e:
            raise ValueError(f"character {e.args[0]!r} is not in the tokenizer's vocabulary") from None
        return table[inverse]

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in ids)


def vocab_size_of(tok) -> int:
    """How many ids the model's embedding needs: vocab_size / n_vocab, else 1 + the largest id."""
    for attr in ("vocab_size", "n_vocab"):
        value = getattr(tok, attr, None)
        if isinstance(value, int):
            return value
    vocab = getattr(tok, "vocab", None)
    if isinstance(vocab, dict) and vocab:
        return max(vocab) + 1
    raise ValueError(f"cannot tell the vocabulary size of {type(tok).__name__}: give it a "
                     "vocab_size attribute")


def make_tokenizer(spec, text: str, bpe_vocab_size: int = 512):
    """The tokenizer a training run asks for.

    spec: "char"; "bpe": the bpe mission's byte-level BPE, trained on `text` up to bpe_vocab_size
    ids (bpe.trainer.train_bpe, then bpe.tokenizer.Tokenizer(vocab, merges)): your own bpe package
    when this runs from your workspace, engine.bpe when it runs from the engine; or any ready
    tokenizer object with encode/decode.
    """
    if spec is None or spec == "char":
        return CharTokenizer(text)
    if spec == "bpe":
        package = __package__ or ""
        bpe_pkg = package.rsplit(".", 1)[0] + ".bpe" if "." in package else "bpe"
        trainer, tokenizer = _import_bpe(bpe_pkg)
        vocab, merges = trainer.train_bpe(text, bpe_vocab_size)
        return tokenizer.Tokenizer(vocab, merges)
    if hasattr(spec, "encode") and hasattr(spec, "decode"):
        return spec
    raise ValueError(f"tokenizer must be 'char', 'bpe' or an object with encode/decode, got {spec!r}")


def _import_bpe(name: str):
    """The bpe package's trainer and tokenizer modules. From a workspace, `bpe` sits next to this
    package; the lab imports only this package from there, so look next door if it is not found."""
    try:
        return (importlib.import_module(name + ".trainer"), importlib.import_module(name + ".tokenizer"))
    except ModuleNotFoundError:
        if "." in name:
            raise
        here = Path(__file__).resolve().parent.parent
        if not (here / name).is_dir():
            raise
        sys.path.append(str(here))          # appended: installed libraries still come first
        return (importlib.import_module(name + ".trainer"), importlib.import_module(name + ".tokenizer"))


def encode_corpus(tok, text: str) -> np.ndarray:
    if hasattr(tok, "encode_array"):
        return tok.encode_array(text)
    return np.asarray(tok.encode(text), dtype=np.int64)
