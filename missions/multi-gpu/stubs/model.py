"""A small GPT to train on several processes (given code: nothing to write in this file).

The same shape as mission gpt's model, in one file, so that this package stands alone:

    idx (B, T) -> tok_emb(idx) + pos_emb(0..T-1)     (B, T, C)
               -> Block × L                          (B, T, C)   pre-norm attention + MLP
               -> ln_f -> head (= tok_embᵀ, tied)    (B, T, V)

`head.weight` IS `tok_emb.weight` (one Parameter, two uses): a data-parallel wrapper must reduce its
gradient once, not twice. `checkpointing=True` recomputes each block's activations in the backward
pass instead of keeping them (brief, section 7).

What each block keeps for backward (brief, section 7; counted in values, fp32 = 4 bytes each):
    ln1 its input x                B·T·C        qkv   its input (ln1's output)   B·T·C
    q @ kᵀ  q and k                2·B·T·C      softmax  its output           nh·B·T·T
    weights @ v   v                B·T·C        proj  the merged heads          B·T·C
    ln2 its input                  B·T·C        fc    its input (ln2's output)  B·T·C
    gelu its input                 4·B·T·C      out   gelu's output            4·B·T·C
    total per block: 16·B·T·C + nh·B·T²   (plus LayerNorm's mean and 1/std: 4·B·T, negligible)
Not handled: dropout, KV caching, sampling (mission gpt has them).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


@dataclass
class ModelConfig:
    vocab_size: int = 84      # distinct tokens (V): the characters of the shipped Shakespeare
    block_size: int = 64      # the longest context (largest T)
    n_layer: int = 2          # transformer blocks (L)
    n_head: int = 2           # attention heads (nh); d_model must divide evenly
    d_model: int = 64         # width of the residual stream (C)


class Block(nn.Module):
    """x + attention(ln1(x)), then + mlp(ln2(x)): the pre-norm transformer block."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        C = cfg.d_model
        self.n_head = cfg.n_head
        self.ln1 = nn.LayerNorm(C)
        self.qkv = nn.Linear(C, 3 * C)          # q, k and v in one matmul
        self.proj = nn.Linear(C, C)
        self.ln2 = nn.LayerNorm(C)
        self.fc = nn.Linear(C, 4 * C)
        self.out = nn.Linear(4 * C, C)
        mask = torch.ones(cfg.block_size, cfg.block_size, dtype=torch.bool).tril()
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        nh, hs = self.n_head, C // self.n_head
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)                    # 3 × (B, T, C)
        q, k, v = (t.view(B, T, nh, hs).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))         # (B, nh, T, T)
        scores = scores.masked_fill(~self.mask[:T, :T], float("-inf"))
        y = torch.softmax(scores, dim=-1) @ v                               # (B, nh, T, hs)
        x = x + self.proj(y.transpose(1, 2).contiguous().view(B, T, C))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class TinyGPT(nn.Module):
    def __init__(self, cfg: ModelConfig, checkpointing: bool = False):
        super().__init__()
        if cfg.d_model % cfg.n_head:
            raise ValueError(f"d_model={cfg.d_model} is not divisible by n_head={cfg.n_head}")
        self.cfg, self.checkpointing = cfg, checkpointing
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight              # weight tying: one (V, C) Parameter
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx (B, T) -> (logits (B, T, V), mean cross-entropy over the B·T targets, or None)."""
        B, T = idx.shape
        if T > self.cfg.block_size:
            raise ValueError(f"sequence of {T} tokens is longer than block_size={self.cfg.block_size}")
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(T, device=idx.device))
        for block in self.blocks:
            # checkpointing keeps only the block's input; backward runs the block again to get the rest
            x = checkpoint(block, x, use_reentrant=True) if self.checkpointing and x.requires_grad else block(x)
        logits = self.head(self.ln_f(x))
        loss = None if targets is None else F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))
        return logits, loss


def num_params(model: nn.Module) -> int:
    """Parameters counted once each (the tied head is the embedding)."""
    return sum(p.numel() for p in model.parameters())
