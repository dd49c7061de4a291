"""One transformer block (brief.md, section 4; SwiGLU: section 9.3).

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
    """Linear(C, H) -> GELU -> Linear(H, C), H = cfg.mlp_hidden (4·C).

    Parameters: up nn.Linear(C, H, bias=cfg.bias), down nn.Linear(H, C, bias=cfg.bias).
    Use the exact GELU, F.gelu(x), and nn.Dropout(cfg.dropout) on the output, after down.
    """

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        raise NotImplementedError("MLP.__init__: see brief.md, section 4 (The block)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("MLP.forward: see brief.md, section 4 (The block)")


class SwiGLU(nn.Module):
    """Bonus: down(silu(gate(x)) * up(x)).

    Parameters: gate nn.Linear(C, H), up nn.Linear(C, H), down nn.Linear(H, C) (bias=cfg.bias),
    H = cfg.mlp_hidden. Dropout on the output, as in MLP.
    """

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        raise NotImplementedError("SwiGLU.__init__: see brief.md, section 9.3 (SwiGLU)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("SwiGLU.forward: see brief.md, section 9.3 (SwiGLU)")


class Block(nn.Module):
    """Pre-norm transformer block.

    Parameters: norm1 = make_norm(cfg), attn = MultiHeadAttention(cfg), norm2 = make_norm(cfg),
    mlp = SwiGLU(cfg) if cfg.mlp == "swiglu" else MLP(cfg).
    """

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        raise NotImplementedError("Block.__init__: see brief.md, section 4 (The block)")

    def forward(self, x: torch.Tensor, cache=None, layer: int = 0) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C). Pass cache and layer on to the attention."""
        raise NotImplementedError("Block.forward: see brief.md, section 4 (The block)")
