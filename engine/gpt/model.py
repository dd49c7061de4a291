"""The whole decoder-only GPT: embeddings, a stack of blocks, a final norm, and the output head.

    idx (B, T) token ids
      -> tok_emb(idx) + pos_emb(0..T-1)         (B, T, C)   the residual stream starts here
      -> Block × L                              (B, T, C)
      -> norm_f                                 (B, T, C)
      -> lm_head (= tok_embᵀ, weight tying)     (B, T, V)   one score per vocabulary entry

State_dict layout (what the checks load into your model):
    tok_emb.weight (V, C)    pos_emb.weight (block_size, C)   [pos="learned" only]
    blocks.{i}.norm1.*  blocks.{i}.attn.{q,k,v,out}_proj.*  blocks.{i}.norm2.*  blocks.{i}.mlp.*
    norm_f.*                 lm_head.weight (V, C), the same tensor as tok_emb.weight
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
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        if cfg.pos == "learned":                     # RoPE puts positions inside attention instead
            self.pos_emb = nn.Embedding(cfg.block_size, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)          # on the embeddings; each branch has its own
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm_f = make_norm(cfg)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight    # weight tying: one (V, C) matrix, two jobs
        self.apply(self._init_weights)
        # Each residual branch ends in a projection that adds into the stream; with 2·L of them the
        # sum's variance grows with depth, so those start smaller (GPT-2's 1/sqrt(2L) scaling).
        for name, p in self.named_parameters():
            if name.endswith(("out_proj.weight", "mlp.down.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameter count (the tied head counted once). non_embedding drops the position table."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and self.cfg.pos == "learned":
            n -= self.pos_emb.weight.numel()
        return n

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, cache=None):
        """idx (B, T) -> (logits (B, T, V), loss or None).

        With a KV cache, idx holds only the new tokens; they sit at positions cache.pos onwards.
        """
        B, T = idx.shape
        start = 0 if cache is None else cache.pos
        if start + T > self.cfg.block_size:
            raise ValueError(f"sequence of {start + T} tokens is longer than block_size="
                             f"{self.cfg.block_size}")
        x = self.tok_emb(idx)                                              # (B, T, C)
        if self.cfg.pos == "learned":
            positions = torch.arange(start, start + T, device=idx.device)  # (T,)
            x = x + self.pos_emb(positions)                                # broadcast over B
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, cache=cache, layer=i)
        if cache is not None:
            cache.advance(T)                         # the new positions are now in the cache
        logits = self.lm_head(self.norm_f(x))                              # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T))
        return logits, loss
