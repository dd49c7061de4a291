"""A LoRA layer: a frozen nn.Linear plus a trainable low-rank update.

    y = base(x) + s · B · A · dropout(x)          s = α / r   (rank-stabilised: α / √r)

    W   (out, in)   the pretrained weight, frozen: requires_grad False, never changes in training
    A   (r, in)     Kaiming-uniform like nn.Linear (bound 1/√in): a random projection down to r
    B   (out, r)    zeros: at the start B·A = 0, so the layer computes exactly what the base did

Only A and B learn: r·(in + out) numbers instead of in·out. With B = 0 the gradient still reaches B
(it is ∂y/∂B = s · (A·x)ᵀ, and A·x is not zero); A's gradient is zero for the first step and picks up
as soon as B moves. Both zero would be a dead adapter (both gradients zero forever); both random
would start from a different function than the pretrained one.

Dropout sits on the adapter's input only: the frozen path must compute the same thing in train and
eval mode. When `merged` is True the update is already folded into W (merge.py) and forward is
just the base layer.

Not handled: several adapters per layer, a bias on the adapter, DoRA and other variants.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn


class LoRALinear(nn.Module):
    """LoRA around `base` (an nn.Linear, or anything with the same in/out convention).

    r: rank of the update.  alpha: its scale numerator, s = alpha / r (alpha / √r if rslora).
    dropout: probability of dropping an input feature on the adapter path (0: none).
    """

    def __init__(self, base: nn.Module, r: int, alpha: float, dropout: float = 0.0, rslora: bool = False):
        super().__init__()
        if r <= 0:
            raise ValueError(f"LoRA rank r must be a positive int, got {r!r}")
        self.base = base
        self.base.requires_grad_(False)                      # the pretrained weights stay frozen
        self.in_features, self.out_features = self.features(base)
        self.r, self.alpha = r, alpha
        self.scaling = alpha / math.sqrt(r) if rslora else alpha / r
        self.A = nn.Parameter(torch.empty(r, self.in_features))
        self.B = nn.Parameter(torch.zeros(self.out_features, r))   # B = 0: ΔW = B·A = 0 at the start
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))     # nn.Linear's init: U(-1/√in, 1/√in)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    @staticmethod
    def features(base: nn.Module) -> tuple[int, int]:
        """(in, out) of the base layer: nn.Linear (and LinearNF4, qlora.py) say so by name."""
        return base.in_features, base.out_features

    def delta_weight(self) -> torch.Tensor:
        """The update s·B·A in the base weight's own layout: (out, in) for nn.Linear."""
        return self.scaling * (self.B @ self.A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)                                     # (..., out): the frozen path, no dropout
        if self.merged:                                      # the update is already inside W
            return y
        update = self.dropout(x) @ self.A.T @ self.B.T       # (..., in) -> (..., r) -> (..., out)
        return y + self.scaling * update

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, r={self.r}, scaling={self.scaling:g}"
