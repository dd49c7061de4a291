"""Online softmax: the max and the normaliser of a softmax in ONE pass over blocks of the input.

    softmax(x)_j = exp(x_j - m) / l        m = max_j x_j        l = Σ_j exp(x_j - m)

Subtracting m keeps every exp() at most 1 (no overflow for logits of 1e4). The usual way needs two
passes before it can write anything: one for m, one for l. Reading x one block at a time instead, keep
a running max m and a running sum l = Σ_{seen j} exp(x_j - m). When a new block b arrives with its own
maximum m_b, the max becomes m' = max(m, m_b) and every term already in l was computed against the old
m, so it is rescaled:

    exp(x_j - m') = exp(x_j - m) · exp(m - m')      =>      l' = l · exp(m - m') + Σ_{j in b} exp(x_j - m')

That single correction factor exp(m - m') is the whole trick (Milakov & Gimelshein, 2018). It is
always <= 1, and it is exactly 1 when the max did not move. FlashAttention applies the same factor to
its running output (tiled_attention.py).

Fully masked rows. A row whose entries are all -inf has m = -inf and l = 0; its probabilities are
defined here as zeros (torch.softmax gives NaN). Blocks that are entirely -inf are fine too. To never
evaluate -inf - (-inf) = NaN, exponents subtract a "safe" max: 0 wherever the max is still -inf.

Not handled: +inf or NaN inputs (they propagate as NaN), integer dtypes.
"""
from __future__ import annotations

import torch

NEG_INF = float("-inf")


def safe_max(m: torch.Tensor) -> torch.Tensor:
    """m with -inf replaced by 0: what to subtract before exp() so that a row (or block) that is
    entirely -inf gives exp(-inf - 0) = 0 instead of exp(NaN)."""
    return torch.where(m == NEG_INF, torch.zeros_like(m), m)


def online_softmax_stats(x: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The running max m and running sum l of a softmax over the last axis, reading block_size
    columns at a time and never more than one block at once.

    x (..., N)  ->  m (...), l (...)   with m = max_j x_j and l = Σ_j exp(x_j - m).
    """
    if block_size < 1:
        raise ValueError(f"block_size must be at least 1, got {block_size}")
    m = torch.full(x.shape[:-1], NEG_INF, dtype=x.dtype, device=x.device)
    l = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
    for start in range(0, x.size(-1), block_size):
        block = x[..., start:start + block_size]                      # (..., b)
        m_new = torch.maximum(m, block.amax(dim=-1))                  # the max of everything so far
        shift = safe_max(m_new)
        l = l * torch.exp(m - shift) + torch.exp(block - shift[..., None]).sum(dim=-1)
        m = m_new
    return m, l


def online_softmax(x: torch.Tensor, block_size: int) -> torch.Tensor:
    """softmax over the last axis from the online statistics: exp(x - m) / l.

    x (..., N) -> probabilities (..., N), each row summing to 1; a fully masked row (all -inf) -> zeros.
    """
    m, l = online_softmax_stats(x, block_size)
    denom = torch.where(l == 0, torch.ones_like(l), l)                # fully masked rows: 0 / 1
    return torch.exp(x - safe_max(m)[..., None]) / denom[..., None]
