"""Normalisation layers, written out by hand.

Both work on the last axis only (the C channels of one position). They never mix positions: each
token's vector is rescaled on its own.
"""
from __future__ import annotations

import torch
import torch.nn as nn


class LayerNorm(nn.Module):
    """(x - mean) / sqrt(var + eps) · weight + bias, statistics over the last axis.

    The variance is the biased one (divide by C, not C - 1), as in torch.nn.LayerNorm.
    Parameters: weight (C,) starting at 1, bias (C,) starting at 0 (None when bias=False).
    """

    def __init__(self, dim: int, eps: float = 1e-5, bias: bool = True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=-1, keepdim=True)                          # (..., 1)
        var = (x - mean).pow(2).mean(dim=-1, keepdim=True)           # (..., 1), biased
        y = (x - mean) * torch.rsqrt(var + self.eps) * self.weight
        return y + self.bias if self.bias is not None else y


class RMSNorm(nn.Module):
    """x / sqrt(mean(x²) + eps) · weight: LayerNorm without the centring and without a bias.

    Parameter: weight (C,) starting at 1.
    """

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ms = x.pow(2).mean(dim=-1, keepdim=True)                     # (..., 1)
        return x * torch.rsqrt(ms + self.eps) * self.weight


def make_norm(cfg) -> nn.Module:
    """The norm the config asks for, over d_model channels."""
    if cfg.norm == "rmsnorm":
        return RMSNorm(cfg.d_model, cfg.norm_eps)
    return LayerNorm(cfg.d_model, cfg.norm_eps, bias=cfg.bias)
