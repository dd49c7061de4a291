"""The FlashAttention backward: gradients of q, k, v without ever storing the T×T probabilities.

The forward kept only o and the per-row logsumexp lse. Any probability can be rebuilt from them,
tile by tile, because P_ij = exp(s_ij - lse_i) exactly (lse already contains the max and the sum).
Recomputing a tile of scores costs one small matmul; storing all of P would cost T_q·T_k numbers of
memory traffic, which is what made attention slow in the first place. So the backward recomputes.

With s = q·kᵀ·c (c = 1/sqrt(d)), P = softmax(s), o = P·v and the incoming gradient do:

    dv   = Pᵀ · do                          since o = P·v
    dP   = do · vᵀ
    ds   = P ∘ (dP - D),  D_i = Σ_j P_ij dP_ij = Σ_d do_id · o_id     (softmax's Jacobian, row by row)
    dq   = ds · k · c                        since s = c·q·kᵀ
    dk   = dsᵀ · q · c

D is computed once from do and o (a row-wise dot product), so no row of P is ever needed whole.
The loops follow FlashAttention-2: the outer loop over key/value blocks owns dk and dv (they
accumulate in registers on a GPU), the inner loop over query blocks adds into dq. Causal masking and
the skipping of hidden tiles are the forward's (tiled_attention.py).

Not handled: dropout, attention bias, the gradient of lse itself.
"""
from __future__ import annotations

import math

import torch

from .online_softmax import NEG_INF, safe_max


def flash_attention_backward(q, k, v, o, lse, do, causal: bool = False, block_q: int = 64,
                             block_k: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dq, dk, dv) of o = attention(q, k, v) for the upstream gradient do.

    q, o, do (..., T_q, d); k, v (..., T_k, d); lse (..., T_q) from flash_attention_forward.
    """
    t_q, t_k, d = q.size(-2), k.size(-2), q.size(-1)
    c = 1.0 / math.sqrt(d)
    offset = t_k - t_q
    D = (do * o).sum(dim=-1)                                   # (..., T_q)
    lse_safe = safe_max(lse)                                   # rows that saw no key: P = exp(-inf) = 0
    dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
    for ks in range(0, t_k, block_k):
        ke = min(ks + block_k, t_k)
        k_blk, v_blk = k[..., ks:ke, :], v[..., ks:ke, :]
        dk_acc, dv_acc = torch.zeros_like(k_blk), torch.zeros_like(v_blk)
        # causal: query i sees key ks only if offset + i >= ks; earlier query blocks are skipped
        q_first = (max(0, ks - offset) // block_q) * block_q if causal else 0
        for qs in range(q_first, t_q, block_q):
            qe = min(qs + block_q, t_q)
            q_blk, do_blk = q[..., qs:qe, :], do[..., qs:qe, :]
            s = (q_blk @ k_blk.transpose(-2, -1)) * c          # recompute the tile of scores
            if causal and ke - 1 > offset + qs:
                rows = torch.arange(qs, qe, device=q.device)[:, None] + offset
                cols = torch.arange(ks, ke, device=q.device)[None, :]
                s = s.masked_fill(cols > rows, NEG_INF)
            p = torch.exp(s - lse_safe[..., qs:qe, None])      # the forward's probabilities, exactly
            dv_acc += p.transpose(-2, -1) @ do_blk             # dv = Pᵀ·do
            dp = do_blk @ v_blk.transpose(-2, -1)              # dP = do·vᵀ
            ds = p * (dp - D[..., qs:qe, None])                # through the softmax
            dq[..., qs:qe, :] += (ds @ k_blk) * c              # dq = ds·k·c
            dk_acc += (ds.transpose(-2, -1) @ q_blk) * c       # dk = dsᵀ·q·c
        dk[..., ks:ke, :] = dk_acc
        dv[..., ks:ke, :] = dv_acc
    return dq, dk, dv
