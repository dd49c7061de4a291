"""The FlashAttention-2 forward in plain PyTorch: exact attention without the T×T score matrix
(brief.md, section 3).

For each block of block_q queries keep a running max m, a running sum l and a running output acc;
visit the key/value blocks one by one, rescaling l and acc by exp(m_old - m_new) whenever the max
moves. At the end o = acc / l and lse = m + log(l).

Causal: query i sits at position T_k - T_q + i and may see keys 0 .. T_k - T_q + i. Tiles that lie
wholly after a block's last visible key are never computed.
A query that sees no key gets o = 0 and lse = -inf.
"""
from __future__ import annotations

import math

import torch

from .online_softmax import NEG_INF, safe_max


def flash_attention_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
                            block_q: int = 64, block_k: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q·kᵀ/sqrt(d))·v computed tile by tile.

    q (..., T_q, d), k and v (..., T_k, d)  ->  o (..., T_q, d), lse (..., T_q)
    where lse[i] = log Σ_j exp(s_ij) over the keys query i may see (-inf if none). o and lse have
    q's dtype. Never hold more than one (block_q × block_k) tile of scores at a time.
    """
    raise NotImplementedError("flash_attention_forward: see brief.md, section 3 (Tiled attention)")
