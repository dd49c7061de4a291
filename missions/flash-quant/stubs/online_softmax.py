"""Online softmax: the max and the normaliser of a softmax in ONE pass over blocks of the input
(brief.md, section 2).

    softmax(x)_j = exp(x_j - m) / l        m = max_j x_j        l = Σ_j exp(x_j - m)

Convention: a row that is entirely -inf (fully masked) has m = -inf, l = 0 and probabilities of 0.
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
    raise NotImplementedError("online_softmax_stats: see brief.md, section 2 (The online softmax)")


def online_softmax(x: torch.Tensor, block_size: int) -> torch.Tensor:
    """softmax over the last axis from the online statistics: exp(x - m) / l.

    x (..., N) -> probabilities (..., N), each row summing to 1; a fully masked row (all -inf) -> zeros.
    """
    raise NotImplementedError("online_softmax: see brief.md, section 2 (The online softmax)")
