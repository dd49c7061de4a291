"""The FlashAttention-2 forward in plain PyTorch: exact attention without the T×T score matrix.

Standard attention writes S = q·kᵀ/sqrt(d) (T_q × T_k numbers per head) to memory, reads it back for
the softmax, writes P, reads it again for P·v. For long sequences that traffic, not the arithmetic, is
the cost. Tiling avoids it: cut the queries into blocks of block_q rows and the keys/values into
blocks of block_k rows; for one query block keep three small running quantities

    m    (block_q,)      the running max of each query's scores
    l    (block_q,)      the running sum of exp(score - m)
    acc  (block_q, d)    the running, unnormalised output Σ_j exp(s_j - m)·v_j

and visit the key blocks one by one. A new block with scores s moves the max to m' = max(m, rowmax s);
everything accumulated so far was weighted against the old m, so both l and acc are rescaled by
alpha = exp(m - m') before the new block's contribution is added (online_softmax.py, same identity):

    p   = exp(s - m')
    l   = alpha·l   + rowsum(p)
    acc = alpha·acc + p·v_block

After the last key block, o = acc / l and the per-row logsumexp is lse = m + log(l): the only thing the
backward needs to rebuild every probability later (backward.py). The biggest tensor alive at once is
one (block_q × block_k) tile of scores.

Causal masking lines the queries up with the END of the keys, as a KV cache needs: query i sits at
position offset + i with offset = T_k - T_q and may see keys 0 .. offset + i. A key block that starts
after the last query of the block is entirely hidden and is never computed (that halves the work for
T_q = T_k); only blocks that cross the diagonal need an elementwise mask.

A query that can see no key at all (T_q > T_k, causal) gets o = 0 and lse = -inf.
Not handled: dropout, attention bias, different head sizes for v, variable-length batches.
"""
from __future__ import annotations

import math

import torch

from .online_softmax import NEG_INF, safe_max


def flash_attention_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
                            block_q: int = 64, block_k: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q·kᵀ/sqrt(d))·v computed tile by tile.

    q (..., T_q, d), k and v (..., T_k, d)  ->  o (..., T_q, d), lse (..., T_q)
    where lse[i] = log Σ_j exp(s_ij) over the keys query i may see (-inf if none).
    """
    t_q, t_k, d = q.size(-2), k.size(-2), q.size(-1)
    scale = 1.0 / math.sqrt(d)
    offset = t_k - t_q                                        # query i sits at position offset + i
    o = torch.empty_like(q)
    lse = torch.empty(q.shape[:-1], dtype=q.dtype, device=q.device)
    for qs in range(0, t_q, block_q):
        qe = min(qs + block_q, t_q)
        q_blk = q[..., qs:qe, :] * scale                      # (..., bq, d); scaling q once is cheaper
        m = torch.full(q_blk.shape[:-1], NEG_INF, dtype=q.dtype, device=q.device)     # (..., bq)
        l = torch.zeros_like(m)                                                       # (..., bq)
        acc = torch.zeros_like(q_blk)                                                 # (..., bq, d)
        kv_end = max(0, min(t_k, offset + qe)) if causal else t_k   # keys after the block's last query are hidden
        for ks in range(0, kv_end, block_k):
            ke = min(ks + block_k, t_k)
            s = q_blk @ k[..., ks:ke, :].transpose(-2, -1)    # (..., bq, bk) one tile of scores
            if causal and ke - 1 > offset + qs:               # the tile crosses the diagonal
                rows = torch.arange(qs, qe, device=q.device)[:, None] + offset
                cols = torch.arange(ks, ke, device=q.device)[None, :]
                s = s.masked_fill(cols > rows, NEG_INF)
            m_new = torch.maximum(m, s.amax(dim=-1))
            shift = safe_max(m_new)
            p = torch.exp(s - shift[..., None])               # (..., bq, bk)
            alpha = torch.exp(m - shift)                      # how much the old max was off by
            l = alpha * l + p.sum(dim=-1)
            acc = alpha[..., None] * acc + p @ v[..., ks:ke, :]
            m = m_new
        o[..., qs:qe, :] = acc / torch.where(l == 0, torch.ones_like(l), l)[..., None]
        lse[..., qs:qe] = m + torch.log(l)                    # log Σ exp(s) = m + log Σ exp(s - m)
    return o, lse
