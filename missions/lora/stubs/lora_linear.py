"""A LoRA layer: a frozen nn.Linear plus a trainable low-rank update (brief.md, section 2).

    y = base(x) + s · B · A · dropout(x)          s = α / r   (rank-stabilised, rslora=True: α / √r)

    W   (out, in)   the pretrained weight, frozen: requires_grad False
    A   (r, in)     nn.Parameter, Kaiming-uniform like nn.Linear: nn.init.kaiming_uniform_(A, a=math.sqrt(5))
    B   (out, r)    nn.Parameter, zeros

Names matter (the checks load weights into them): self.base, self.A, self.B, self.scaling,
self.in_features, self.out_features, self.r, self.merged.
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
        raise NotImplementedError("LoRALinear.__init__: see brief.md, section 2 (The LoRA layer)")

    @staticmethod
    def features(base: nn.Module) -> tuple[int, int]:
        """(in, out) of the base layer: nn.Linear (and LinearNF4, qlora.py) say so by name."""
        return base.in_features, base.out_features

    def delta_weight(self) -> torch.Tensor:
        """The update s·B·A in the base weight's own layout: (out, in) for nn.Linear."""
        raise NotImplementedError("LoRALinear.delta_weight: see brief.md, section 2 (The LoRA layer)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., in) -> (..., out). When self.merged is True the update is already inside W
        (checkpoint merge): return the base layer's output alone."""
        raise NotImplementedError("LoRALinear.forward: see brief.md, section 2 (The LoRA layer)")

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, r={self.r}, scaling={self.scaling:g}"
