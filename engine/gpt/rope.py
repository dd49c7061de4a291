"""Rotary position embeddings (RoPE, Su et al. 2021).

Instead of adding a position vector to the input, RoPE rotates every query and key by an angle that
grows with its position. The head's hs channels are taken as hs/2 pairs (x[2i], x[2i+1]); pair i
turns by angle pos · base^(-2i/hs), so the first pairs spin fast and the last ones slowly. Because
both q and k are rotated, q_m · k_n depends only on the offset m - n: attention sees relative
positions, and nothing is added to the residual stream.
"""
from __future__ import annotations

import torch


def rope_tables(head_dim: int, max_len: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of every (position, pair) angle, each (max_len, head_dim // 2)."""
    speeds = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # (hs/2,)
    angles = torch.arange(max_len, dtype=torch.float64)[:, None] * speeds[None, :]    # (T, hs/2)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each adjacent pair of channels of x (..., T, hs) by the angles in cos/sin (T, hs/2)."""
    even, odd = x[..., 0::2], x[..., 1::2]                     # (..., T, hs/2) each
    rot_even = even * cos - odd * sin                          # the 2-D rotation
    rot_odd = even * sin + odd * cos                           # [cos -sin; sin cos] per pair
    return torch.stack((rot_even, rot_odd), dim=-1).flatten(-2).type_as(x)  # re-interleave
