"""The FlashAttention backward: gradients of q, k, v without ever storing the T×T probabilities
(brief.md, section 4). Bonus.

With s = q·kᵀ·c (c = 1/sqrt(d)), P = softmax(s), o = P·v and the upstream gradient do:
    dv = Pᵀ·do     dP = do·vᵀ     ds = P ∘ (dP - D), D_i = Σ_d do_id·o_id     dq = ds·k·c     dk = dsᵀ·q·c
and every tile of P is rebuilt as exp(s - lse) from the forward's logsumexp.
"""
from __future__ import annotations

import math

import torch

from .online_softmax import NEG_INF, safe_max


def flash_attention_backward(q, k, v, o, lse, do, causal: bool = False, block_q: int = 64,
                             block_k: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dq, dk, dv) of o = attention(q, k, v) for the upstream gradient do.

    q, o, do (..., T_q, d); k, v (..., T_k, d); lse (..., T_q) from flash_attention_forward (-inf for
    a query that sees no key: its P row is all zeros). Causal as in the forward. Never hold more than
    one tile of scores at a time.
    """
    raise NotImplementedError("flash_attention_backward: see brief.md, section 4 (The backward pass)")
