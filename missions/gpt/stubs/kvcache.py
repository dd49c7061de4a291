"""The KV cache: keep every layer's keys and values so decoding one token costs one position
(brief.md, section 8).

Memory: 2 (keys and values) · n_layer · batch · n_kv_head · max_len · head_dim · bytes per number.
"""
from __future__ import annotations

import torch

from .sample import sample_next


class KVCache:
    """Preallocated keys and values for every layer.

    Attributes:
        k, v   float tensors (n_layer, B, cfg.kv_heads, max_len, cfg.head_dim), zeros at first
        pos    how many positions are stored (0 at first)
    A forward pass of T new tokens calls update() once per layer, then advance(T) once.
    """

    def __init__(self, cfg, batch_size: int, max_len: int | None = None,
                 dtype: torch.dtype = torch.float32, device=None):
        """max_len defaults to cfg.block_size."""
        raise NotImplementedError("KVCache.__init__: see brief.md, section 8 (The KV cache)")

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, nkv, T, hs) at positions pos..pos+T of this layer and return the keys and
        values of positions 0..pos+T, each (B, nkv, pos+T, hs). Does not move pos."""
        raise NotImplementedError("KVCache.update: see brief.md, section 8 (The KV cache)")

    def advance(self, n: int) -> None:
        """n more positions are now stored."""
        raise NotImplementedError("KVCache.advance: see brief.md, section 8 (The KV cache)")


def kv_cache_bytes(n_layer: int, n_kv_head: int, head_dim: int, seq_len: int,
                   batch_size: int = 1, bytes_per_value: int = 4) -> int:
    """The size of a full cache in bytes (an int)."""
    raise NotImplementedError("kv_cache_bytes: see brief.md, section 8 (The KV cache)")


@torch.no_grad()
def generate_cached(model, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                    top_k: int | None = None, top_p: float | None = None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """sample.generate with a KV cache: run the prompt once (prefill), then feed one new token per
    step. idx (B, T0) -> (B, T0 + max_new_tokens); the total must fit in model.cfg.block_size."""
    raise NotImplementedError("generate_cached: see brief.md, section 8 (The KV cache)")
