"""The KV cache: every layer's keys and values, kept so that a new token costs one position, not all
(brief.md, section 8).

Memory: 2 (k and v) · n_layer · n_kv_head · head_dim · seq_len · batch · bytes per number.
"""
from __future__ import annotations

import torch


def kv_cache_bytes(n_layer: int, n_kv_head: int, head_dim: int, seq_len: int, batch_size: int = 1,
                   bytes_per_value: int = 4) -> int:
    """The size of a full cache in bytes (an int)."""
    raise NotImplementedError("kv_cache_bytes: see brief.md, section 8 (The KV cache)")


class KVCache:
    """Preallocated keys and values.

    Attributes:
        k, v     tensors (n_layer, B, n_kv_head, max_len, head_dim) of `dtype`, zeros, made ONCE here
        max_len  the number of positions the buffers hold
        pos      how many positions are stored (0 at first)
    A forward pass over T new tokens calls update() once per layer, then advance(T) once.
    """

    def __init__(self, n_layer: int, n_kv_head: int, head_dim: int, max_len: int, batch_size: int = 1,
                 dtype: torch.dtype = torch.float32, device=None):
        raise NotImplementedError("KVCache.__init__: see brief.md, section 8 (The KV cache)")

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v (B, n_kv_head, T, head_dim) at positions pos..pos+T of `layer`, in place; return
        that layer's keys and values of positions 0..pos+T as views (no copy), each
        (B, n_kv_head, pos+T, head_dim). Does not move pos. A full cache raises ValueError."""
        raise NotImplementedError("KVCache.update: see brief.md, section 8 (The KV cache)")

    def advance(self, n: int) -> None:
        """n more positions are stored (call once per forward pass, after every layer)."""
        raise NotImplementedError("KVCache.advance: see brief.md, section 8 (The KV cache)")

    def nbytes(self) -> int:
        """Bytes of the two buffers (an int)."""
        raise NotImplementedError("KVCache.nbytes: see brief.md, section 8 (The KV cache)")
