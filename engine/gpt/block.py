"""One transformer block: attention, then an MLP, each on a pre-normed copy of the residual stream.

    x = x + attn(norm1(x))      tokens talk to each other
    x = x + mlp(norm2(x))       each token thinks on its own
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import MultiHeadAttention
from .config import GPTConfig
from .norm import make_norm


class MLP(nn.Module):
    """Linear(C, 4C) -> GELU -> Linear(4C, C). Parameters: up, down."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.up = nn.Linear(cfg.d_model, cfg.mlp_hidden, bias=cfg.bias)
        self.down = nn.Linear(cfg.mlp_hidden, cfg.d_model, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)                  # on the branch output, before the add

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.down(F.gelu(self.up(x))))     # exact (erf) GELU, not the tanh one


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x)): one branch decides how much of the other passes.

    Parameters: gate Linear(C, H), up Linear(C, H), down Linear(H, C), with H = cfg.mlp_hidden.
    """

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.gate = nn.Linear(cfg.d_model, cfg.mlp_hidden, bias=cfg.bias)
        self.up = nn.Linear(cfg.d_model, cfg.mlp_hidden, bias=cfg.bias)
        self.down = nn.Linear(cfg.mlp_hidden, cfg.d_model, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.down(F.silu(self.gate(x)) * self.up(x)))


class Block(nn.Module):
    """Pre-norm transformer block. Parameters: norm1, attn, norm2, mlp."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.norm1 = make_norm(cfg)
        self.attn = MultiHeadAttention(cfg)
        self.norm2 = make_norm(cfg)
        self.mlp = SwiGLU(cfg) if cfg.mlp == "swiglu" else MLP(cfg)

    def forward(self, x: torch.Tensor, cache=None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cache=cache, layer=layer)  # the residual stream is never
        x = x + self.mlp(self.norm2(x))                             # normalised, only read from
        return x
