"""The KV cache: keep every layer's keys and values so decoding one token costs one position.

Without a cache, producing token t+1 runs the whole prefix 0..t through the model again, so n new
tokens cost about n²/2 position-passes. The keys and values of old positions never change (a causal
model's position i sees nothing after i), so we store them and feed the model only the new token.

Memory: 2 (k and v) · n_layer · batch · n_kv_head · max_len · head_dim · bytes per number.
"""
from __future__ import annotations

import torch

from .sample import sample_next


class KVCache:
    """Preallocated keys and values for every layer: k, v each (L, B, nkv, max_len, hs).

    `pos` counts the positions already stored. A forward pass of T new tokens calls update() once per
    layer (which writes at pos..pos+T and returns everything up to pos+T), then advance(T) once.
    """

    def __init__(self, cfg, batch_size: int, max_len: int | None = None,
                 dtype: torch.dtype = torch.float32, device=None):
        self.max_len = max_len or cfg.block_size
        shape = (cfg.n_layer, batch_size, cfg.kv_heads, self.max_len, cfg.head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.pos = 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, nkv, T, hs) at positions pos..pos+T; return keys/values 0..pos+T."""
        end = self.pos + k.size(2)
        if end > self.max_len:
            raise ValueError(f"KV cache is full: {end} positions > max_len={self.max_len}")
        self.k[layer, :, :, self.pos:end] = k
        self.v[layer, :, :, self.pos:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def advance(self, n: int) -> None:
        self.pos += n

    def nbytes(self) -> int:
        return self.k.nbytes + self.v.nbytes


def kv_cache_bytes(n_layer: int, n_kv_head: int, head_dim: int, seq_len: int,
                   batch_size: int = 1, bytes_per_value: int = 4) -> int:
    """2 · layers · kv heads · head_dim · seq_len · batch · bytes: the size of a full cache."""
    return 2 * n_layer * n_kv_head * head_dim * seq_len * batch_size * bytes_per_value


@torch.no_grad()
def generate_cached(model, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                    top_k: int | None = None, top_p: float | None = None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Like sample.generate, but with a KV cache: the prompt once, then one token per step.

    idx (B, T0) -> (B, T0 + max_new_tokens). The total length must fit in block_size.
    """
    B, T0 = idx.shape
    cache = KVCache(model.cfg, B, max_len=T0 + max_new_tokens,
                    dtype=model.tok_emb.weight.dtype, device=idx.device)
    logits, _ = model(idx, cache=cache)              # prefill: the whole prompt in one pass
    out = [idx]
    for _ in range(max_new_tokens):
        nxt = sample_next(logits[:, -1, :], temperature, top_k, top_p, generator)  # (B, 1)
        out.append(nxt)
        if len(out) - 1 == max_new_tokens:
            break
        logits, _ = model(nxt, cache=cache)          # decode: only the new token goes in
    return torch.cat(out, dim=1)
