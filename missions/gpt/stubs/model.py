"""The whole decoder-only GPT (brief.md, section 5).

    idx (B, T) token ids
      -> tok_emb(idx) + pos_emb(0..T-1)         (B, T, C)   the residual stream starts here
      -> Block × L                              (B, T, C)
      -> norm_f                                 (B, T, C)
      -> lm_head (= tok_embᵀ, weight tying)     (B, T, V)   one score per vocabulary entry

State_dict layout (the checks load the reference's weights into your model):
    tok_emb.weight (V, C)    pos_emb.weight (block_size, C)   [only when cfg.pos == "learned"]
    blocks.{i}.norm1.*  blocks.{i}.attn.{q,k,v,out}_proj.*  blocks.{i}.norm2.*  blocks.{i}.mlp.*
    norm_f.*                 lm_head.weight (V, C), the same Parameter as tok_emb.weight
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .block import Block
from .config import GPTConfig
from .norm import make_norm


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        """Build tok_emb, pos_emb (learned positions only), blocks (an nn.ModuleList), norm_f and
        lm_head (no bias), tie lm_head.weight to tok_emb.weight, then initialise: every Linear and
        Embedding weight ~ normal(0, 0.02), every bias 0, and the two projections that end a
        residual branch (attn.out_proj, mlp.down) ~ normal(0, 0.02 / sqrt(2 · n_layer)).
        Dropout: an nn.Dropout(cfg.dropout) on the embeddings (after tok_emb + pos_emb), so that
        model.eval() switches it off. Keep cfg as self.cfg (generation reads self.cfg.block_size)."""
        super().__init__()
        raise NotImplementedError("GPT.__init__: see brief.md, section 5 (The model)")

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameter count (the tied head counted once). non_embedding drops the position table."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and self.cfg.pos == "learned":
            n -= self.pos_emb.weight.numel()
        return n

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, cache=None):
        """idx (B, T) int64 -> (logits (B, T, V), loss).

        loss: the mean cross-entropy of logits against targets (B, T), or None without targets.
        cache (checkpoint kvcache, brief section 8): idx then holds only the new tokens; their
        positions start at cache.pos. Pass cache and the block's index to every block, and call
        cache.advance(T) once at the end.
        """
        raise NotImplementedError("GPT.forward: see brief.md, section 5 (The model)")
