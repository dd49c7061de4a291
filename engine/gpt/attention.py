"""Causal self-attention, written out by hand.

Shapes used throughout (the names match brief.md):
    B  batch size          T  sequence length (queries)     C  d_model, the residual width
    nh query heads         nkv key/value heads               hs head size = C // nh
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .config import GPTConfig
from .rope import apply_rope, rope_tables


def causal_mask(t_q: int, t_k: int, device=None) -> torch.Tensor:
    """Boolean (t_q, t_k) mask, True where a query may look.

    Queries are the *last* t_q positions of the t_k keys (that is what a KV cache produces), so
    query i sits at absolute position t_k - t_q + i and may see keys 0 .. t_k - t_q + i.
    With t_q == t_k this is the familiar lower triangle.
    """
    return torch.ones(t_q, t_k, dtype=torch.bool, device=device).tril(diagonal=t_k - t_q)


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 causal: bool = True) -> torch.Tensor:
    """softmax(q·kᵀ / sqrt(hs)) · v, optionally with a causal mask.

    q: (..., T_q, hs)   k: (..., T_k, hs)   v: (..., T_k, hs_v)   ->   (..., T_q, hs_v)
    """
    hs = q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs)          # (..., T_q, T_k): how well each
    if causal:                                                # query matches each key
        mask = causal_mask(q.size(-2), k.size(-2), device=q.device)
        scores = scores.masked_fill(~mask, float("-inf"))     # the future gets zero weight ...
    weights = torch.softmax(scores, dim=-1)                   # ... after the softmax
    return weights @ v                                        # a weighted average of the values


class MultiHeadAttention(nn.Module):
    """nh heads of causal self-attention side by side, then one output projection.

    Parameters (the state_dict layout the checks load):
        q_proj  Linear(C, nh·hs)      k_proj  Linear(C, nkv·hs)      v_proj  Linear(C, nkv·hs)
        out_proj Linear(nh·hs, C)
    With grouped-query attention (nkv < nh) each key/value head serves a contiguous group of
    nh // nkv query heads: query head h reads key/value head h // (nh // nkv).
    """

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = cfg.n_head, cfg.kv_heads, cfg.head_dim
        C = cfg.d_model
        self.q_proj = nn.Linear(C, self.n_head * self.head_dim, bias=cfg.bias)
        self.k_proj = nn.Linear(C, self.n_kv_head * self.head_dim, bias=cfg.bias)
        self.v_proj = nn.Linear(C, self.n_kv_head * self.head_dim, bias=cfg.bias)
        self.out_proj = nn.Linear(self.n_head * self.head_dim, C, bias=cfg.bias)
        self.out_drop = nn.Dropout(cfg.dropout)                # on the branch output, before the add
        self.rope = cfg.pos == "rope"
        if self.rope:  # cos/sin tables for every position; not saved in the state_dict
            cos, sin = rope_tables(self.head_dim, cfg.block_size, cfg.rope_base)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)

    def split_heads(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """(B, T, n·hs) -> (B, n, T, hs): the channel axis is cut into n heads of hs each."""
        B, T, _ = x.shape
        return x.view(B, T, n, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, cache=None, layer: int = 0) -> torch.Tensor:
        """x: (B, T, C) -> (B, T, C). With a KV cache, x holds only the new positions."""
        B, T, C = x.shape
        start = 0 if cache is None else cache.pos                 # absolute position of x[:, 0]
        q = self.split_heads(self.q_proj(x), self.n_head)         # (B, nh,  T, hs)
        k = self.split_heads(self.k_proj(x), self.n_kv_head)      # (B, nkv, T, hs)
        v = self.split_heads(self.v_proj(x), self.n_kv_head)      # (B, nkv, T, hs)
        if self.rope:                                             # rotate by ABSOLUTE positions
            cos, sin = self.rope_cos[start:start + T], self.rope_sin[start:start + T]
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:                                     # keys/values of every position
            k, v = cache.update(layer, k, v)                      # so far: (B, nkv, start+T, hs)
        if self.n_kv_head != self.n_head:                         # GQA: each kv head serves a
            group = self.n_head // self.n_kv_head                 # contiguous group of q heads
            k = k.repeat_interleave(group, dim=1)                 # (B, nh, T_k, hs)
            v = v.repeat_interleave(group, dim=1)
        y = scaled_dot_product_attention(q, k, v, causal=True)   # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, self.n_head * self.head_dim)  # heads back
        return self.out_drop(self.out_proj(y))                    # side by side, then mix them
