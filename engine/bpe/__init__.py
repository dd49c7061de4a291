"""Byte-level BPE, as in GPT-2: train merges on text, encode text to ids, decode ids to text.

    pretokenize.py  the GPT-2 regex that cuts text into pre-tokens; special tokens split out first
    trainer.py      train_bpe: count pairs inside pre-tokens, merge the most frequent, repeat
    tokenizer.py    Tokenizer: encode (merges by rank), decode (bytes first, then UTF-8), save/load

The vocabulary is a dict {id: bytes}: ids 0..255 are the single bytes, id 256 + i is the i-th merge,
and special tokens come last. It plugs into tiktoken as mergeable_ranks = {bytes: id}.
"""
