"""The KV cache: every layer's keys and values, kept so that a new token costs one position, not all.

A causal model's keys and values for position i depend only on tokens 0..i, so they never change
once computed. Decoding without a cache recomputes them for the whole prefix at every step (n new
tokens cost ~n²/2 position-passes); with one, each step runs ONE position through the model, appends
its k and v, and attends over everything stored.

Preallocated: the buffers are made once at their final size, (n_layer, B, n_kv_head, max_len, head_dim)
each for keys and values, and a step writes into positions pos..pos+T. Growing them with torch.cat
would copy the whole cache at every token. Attention reads only the filled part, [:pos+T]: the slots
after it are zeros, and a zero key still gets weight exp(0 - m) in a softmax.

Memory (the formula every serving system budgets by):
    2 (k and v) · n_layer · n_kv_head · head_dim · seq_len · batch · bytes per number
For GPT-2 small (12 layers, 12 heads of 64) at 1,024 tokens in float32: 75 MB per sequence.
Not handled: paged or ring-buffer caches, quantised caches, beams that share a prefix.
"""
from __future__ import annotations

import torch


def kv_cache_bytes(n_layer: int, n_kv_head: int, head_dim: int, seq_len: int, batch_size: int = 1,
                   bytes_per_value: int = 4) -> int:
    """2 · layers · kv heads · head_dim · seq_len · batch · bytes: the size of a full cache."""
    return 2 * n_layer * n_kv_head * head_dim * seq_len * batch_size * bytes_per_value


class KVCache:
    """Preallocated keys and values: k, v each (n_layer, B, n_kv_head, max_len, head_dim).

    `pos` counts the positions stored. A forward pass over T new tokens calls update() once per layer
    (which writes positions pos..pos+T and returns keys/values 0..pos+T), then advance(T) once.
    """

    def __init__(self, n_layer: int, n_kv_head: int, head_dim: int, max_len: int, batch_size: int = 1,
                 dtype: torch.dtype = torch.float32, device=None):
        shape = (n_layer, batch_size, n_kv_head, max_len, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.max_len = max_len
        self.pos = 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v (B, n_kv_head, T, head_dim) at positions pos..pos+T of `layer`; return views of
        that layer's keys and values 0..pos+T (no copy). Does not move pos."""
        end = self.pos + k.size(2)
        if end > self.max_len:
            raise ValueError(f"KV cache is full: {end} positions > max_len={self.max_len}")
        self.k[layer, :, :, self.pos:end] = k
        self.v[layer, :, :, self.pos:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def advance(self, n: int) -> None:
        """n more positions are stored (call once per forward pass, after every layer)."""
        self.pos += n

    def nbytes(self) -> int:
        return self.k.nbytes + self.v.nbytes
