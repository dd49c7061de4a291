"""QLoRA: a frozen base stored in NF4, a LoRA adapter in full precision on top (brief.md, section 7).

    LinearNF4      an nn.Linear whose weight is kept ONLY as packed NF4 codes + fp32 block scales
                   (register them as buffers: they are state, not parameters); forward dequantises
                   on the fly: y = x · dequant(W)ᵀ + b
    LoRALinear(LinearNF4.from_linear(linear), r, alpha)    your adapter, unchanged

Attributes the rest of the code reads: in_features, out_features. Keep no fp32 copy of W anywhere:
the checks measure the bytes of every tensor the module holds.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .nf4 import dequantize_nf4, quantize_nf4


class LinearNF4(nn.Module):
    """A frozen linear layer with an NF4 weight. Build it with LinearNF4.from_linear(linear)."""

    def __init__(self, in_features: int, out_features: int, packed: torch.Tensor, absmax: torch.Tensor,
                 bias: torch.Tensor | None, blocksize: int = 64):
        super().__init__()
        raise NotImplementedError("LinearNF4.__init__: see brief.md, section 7 (QLoRA)")

    @classmethod
    def from_linear(cls, linear: nn.Linear, blocksize: int = 64) -> "LinearNF4":
        raise NotImplementedError("LinearNF4.from_linear: see brief.md, section 7 (QLoRA)")

    def dequantized_weight(self) -> torch.Tensor:
        """The (out, in) fp32 weight the codes stand for (a fresh tensor each call)."""
        raise NotImplementedError("LinearNF4.dequantized_weight: see brief.md, section 7 (QLoRA)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("LinearNF4.forward: see brief.md, section 7 (QLoRA)")

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, nf4 blocks of {self.blocksize}"


def quantize_linears(model: nn.Module, skip=()) -> list[str]:
    """Replace every nn.Linear in `model` (except names ending in one of `skip`) by a LinearNF4."""
    names = [name for name, m in model.named_modules()
             if isinstance(m, nn.Linear) and not any(name == s or name.endswith("." + s) for s in skip)]
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LinearNF4.from_linear(getattr(parent, child)))
    return names
