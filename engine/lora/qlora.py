"""QLoRA: a frozen base stored in NF4, a LoRA adapter in full precision on top.

    LinearNF4      an nn.Linear whose weight is kept only as packed NF4 codes + fp32 block scales;
                   forward dequantises it on the fly: y = x · dequant(W)ᵀ + b
    LoRALinear(LinearNF4(...), r, alpha)    the adapter of lora_linear.py, unchanged

Gradients flow through the dequantised weight to x (the layers below still need them), but the
codes are integers in a buffer: nothing about the base can be trained, and nothing of it is stored
in fp32. Memory for the base: 0.5 byte per weight for the codes plus 4 bytes per 64 weights for the
scales, ~0.56 byte/weight instead of 4. (QLoRA also quantises those scales, double_quant.py, and
pages optimizer state to CPU memory; neither changes the arithmetic here.)

In QLoRA the dequantised weight is used in bf16 on a GPU; on CPU it stays fp32 here.
Not handled: merging an adapter into an NF4 base (see merge.py), bf16 compute, Conv1D bases
(transpose a Conv1D weight to (out, in) before quantising it).
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
        self.in_features, self.out_features, self.blocksize = in_features, out_features, blocksize
        self.register_buffer("packed", packed)          # uint8 (out·in / 2,): two codes per byte
        self.register_buffer("absmax", absmax)          # fp32 (out·in / blocksize,)
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    @classmethod
    def from_linear(cls, linear: nn.Linear, blocksize: int = 64) -> "LinearNF4":
        packed, absmax = quantize_nf4(linear.weight, blocksize)
        return cls(linear.in_features, linear.out_features, packed, absmax, linear.bias, blocksize)

    def dequantized_weight(self) -> torch.Tensor:
        """The (out, in) fp32 weight the codes stand for (a fresh tensor each call)."""
        return dequantize_nf4(self.packed, self.absmax, (self.out_features, self.in_features), self.blocksize)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.dequantized_weight().to(x.dtype), self.bias)

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
