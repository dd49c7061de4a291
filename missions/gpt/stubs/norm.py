"""Normalisation layers, written out by hand (brief.md, section 4; RMSNorm: section 9.2).

Both work on the last axis only: each position's C channels are rescaled on their own.
"""
from __future__ import annotations

import torch
import torch.nn as nn


class LayerNorm(nn.Module):
    """(x - mean) / sqrt(var + eps) · weight + bias, statistics over the last axis.

    Use the biased variance (divide by C), as torch.nn.LayerNorm does.
    Parameters: weight (C,) starting at 1, bias (C,) starting at 0 (bias=None when bias=False).
    torch.nn.LayerNorm / F.layer_norm would do it for you: write it yourself.
    """

    def __init__(self, dim: int, eps: float = 1e-5, bias: bool = True):
        super().__init__()
        raise NotImplementedError("LayerNorm.__init__: see brief.md, section 4 (The block)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("LayerNorm.forward: see brief.md, section 4 (The block)")


class RMSNorm(nn.Module):
    """Bonus: x / sqrt(mean(x²) + eps) · weight over the last axis. Parameter: weight (C,) at 1."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        raise NotImplementedError("RMSNorm.__init__: see brief.md, section 9.2 (RMSNorm)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("RMSNorm.forward: see brief.md, section 9.2 (RMSNorm)")


def make_norm(cfg) -> nn.Module:
    """The norm the config asks for, over d_model channels."""
    if cfg.norm == "rmsnorm":
        return RMSNorm(cfg.d_model, cfg.norm_eps)
    return LayerNorm(cfg.d_model, cfg.norm_eps, bias=cfg.bias)
