"""Rotary position embeddings (bonus checkpoint rope; brief.md, section 9.1).

The head's hs channels are taken as hs/2 neighbouring pairs (x[2i], x[2i+1]); pair i at position
pos turns by the angle pos · base^(-2i/hs).
"""
from __future__ import annotations

import torch


def rope_tables(head_dim: int, max_len: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin) of every (position, pair) angle, each float32 of shape (max_len, head_dim // 2)."""
    raise NotImplementedError("rope_tables: see brief.md, section 9.1 (RoPE)")


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair (x[..., 2i], x[..., 2i+1]) of x (..., T, hs) by the angles in cos/sin (T, hs/2).

        x'[2i]   = x[2i]·cos - x[2i+1]·sin
        x'[2i+1] = x[2i]·sin + x[2i+1]·cos
    """
    raise NotImplementedError("apply_rope: see brief.md, section 9.1 (RoPE)")
